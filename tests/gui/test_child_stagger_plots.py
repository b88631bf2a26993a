"""app.child.in_child (a long function in a child process, relayed), app.widgets.stagger
(one redraw per event-loop pass), CurvePlot's kept series and app.heap.freeze_heap."""
from __future__ import annotations

import gc
import os
import threading

import childkit
import pytest

from app.child import in_child
from app.heap import freeze_heap
from app.widgets.plot_curves import CurvePlot
from app.widgets.stagger import Stagger


def test_in_child_runs_elsewhere_and_relays_progress():
    seen = []
    pid = in_child(childkit.report_pid, 3, progress=seen.append)
    assert pid != os.getpid()
    assert seen == [0, 1, 2]


def test_in_child_error_is_a_clear_message():
    with pytest.raises(RuntimeError, match="^bad setting: epochs must be positive$"):
        in_child(childkit.fail)


def test_in_child_stop_waits_for_the_childs_own_answer():
    halt = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        halt.set()  # ask it to stop as soon as it runs

    assert in_child(childkit.until_stopped, progress=progress, should_stop=halt.is_set) == "stopped cleanly"
    assert seen == ["running"]


def test_in_child_may_start_processes_of_its_own():
    pid = in_child(childkit.with_grandchild)
    assert isinstance(pid, int) and pid not in (os.getpid(), 0)


def test_stagger_runs_one_update_per_pass_in_order(qtbot):
    stagger = Stagger(gap_ms=40)
    ran = []
    stagger.add("a", lambda: ran.append("a"))
    stagger.add("b", lambda: ran.append("b"))
    stagger.add("a", lambda: ran.append("a2"))  # replaces the pending "a", keeps its place
    qtbot.waitUntil(lambda: ran == ["a2"], timeout=2000)
    assert stagger.pending() == 1  # "b" waits for the next pass
    qtbot.waitUntil(lambda: ran == ["a2", "b"], timeout=2000)
    stagger.add("c", lambda: ran.append("c"))
    stagger.add("d", lambda: ran.append("d"))
    stagger.flush()  # closing / tests: everything now
    assert ran == ["a2", "b", "c", "d"] and stagger.pending() == 0


def test_curve_plot_keeps_declared_series_and_drops_markers_on_long_series(qtbot):
    plot = CurvePlot("Loss", "loss", "epoch", series=("train loss", "val loss"))
    qtbot.addWidget(plot)
    items = dict(plot._items)
    for i in range(plot.symbol_max + 5):
        plot.add("train loss", i, 1.0 / (i + 1))
    plot.add("extra", 0, 1.0)
    plot.flush()
    plot.flush()  # a new series is created in a later pass
    assert len(plot.series("train loss")[0]) == plot.symbol_max + 5
    assert plot._items["train loss"].opts["symbol"] is None  # a line, no marker per step
    assert "extra" in plot._items
    plot.reset()
    assert plot.series("train loss") == ([], [])
    assert set(plot._items) == {"train loss", "val loss"}  # declared kept, others removed
    assert all(plot._items[k] is items[k] for k in items)  # the same items, not rebuilt


def test_freeze_heap_moves_live_objects_out_of_collections():
    keep = [{"n": i} for i in range(1000)]
    try:
        freeze_heap()
        assert gc.get_freeze_count() >= len(keep)
    finally:
        gc.unfreeze()  # the test process must free its objects at exit
