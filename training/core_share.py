"""The CPU cores shared fairly among the okng runs training on one machine.

A torch process uses every core by default. Two of them on one PC (an inspector's training and a
label check, two `okng train` runs, a pretraining beside a training) each start as many OpenMP
threads as there are cores, and the threads of one wait on the threads of the other: on this
2-core CPU a resnet18 step (batch 16, 224 px, bf16) took 0.43 s alone with 2 threads, 1.41 s
for each of two runs with 2 threads each, and 0.61-0.68 s for each of two runs with 1 thread
each (OMP_WAIT_POLICY=PASSIVE made it worse, 5.3 s). Two whole `okng train` runs at once took
7x their time alone (bench/train_concurrent.py: 209-212 s against 30 s; 39-41 s with the share).
So a run registers itself
in a per-user folder and, every few seconds between optimiser steps, sets its torch threads to
its share: the cores divided by the runs alive, at least 1. A run that ended, even killed with
no chance to clean up, stops counting: its file names a process that no longer exists (its
start time is checked too, so a reused process id is not mistaken for it).

A run given a thread count (TrainConfig.num_threads, `--threads`) keeps it: the user has chosen;
it still counts, so the runs beside it leave it its share. A live sort on the same PC reserves the
cores of its forward (`reserve`): the runs divide only the rest, at least one thread each, so a
training started on the line PC does not slow the verdicts the reject gate waits for. No torch
import at module level.
"""
from __future__ import annotations

import contextlib
import getpass
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ENV_DIR = "OKNG_RUNS_DIR"  # where the runs register (tests point it at a temp folder)
RECHECK_S = 2.0  # how often a run looks at the folder: a step is 0.1-1 s on a CPU


def runs_dir() -> Path:
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name (a container without a passwd entry)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"okng-runs-{user}"


def _start_time(pid: int) -> str:
    """The process's start time (Linux: /proc/PID/stat field 22), '' where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[19]  # fields after the command name, 22nd overall


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process with that id: alive, not ours to judge
        return True
    except OSError:
        return False
    return not started or _start_time(pid) in ("", started)


KINDS = (".run", ".sort")  # a training run's registration, a live sort's reservation


def _live(folder: Path) -> dict[str, list[str]]:
    """Per kind (KINDS), the contents past the start time of its live registrations, from one
    pass over the folder (files of dead processes are removed)."""
    out: dict[str, list[str]] = {k: [] for k in KINDS}
    try:
        entries = list(folder.iterdir())
    except OSError:
        return out
    for f in entries:
        if f.suffix not in out:
            continue
        try:
            pid = int(f.stem)
            started, _, rest = f.read_text().strip().partition(" ")
        except (ValueError, OSError):
            continue
        if _alive(pid, started):
            out[f.suffix].append(rest)
        else:
            with contextlib.suppress(OSError):
                f.unlink()
    return out


def _reserved(live: dict[str, list[str]]) -> int:
    total = 0
    for rest in live[".sort"]:
        with contextlib.suppress(ValueError):
            total += max(0, int(rest))
    return total


def live_runs(folder: Path | None = None) -> int:
    """How many registered runs are alive (files of dead ones are removed)."""
    return len(_live(folder or runs_dir())[".run"])


def reserved_cpus(folder: Path | None = None) -> int:
    """The cores live sorts hold (hardware.sort: the engine's forward threads)."""
    return _reserved(_live(folder or runs_dir()))


@contextlib.contextmanager
def _registered(file: Path, extra: str = "") -> Iterator[bool]:
    """This process named in `file` (its start time, then `extra`) for the block; False where the
    folder cannot be written, or off POSIX (os.kill(pid, 0) terminates a process on Windows: no
    liveness check). Runs (.run) and sorts (.sort) register alike."""
    if os.name != "posix":
        yield False
        return
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(f"{_start_time(os.getpid())} {extra}".rstrip())
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):
            file.unlink()


@contextlib.contextmanager
def reserve(cpus: int, folder: Path | None = None) -> Iterator[Path | None]:
    """Hold `cpus` cores for a live sort while the block runs: training runs on this machine
    divide only the others among themselves (at least one thread each), so an inspector's
    training never takes the CPU the reject gate's verdicts come from. The sort is not a run
    and takes no share: its thread layout is its own (hardware.sort.threads). None where it
    cannot register (an unwritable temp folder: sort anyway, the runs just do not know)."""
    file = (folder or runs_dir()) / f"{os.getpid()}.sort"
    with _registered(file, str(int(cpus))) as ok:
        yield file if ok else None


class Share:
    """This process's registration; `threads()` is its share, `rebalance()` applies it."""

    def __init__(self, folder: Path, cpus: int, fixed: bool = False) -> None:
        self.folder, self.cpus, self.fixed = folder, max(1, cpus), fixed
        self.file = folder / f"{os.getpid()}.run"
        self._next = 0.0
        self.before: int | None = None  # torch's threads before the first change (restored at the end)

    def threads(self) -> int:
        live = _live(self.folder)  # one pass: this runs every RECHECK_S between steps
        free = self.cpus - _reserved(live)
        return max(1, free // max(1, len(live[".run"])))

    def rebalance(self, now: float | None = None) -> int | None:
        """Set torch's threads to the share, at most every RECHECK_S; the count set, or None."""
        now = time.monotonic() if now is None else now
        if self.fixed or now < self._next:
            return None
        self._next = now + RECHECK_S
        import torch
        n = self.threads()
        if n != torch.get_num_threads():
            if self.before is None:
                self.before = torch.get_num_threads()
            torch.set_num_threads(n)
        return n

    def restore(self) -> None:
        """torch's threads as they were before the run (a process may go on: a test, a notebook)."""
        if self.before is not None:
            import torch
            torch.set_num_threads(self.before)


_current: list[Share] = []  # the registration of the run this process is in (none, or one)


@contextlib.contextmanager
def session(fixed: int | None = None, cpus: int | None = None, folder: Path | None = None) -> Iterator[Share | None]:
    """Register this process as a training run for the block. With `fixed` threads (the user's
    count) it is registered but never rebalanced. A run nested in another (a label check's folds
    inside a process already registered) shares the outer registration; None where the folder
    cannot be written (the run keeps torch's threads)."""
    if _current:
        yield _current[-1]
        return
    folder = folder or runs_dir()
    share = Share(folder, cpus or _cpus(), fixed=bool(fixed))
    with _registered(share.file) as ok:
        if not ok:  # an unwritable temp folder: train alone rather than not at all
            yield None
            return
        _current.append(share)
        try:
            share.rebalance()
            yield share
        finally:
            _current.pop()
            share.restore()


def rebalance() -> int | None:
    """Between steps: the current run's share applied (rate-limited); None outside a run."""
    return _current[-1].rebalance() if _current else None


def _cpus() -> int:
    """The cores this process may use (its affinity where the OS tells). The ranks of a torchrun
    job each register as a run, so they divide the cores among themselves like any runs."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
