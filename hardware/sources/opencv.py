"""`opencv:0,1,2,3` (device numbers) or `opencv:URL,URL` (RTSP/HTTP streams or video files).

Near-simultaneous capture: every camera grabs in its own worker thread at once (grab() only
latches a frame, it is cheap), and frames are decoded with retrieve() afterwards. Buffer size 1 so
a grab returns a fresh frame, not one queued seconds ago. cv2 has no grab timeout, so the wait
on the workers is the timeout; a camera still stuck in a grab makes later parts fail fast
instead of piling threads onto it.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import cv2
import numpy as np

from hardware.errors import CaptureError, HardwareError
from hardware.sources.base import Capture, RateLimiter, SourceInfo, validate_views


def parse_devices(arg: str) -> list[int | str]:
    """'0,1' -> [0, 1]; URLs and paths stay strings (commas separate cameras)."""
    devices: list[int | str] = []
    for item in (s.strip() for s in arg.split(",")):
        if item:
            devices.append(int(item) if item.isdigit() else item)
    if not devices:
        raise ValueError("opencv source needs devices: opencv:0,1,2,3 or opencv:URL,URL")
    return devices


def _open_capture(device: int | str) -> Any:
    cap = cv2.VideoCapture(device)
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    return cap


class OpenCVSource:
    """Several cv2.VideoCapture devices triggered together; options: max_fps, open_device."""

    def __init__(self, devices: list[int | str], max_fps: float | None = None,
                 open_device: Callable[[int | str], Any] = _open_capture) -> None:
        self.devices = devices
        self.cameras = [f"cam{i}" for i in range(len(devices))]
        self._open_device = open_device  # injectable: the only stand-in for a physical camera
        self._limiter = RateLimiter(max_fps)
        self._caps: list[Any] = []
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future | None] = []
        self.count = 0
        self._resolution = (0, 0)

    def open(self) -> None:
        """Open every device; HardwareError naming the ones that do not open."""
        caps = [self._open_device(d) for d in self.devices]
        bad = [str(d) for d, c in zip(self.devices, caps) if not c.isOpened()]
        if bad:
            for c in caps:
                c.release()
            raise HardwareError(f"cannot open camera(s) {', '.join(bad)}")
        self._caps = caps
        self._pool = ThreadPoolExecutor(max_workers=len(caps), thread_name_prefix="okng-grab")
        self._pending = [None] * len(caps)
        self.count = 0
        w = int(caps[0].get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        h = int(caps[0].get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        self._resolution = (w, h)

    def capture(self, timeout: float = 1.0) -> Capture:
        """grab() all cameras at once, then retrieve(); CaptureError on timeout or a bad frame."""
        if self._pool is None:
            raise CaptureError("opencv source is not open")
        self._limiter.wait()
        k = self.count
        self.count += 1
        busy = [cam for cam, f in zip(self.cameras, self._pending) if f is not None and not f.done()]
        if busy:
            raise CaptureError(f"part {k}: camera(s) {', '.join(busy)} still stuck in a previous grab")
        futures = [self._pool.submit(c.grab) for c in self._caps]
        self._pending = list(futures)
        stamp = time.time()
        _done, not_done = wait(futures, timeout=timeout)
        if not_done:
            late = [cam for cam, f in zip(self.cameras, futures) if f in not_done]
            raise CaptureError(f"part {k}: camera(s) {', '.join(late)} timed out after {timeout:.2f} s")
        views = []
        for cam, cap, fut in zip(self.cameras, self._caps, futures):
            if fut.exception() is not None or not fut.result():
                raise CaptureError(f"part {k}: camera {cam} delivered no frame")
            ok, frame = cap.retrieve()
            if not ok or frame is None:
                raise CaptureError(f"part {k}: camera {cam} frame could not be decoded")
            views.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if frame.ndim == 3 and frame.shape[2] == 3
                         else np.ascontiguousarray(frame))
        validate_views(views, self.cameras)
        return Capture(views=views, cameras=list(self.cameras), timestamp=stamp, index=k)

    def close(self) -> None:
        """Release the cameras; one still stuck in a grab is left alone (releasing it could crash)."""
        stuck = set()
        pending = [f for f in self._pending if f is not None]
        if pending:
            wait(pending, timeout=1.0)
            stuck = {i for i, f in enumerate(self._pending) if f is not None and not f.done()}
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for i, c in enumerate(self._caps):
            if i not in stuck:
                c.release()
        self._caps, self._pool, self._pending = [], None, []

    def info(self) -> SourceInfo:
        return SourceInfo(name="opencv", kind="multi-camera", cameras=list(self.cameras),
                          resolution=self._resolution, details={"devices": [str(d) for d in self.devices]})


def create(arg: str, options: dict) -> OpenCVSource:
    """'opencv:0,1,2,3' or 'opencv:URL,...' plus options max_fps."""
    devices = options.pop("devices", None) or parse_devices(arg)
    options.pop("seed", None)  # a UI may pass the simulators' seed to any source
    allowed = {"max_fps", "open_device"}
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"opencv: unknown option(s) {sorted(unknown)}; known: {sorted(allowed)}")
    return OpenCVSource(list(devices), **options)
