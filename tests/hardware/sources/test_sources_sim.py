"""The source registry and the simulated four-camera rig (against the demo generator itself)."""
from __future__ import annotations

import numpy as np
import pytest

from hardware.errors import CaptureError, HardwareError
from hardware.sources import SOURCES, Source, make_source
from hardware.sources.base import RateLimiter, parse_resolution, validate_views
from labeling.demo.bolts import render_part

RES = (96, 72)


def test_registry_knows_every_scheme_and_rejects_unknown():
    assert {"sim", "folder", "opencv", "genicam", "xray"} <= set(SOURCES)
    with pytest.raises(ValueError, match="known: .*folder.*genicam.*opencv.*sim"):
        make_source("webcam:0")
    with pytest.raises(ValueError, match="unknown option"):
        make_source("sim", fps=3)
    with pytest.raises(ValueError, match="1280x960"):
        make_source("sim:big")
    assert parse_resolution("1280x960") == (1280, 960)


def test_sim_default_resolution_and_protocol():
    src = make_source("sim")
    assert isinstance(src, Source)
    info = src.info()
    assert info.resolution == (1280, 960) and info.kind == "multi-camera" and len(info.cameras) == 4


def test_sim_parts_are_the_generator_parts_with_truth():
    src = make_source(f"sim:{RES[0]}x{RES[1]}", seed=3)
    src.open()
    try:
        caps = [src.capture() for _ in range(3)]
    finally:
        src.close()
    for k, cap in enumerate(caps):
        ref = render_part(k, seed=3, size=RES)
        assert cap.index == k and cap.cameras == ["cam0", "cam1", "cam2", "cam3"]
        assert [v.shape for v in cap.views] == [(RES[1], RES[0], 3)] * 4
        for v, r in zip(cap.views, ref.views):
            np.testing.assert_array_equal(v, r)
        assert cap.truth["verdict"] == ref.verdict.name
        assert cap.truth["defect_class"] == ref.defect_class


def test_sim_fault_injection_fails_that_part_only():
    src = make_source("sim", resolution=f"{RES[0]}x{RES[1]}", fail_every=3, corrupt_every=4)
    src.open()
    outcome = []
    for _ in range(8):
        try:
            cap = src.capture(timeout=0.2)
            outcome.append(cap.index)
        except CaptureError as exc:
            outcome.append(str(exc))
    src.close()
    # trigger k answers part k; parts 2 and 5 time out, part 3 and 7 arrive truncated
    assert outcome[0:2] == [0, 1] and outcome[4] == 4 and outcome[6] == 6
    assert "timed out" in outcome[2] and "timed out" in outcome[5]
    assert "truncated" in outcome[3] and "truncated" in outcome[7]


def test_capture_before_open_is_a_capture_error():
    with pytest.raises(CaptureError):
        make_source("sim").capture()
    assert issubclass(CaptureError, HardwareError)


def test_validate_views_rejects_bad_frames():
    ok = np.zeros((4, 5, 3), np.uint8)
    validate_views([ok], ["a"], (5, 4))
    for bad in ([ok, ok], [ok[:2]], [ok.astype(np.float32)], [np.zeros((4, 5, 7), np.uint8)], [None]):
        with pytest.raises(CaptureError):
            validate_views(bad, ["a"], (5, 4))


def test_rate_limiter_period():
    assert RateLimiter(None).period == 0 and RateLimiter(20).period == pytest.approx(0.05)
    src = make_source("sim", max_fps=10)
    assert src.info().details["max_fps"] == pytest.approx(10)


def test_prefetch_renders_ahead_without_changing_parts():
    runs = []
    for prefetch in (True, False):
        src = make_source("sim:64x48", seed=9, prefetch=prefetch, fail_every=2)
        src.open()
        out = []
        for _ in range(5):
            try:
                out.append(src.capture(timeout=5.0))
            except CaptureError:
                out.append(None)
        if prefetch:
            assert src._next is not None and src._next[0] == 5  # part 5 is already on its way
        src.close()
        runs.append(out)
    for a, b in zip(*runs):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.index == b.index and a.truth == b.truth
            for va, vb in zip(a.views, b.views):
                np.testing.assert_array_equal(va, vb)
