"""The Label view's "Find likely label errors": the CLI's out-of-fold check from a button, on a
real project, in a real child process; the findings land in the store and the queue shows them."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt

from app.context import AppContext
from app.station import StationSettings
from app.views.label_check import FILTER, IDLE_TEXT
from app.views.label_view import LabelView
from labeling.store import Project

TINY = {"task": "verdict", "epochs": 2, "input_size": (32, 32), "batch_size": 8, "seed": 1, "num_threads": 1}


@pytest.fixture
def items(tmp_path, items_project):
    return items_project(tmp_path / "items.okng", flipped=(5, 10))  # two labels the wrong way


def _view(path, qtbot):
    ctx = AppContext(StationSettings.load())
    ctx.open_project(path)
    view = LabelView(ctx)
    qtbot.addWidget(view)
    view.label_check.values.update(TINY)  # the defaults' group_by "auto" stays
    said = []
    ctx.status.connect(said.append)
    return ctx, view, said


def test_the_button_checks_the_labels_and_the_queue_lists_what_it_flagged(items, qtbot):
    ctx, view, said = _view(items, qtbot)
    button = view.panel.check_btn
    assert button.text() == IDLE_TEXT and "okng label-issues" in button.toolTip()
    with qtbot.waitSignal(view.label_check.finished, timeout=240000) as sig:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert "press to stop" in button.text()
    res = sig.args[0]
    assert res is not None, view.label_check.last_error
    assert res.parts == 48 and res.folds == 5 and res.group_by == "item" and res.recorded
    # what the child process recorded is what it returned, and the window has re-read it
    stored = {p.id for p in Project.open(items, readonly=True).parts() if p.label_check is not None}
    assert stored == {r.part_id for r in res.issues}
    qtbot.waitUntil(lambda: {p.id for p in ctx.project.parts() if p.label_check is not None} == stored,
                    timeout=10000)
    assert (view.parts.filter_box.currentText() == FILTER) == bool(res.issues)
    assert button.text() == IDLE_TEXT
    line = said[-1]
    assert line.startswith(f"Label check: {len(res.issues)} likely label errors in 48 parts (5 folds, the "
                           "pictures of one item in one fold")
    assert "trained from scratch" in line  # how the folds trained, said as okng train says it
    ctx.shutdown()


def test_a_second_press_stops_the_check_and_records_nothing(items, qtbot):
    ctx, view, said = _view(items, qtbot)
    view.label_check.values["epochs"] = 50
    with qtbot.waitSignal(view.label_check.finished, timeout=120000) as sig:
        assert view.label_check.toggle()
        qtbot.waitUntil(lambda: "Checking labels… fold 1/5 (press" in view.panel.check_btn.text(), timeout=60000)
        assert not view.label_check.toggle()  # the second press
    assert sig.args[0] is None and said[-1] == "Label check stopped: nothing was recorded."
    assert view.panel.check_btn.text() == IDLE_TEXT
    assert all(p.label_check is None for p in Project.open(items, readonly=True).parts())
    ctx.shutdown()
