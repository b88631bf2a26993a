"""Pre-labeling from the Label view on a real project with a really trained (tiny) model: the
button runs the active model over the parts in a child process, the predictions land in the
store, the list and the panel show them with the heatmap, and 'A' accepts the verdict."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt

from app.context import AppContext
from app.station import StationSettings
from app.views.label_view import LabelView
from labeling.demo import make_demo_project
from labeling.store import Project
from labeling.types import Verdict


@pytest.fixture
def trained(tmp_path):
    import torch

    from training.config import AugmentConfig, TrainConfig
    from training.loop import train
    torch.set_num_threads(1)
    path = tmp_path / "pre.h5"
    project = make_demo_project(path, "bolts", parts=8, size=(64, 48))
    cfg = TrainConfig(arch="mobilenet_v3_small", freeze="scratch", epochs=1, batch_size=8, input_size=(32, 32),
                      augment=AugmentConfig.none(), patience=0)
    res = train(path, cfg)
    project.reload()
    project.set_active_model(res.model_id)
    return path, str(res.model_id)


def test_predict_button_prelabels_and_a_accepts(trained, qtbot):
    path, mid = trained
    ctx = AppContext(StationSettings.load())
    ctx.open_project(path)
    view = LabelView(ctx)
    qtbot.addWidget(view)
    view.resize(1400, 800)
    view.show()
    qtbot.waitUntil(lambda: view.part_id is not None and view.canvas.image is not None, timeout=10000)
    # a model is active: the panel says which, not "make a model active"
    assert view.panel.prediction.text() == f"No prediction yet: press 'Predict parts' below (active model {mid})."
    with qtbot.waitSignal(view.predicted, timeout=180000) as sig:
        qtbot.mouseClick(view.panel.predict_btn, Qt.MouseButton.LeftButton)
    out = sig.args[0]
    assert out.get("model_id") == mid and out["predicted"] == 8 and out["failed"] == []
    stored = Project.open(path, readonly=True)
    assert all(p.prediction is not None and p.prediction.model_id == mid for p in stored.parts())
    assert all(len(p.prediction.extra["heatmaps"]) == len(p.views) for p in stored.parts())
    # the view shows it: panel text, heatmap on the canvas, the list's model column
    qtbot.waitUntil(lambda: f" · model {mid}" in view.panel.prediction.text(), timeout=10000)  # the prediction's line
    qtbot.waitUntil(lambda: view.canvas.heat_item is not None and view.canvas.heat_item.isVisible(), timeout=10000)
    part = view.part()
    assert view.panel.accept_btn.isEnabled()
    qtbot.keyClick(view.canvas, Qt.Key.Key_A)  # accept the model's verdict
    assert ctx.writer.flush(10)
    again = Project.open(path, readonly=True)
    assert again.part(part.id).verdict == part.prediction.verdict != Verdict.UNLABELED
    # a second run has nothing left to do
    with qtbot.waitSignal(view.predicted, timeout=180000) as sig:
        view.predict()
    assert sig.args[0]["parts"] == 0
    ctx.shutdown()
