"""Detector simulator and dark/flat calibration: the corrected strip is the clean strip."""
from __future__ import annotations

import numpy as np
import pytest

from hardware.errors import CaptureError, HardwareError
from hardware.linescan import (
    Calibration,
    DetectorSimulator,
    calibrate,
    calibrate_detector,
)
from hardware.linescan.calibration import capture_lines


def test_simulator_lines_look_like_a_detector(belt_factory):
    det = DetectorSimulator(belt_factory(0), rate=None)
    det.open()
    a, b = det.read(), det.read()
    assert a.lines.shape == (det.max_block, 640) and a.lines.dtype == np.uint16
    assert b.counter == a.counter + len(a.lines)  # consecutive line counter
    det.set_condition("dark")
    dark = capture_lines(det.read, 200)
    live = np.setdiff1d(np.arange(640), det.stuck)
    assert 800 < dark[:, live].mean() < 1200  # dark offset, not zero
    assert (dark[:, det.stuck] == 65535).all()  # one stuck pixel
    det.set_condition("flat")
    flat = capture_lines(det.read, 200).astype(float)
    resp = flat.mean(0) - dark.mean(0)
    good = np.setdiff1d(np.arange(640), det.dead)
    assert 0.02 < resp[good].std() / resp[good].mean() < 0.2  # per-pixel gain spread
    assert (np.abs(resp[det.dead]) < 0.05 * resp[good].mean()).all()  # dead pixels do not respond
    assert flat[:, good].max() < 65535  # the brightest live pixel stays under full scale
    with pytest.raises(ValueError):
        det.set_condition("lamp")


def test_calibration_recovers_the_clean_strip_and_finds_dead_pixels(belt_factory, tmp_path):
    belt = belt_factory(0)
    det = DetectorSimulator(belt, rate=None, seed=2)
    det.open()
    cal = calibrate_detector(det, lines=256)
    assert set(np.flatnonzero(cal.dead)) == set(det.dead.tolist())
    block = det.read()
    raw = np.concatenate([block.lines, capture_lines(det.read, 3000)])[:3000]
    first = det.scene_line(block.counter)
    assert first == 0  # the belt starts under the beam when calibration ends
    clean = belt.lines(first, 3000) / belt.open_level  # true transmission
    corrected = cal.correct(raw) / cal.level
    err = np.abs(corrected - clean)
    good = ~cal.dead
    # detector noise remains (~0.1 %); the gain/offset pattern and dead pixels are gone
    assert np.median(err[:, good]) < 0.003
    assert np.median(err[:, cal.dead]) < 0.03  # interpolated from neighbours
    column_bias = np.abs((corrected - clean).mean(0))
    assert column_bias.max() < 0.005
    uncorrected = (raw - raw.mean()) / (raw.mean()) - (clean - clean.mean()) / clean.mean()
    assert np.median(np.abs(uncorrected[:, good])) > 3 * np.median(err[:, good])
    # save/load keeps everything
    path = cal.save(tmp_path / "cal.npz")
    again = Calibration.load(path)
    np.testing.assert_array_equal(again.correct(raw[:50]), cal.correct(raw[:50]))
    with pytest.raises(HardwareError):
        Calibration.load(tmp_path / "missing.npz")


def test_calibrate_rejects_a_dark_flat_field():
    dark = np.full((10, 8), 1000, np.uint16)
    with pytest.raises(HardwareError, match="tube off"):
        calibrate(dark, dark)
    with pytest.raises(HardwareError):
        calibrate(dark, np.full((10, 9), 2000, np.uint16))


def test_dead_pixel_at_the_edge_copies_its_neighbour():
    dark = np.zeros((4, 6))
    flat = np.array([[0, 100, 100, 100, 100, 100]] * 4, float)
    cal = calibrate(dark, flat)
    assert cal.dead[0] and cal.dead.sum() == 1
    out = cal.correct(np.array([[7, 50, 60, 70, 80, 90]], np.uint16))
    assert out[0, 0] == pytest.approx(out[0, 1])


def test_read_before_open_is_a_capture_error():
    with pytest.raises(CaptureError):
        DetectorSimulator(rate=None).read()
