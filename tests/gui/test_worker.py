"""The one worker class: results, failures, cancel and progress reach the GUI thread."""
from __future__ import annotations

import threading
import time

import pytest

from app.worker import Worker
from labeling.progress import Progress
from labeling.store import ProjectError


def _work(n, progress=None, should_stop=None, scale=1):
    thread = threading.get_ident()
    for i in range(n):
        if should_stop():
            return None
        progress(Progress("work", i + 1, n))
        time.sleep(0.001)
    return (n * scale, thread)


def test_result_comes_back_from_another_thread(qtbot):
    w = Worker(_work, 5, scale=3)
    seen = []
    w.progress.connect(seen.append)
    with qtbot.waitSignal(w.finished, timeout=5000) as sig:
        w.start()
    value, thread = sig.args[0]
    assert value == 15 and thread != threading.get_ident()
    assert seen and seen[-1] == Progress("work", 5, 5)  # the last progress always arrives
    assert w.wait(10000) and not w.is_running()


def _stages(progress=None, should_stop=None):
    """A run's shape: a burst of reads, its one start report, a burst of steps, one epoch end."""
    for i in range(50):
        progress(Progress("load", i + 1, 50))
    progress(Progress("start", 1, 1, "trained from scratch", payload="start"))
    for i in range(200):
        progress(Progress("train", i + 1, 200))
    progress(Progress("eval", 1, 1, "epoch 1 done", payload="epoch"))
    progress(Progress("train", 1, 200))


def test_progress_bursts_are_coalesced_but_no_stage_is_lost(qtbot):
    w = Worker(_stages)
    w.min_progress_interval_s = 10.0  # everything below is one burst
    seen = []
    w.progress.connect(seen.append)
    with qtbot.waitSignal(w.finished, timeout=5000):
        w.start()
    assert [p.stage for p in seen] == ["load", "load", "start", "train", "train", "eval", "train"]
    assert [p.done for p in seen if p.stage == "load"] == [1, 50]  # the first, then the stage's last
    assert [p.payload for p in seen if p.payload] == ["start", "epoch"]


def test_failure_is_a_clear_message(qtbot):
    def bad(progress=None, should_stop=None):
        raise ProjectError("part 7 has no view 3")
    w = Worker(bad)
    with qtbot.waitSignal(w.failed, timeout=5000) as sig:
        w.start()
    assert sig.args[0] == "part 7 has no view 3"


def test_cancel_stops_the_function_and_delivers_what_it_finished(qtbot):
    def forever(progress=None, should_stop=None):
        done = 0
        while not should_stop():
            done += 1
            time.sleep(0.005)
        return {"finished": done}  # e.g. a live-sort run's summary
    w = Worker(forever)
    finished = []
    w.finished.connect(finished.append)
    w.start()
    assert w.is_running()
    with qtbot.waitSignal(w.cancelled, timeout=5000) as sig:
        w.cancel()
    assert finished == []  # a cancelled run is never taken for a finished one
    assert sig.args[0]["finished"] >= 0 and w.result == sig.args[0]
    with pytest.raises(RuntimeError):
        w.start()


@pytest.mark.parametrize("end", ["finished", "failed", "cancelled"])
def test_a_run_has_ended_when_its_last_signal_is_emitted(qtbot, end):
    """A view re-enables Start when the last signal arrives; the thread may still be winding
    down then, and a Start click that checked the thread was ignored (the Tune panel never
    resumed). A direct connection runs the slot inside the emit, before the thread returns: the
    moment at which a queued slot could see the old answer."""
    from PyQt6.QtCore import Qt

    def job(progress=None, should_stop=None):
        if end == "failed":
            raise ProjectError("no such part")
        if end == "cancelled":
            while not should_stop():
                time.sleep(0.002)
        return 1
    w = Worker(job)
    seen = []
    getattr(w, end).connect(lambda *_: seen.append((w.is_running(), w._thread.isRunning())),
                            Qt.ConnectionType.DirectConnection)
    w.start()
    assert w.is_running()
    if end == "cancelled":
        w.cancel()
    assert w.wait(10000)
    assert seen == [(False, True)]  # ended for the views while its thread still ran
