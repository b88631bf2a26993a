"""The Train view's data-parallel run: the training session in N torchrun ranks on this PC.

``run_procs(ProcsSpec(spec, n), progress, should_stop)`` is a plain long function (the view runs
it in its training child, app.child.in_child): it starts the same launcher as `okng train
--nproc N` (app.cli.launch: torchrun in a session of its own) with ``python -m app.cli.train_ranks
SPEC_FILE PROJECT`` as each rank's entry (the project named for `ps` only). Each rank runs training.session.run_session unchanged
(training.distributed joins them); rank 0 alone reports, and its Progress records and result
come back as pickled lines on torchrun's stdout (the view needs the typed records - TrainStep,
EpochMetrics - not the CLI's text bar). A stop request is the CLI's Ctrl+C: one SIGTERM to
torchrun, which passes it on; the ranks stop together at the next step and rank 0 answers with
its cancelled result (nothing stored). No Qt here: this runs in the child and in the ranks.
"""
from __future__ import annotations

import base64
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeling.progress import ProgressFn, StopFn

from .launch import GRACE_S, leave, ranks_env, signal_group, stop_on_signals, torchrun_command

TAG = "@okng-rank0 "  # a line of rank 0's answers on stdout (other output there is not ours)


@dataclass(frozen=True)
class ProcsSpec:
    """One training run in `nproc` processes of this PC (plain data: pickled to the child)."""

    train: Any  # training.session.TrainSpec
    nproc: int


def run_spec(train: Any, address: str | None = None, nproc: int = 1) -> Any:
    """A Train view run's spec: on the Ray cluster at `address`, in `nproc` ranks here, or in
    the one training child (the TrainSpec itself)."""
    if address:
        from training.remote.ray_job import RemoteSpec
        return RemoteSpec(train, address)
    return ProcsSpec(train, nproc) if nproc > 1 else train


def run_train(spec: Any, progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> Any:
    """A Train view run where its spec says: N ranks of this PC (ProcsSpec), else this process
    (TrainSpec) or a Ray cluster (RemoteSpec: training.remote.ray_job.run_train)."""
    if isinstance(spec, ProcsSpec):
        return run_procs(spec, progress, should_stop)
    from training.remote.ray_job import run_train as here_or_ray
    return here_or_ray(spec, progress, should_stop)


def train_in_process(spec: Any, progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> Any:
    """run_train in a child process of the window (app.child.in_child, below the GUI's priority):
    the Train view's runs; no Qt is imported there."""
    from app.child import TRAIN_NICE, in_child
    return in_child(run_train, spec, nice=TRAIN_NICE, progress=progress, should_stop=should_stop)


def _send(kind: str, value: Any) -> None:
    sys.stdout.write(TAG + base64.b64encode(pickle.dumps((kind, value))).decode("ascii") + "\n")
    sys.stdout.flush()


def rank_main(spec_file: str) -> int:
    """One rank: the session with this rank's share; rank 0 sends progress and the answer."""
    from training.distributed import env_world
    from training.session import run_session
    spec = pickle.loads(Path(spec_file).read_bytes())
    should_stop = stop_on_signals()  # torchrun forwards the driver's SIGTERM
    main = env_world()[0] == 0
    try:
        res = run_session(spec, (lambda p: _send("progress", p)) if main else None, should_stop)
    except BaseException as exc:  # noqa: BLE001 - said to the driver as a clear message
        if main:
            from app.cli.common import error_message
            _send("error", error_message(exc))
        return 1
    if main:
        _send("result", res)
    return 1 if res.cancelled else 0


def run_procs(spec: ProcsSpec, progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> Any:
    """Train spec.train in spec.nproc ranks; rank 0's result (a cancelled one when stopped)."""
    if spec.nproc < 1:
        raise ValueError("the number of processes must be at least 1")
    with tempfile.TemporaryDirectory(prefix="okng-ranks-") as tmp:
        spec_file = Path(tmp) / "spec.pickle"
        spec_file.write_bytes(pickle.dumps(spec.train))
        err_path = Path(tmp) / "stderr.txt"
        with open(err_path, "wb") as err:
            cmd = torchrun_command([str(spec_file), spec.train.project_path], spec.nproc, "app.cli.train_ranks")
            proc = subprocess.Popen(cmd, env=ranks_env(spec.nproc), stdout=subprocess.PIPE, stderr=err,
                                    start_new_session=True)
            answer: list[tuple[str, Any]] = []
            reader = threading.Thread(target=_read, args=(proc.stdout, progress, answer.append), daemon=True)
            reader.start()
            try:
                rc = _wait(proc, should_stop)
                reader.join(10.0)  # rank 0's last lines; a rank left holding stdout must not hang us
            finally:
                signal_group(proc.pid, signal.SIGKILL)  # nothing of the group outlives the run
                proc.wait()
        if answer:
            kind, value = answer[0]
            if kind == "result":
                return value
            raise RuntimeError(value)
        tail = err_path.read_text(errors="replace").strip().splitlines()[-15:]
        raise RuntimeError(f"the {spec.nproc} training processes ended without an answer (exit code {rc})"
                           + (":\n" + "\n".join(tail) if tail else ""))


def _read(stream: Any, progress: ProgressFn | None, answer: Callable[[tuple[str, Any]], None]) -> None:
    """Rank 0's lines -> progress reports and the one answer."""
    for raw in stream:
        line = raw.decode("utf-8", "replace")
        if not line.startswith(TAG):
            continue
        kind, value = pickle.loads(base64.b64decode(line[len(TAG):]))
        if kind == "progress":
            if progress is not None:
                progress(value)
        else:
            answer((kind, value))


def _wait(proc: subprocess.Popen, should_stop: StopFn | None) -> int:
    """torchrun's exit code; a stop request sends it one SIGTERM, and SIGKILL after GRACE_S."""
    asked: float | None = None
    while True:
        try:
            return proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
        if asked is None and should_stop is not None and should_stop():
            asked = time.monotonic()
            signal_group(proc.pid, signal.SIGTERM)
        elif asked is not None and time.monotonic() - asked > GRACE_S:
            signal_group(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    leave(rank_main(sys.argv[1]))
