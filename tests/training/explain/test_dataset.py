"""explain over a real project file with a model whose attention is known in advance.

The "oracle" network's Grad-CAM at its feature layer is proportional to pixel brightness
(a 1x1 conv averaging the channels, max-pooled into the NG logit), so a bright defect under
its mask must be found, and a bright jig patch in every view is a planted shortcut.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from labeling.types import BOLT_CLASSES
from training.card import ModelCard
from training.errors import TrainingError
from training.explain.dataset import explain_loaded, target_class_index
from training.explain.overlay import OverlayWriter, overlay
from training.explain.recipe import CamRecipe
from training.inference import LoadedModel

H, W = 48, 64


def oracle() -> nn.Module:
    feat = nn.Conv2d(3, 1, 1, bias=False)
    head = nn.Linear(1, 2)
    with torch.no_grad():
        feat.weight.fill_(1 / 3)
        head.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        head.bias.copy_(torch.tensor([1.5, -1.5]))
    return nn.Sequential(nn.Sequential(feat, nn.AvgPool2d(2)), nn.AdaptiveMaxPool2d(1), nn.Flatten(), head)


def loaded(model: nn.Module) -> LoadedModel:
    card = ModelCard("oracle-1", "oracle", classes=["OK", "NG"], input_size=(32, 48), target_layer="0")
    return LoadedModel(model, card, torch.device("cpu"))


def test_attention_on_the_defects(tmp_path, make_project):
    proj = make_project(tmp_path / "p.okng", jig=False)
    seen, written = [], OverlayWriter(tmp_path / "out")
    model = oracle().train()  # explain must not leave it in another mode
    rep = explain_loaded(proj, loaded(model), "oracle-1", CamRecipe(), batch_size=5,
                         progress=seen.append, on_view=written)
    assert model.training is False  # LoadedModel put it in eval; explain left it so
    assert len(rep.rows) == 24 and rep.layer == "0" and not rep.stopped
    masked = [r for r in rep.rows if r.iou is not None]
    assert len(masked) == 6 and all(r.cls == BOLT_CLASSES[0].name for r in masked)
    assert min(r.iou for r in masked) > 0.5 and all(r.pointing for r in masked)
    assert min(r.energy for r in masked) > 0.3 and min(r.lift for r in masked) > 1.5
    assert rep.summary[BOLT_CLASSES[0].name]["iou"]["mean"] > 0.5
    assert rep.totals.masked_views == 6 and rep.looks_away == []
    assert not rep.shortcut_flagged and {a.camera for a in rep.shortcut} == {"cam0", "cam1"}
    assert [p.done for p in seen] == [5, 10, 15, 20, 24] and seen[-1].total == 24
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["recipe"]["threshold"] == "fixed:0.5" and d["recipe"]["align_corners"] is False
    assert d["pointing_tolerance"] == "cell" and d["totals"]["lift"]["n"] == 6
    assert d["views"] == 24 and len(d["rows"]) == 24
    assert len(written.written) == 24
    png = cv2.imread(str(written.written[1]))
    assert png.shape == (H, W, 3)


def test_planted_jig_raises_the_shortcut_alarm(tmp_path, make_project):
    proj = make_project(tmp_path / "p.okng", jig=True)
    rep = explain_loaded(proj, loaded(oracle()), "oracle-1", CamRecipe(target_class="ng"))
    assert rep.shortcut_flagged
    a = {x.camera: x for x in rep.shortcut}["cam0"]
    assert a.flagged and a.mask_overlap == 0 and a.energy_share > 0.5
    rx, ry, rw, rh = a.suggested_roi
    assert not (rx <= 8 < rx + rw and ry <= 6 < ry + rh)  # the clamp's centre is cut off
    masks = [proj.read_mask(p.id, 0) for p in proj.parts() if p.views[0].has_mask]
    ys, xs = np.nonzero(np.any(np.stack(masks) > 0, axis=0))
    assert rx <= xs.min() and ry <= ys.min() and rx + rw > xs.max() and ry + rh > ys.max()
    # the model looks at the clamp, not the defects
    assert rep.summary[BOLT_CLASSES[0].name]["iou"]["mean"] < 0.3 and len(rep.looks_away) > 0


def test_stop_classes_and_errors(tmp_path, make_project):
    proj = make_project(tmp_path / "p.okng", jig=False, n=6)
    calls = iter([False, True])
    rep = explain_loaded(proj, loaded(oracle()), recipe=CamRecipe(target_class="predicted"),
                         batch_size=4, should_stop=lambda: next(calls))
    assert rep.stopped and len(rep.rows) == 4
    with pytest.raises(ValueError, match="no layer"):
        explain_loaded(proj, loaded(oracle()), recipe=CamRecipe(layer="layer4"))
    with pytest.raises(TrainingError, match="no labelled parts"):
        explain_loaded(proj, loaded(oracle()), parts=[])
    part = proj.parts()[1]
    assert target_class_index(CamRecipe(), ["OK", "NG"], part, None) == 1
    assert target_class_index(CamRecipe(), ["NG", "OK"], part, None) == 0
    assert target_class_index(CamRecipe(), ["good", "bad"], part, None) == 1
    ok_part = proj.parts()[0]
    per_defect = ["OK", "gap", "no coating"]
    assert target_class_index(CamRecipe(), per_defect, part, "No Coating") == 2
    assert target_class_index(CamRecipe(), per_defect, ok_part, None) is None  # predicted
    assert target_class_index(CamRecipe(target_class=0), per_defect, part, None) == 0
    with pytest.raises(TrainingError, match="out of range"):
        target_class_index(CamRecipe(target_class=3), per_defect, part, None)
    with pytest.raises(TrainingError, match="no NG class"):
        target_class_index(CamRecipe(), ["alpha", "beta"], part, None)


def test_overlay_of_16bit_gray_view():
    img = (np.arange(H * W, dtype=np.uint16).reshape(H, W) * 3) % 4096
    heat = np.zeros((H, W), np.float32)
    heat[10:20, 10:20] = 1.0
    mask = np.zeros((H, W), np.uint8)
    mask[30:40, 30:40] = 1
    out = overlay(img, heat, mask, heat > 0.5)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    assert tuple(out[30, 35]) == (0, 255, 0)  # mask contour in green
    assert tuple(out[10, 15]) == (255, 255, 255)  # highlight contour in white
    assert not np.array_equal(out[15, 15], out[15, 45])  # heat blended in, not elsewhere
