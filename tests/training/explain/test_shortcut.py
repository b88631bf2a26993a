"""Shortcut alarm on constructed heatmaps: flags a planted region, quiet when attention follows masks."""
from __future__ import annotations

import numpy as np
import pytest

from training.explain.shortcut import ShortcutDetector, ShortcutRule, suggest_roi

H, W = 96, 128
JIG = (4, 4, 28, 20)  # x0, y0, x1, y1: a clamp in the top-left corner


def blob(cx: float, cy: float, s: float) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    return np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s)).astype(np.float32)


def defect(rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float]]:
    """A small defect mask somewhere on the 'thread' (x 50..90, y 30..90)."""
    x, y = int(rng.integers(50, 84)), int(rng.integers(30, 84))
    m = np.zeros((H, W), np.uint8)
    m[y:y + 6, x:x + 6] = 2
    return m, (x + 3, y + 3)


def feed(det: ShortcutDetector, shortcut: bool, n: int = 30, seed: int = 0, camera: str = "cam0") -> None:
    rng = np.random.default_rng(seed)
    jig_c = ((JIG[0] + JIG[2]) / 2, (JIG[1] + JIG[3]) / 2)
    for i in range(n):
        ng = i % 2 == 0
        mask, c = defect(rng) if ng else (None, None)
        noise = 0.05 * rng.random((H, W)).astype(np.float32)
        if shortcut:
            heat = blob(*jig_c, 6) + noise  # the jig, whatever the part
            if ng:
                heat += 0.2 * blob(*c, 4)
        elif ng:
            heat = blob(*c, 4) + noise  # on the defect
        else:
            heat = 0.3 * rng.random((H, W)).astype(np.float32)  # OK: no evidence, diffuse
        det.add(camera, heat, mask, ok=not ng)


def test_alarm_flags_planted_region_and_suggests_roi():
    det = ShortcutDetector()
    feed(det, shortcut=True)
    (a,) = det.alarms()
    assert a.flagged and a.camera == "cam0" and a.views == 30 and a.masked_views == 15
    assert a.energy_share >= 0.3 and a.mask_overlap == 0 and a.views_peaking_there > 0.9
    assert a.ok_energy_share > 0.3  # it piles up on OK parts too
    x, y, w, h = a.region
    assert x < 16 < x + w and y < 12 < y + h  # the region holds the jig's centre
    rx, ry, rw, rh = a.suggested_roi
    jx0, jy0, jx1, jy1 = JIG
    centre = ((jx0 + jx1) // 2, (jy0 + jy1) // 2)
    assert not (rx <= centre[0] < rx + rw and ry <= centre[1] < ry + rh)  # excluded
    assert rx <= 50 and ry <= 30 and rx + rw >= 90 and ry + rh >= 90  # every mask kept
    assert "ROI" in a.note and "cropped" not in a.note  # no crop: the full view


def test_alarm_quiet_when_attention_follows_masks():
    det = ShortcutDetector()
    feed(det, shortcut=False)
    (a,) = det.alarms()
    assert not a.flagged and a.suggested_roi is None


def test_alarm_per_camera_and_without_masks():
    det = ShortcutDetector()
    feed(det, shortcut=True, camera="cam0")
    feed(det, shortcut=False, camera="cam1", seed=1)
    rng = np.random.default_rng(5)
    for _ in range(4):  # a camera whose parts were never masked
        det.add("cam2", blob(16, 12, 5) + 0.01 * rng.random((H, W)), None, ok=True)
    got = {a.camera: a for a in det.alarms()}
    assert got["cam0"].flagged and not got["cam1"].flagged
    assert not got["cam2"].flagged and "no masks" in got["cam2"].note


def test_region_overlapping_masks_gets_no_roi():
    det = ShortcutDetector(ShortcutRule(max_overlap=1.0))  # flag even what touches the masks
    rng = np.random.default_rng(0)
    for i in range(10):
        m = np.zeros((H, W), np.uint8)
        m[40:50, 10:20] = 1
        m[40:50, 100:110] = 1  # masks on both sides of the hot spot
        det.add("c", blob(60, 45, 5) + 0.01 * rng.random((H, W)), m, ok=False)
    (a,) = det.alarms()
    assert a.flagged and a.suggested_roi is None and "no rectangular ROI" in a.note


def test_valid_region_limits_the_roi():
    det = ShortcutDetector()
    valid = np.zeros((H, W), bool)
    valid[0:90, 0:120] = True  # the model only saw this ROI
    rng = np.random.default_rng(2)
    for i in range(20):
        m, _ = defect(rng)
        det.add("c", (blob(116, 20, 6) + 0.02 * rng.random((H, W))) * valid, m, ok=False, valid=valid)
    (a,) = det.alarms()
    assert a.flagged
    rx, ry, rw, rh = a.suggested_roi
    assert rx + rw <= 120 and ry + rh <= 90
    assert rx + rw <= 116  # the region's centre is cut off
    assert a.at_view_edge and "border of the cropped view" in a.note  # on the crop's right edge


def test_suggest_roi_boxes():
    view = (0, 0, 100, 80)
    # exclude a top-left box, keep a central box: cutting right of it (x >= 20) keeps the most area
    assert suggest_roi(view, (30, 30, 60, 60), [(0, 0, 20, 20)]) == (20, 0, 100, 80)
    assert suggest_roi(view, (10, 30, 60, 60), [(0, 0, 20, 20)]) == (0, 20, 100, 80)
    assert suggest_roi(view, (10, 10, 60, 60), [(0, 0, 20, 20)]) is None
    assert suggest_roi(view, None, [(90, 0, 100, 80)]) == (0, 0, 90, 80)
    assert suggest_roi(view, (30, 30, 60, 60), [(200, 200, 210, 210)]) == view
    with pytest.raises(TypeError):
        suggest_roi(view)  # type: ignore[call-arg]


def test_blurry_corner_shortcut_like_a_deep_layer():
    # A 3x4-cell layer4 map upsampled to 96x128 spreads the clamp over a quarter of the view,
    # and its outer ring reaches the thread's rows and columns: still a shortcut; the ROI
    # cuts off the core and keeps every mask.
    det = ShortcutDetector()
    rng = np.random.default_rng(3)
    for i in range(24):
        ng = i % 2 == 0
        m = None
        if ng:
            m = np.zeros((H, W), np.uint8)
            x, y = int(rng.integers(47, 75)), int(rng.integers(36, 88))
            m[y:y + 6, x:x + 6] = 1
        det.add("cam0", blob(8, 10, 38) + 0.02 * rng.random((H, W)), m, ok=not ng)
    (a,) = det.alarms()
    assert a.flagged and a.area_share > 0.25 and a.mask_overlap <= 0.25
    x0, y0, w, h = a.region
    assert x0 + w > 47 and y0 + h > 36  # its outer ring reaches the thread's columns and rows
    rx, ry, rw, rh = a.suggested_roi
    assert not (rx <= 8 < rx + rw and ry <= 10 < ry + rh)
    assert rx <= 47 and ry <= 36 and rx + rw >= 81 and ry + rh >= 94
