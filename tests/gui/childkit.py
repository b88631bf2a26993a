"""Functions run by app.child.in_child in the tests (importable by the child process)."""
from __future__ import annotations

import os
import time


def report_pid(n, progress=None, should_stop=None):
    for i in range(n):
        progress(i)
    return os.getpid()


def fail(progress=None, should_stop=None):
    raise ValueError("bad setting: epochs must be positive")


def until_stopped(progress=None, should_stop=None):
    """Runs until asked to stop, then answers (as a sort run clears its PLC bits first)."""
    progress("running")
    while not should_stop():
        time.sleep(0.01)
    return "stopped cleanly"


def with_grandchild(progress=None, should_stop=None):
    """Starts a process of its own (a sort run starts its part writer)."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_put_pid, args=(q,))
    p.start()
    pid = q.get(timeout=60)
    p.join(30)
    return pid


def _put_pid(q):
    q.put(os.getpid())
