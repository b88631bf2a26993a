"""Opening a project that needed attention (a journal record it could not replay) says so in the
window, not only in the log: real HDF5 file, real journal, real QApplication offscreen."""
from __future__ import annotations

import numpy as np
from PyQt6.QtWidgets import QWidget

from app.actions import ProjectActions
from app.context import AppContext
from labeling import journal
from labeling.store import Project
from labeling.types import BOLT_CLASSES, Settings, Verdict


def _project(path) -> tuple[Project, int]:
    p = Project.create(path, Settings(classes=list(BOLT_CLASSES), cameras=["cam0"]))
    return p, p.add_part([np.zeros((24, 32), np.uint8)])


def _lost_label(path, part: int, project_id: str) -> None:
    """A writer that died after journalling a label for a part whose add never landed."""
    journal.append(path, {"op": "label", "part": part, "seq": 1, "time": 0.0,
                          "label": {"verdict": "NG", "defect_class": 1}}, project_id)


def _open(path, ctx: AppContext, qtbot) -> ProjectActions:
    """The window's File actions with `path` opened through them."""
    window = QWidget()
    qtbot.addWidget(window)
    acts = ProjectActions(ctx, window)
    assert acts.open_path(path)
    qtbot.waitUntil(lambda: ctx.project is not None, timeout=20000)
    return acts


def test_open_shows_what_the_open_found_and_a_clean_open_shows_nothing(tmp_path, qtbot):
    path = tmp_path / "p.h5"
    p, _ = _project(path)
    _lost_label(path, 99, p.project_id)
    ctx = AppContext()
    try:
        acts = _open(path, ctx, qtbot)
        box = acts.open_notice
        assert box is not None and box.isVisible() and not box.isModal()
        assert "journal record 1 (label) skipped: part 99 is not in the file" in box.text()
        assert "okng check" in box.text() and len(ctx.project) == 1

        box.close()
        acts.open_notice, first = None, ctx.project
        assert acts.open_path(path)  # the journal was dealt with: nothing to say now
        qtbot.waitUntil(lambda: ctx.project is not first, timeout=20000)
        assert ctx.project.warnings == [] and acts.open_notice is None
    finally:
        ctx.shutdown()


def test_a_write_that_replays_another_writers_journal_says_so_in_the_window(tmp_path, qtbot):
    """The window keeps the project open while another process journals a label and dies before
    it lands (here: for a part whose add never landed); the window's next save replays the journal
    first, and what it skipped is shown, once."""
    path = tmp_path / "p.h5"
    p, pid = _project(path)
    ctx = AppContext()
    try:
        acts = _open(path, ctx, qtbot)
        assert acts.open_notice is None  # a clean open: nothing to say
        _lost_label(path, 77, p.project_id)
        with qtbot.waitSignal(ctx.writer.written, timeout=20000):
            ctx.writer.submit("label", ctx.project.set_label, pid, Verdict.OK)
        box = acts.open_notice
        assert box is not None and box.isVisible() and not box.isModal()
        assert "Before saving (label)" in box.text()
        assert "journal record 1 (label) skipped: part 77 is not in the file" in box.text()
        assert ctx.project.part(pid).label.verdict == Verdict.OK  # the save itself went through
        box.close()
        acts.open_notice = None
        with qtbot.waitSignal(ctx.writer.written, timeout=20000):
            ctx.writer.submit("label", ctx.project.set_label, pid, Verdict.NG, 1)
        assert acts.open_notice is None  # said once
    finally:
        ctx.shutdown()
