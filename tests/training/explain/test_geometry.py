"""Heatmaps land on the inspector's mask: input-space maps -> full-image coordinates."""
from __future__ import annotations

import numpy as np
import pytest

from labeling.types import ROI
from training.data import fit_geometry, preprocess_view
from training.explain.agreement import threshold_map, view_agreement
from training.explain.dataset import map_to_image
from training.explain.recipe import CamRecipe


def test_box_in_input_maps_to_the_right_full_image_box():
    # 128x96 view, ROI 64x80 at (16, 8), letterboxed into 40x40: scale 0.5, content 40x32,
    # pad 4 px left/right. Input box rows 10..30, cols 4+8..4+16 -> ROI rows 20..40, cols 16..32
    # -> full image rows 28..48, cols 32..48.
    g = fit_geometry((96, 128), ROI(16, 8, 64, 80), (40, 40), "letterbox")
    assert g.scale == 0.5 and g.pad == (0, 4) and g.content_size == (40, 32)
    cam = np.zeros((40, 40), np.float32)
    cam[10:20, 12:20] = 1.0
    cam[:, :4] = 5.0  # the letterbox padding is not part of the view: ignored
    heat = map_to_image(cam, g, CamRecipe(normalise="max"))
    assert heat.shape == (96, 128)
    expected = np.zeros((96, 128), bool)
    expected[28:48, 32:48] = True
    assert np.array_equal(heat >= 0.5, expected)
    assert heat[expected].min() > 0.55 and heat[~expected].max() < 0.3  # bilinear edges: 0.75 / 0.25
    outside = np.ones((96, 128), bool)
    outside[8:88, 16:80] = False
    assert heat[outside].max() == 0.0  # 0 outside the ROI
    mask = expected.astype(np.uint8) * 2
    valid = g.to_image(np.ones((40, 40), np.float32)) > 0.5
    assert np.array_equal(valid, ~outside)
    r = view_agreement(heat, mask, rule="fixed:0.5", valid=valid)
    assert r["iou"] == 1.0 and r["pointing"] is True and r["energy"] > 0.9


def test_normalised_over_the_content_only():
    g = fit_geometry((60, 100), None, (32, 32), "letterbox")  # pads top/bottom
    assert g.pad[0] > 0
    cam = np.full((32, 32), 0.2, np.float32)
    cam[: g.pad[0]] = 0.0  # padding lower than anything in the view: must not set the minimum
    cam[16, 16] = 1.0
    heat = map_to_image(cam, g, CamRecipe(normalise="minmax"))
    assert heat.max() == pytest.approx(1.0, abs=0.3)
    assert np.median(heat) == pytest.approx(0.0, abs=1e-6)  # content min (0.2) -> 0


@pytest.mark.parametrize("fit", ["letterbox", "resize"])
def test_round_trip_through_the_real_preprocessing(fit):
    # A bright defect in a view: the model input shows it where the geometry says, and the
    # input-space brightness mapped back lands on the defect's mask.
    img = np.full((90, 160), 40, np.uint8)
    img[50:62, 100:124] = 250
    mask = np.zeros((90, 160), np.uint8)
    mask[50:62, 100:124] = 1
    x, g = preprocess_view(img, ROI(60, 20, 90, 60), (48, 64), mode=fit)
    brightness = x.mean(0).numpy()
    heat = map_to_image(brightness, g, CamRecipe())
    hl = threshold_map(heat, "fixed:0.5")
    inter = np.count_nonzero(hl & (mask > 0))
    union = np.count_nonzero(hl | (mask > 0))
    assert inter / union > 0.8
