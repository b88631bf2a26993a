"""Data-parallel training (training.distributed): `okng train --nproc 2` on this CPU, real processes.

The DDP run and a one-process run with the same seed and global batch must end with the SAME
parameters (the trainable head; BatchNorm is frozen there, as per-rank BatchNorm statistics are
the one thing data parallelism changes on a CPU): the plan, the weighted loss over the global
batch, the LR and the epoch choice all have to agree for that, a stronger check than comparing
two noisy accuracies. The model is stored once, by rank 0, and its card says 2 processes.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from toykit import make_toy_project

from app.cli import main
from app.cli.launch import without_nproc
from labeling.store import Project
from training.card import read_card, read_cards
from training.checkpoint import from_bytes
from training.distributed import Ranks, loss_denominator, ranks_on_cuda
from training.errors import TrainingError
from training.features import batches
from training.recipe import RunClock

ROOT = Path(__file__).resolve().parents[2]
# resnet18's head on a frozen trunk, SGD, no augmentation: deterministic, a few seconds a rank.
# On the CPU everywhere: "equal to one process" to 1e-5 is a gloo/CPU statement (a one-GPU machine
# runs two ranks on the CPU, its single process on CUDA with TF32: not comparable to 1e-5).
ARGS = ["--arch", "resnet18", "--freeze", "head", "--recipe", "manual", "--optimizer", "sgd", "--lr", "0.05",
        "--augment", "none", "--epochs", "3", "--input-size", "32", "--batch-size", "8", "--patience", "0",
        "--device", "cpu"]


def _okng(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **kw)


def _ranks(rank: int, world: int) -> Ranks:
    """A Ranks' pure methods (planning, sharding) without a process group."""
    r = object.__new__(Ranks)
    r.rank, r.world_size, r.main = rank, world, rank == 0
    return r


def _state(project: Project, model_id: str) -> dict[str, torch.Tensor]:
    card = read_card(project, model_id)
    return from_bytes(project.load_checkpoint(model_id), card.checkpoint_sha256, model_id)["state_dict"]


def test_launcher_passes_everything_but_nproc():
    argv = ["train", "p.okng", "--nproc", "2", "--epochs", "3", "--nproc=4", "--npr", "2", "--json"]
    assert without_nproc(argv) == ["train", "p.okng", "--epochs", "3", "--json"]


def test_batches_keep_every_view_once():
    """A trailing batch of one joins the batch before it (it used to overwrite the one before that)."""
    out = batches(np.arange(25), 8, np.random.default_rng(0))
    assert [len(b) for b in out] == [8, 8, 9] and sorted(np.concatenate(out)) == list(range(25))


def test_ranks_share_each_global_batch_of_one_plan():
    views = np.arange(37)
    for world in (2, 3):
        plans = [_ranks(r, world).batches(views, 8, np.random.default_rng(5)) for r in range(world)]
        assert all(len(p) == len(plans[0]) for p in plans)  # every rank: the same number of steps
        for step, global_batch in enumerate(plans[0]):
            shards = [_ranks(r, world).shard(global_batch) for r in range(world)]
            assert np.array_equal(np.concatenate(shards), global_batch)  # all of it, once
            assert min(len(s) for s in shards) >= 2  # BatchNorm needs two samples a rank
        assert sorted(np.concatenate(plans[0])) == list(views)


def test_rank_zero_clock_keeps_running_once_agreed():
    """Every rank reads rank 0's agreed seconds; rank 0 itself must keep telling its own time
    (reading back the agreed value froze the clock: a --budget run never ended)."""
    now = [0.0]
    clock = RunClock(10.0, None, lambda: now[0]).start()
    r = _ranks(0, 2)
    r._all_reduce = lambda values, op=None: torch.tensor(list(values), dtype=torch.float64)
    for t in (3.0, 7.0, 11.0):
        now[0] = t
        r.tick(clock)
        assert clock.elapsed() == t
    assert not clock.more_epochs(1)
    now[0] = 12.0
    r.step(clock, torch.nn.CrossEntropyLoss(), torch.tensor([0, 1]))
    assert clock.elapsed() == 12.0


def test_scaled_rank_losses_average_to_the_global_batch_loss():
    """DDP averages the ranks' gradients; scaled by sync.step's factor that is the global batch's,
    also for a class-weighted cross-entropy whose mean divides by the summed weights."""
    gen = torch.Generator().manual_seed(0)
    logits, y = torch.randn(11, 3, generator=gen), torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 1])
    crit = torch.nn.CrossEntropyLoss(weight=torch.tensor([0.3, 2.0, 5.0]))
    shards = [np.arange(0, 6), np.arange(6, 11)]
    dens = [loss_denominator(crit, y[s]) for s in shards]
    scaled = [len(shards) * d / sum(dens) * crit(logits[s], y[s]) for s, d in zip(shards, dens)]
    assert torch.allclose(sum(scaled) / len(shards), crit(logits, y), atol=1e-6)


def test_two_processes_register_one_model_equal_to_one_process(tmp_path, capsys):
    path = make_toy_project(tmp_path / "ddp.okng", n_ok=12, n_ng=12, size=(32, 32), views=1)
    n = torch.get_num_threads()
    try:
        assert main(["train", str(path), *ARGS, "--json"]) == 0
    finally:
        torch.set_num_threads(n)
    one = json.loads(capsys.readouterr().out)
    proc = _okng("train", str(path), *ARGS, "--nproc", "2", "--json")
    out, err = proc.communicate(timeout=280)
    assert proc.returncode == 0, err
    two = json.loads(out)  # rank 0 alone prints: one JSON object
    assert "epoch 3/3 done" in err and err.count("okng train: save") == 1
    proj = Project.open(path, readonly=True)
    assert sorted(c.id for c in read_cards(proj)) == sorted([one["model_id"], two["model_id"]])  # stored once
    card = read_card(proj, two["model_id"])
    assert (card.world_size, card.global_batch) == (2, 8) and two["world_size"] == 2
    assert read_card(proj, one["model_id"]).world_size == 1
    a, b = _state(proj, one["model_id"]), _state(proj, two["model_id"])
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) < 1e-5
    for split in ("val", "test"):  # the same parameters score the same
        for key in ("balanced_accuracy", "roc_auc", "confusion_matrix"):
            assert one["metrics"][split][key] == two["metrics"][split][key]
    assert np.allclose([h["loss"] for h in one["history"]], [h["loss"] for h in two["history"]], atol=1e-5)


def _long_run_past_epoch_1(path: Path) -> subprocess.Popen:
    """`okng train --nproc 2` of 500 epochs on a toy project, once rank 0 reported epoch 1."""
    make_toy_project(path, n_ok=12, n_ng=12, size=(32, 32), views=1)
    proc = _okng("train", str(path), "--arch", "resnet18", "--freeze", "none", "--epochs", "500",
                 "--input-size", "32", "--batch-size", "8", "--nproc", "2")
    lines = []
    for line in proc.stderr:  # progress of rank 0 comes through the launcher
        lines.append(line)
        if "epoch 1/500 done" in line:
            break
    assert any("epoch 1/500 done" in line for line in lines), "".join(lines)
    return proc


def test_cancel_stops_every_rank_and_stores_nothing(tmp_path):
    path = tmp_path / "stop.okng"
    proc = _long_run_past_epoch_1(path)
    proc.send_signal(signal.SIGINT)  # Ctrl+C at the launcher
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err
    assert "cancelled, nothing stored" in err and "Traceback" not in err
    assert read_cards(Project.open(path, readonly=True)) == []
    deadline = time.monotonic() + 30
    while _processes_of(path) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_of(path) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_launcher_killed_outright_takes_torchrun_and_the_ranks_with_it(tmp_path):
    """SIGKILL runs no handler and no finally: torchrun's parent-death signal is what stops the ranks."""
    path = tmp_path / "orphan.okng"
    proc = _long_run_past_epoch_1(path)
    assert len(_processes_of(path)) >= 4  # the launcher, torchrun, two ranks
    proc.kill()  # the launcher alone, not its session: torchrun runs in a session of its own
    proc.wait(timeout=10)
    deadline = time.monotonic() + 90
    while _processes_of(path) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _processes_of(path)
    for pid in left:  # never leave them training in the suite
        os.kill(pid, signal.SIGKILL)
    assert left == []
    assert read_cards(Project.open(path, readonly=True)) == []  # cancelled: nothing stored


def _processes_of(path: Path) -> list[int]:
    """Processes whose command line names the project (torchrun and its ranks)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if str(path).encode() in cmd:
                found.append(int(d.name))
    return found


pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed")


def test_ranks_share_no_gpu_under_auto_and_say_so_when_cuda_is_asked_for():
    """NCCL refuses two ranks on one GPU (seen on a one-GPU H100 with --nproc 2): "auto" then
    trains every rank on the CPU; an explicit "cuda" names the fix instead of an NCCL trace."""
    assert ranks_on_cuda("auto", local_world=2, gpus=2) is True
    assert ranks_on_cuda("auto", local_world=2, gpus=1) is False
    assert ranks_on_cuda("auto", local_world=1, gpus=0) is False
    assert ranks_on_cuda("cpu", local_world=1, gpus=4) is False
    assert ranks_on_cuda("cuda", local_world=4, gpus=4) is True
    with pytest.raises(TrainingError, match="2 processes on this machine but 1 GPU"):
        ranks_on_cuda("cuda", local_world=2, gpus=1)
    with pytest.raises(TrainingError, match="no CUDA GPU"):
        ranks_on_cuda("cuda", local_world=1, gpus=0)


@pytest.mark.parametrize("world, teardown", [("2", False), ("1", True), ("", True)])
def test_a_rank_leaves_with_its_code_and_its_output_but_without_the_teardown(world, teardown):
    """app.cli.launch.leave: a torchrun rank skips the interpreter's teardown (where gloo's threads
    aborted a finished rank) yet keeps its exit code and everything it wrote; a lone process exits
    normally (its atexit handlers run)."""
    code = ("import atexit, sys\n"
            "from app.cli.launch import leave\n"
            "atexit.register(lambda: print('teardown', flush=True))\n"
            "print('result line')\n"  # buffered: a pipe is not a terminal
            "sys.stderr.write('progress line')\n"
            "leave(3)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORLD_SIZE": world}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False,
                          timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.splitlines() == ["result line"] + (["teardown"] if teardown else [])
    assert proc.stderr.endswith("progress line")
