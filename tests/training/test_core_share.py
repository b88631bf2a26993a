"""Training runs on one machine share its cores (training.core_share): real processes register in
a real folder; a killed one stops counting; a training run's torch threads follow the share."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from toykit import make_toy_project

from labeling.progress import Progress
from training import core_share
from training.config import TrainConfig
from training.loop import fit_split
from training.snapshot import load_snapshot, stratified_split

ROOT = Path(__file__).resolve().parents[2]
# A second run: another process that registers like a training run and waits to be killed.
OTHER_RUN = ("import sys, time; sys.path.insert(0, sys.argv[2]); from pathlib import Path; "
             "from training import core_share; "
             "cm = core_share.session(cpus=4, folder=Path(sys.argv[1])); cm.__enter__(); "
             "print('ready', flush=True); time.sleep(120)")


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def other_run(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", OTHER_RUN, str(folder), str(ROOT)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_runs_divide_the_cores_and_a_killed_run_stops_counting(tmp_path, threads):
    torch.set_num_threads(3)
    with core_share.session(cpus=4, folder=tmp_path) as share:
        assert share is not None and share.file.exists() and share.threads() == 4
        proc = other_run(tmp_path)
        try:
            assert core_share.live_runs(tmp_path) == 2 and share.threads() == 2
            assert share.rebalance(now=1e12) == 2 and torch.get_num_threads() == 2
            assert share.rebalance(now=1e12) is None  # rate-limited: looked a moment ago
        finally:
            proc.kill()  # no chance to unregister: its file stays behind
            proc.wait()
        assert (tmp_path / f"{proc.pid}.run").exists()
        assert share.threads() == 4 and not (tmp_path / f"{proc.pid}.run").exists()
        with core_share.session(cpus=4, folder=tmp_path) as inner:  # nested: the same registration
            assert inner is share
        assert share.file.exists()
    assert not share.file.exists() and core_share.live_runs(tmp_path) == 0
    assert torch.get_num_threads() == 3  # as before the run


def test_a_reused_process_id_or_a_dead_one_is_not_a_run(tmp_path):
    if not Path(f"/proc/{os.getpid()}/stat").exists():
        pytest.skip("process start times come from /proc")
    (tmp_path / f"{os.getpid()}.run").write_text("1")  # this pid, but a process started at boot
    (tmp_path / "4194000.run").write_text("")  # above Linux's default pid_max: no such process
    (tmp_path / "notes.txt").write_text("not a run")
    assert core_share.live_runs(tmp_path) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_run_with_its_own_thread_count_keeps_it_but_still_counts(tmp_path, threads):
    torch.set_num_threads(1)
    with core_share.session(fixed=1, cpus=4, folder=tmp_path) as share:
        assert share is not None and share.rebalance(now=1e12) is None and torch.get_num_threads() == 1
        with core_share.session(cpus=4, folder=tmp_path / "x") as same:
            assert same is share  # the process is one run
        assert core_share.live_runs(tmp_path) == 1


def test_training_takes_its_share_while_another_run_trains(tmp_path, monkeypatch, threads):
    """fit_split with no thread count, beside a registered run: its steps run on half the cores."""
    folder = tmp_path / "runs"
    monkeypatch.setenv(core_share.ENV_DIR, str(folder))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(cpus)
    path = make_toy_project(tmp_path / "toy.okng", n_ok=6, n_ng=6, size=(32, 32))
    snap = load_snapshot(path, (32, 32))
    tr, va = stratified_split(snap.part_targets(), 0.25, 0)
    seen: list[int] = []

    def progress(p: Progress) -> None:
        if p.stage == "train":
            seen.append(torch.get_num_threads())
    folder.mkdir()
    proc = other_run(folder)
    try:
        cfg = TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=1, batch_size=4, patience=0)
        assert cfg.num_threads is None
        from training.backbones import get_backbone
        fit_split(snap, tr, va, cfg, lambda: get_backbone(cfg.arch).build(2), progress, None)
    finally:
        proc.kill()
        proc.wait()
    assert seen and set(seen) == {max(1, cpus // 2)}
    assert [p.name for p in folder.iterdir()] == [f"{proc.pid}.run"]  # this run unregistered itself


def test_pre_labeling_takes_its_share_beside_a_training(tmp_path, monkeypatch, threads):
    """The Label view's pre-labeling (training.predict_session) beside another run: half the cores."""
    from training.loop import train
    from training.predict_session import PredictSpec, run_session
    folder = tmp_path / "runs"
    monkeypatch.setenv(core_share.ENV_DIR, str(folder))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    path = make_toy_project(tmp_path / "toy.okng", n_ok=4, n_ng=4, size=(32, 32))
    cfg = TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=1, batch_size=4, patience=0, num_threads=1)
    res = train(path, cfg)
    torch.set_num_threads(cpus)
    seen: list[int] = []
    folder.mkdir(exist_ok=True)
    proc = other_run(folder)
    try:
        out = run_session(PredictSpec(str(path), model_id=res.model_id, heatmaps=False),
                          progress=lambda p: seen.append(torch.get_num_threads()))
    finally:
        proc.kill()
        proc.wait()
    assert out["predicted"] == 8 and seen and set(seen) == {max(1, cpus // 2)}


def test_a_live_sort_holds_its_cores_and_the_runs_divide_the_rest(tmp_path, threads):
    with core_share.session(cpus=4, folder=tmp_path) as share:
        assert share is not None and share.threads() == 4
        with core_share.reserve(1, folder=tmp_path) as held:
            assert held is not None and held.exists() and core_share.reserved_cpus(tmp_path) == 1
            assert share.threads() == 3 and core_share.live_runs(tmp_path) == 1  # a sort is not a run
            proc = other_run(tmp_path)
            try:
                assert share.threads() == 1  # (4 - 1) // 2
            finally:
                proc.kill()
                proc.wait()
        assert not held.exists() and share.threads() == 4
    # every core held: a run still gets one thread, never none
    with core_share.session(cpus=2, folder=tmp_path) as share, core_share.reserve(2, folder=tmp_path):
        assert share.threads() == 1


def test_a_dead_sorts_reservation_is_not_counted(tmp_path):
    if not Path(f"/proc/{os.getpid()}/stat").exists():
        pytest.skip("process start times come from /proc")
    (tmp_path / "4194000.sort").write_text(" 1")  # above Linux's default pid_max: no such process
    (tmp_path / f"{os.getpid()}.sort").write_text("1 1")  # this pid, but a process started at boot
    assert core_share.reserved_cpus(tmp_path) == 0
    assert list(tmp_path.iterdir()) == []
