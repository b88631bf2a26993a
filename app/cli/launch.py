"""`okng train --nproc N`: data-parallel training on this machine, through torchrun.

The launcher starts torchrun (``torch.distributed.run --standalone --nproc-per-node N -m app.cli
train ...``, in a child process: ``python -m app.cli.launch``) with the same arguments minus
``--nproc``: each rank runs `okng train` unchanged
(training.distributed); rank 0 prints the progress lines and the --json summary, which reach
this process's stderr/stdout as they are. torchrun runs in a session of its own, so a Ctrl+C
here (or SIGTERM) is forwarded once, as SIGTERM, and torchrun passes it on to the ranks, which
stop together at the next step (`stop_on_signals`) and store nothing. A launcher killed outright
(SIGKILL, the OOM killer: no handler, no ``finally``) takes torchrun with it too: on Linux torchrun
asks the kernel for a SIGTERM when its parent dies (`die_with_launcher`), the same cancel.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

GRACE_S = 60.0  # after a cancel, how long the ranks get to stop before they are killed
LAUNCHER_ENV = "OKNG_LAUNCHER_PID"  # torchrun's parent, as the launcher started it
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def without_nproc(argv: Sequence[str]) -> list[str]:
    """argv minus ``--nproc N`` / ``--nproc=N`` (and argparse's abbreviations of it)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if len(name) > 4 and "--nproc".startswith(name):
            skip = "=" not in a
            continue
        out.append(a)
    return out


def torchrun_command(argv: Sequence[str], nproc: int, module: str = "app.cli") -> list[str]:
    """The launcher's command: torchrun running `python -m MODULE ARGV` in nproc ranks."""
    return [sys.executable, "-m", "app.cli.launch", "--standalone", f"--nproc-per-node={nproc}",
            "-m", module, *without_nproc(argv)]


def ranks_env(nproc: int) -> dict[str, str]:
    """The environment torchrun and its ranks start with."""
    env = dict(os.environ)
    # The ranks import the okng this launcher runs (a checkout, not another installed copy).
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    env[LAUNCHER_ENV] = str(os.getpid())
    return env


def die_with_launcher() -> None:
    """Linux: have the kernel send this process (torchrun) SIGTERM when the launcher dies.

    Without it a launcher killed with SIGKILL left torchrun and its ranks training on, orphaned,
    holding the cores and the project's lock until they finished (they would even store a model
    nobody asked for any more). SIGTERM is the cancel torchrun passes to the ranks. The death
    signal fires when the thread that started this process ends: `launch` waits on it from that
    same thread, so that is the launcher's end. Elsewhere (macOS, Windows) nothing is set."""
    parent = os.environ.pop(LAUNCHER_ENV, "")
    if not sys.platform.startswith("linux") or not parent.isdigit():
        return
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # the launcher died before the request was in place
        sys.exit(128 + int(signal.SIGTERM))


def torchrun(argv: Sequence[str]) -> int:
    """torchrun's own entry (torch.distributed.run) with its arguments; the ranks' exit code.

    A cancel or a failed rank is reported by the ranks themselves (rank 0's "cancelled, nothing
    stored", a rank's error): torchrun's traceback and failure table on top would only bury it."""
    # torchrun's loggers take their level from LOGLEVEL when imported; the ranks keep the user's.
    user = os.environ.get("LOGLEVEL")
    os.environ["LOGLEVEL"] = "ERROR"
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run
    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)  # the modules without LOGLEVEL
    if user is None:
        os.environ.pop("LOGLEVEL")
    else:
        os.environ["LOGLEVEL"] = user
    try:
        run(parse_args(list(argv)))
    except SignalException as exc:
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        return max((int(f.exitcode) for f in exc.failures.values() if f.exitcode > 0), default=1)
    return 0


def launch(argv: Sequence[str], nproc: int) -> int:
    """Run the ranks; their exit code (1 when cancelled here)."""
    proc = subprocess.Popen(torchrun_command(argv, nproc), env=ranks_env(nproc), start_new_session=True)
    cancelled: list[float] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        if not cancelled:
            cancelled.append(time.monotonic())
            print(f"okng train: stopping the {nproc} processes", file=sys.stderr, flush=True)
            signal_group(proc.pid, signal.SIGTERM)

    previous = _install({signal.SIGINT: forward, signal.SIGTERM: forward})
    try:
        while True:
            try:
                rc = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if cancelled and time.monotonic() - cancelled[0] > GRACE_S:
                    signal_group(proc.pid, signal.SIGKILL)
    finally:
        _install(previous)
        signal_group(proc.pid, signal.SIGKILL)  # nothing of the group outlives the launcher
    if cancelled:  # rank 0 says "cancelled, nothing stored" when the ranks stop
        return 1
    return rc if rc >= 0 else 128 - rc


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _install(handlers: dict) -> dict:
    """Set signal handlers (main thread only; elsewhere none are touched); the previous ones."""
    previous = {}
    for sig, h in handlers.items():
        try:
            previous[sig] = signal.signal(sig, h)
        except ValueError:  # not the main thread
            pass
    return previous


def stop_on_signals() -> Callable[[], bool]:
    """A rank's should_stop: SIGINT / SIGTERM (torchrun forwards them) ask every rank to stop at
    the next step (training.distributed makes the request collective); a second one exits."""
    asked: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)
    _install({signal.SIGINT: handler, signal.SIGTERM: handler})
    return lambda: bool(asked)


def leave(code: int | None) -> NoReturn:
    """Exit with `code`; a rank of a torchrun job without the interpreter's teardown.

    Rank 1 of a finished two-rank `okng train` aborted there now and then (SIGABRT, "terminate
    called without an active exception": 2 runs in 20 here, 1 in 30 once the ranks met at a
    barrier before leaving the process group), after rank 0 had stored the model, and torchrun
    then reported the whole run failed. The teardown of torch's and gloo's threads is out of our
    hands; by now the process group is left, the project closed and, below, the output flushed,
    so skipping it loses nothing."""
    if int(os.environ.get("WORLD_SIZE") or 1) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code or 0))
    sys.exit(code)


if __name__ == "__main__":
    die_with_launcher()
    sys.exit(torchrun(sys.argv[1:]))
