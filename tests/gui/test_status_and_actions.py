"""Status bar model field, heatmap beside the label, import/export through the Worker with a report."""
from __future__ import annotations

import numpy as np
import pytest

from app.context import AppContext
from app.status_bar import StatusBar
from app.widgets.progress import run_with_progress
from labeling.store import Project
from labeling.types import BOLT_CLASSES, Settings, Verdict
from training.card import ModelCard


@pytest.fixture
def ctx(tmp_path):
    proj = Project.create(tmp_path / "p.h5", Settings(name="s", classes=list(BOLT_CLASSES)))
    for i in range(3):  # distinct pixels: identical pictures re-import as duplicates
        proj.add_part([np.full((40, 60), 90 + i, np.uint8)], name=f"p{i}")
    proj.set_label(1, Verdict.OK)
    proj.set_label(2, Verdict.NG, 2)
    c = AppContext()
    c.open_project(proj.path)
    yield c
    c.shutdown()


def test_status_bar_shows_model_from_scratch_and_no_rig(qtbot, ctx):
    sb = StatusBar(ctx)
    qtbot.addWidget(sb)
    assert "model: none" in sb.model.text() and "sources: off" in sb.sources.text()
    card = ModelCard("m-1", "resnet18", pretrained=False, created=1.0)  # the shape the registry writes
    ctx.project.save_model("m-1", card.to_meta(), b"\x00")
    ctx.project.set_active_model("m-1")
    qtbot.waitUntil(lambda: "trained from scratch" in sb.model.text(), timeout=3000)
    assert "m-1" in sb.model.text() and "resnet18" in sb.model.text()
    assert "s · 3 parts" in sb.project.text()


def test_export_and_import_run_in_the_worker(qtbot, ctx, tmp_path):
    from labeling.formats import export_project, import_into
    done = []
    w = run_with_progress(None, "Exporting", export_project, ctx.project, tmp_path / "out", "imagefolder",
                          on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=20000)
    assert done[0].exported == 3 and w.wait(5000)
    other = Project.create(tmp_path / "q.h5", Settings(name="q", classes=list(BOLT_CLASSES)))
    got = []
    run_with_progress(None, "Importing", import_into, other, tmp_path / "out", "imagefolder", on_done=got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=20000)
    from app.widgets.project_dialogs import report_text
    assert got[0].imported == 3 and got[0].counts["verdicts"] == {"UNLABELED": 1, "OK": 1, "NG": 1}
    assert got[0].counts["classes"] == {"no coating": 1}
    assert "imported: 3" in report_text(got[0])
