"""The sort process's thread layout: planned per CPU count, applied on the engine thread, recorded
in the summary, undone after the run (no timing asserted: where threads run, not how fast)."""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
from sortkit import brightness_classifier, wait_for, write_folder

from hardware.errors import HardwareError
from hardware.sort import SortConfig, SortEngine
from hardware.sort.threads import available_cpus, can_pin, plan_layout
from hardware.sources import make_source


def test_two_cpus_give_the_engine_the_last_one_and_the_rest_the_first():
    lay = plan_layout("auto", None, cpus=(0, 1), pinnable=True)
    assert lay.pinned and lay.engine_cpus == (1,) and lay.service_cpus == (0,)
    assert lay.intra_op == 1  # the forward runs on the engine thread itself
    # the engine thread preprocesses too; its one helper runs beside it, never on its core
    assert lay.preprocess_cpus == (0,) and lay.preprocess_workers == 2
    assert lay.switch_interval_ms < 5.0
    d = lay.to_dict()
    assert d["engine_cpus"] == [1] and "engine on CPU 1" in d["why"]


def test_one_cpu_pins_nothing_and_preprocesses_inline():
    lay = plan_layout("auto", None, cpus=(3,), pinnable=True)
    assert not lay.pinned and lay.intra_op == 1 and lay.preprocess_workers == 1
    assert lay.engine_cpus == lay.service_cpus == (3,) and "one CPU" in lay.why


def test_more_cpus_the_os_refusing_off_explicit_and_bad_settings():
    four = plan_layout("auto", None, cpus=range(4), pinnable=True)
    assert four.engine_cpus == (1, 2, 3) and four.service_cpus == (0,) and four.intra_op == 3
    assert four.preprocess_cpus == (0, 1, 2, 3)  # several engine CPUs: the helpers may use them all
    assert plan_layout("auto", 2, cpus=range(4), pinnable=True).intra_op == 2
    assert not plan_layout("auto", None, cpus=(0, 1), pinnable=False).pinned
    off = plan_layout("off", None, cpus=(0, 1), pinnable=True)
    assert not off.pinned and off.why == "pinning off"
    mine = plan_layout("0", None, cpus=(0, 1), pinnable=True)
    assert mine.engine_cpus == (0,) and mine.service_cpus == (1,) and mine.pinned
    with pytest.raises(ValueError, match="not available"):
        plan_layout("7", None, cpus=(0, 1), pinnable=True)
    with pytest.raises(ValueError, match="CPU list"):
        plan_layout("fast", None, cpus=(0, 1), pinnable=True)
    with pytest.raises(ValueError, match="threads"):
        plan_layout("auto", 0, cpus=(0, 1), pinnable=True)


class WhereClassifier:
    """Records on which CPUs (and thread) each decision ran, then decides by brightness."""

    def __init__(self) -> None:
        self.inner = brightness_classifier()
        self.model_id = "where"
        self.seen: list[tuple[str, frozenset[int] | None, float]] = []

    def predict_views(self, images, cameras):
        cpus = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        self.seen.append((threading.current_thread().name, cpus, sys.getswitchinterval()))
        return self.inner.predict_views(images, cameras)


def _sort(tmp_path: Path, project, peer, pin: str, n: int = 3):
    folder = write_folder(tmp_path / "run", n, {1: 2})
    source = make_source(f"folder:{folder}")
    source.open()
    clf = WhereClassifier()
    engine = SortEngine(project, clf, source, SortConfig(plc_port=peer.port, poll_period=0.002, pin=pin))
    engine.start(parts=n)
    wait_for(lambda: engine.snapshot()["plc"].get("resyncs", 0) >= 1, what="resync")
    for k in range(n):
        peer.trigger(k + 1, 500 + k)
        wait_for(lambda k=k: peer.result()[0] == k + 1, what=f"answer {k + 1}")
    summary = engine.join(10)
    snap = engine.snapshot()  # what the Live-sort tiles draw: both new counters are there
    assert snap["modbus_exceptions"] == summary.modbus_exceptions == 0 and snap["missed_in_outages"] == 0
    return summary, clf


def test_the_engine_runs_on_its_cpu_and_the_layout_is_recorded_then_undone(tmp_path, project, peer):
    import torch
    main_before = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    switch_before, torch_before = sys.getswitchinterval(), torch.get_num_threads()
    summary, clf = _sort(tmp_path, project, peer, "auto")
    lay = summary.threads
    assert lay["mode"] == "auto" and summary.answered == 3
    live = [s for s in clf.seen if s[0] == "okng-sort"]
    assert live and all(s[2] == pytest.approx(lay["switch_interval_ms"] / 1000) for s in live)
    if len(available_cpus()) >= 2 and can_pin():
        assert lay["pinned"] and all(s[1] == frozenset(lay["engine_cpus"]) for s in live)
        assert "plc-heartbeat" in lay["pinned_threads"] and "okng-sort-log" in lay["pinned_threads"]
        assert lay["pinned_pids"], "the writer process is pinned to the service CPUs"
        assert lay["niced_threads"] == ["okng-sort-log"]  # below the preprocessing helper and the heartbeat
    else:  # a one-CPU machine (or an OS without affinity): nothing pinned, still recorded
        assert not lay["pinned"] and lay["pinned_threads"] == [] and lay["niced_threads"] == []
    # undone: this (pytest's) thread, the interval and torch's threads are as they were
    assert sys.getswitchinterval() == switch_before and torch.get_num_threads() == torch_before
    if main_before is not None:
        assert set(os.sched_getaffinity(0)) == main_before


def test_pin_off_leaves_affinity_alone(tmp_path, project, peer):
    summary, clf = _sort(tmp_path, project, peer, "off")
    assert not summary.threads["pinned"] and summary.threads["pinned_threads"] == []
    if hasattr(os, "sched_getaffinity"):
        assert all(s[1] == frozenset(available_cpus()) for s in clf.seen)


def test_a_bad_pin_setting_stops_before_going_live(tmp_path, project, peer):
    source = make_source(f"folder:{write_folder(tmp_path / 'run', 1, {})}")
    source.open()
    engine = SortEngine(project, WhereClassifier(), source,
                        SortConfig(plc_port=peer.port, pin="99"))
    with pytest.raises(HardwareError, match="thread layout"):
        engine.run(parts=1)
    assert peer.status() & 0x8 == 0  # SORT_MODE_ON never went out
    assert engine._logger is None  # nothing was started that would be left running


def test_a_sort_holds_its_forward_cores_from_training_runs_while_it_runs(tmp_path, project, monkeypatch):
    """training.core_share: while the engine sorts, the runs on this PC see its forward's cores as
    held (a training started beside it takes the rest); after Stop they are free again."""
    from hardware.sort.rig import run_on_simulator
    from training import core_share
    monkeypatch.setenv(core_share.ENV_DIR, str(tmp_path / "runs"))
    seen: list[int] = []
    source = make_source("sim", resolution=(128, 96))
    source.open()
    res = run_on_simulator(project, brightness_classifier(), source, parts=3, rate=10.0,
                           config=SortConfig(poll_period=0.002, log_parts=False, threads=1),
                           on_part=lambda k, sim, engine: seen.append(core_share.reserved_cpus()))
    assert res.summary.answered == 3
    assert seen == [res.summary.threads["intra_op"]] * 3 == [1] * 3
    assert core_share.reserved_cpus() == 0 and list((tmp_path / "runs").iterdir()) == []
