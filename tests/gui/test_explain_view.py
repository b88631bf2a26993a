"""Explain view: with a tiny trained model it fills the sortable agreement table, shows the
picked view side by side (Grad-CAM and Guided Grad-CAM) and applies a suggested ROI."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt

from app.context import AppContext
from app.views.explain_view import ExplainView
from labeling.demo import make_demo_project
from labeling.store import Project
from labeling.types import ROI

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _train_tiny(path):
    from training.config import AugmentConfig, TrainConfig
    from training.loop import train
    cfg = TrainConfig(arch="resnet18", freeze="scratch", epochs=1, batch_size=48, input_size=(32, 32),
                      augment=AugmentConfig.none(), patience=0)
    res = train(path, cfg)
    assert res.model_id
    return res.model_id


@pytest.fixture
def ctx(demo_context):
    return demo_context("explain.h5", 12, _train_tiny)


def test_explain_fills_table_and_views(ctx, qtbot):
    view = ExplainView(ctx)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.loaded_id == ctx.model_id, timeout=30000)
    layers = [view.layer_box.itemText(i) for i in range(view.layer_box.count())]
    assert "layer4" in layers and view.layer_box.currentText() == "layer4"
    with qtbot.waitSignal(view.report_ready, timeout=60000):
        qtbot.mouseClick(view.run_btn, Qt.MouseButton.LeftButton)
    n_views = sum(len(p.views) for p in ctx.project.parts())
    model = view.table.model()
    assert model.rowCount() == n_views == 48
    ious = [model.index(r, 5).data() for r in range(model.rowCount())]
    assert any(v != "—" for v in ious)  # NG views with masks got an IoU
    assert ious[0] != "—"  # sorted by IoU: masked NG views first, worst agreement on top
    view.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
    parts = [int(model.index(r, 0).data()) for r in range(model.rowCount())]
    assert parts == sorted(parts, reverse=True)
    assert "parts" in view.summary.text() and view.alarm.note.text()
    # the picked view side by side
    with qtbot.waitSignal(view.view_ready, timeout=30000):
        view.table.selectRow(3)
    assert all(p.has_image() for p in view.side.panes)
    assert not view.last_view["guided"]
    with qtbot.waitSignal(view.view_ready, timeout=30000):
        view.guided.setChecked(True)
    assert view.last_view["guided"] and "Guided" in view.side.panes[2].title.text()
    # any class of the model can be explained (a class model lists its defect classes here)
    choices = [view.class_box.itemText(i) for i in range(view.class_box.count())]
    assert choices == ["each part's own", "predicted", "OK", "NG"] and view.target_class() == "ng"
    with qtbot.waitSignal(view.view_ready, timeout=30000):
        view.class_box.setCurrentIndex(2)  # explain OK
    assert view.target_class() == 0
    view.shutdown()


def test_apply_suggested_roi(tmp_path, qtbot):
    ctx = AppContext()
    ctx.set_project(make_demo_project(tmp_path / "roi.h5", "bolts", parts=4, size=(64, 48)))
    view = ExplainView(ctx)
    qtbot.addWidget(view)
    view.alarm.show_alarms([{"camera": "cam1", "flagged": True, "suggested_roi": [10, 8, 40, 32],
                             "energy_share": 0.6, "region": [0, 0, 10, 14]},
                            {"camera": "cam2", "flagged": False}])
    assert set(view.alarm.buttons) == {"cam1"}
    with qtbot.waitSignal(view.roi_applied, timeout=5000):
        qtbot.mouseClick(view.alarm.buttons["cam1"], Qt.MouseButton.LeftButton)
    assert ctx.writer.flush(10)
    assert Project.open(ctx.project.path, readonly=True).settings.rois["cam1"] == ROI(10, 8, 40, 32)
    view.shutdown()
    ctx.shutdown()


def test_compare_with_a_segmentation_models_masks(ctx, qtbot):
    """"Compare with" lists the project's segmentation models (not in the Model box: Grad-CAM
    explains classifiers); picked, the table and the side-by-side use its masks (here stored
    proposals of a fake model: all-empty, so no NG view has a mask to agree with)."""
    import numpy as np

    from training.card import ModelCard
    proj = Project.open(ctx.project.path)
    card = ModelCard("seg-1", "unet-resnet18", task="segment", classes=["a"], created=1.0,
                     extra={"segment": {"decoder": "unet", "encoder": "resnet18", "rules": [], "dice_history": []}})
    proj.save_model(card.id, card.to_meta(), b"not used: its proposals are stored")
    for p in proj.parts():
        for v, info in enumerate(p.views):
            proj.set_proposal(p.id, v, np.zeros(info.shape[:2], np.uint8), "seg-1")
    ctx.models_changed.emit()
    view = ExplainView(ctx)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.loaded_id == ctx.model_id and view.ref_box.count() == 2, timeout=30000)
    assert view.model_box.findData("seg-1") < 0 and view.reference() == "inspector"
    view.ref_box.setCurrentIndex(1)
    assert view.reference() == "seg-1"
    with qtbot.waitSignal(view.report_ready, timeout=60000):
        qtbot.mouseClick(view.run_btn, Qt.MouseButton.LeftButton)
    assert view.report["reference"] == "seg-1"
    model = view.table.model()
    assert all(model.index(r, 5).data() == "—" for r in range(model.rowCount()))  # no mask to agree with
    with qtbot.waitSignal(view.view_ready, timeout=30000):
        view.table.selectRow(0)
    assert view.last_view["captions"][1].startswith("Mask of seg-1")
    view.shutdown()
