"""A heatmap of a part with an ROI lands on the ROI in the Label canvas: made by the live-sort
producer (hardware/sort/explain.py on a classifier with that ROI), stored by its logger's rule,
and for an old sorted part (key "gradcam", model-input frame) migrated on read."""
from __future__ import annotations

import numpy as np
import pytest

from app.context import AppContext
from app.station import StationSettings
from app.views.label_view import LabelView
from labeling.store import Project
from labeling.types import ROI, Prediction, Settings, Verdict

H, W = 96, 128
ROI_ = ROI(64, 16, 48, 64)  # the right part of the view; the model sees nothing else
BLOB = (slice(40, 56), slice(80, 96))  # bright, inside the ROI
DECOY = (slice(40, 56), slice(10, 26))  # as bright, outside the ROI


def _image() -> np.ndarray:
    img = np.full((H, W), 20, np.uint8)
    img[BLOB] = 250
    img[DECOY] = 250
    return img


def _brightness_net():
    """conv(1x1) -> ReLU -> mean: its Grad-CAM at the conv is the input brightness itself."""
    import torch
    from torch import nn
    net = nn.Sequential(nn.Conv2d(3, 1, 1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    return net


@pytest.fixture
def view(qtbot, tmp_path):
    path = tmp_path / "roi.h5"
    proj = Project.create(path, Settings(name="roi", cameras=["cam0"], rois={"cam0": ROI_}))
    proj.add_part([_image()], cameras=["cam0"], name="sorted")
    ctx = AppContext(StationSettings.load())
    ctx.open_project(path)
    v = LabelView(ctx)
    qtbot.addWidget(v)
    v.resize(1200, 800)
    v.show()
    qtbot.waitUntil(lambda: v.part_id is not None and v.canvas.image is not None, timeout=5000)
    yield v
    ctx.shutdown()


def _shown_heat(view, qtbot, extra: dict) -> np.ndarray:
    """Store a prediction with these heatmaps, reload the part, return the overlay's map
    resampled onto the view's pixels (the overlay's own geometry: its rect on the canvas)."""
    import cv2
    pid = view.part_id
    view.ctx.project.add_prediction(pid, Prediction("untrained-tiny", Verdict.NG, (0.9,), 0.9, 1, extra=extra))
    view.heatmaps = []
    view.load(pid)
    qtbot.waitUntil(lambda: len(view.heatmaps) == 1 and view.canvas.heat_item.isVisible(), timeout=5000)
    item = view.canvas.heat_item
    rect = item.mapRectToView(item.boundingRect())
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == (0, 0, W, H)  # laid over the whole view
    return cv2.resize(np.asarray(item.image, np.float32), (W, H), interpolation=cv2.INTER_LINEAR)


def _assert_on_roi(heat: np.ndarray) -> None:
    r = ROI_
    outside = heat.copy()
    outside[r.y:r.y + r.h, r.x:r.x + r.w] = 0
    assert outside.max() < 0.05, "heat outside the ROI (e.g. on the decoy the model never saw)"
    assert heat[BLOB].mean() > 0.6 > heat[r.y:r.y + r.h, r.x:r.x + r.w].mean()
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    assert BLOB[0].start - 3 <= y < BLOB[0].stop + 3 and BLOB[1].start - 3 <= x < BLOB[1].stop + 3


def test_sort_heatmap_of_a_part_with_an_roi_lands_on_the_roi(view, qtbot):
    from hardware.sort.classifier import TorchViewClassifier
    from hardware.sort.explain import make_explainer
    from training.explain.heatmaps import HEATMAP_KEY, encode
    clf = TorchViewClassifier(_brightness_net(), input_size=(48, 48), rois={"cam0": ROI_},
                              mean=(0, 0, 0), std=(1, 1, 1))
    explain = make_explainer(clf)
    (full,) = explain([_image()], ["cam0"], 1)
    heat = _shown_heat(view, qtbot, {HEATMAP_KEY: [encode(full)]})  # what the sort logger stores
    _assert_on_roi(heat)


def test_old_sort_heatmap_is_migrated_onto_the_roi(view, qtbot):
    # Before the one convention the logger stored 16x16 maps of the model input: the ROI
    # stretched to 96x128 (the demo network). Built here the way it did.
    import cv2
    crop = _image()[ROI_.y:ROI_.y + ROI_.h, ROI_.x:ROI_.x + ROI_.w].astype(np.float32)
    m = cv2.resize(cv2.resize(crop, (128, 96)), (16, 16), interpolation=cv2.INTER_AREA)
    m = (m - m.min()) / (m.max() - m.min())
    old = (m * 255).astype(np.uint8).tolist()
    _assert_on_roi(_shown_heat(view, qtbot, {"gradcam": [old]}))
