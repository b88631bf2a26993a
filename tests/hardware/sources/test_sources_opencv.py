"""OpenCV source against real cv2.VideoCapture objects reading video files written here."""
from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from hardware.errors import CaptureError, HardwareError
from hardware.sources import make_source
from hardware.sources.opencv import OpenCVSource, parse_devices


def _video(path, frames: int, base: int) -> str:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert w.isOpened()
    for i in range(frames):
        img = np.zeros((48, 64, 3), np.uint8)
        img[..., 2] = base + 30 * i  # BGR: red channel encodes the frame number
        w.write(img)
    w.release()
    return str(path)


def test_parse_devices():
    assert parse_devices("0,1, 2") == [0, 1, 2]
    assert parse_devices("rtsp://a/x,/tmp/v.avi") == ["rtsp://a/x", "/tmp/v.avi"]
    with pytest.raises(ValueError):
        parse_devices(" , ")


def test_two_video_cameras_captured_together_then_end(tmp_path):
    a = _video(tmp_path / "a.avi", 3, 10)
    b = _video(tmp_path / "b.avi", 3, 100)
    src = make_source(f"opencv:{a},{b}")
    src.open()
    assert src.info().resolution == (64, 48) and src.info().cameras == ["cam0", "cam1"]
    for i in range(3):
        cap = src.capture(timeout=2.0)
        assert [v.shape for v in cap.views] == [(48, 64, 3)] * 2
        red = [float(v[..., 0].mean()) for v in cap.views]  # RGB after conversion
        assert red == pytest.approx([10 + 30 * i, 100 + 30 * i], abs=4)
        assert float(cap.views[0][..., 2].mean()) < 4
    with pytest.raises(CaptureError, match="no frame"):
        src.capture(timeout=2.0)  # the files ended: that part fails, closing still works
    src.close()


def test_unopenable_device_is_a_hardware_error(tmp_path):
    with pytest.raises(HardwareError, match="cannot open"):
        make_source(f"opencv:{tmp_path / 'missing.avi'}").open()


class _HangingCamera:
    """Stand-in for a physical camera whose grab() hangs (a cable pulled mid-frame)."""

    def __init__(self, real):
        self.real, self.release_grab = real, threading.Event()

    def isOpened(self):
        return True

    def grab(self):
        self.release_grab.wait(5)
        return self.real.grab()

    def retrieve(self):
        return self.real.retrieve()

    def get(self, prop):
        return self.real.get(prop)

    def release(self):
        self.release_grab.set()
        self.real.release()


def test_camera_timeout_fails_that_part_and_recovers(tmp_path):
    a = _video(tmp_path / "a.avi", 4, 10)
    b = _video(tmp_path / "b.avi", 4, 100)
    hanging: list[_HangingCamera] = []

    def open_device(dev):
        cap = cv2.VideoCapture(dev)
        if dev == b:
            hanging.append(_HangingCamera(cap))
            return hanging[-1]
        return cap

    src = OpenCVSource([a, b], open_device=open_device)
    src.open()
    with pytest.raises(CaptureError, match="cam1 timed out"):
        src.capture(timeout=0.1)
    with pytest.raises(CaptureError, match="still stuck"):
        src.capture(timeout=0.1)
    hanging[0].release_grab.set()  # the camera comes back
    src._pending[1].result(timeout=5)
    cap = src.capture(timeout=2.0)
    assert cap.index == 2 and len(cap.views) == 2
    src.close()
