"""Running a long plain function in a child process, relayed by the one Worker.

Heavy work in a thread of the GUI process shares the GUI's GIL: h5py reads, torch.load, network
construction, a training loop or the sort engine's poll loop hold it for tens to hundreds of ms
and the window freezes. ``in_child(fn, *args, progress=, should_stop=)`` is itself a plain long
function: a Worker runs it in a thread, which only relays the child's progress reports and the
cancel request, and returns the child's result (or raises its error as a clear message).
"""
from __future__ import annotations

import os
import queue as _queue
import sys
from collections.abc import Callable
from typing import Any

from labeling.progress import ProgressFn, StopFn

TRAIN_NICE = 10  # niceness of training/scoring children (see _child_main)


def _child_main(fn: Callable[..., Any], args: tuple, out: Any, stop: Any, nice: int) -> None:
    """Child-process entry: fn(*args, progress, should_stop); sends ("progress", p) then
    ("result", value) or ("error", message)."""
    if nice:
        try:
            # Below the GUI process: on a 2-core station a training run's torch threads otherwise
            # take the CPU the window needs to repaint (the loss curves stalled 50-100 ms).
            os.nice(nice)
        except (AttributeError, OSError):
            pass
    code = 0
    try:
        res = fn(*args, progress=lambda p: out.put(("progress", p)), should_stop=stop.is_set)
        out.put(("result", res))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as a clear message
        code = 1
        from app.cli.common import error_message
        out.put(("error", error_message(exc)))
    # The answer is sent (the queue's feeder flushed), then leave without the interpreter's
    # teardown: unloading torch & co. costs a few hundred ms of CPU, taken from the window on
    # a 2-core station just when it redraws the run's results (a 100-150 ms stall measured).
    out.close()
    out.join_thread()
    # multiprocessing's own exit work (unlink the semaphores of queues this run made, e.g. the
    # sort run's part writer queues) - cheap, and the resource tracker stays quiet.
    from multiprocessing import util
    run_finalizers = getattr(util, "_run_finalizers", None)
    if callable(run_finalizers):
        run_finalizers(0)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def mp_context() -> Any:
    """forkserver: children fork from a small server process, not from the GUI process (a
    fork/exec of the big GUI process holds its GIL for a few hundred ms)."""
    import multiprocessing as mp
    return mp.get_context("forkserver")


def start_child_server() -> None:
    """Start the fork server now (window start), not on the first run."""
    from multiprocessing import forkserver
    mp_context()
    forkserver.ensure_running()


def in_child(fn: Callable[..., Any], *args: Any, nice: int = 0, progress: ProgressFn | None = None,
             should_stop: StopFn | None = None) -> Any:
    """Run fn(*args, progress=, should_stop=) in a child process at `nice`; relay its progress
    and the stop request from this thread; return its result.

    A stop request is passed on and the child's own answer is awaited (a sort run must clear
    its PLC bits before it ends); a child that ends without answering is an error.
    """
    ctx = mp_context()
    out, stop = ctx.Queue(), ctx.Event()
    # Not daemonic: a daemonic process may not start children, and a sort run starts its part
    # writer. The finally below always joins (or terminates) it.
    proc = ctx.Process(target=_child_main, args=(fn, args, out, stop, nice), name="okng-child", daemon=False)
    proc.start()
    try:
        while True:
            if should_stop is not None and should_stop():
                stop.set()
            try:
                kind, value = out.get(timeout=0.1)
            except _queue.Empty:
                if not proc.is_alive():
                    raise RuntimeError(f"the {getattr(fn, '__name__', 'work')} process ended unexpectedly "
                                       f"(exit code {proc.exitcode})") from None
                continue
            if kind == "progress":
                if progress is not None:
                    progress(value)
            elif kind == "result":
                return value
            else:
                raise RuntimeError(value)
    finally:
        stop.set()
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
