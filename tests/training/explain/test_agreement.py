"""Agreement metrics against hand-computed values (numpy only)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from training.explain.agreement import (
    ViewRow,
    cell_tolerance,
    energy_in_mask,
    energy_lift,
    highlight_stats,
    looks_away,
    normalise_map,
    otsu_level,
    parse_threshold,
    pixel_iou,
    pointing_game,
    summarise,
    threshold_map,
    view_agreement,
)
from training.explain.recipe import CamRecipe


def box(shape, x0, y0, x1, y1, v=1.0):
    a = np.zeros(shape, np.float32)
    a[y0:y1, x0:x1] = v
    return a


def test_pixel_iou_eq8():
    h = box((10, 10), 0, 0, 4, 4) > 0  # 16 px
    g = box((10, 10), 2, 2, 6, 6).astype(np.uint8) * 3  # 16 px, class index 3; overlap 2x2=4
    assert pixel_iou(h, g) == pytest.approx(4 / 28)
    assert pixel_iou(g > 0, g) == 1.0
    assert pixel_iou(np.zeros((3, 3), bool), np.zeros((3, 3))) is None


def test_energy_and_pointing():
    heat = np.zeros((8, 8), np.float32)
    heat[1, 1], heat[5, 5], heat[5, 6] = 2.0, 1.0, 1.0
    mask = box((8, 8), 4, 4, 8, 8).astype(np.uint8)
    assert energy_in_mask(heat, mask) == pytest.approx(0.5)
    assert pointing_game(heat, mask) is False  # the peak (1,1) is outside
    assert pointing_game(heat, mask, tolerance=4.3) is True  # (1,1)->(4,4): sqrt(18)=4.24 px
    assert pointing_game(heat, mask, tolerance=4.2) is False
    heat[6, 6] = 3.0
    assert pointing_game(heat, mask) is True
    assert energy_in_mask(heat, np.zeros((8, 8))) is None
    assert energy_in_mask(np.zeros((8, 8)), mask) == 0.0
    assert pointing_game(np.zeros((8, 8)), mask) is False


def test_normalise_and_thresholds():
    m = np.array([[1.0, 2.0], [3.0, 5.0]], np.float32)
    assert np.allclose(normalise_map(m, "minmax"), [[0, 0.25], [0.5, 1.0]], atol=1e-6)
    assert np.allclose(normalise_map(m, "max"), [[0.2, 0.4], [0.6, 1.0]], atol=1e-6)
    assert np.all(normalise_map(np.zeros((2, 2)), "minmax") == 0)  # eps: no NaN on flat maps
    n = normalise_map(m, "minmax")
    assert threshold_map(n, "fixed:0.5").tolist() == [[False, False], [True, True]]
    assert threshold_map(n, "fixed").tolist() == [[False, False], [True, True]]
    ramp = np.arange(100, dtype=np.float32).reshape(10, 10) / 99
    assert threshold_map(ramp, "top:10").sum() == 10
    assert threshold_map(ramp, "top:10")[9].all()
    valid = np.zeros((10, 10), bool)
    valid[:5] = True  # the model saw the top half only: top 10 % of 50 px = 5 px
    t = threshold_map(ramp, "top:10", valid)
    assert t.sum() == 5 and t[4, 5:].all()
    bimodal = np.concatenate([np.full(50, 0.1), np.full(50, 0.9)]).reshape(10, 10)
    assert 0.1 <= otsu_level(bimodal) < 0.9
    assert threshold_map(bimodal, "otsu").sum() == 50
    assert parse_threshold("TOP:5") == ("top", 5.0)
    for bad in ("fixed:2", "top:0", "median", "fixed:x"):
        with pytest.raises(ValueError):
            parse_threshold(bad)
    with pytest.raises(ValueError, match="threshold"):
        CamRecipe(threshold="half")


def test_highlight_stats_table3():
    h = np.zeros((10, 20), bool)
    h[2, 4] = h[2, 6] = True  # pixel centres x = 4.5/20, 6.5/20; y = 2.5/10
    n, (cx, cy), (sx, sy) = highlight_stats(h)
    assert n == 2 and cx == pytest.approx(5.5 / 20) and cy == pytest.approx(0.25)
    assert sx == pytest.approx(1 / 20) and sy == 0
    assert highlight_stats(np.zeros((3, 3), bool)) == (0, None, None)


def test_view_agreement_and_summary():
    heat = box((20, 20), 5, 5, 10, 10) * 0.9 + box((20, 20), 0, 0, 20, 20) * 0.1
    mask = box((20, 20), 5, 5, 15, 10).astype(np.uint8)  # 50 px, highlight 25 px inside it
    r = view_agreement(heat, mask, rule="fixed:0.5")
    assert r["iou"] == pytest.approx(0.5) and r["pointing"] is True
    assert r["energy"] == pytest.approx((25 * 1.0 + 25 * 0.1) / (25 * 1.0 + 375 * 0.1))
    assert r["highlight_px"] == 25 and r["centroid"] == pytest.approx((7.5 / 20, 7.5 / 20))
    assert view_agreement(heat, None)["iou"] is None
    with pytest.raises(ValueError, match="shape"):
        view_agreement(heat, mask[:10])

    rows = [ViewRow(1, 0, "cam0", "NG", "gap", iou=0.2, energy=0.3, pointing=False, highlight_px=2,
                    centroid=(0.1, 0.5), spread=(0.0, 0.0)),
            ViewRow(2, 0, "cam0", "NG", "gap", iou=0.6, energy=0.9, pointing=True, highlight_px=2,
                    centroid=(0.3, 0.5), spread=(0.0, 0.0)),
            ViewRow(3, 0, "cam0", "OK", "OK", highlight_px=4, centroid=(0.5, 0.5), spread=(0.1, 0.2))]
    s = summarise(rows)
    assert list(s) == ["OK", "gap"]
    assert s["gap"]["iou"]["mean"] == pytest.approx(0.4) and s["gap"]["iou"]["std"] == pytest.approx(0.2)
    assert s["gap"]["pointing"] == 0.5 and s["gap"]["masked_views"] == 2
    # pooled over the 4 highlighted pixels at x = 0.1, 0.1, 0.3, 0.3
    assert s["gap"]["centroid"] == pytest.approx([0.2, 0.5])
    assert s["gap"]["spread"][0] == pytest.approx(0.1)
    assert s["OK"]["iou"]["n"] == 0 and s["OK"]["spread"] == pytest.approx([0.1, 0.2])
    away = looks_away(rows)
    assert [a["part_id"] for a in away] == [1]  # part 2 looks at the defect


def test_pooled_spread_equals_direct_computation():
    rng = np.random.default_rng(0)
    maps = [rng.random((12, 16)) > 0.7 for _ in range(3)]
    rows = []
    for i, h in enumerate(maps):
        n, c, sp = highlight_stats(h)
        rows.append(ViewRow(i, 0, "c", "NG", "x", highlight_px=n, centroid=c, spread=sp))
    allx = (np.concatenate([np.nonzero(h)[1] for h in maps]) + 0.5) / 16
    s = summarise(rows)["x"]
    assert s["centroid"][0] == pytest.approx(allx.mean())
    assert s["spread"][0] == pytest.approx(allx.std())
    assert not math.isnan(s["spread"][1])


def test_thin_defects_lift_and_pointing_at_the_maps_resolution():
    """A KolektorSDD-like view: a 2 px crack across a 1263x500 view, a Grad-CAM of a 7x7 grid
    stretched over it. Energy and IoU stay tiny even with the map on the crack; the lift (energy
    over the mask's share) and a pointing game at the map's own resolution tell on from off."""
    from training.data import fit_geometry
    geom = fit_geometry((1263, 500), None, (224, 224), "resize")
    half = cell_tolerance((7, 7), geom)
    assert half == pytest.approx((0.5 * 1263 / 7, 0.5 * 500 / 7))  # half a cell of the view, per axis
    crack = np.zeros((1263, 500), np.uint8)
    crack[600:602, 150:350] = 1  # 0.06 % of the view
    grid_on = np.zeros((7, 7), np.float32)
    grid_on[3, 2:5] = 1.0  # the cells the crack runs through
    on = geom.to_image(np.kron(grid_on, np.ones((32, 32), np.float32)))
    off = np.zeros_like(on)
    off[100:300, 380:480] = 1.0  # the top corner
    assert energy_in_mask(on, crack) < 0.02  # reads as "looks away" on energy alone
    assert energy_lift(on, crack) > 5 and energy_lift(off, crack) == 0.0
    assert energy_lift(np.ones_like(on), crack) == pytest.approx(1.0)  # a flat map
    valid = np.zeros(crack.shape, bool)
    valid[:, :250] = True  # the model saw the left half: a flat map over it lifts the crack 1x there too
    flat_left = valid.astype(np.float32)
    assert energy_lift(flat_left, crack, valid) == pytest.approx(1.0)
    peak = on.copy()
    peak[560, 250] = 2.0  # the peak 40 px above the crack, inside its cell
    assert pointing_game(peak, crack) is False and pointing_game(peak, crack, half) is True
    assert pointing_game(off, crack, half) is False
    rows = [ViewRow(1, 0, "cam0", "NG", "crack", **{k: v for k, v in view_agreement(
                on, crack, tolerance=half).items()}),
            ViewRow(2, 0, "cam0", "NG", "crack", **{k: v for k, v in view_agreement(
                off, crack, tolerance=half).items()})]
    assert rows[0].pointing and rows[0].energy < 0.5 and rows[0].lift > 2
    assert [a["part_id"] for a in looks_away(rows)] == [2]  # the one looking at the corner
    assert summarise(rows)["crack"]["lift"]["n"] == 2
