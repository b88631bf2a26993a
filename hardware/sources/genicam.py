"""`genicam:/path/producer.cti`: GenICam cameras through harvesters and a GenTL producer.

Trigger: when the node map has TriggerMode, FrameStart is set to trigger mode with the chosen
source ("Software" by default, "Line1" for cameras wired to the part sensor); with a software
trigger, capture() fires TriggerSoftware on every camera before fetching. Free-running cameras
(no trigger nodes, like the simulated producer bundled with the genicam wheel) run with
NewestOnly buffer handling so a fetch returns a current frame, not a queued one.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from genicam import genapi, gentl

from hardware.errors import CaptureError, HardwareError
from hardware.sources.base import Capture, RateLimiter, SourceInfo, validate_views

# what the GenTL/GenApi layers raise (node missing, read-only, timeout, device gone)
GENICAM_ERRORS = (gentl.GenericException, genapi.GenericException, AttributeError, ValueError,
                  RuntimeError, OSError)


def bundled_producer() -> Path | None:
    """The simulated GenTL producer shipped in the genicam wheel (viky.cti), if installed."""
    import genicam
    path = Path(genicam.__file__).parent / "viky.cti"
    return path if path.exists() else None


def _set(node_map: Any, name: str, value: Any) -> bool:
    """Set a node if the camera has it and it is writable; report whether it was set."""
    node = getattr(node_map, name, None) if hasattr(node_map, name) else None
    if node is None:
        return False
    try:
        node.value = value
        return True
    except GENICAM_ERRORS:  # read-only or value not in the enumeration: keep the camera's own setting
        return False


def _to_array(component: Any) -> np.ndarray:
    """Copy a buffer component out as an image (RGB, grey or 16-bit) before the buffer is requeued."""
    h, w, fmt = int(component.height), int(component.width), str(component.data_format)
    data = np.array(component.data, copy=True)
    if data.size < h * w:
        raise CaptureError(f"truncated buffer: {data.size} values for {w}x{h} {fmt}")
    channels = data.size // (h * w)
    img = data[: h * w * channels].reshape(h, w, channels) if channels > 1 else data[: h * w].reshape(h, w)
    if fmt.startswith(("RGBa", "RGBA")):
        img = img[..., :3]
    elif fmt.startswith(("BGRa", "BGRA")):
        img = img[..., 2::-1]
    elif fmt.startswith("BGR"):
        img = img[..., ::-1]
    elif fmt.startswith("Bayer") and img.ndim == 2:
        codes = {"BayerRG": cv2.COLOR_BayerRG2RGB, "BayerGR": cv2.COLOR_BayerGR2RGB,
                 "BayerBG": cv2.COLOR_BayerBG2RGB, "BayerGB": cv2.COLOR_BayerGB2RGB}
        img = cv2.cvtColor(img, codes.get(fmt[:7], cv2.COLOR_BayerRG2RGB))
    return np.ascontiguousarray(img)


class GenICamSource:
    """All (or the first `cameras`) devices of one GenTL producer, captured together."""

    def __init__(self, producer: Path, cameras: int | None = None, trigger: str | None = "Software",
                 pixel_format: str | None = None, max_fps: float | None = None) -> None:
        self.producer = Path(producer)
        self.n_cameras = cameras
        self.trigger = trigger
        self.pixel_format = pixel_format
        self._limiter = RateLimiter(max_fps)
        self._harvester: Any = None
        self._acquirers: list[Any] = []
        self.cameras: list[str] = []
        self.triggered: list[bool] = []
        self.count = 0
        self._resolution = (0, 0)

    def open(self) -> None:
        """Load the producer, open the devices, apply trigger settings, start acquisition."""
        if not self.producer.exists():
            raise HardwareError(f"GenTL producer {self.producer} not found")
        from harvesters.core import Harvester
        h = Harvester()
        try:
            h.add_file(str(self.producer), check_existence=True)
            h.update()
            infos = list(h.device_info_list)[: self.n_cameras or None]
            if not infos:
                raise HardwareError(f"no camera found through {self.producer.name}")
            for i, inf in enumerate(infos):
                ia = h.create(i)
                self._configure(ia)
                self._acquirers.append(ia)
                self.cameras.append(f"{inf.model or 'cam'}-{inf.serial_number or i}")
            for ia in self._acquirers:
                ia.start()
        except HardwareError:
            self._harvester = h
            self.close()
            raise
        except GENICAM_ERRORS as exc:
            self._harvester = h
            self.close()
            raise HardwareError(f"GenICam open failed: {exc}") from None
        self._harvester = h
        self.count = 0
        nm = self._acquirers[0].remote_device.node_map
        self._resolution = (int(nm.Width.value), int(nm.Height.value)) if hasattr(nm, "Width") else (0, 0)

    def _configure(self, ia: Any) -> None:
        nm = ia.remote_device.node_map
        if self.pixel_format:
            _set(nm, "PixelFormat", self.pixel_format)
        triggered = False
        if self.trigger and hasattr(nm, "TriggerMode"):
            _set(nm, "TriggerSelector", "FrameStart")
            triggered = _set(nm, "TriggerMode", "On") and _set(nm, "TriggerSource", self.trigger)
        elif hasattr(nm, "TriggerMode"):
            _set(nm, "TriggerMode", "Off")
        self.triggered.append(triggered)
        if not triggered:
            # free-running: the freshest frame, never a stale queued one
            _set(ia.data_streams[0].node_map, "StreamBufferHandlingMode", "NewestOnly")
        ia.num_buffers = max(2, int(getattr(ia, "min_num_buffers", 2) or 2))

    def capture(self, timeout: float = 1.0) -> Capture:
        """Fire software triggers, fetch one frame per camera; CaptureError on timeout/bad buffer."""
        if not self._acquirers:
            raise CaptureError("genicam source is not open")
        self._limiter.wait()
        k = self.count
        self.count += 1
        stamp = time.time()
        for cam, ia, trig in zip(self.cameras, self._acquirers, self.triggered):
            if trig and self.trigger == "Software":
                try:
                    ia.remote_device.node_map.TriggerSoftware.execute()
                except GENICAM_ERRORS as exc:
                    raise CaptureError(f"part {k}: camera {cam} software trigger failed: {exc}") from None
        deadline = time.monotonic() + timeout
        views = []
        for cam, ia in zip(self.cameras, self._acquirers):
            left = max(0.001, deadline - time.monotonic())
            try:
                with ia.fetch(timeout=left) as buf:
                    if not buf.payload.components:
                        raise CaptureError(f"part {k}: camera {cam} sent an empty buffer")
                    views.append(_to_array(buf.payload.components[0]))
            except CaptureError:
                raise
            except GENICAM_ERRORS as exc:  # TimeoutException and other GenTL errors
                raise CaptureError(f"part {k}: camera {cam} gave no frame within {timeout:.2f} s "
                                   f"({type(exc).__name__})") from None
        validate_views(views, self.cameras)
        return Capture(views=views, cameras=list(self.cameras), timestamp=stamp, index=k)

    def close(self) -> None:
        for ia in self._acquirers:
            with contextlib.suppress(*GENICAM_ERRORS):  # a camera that already went away
                ia.stop()
                ia.destroy()
        self._acquirers, self.triggered, self.cameras = [], [], []
        if self._harvester is not None:
            self._harvester.reset()
            self._harvester = None

    def info(self) -> SourceInfo:
        return SourceInfo(name=f"genicam:{self.producer.name}", kind="multi-camera",
                          cameras=list(self.cameras), resolution=self._resolution,
                          details={"producer": str(self.producer), "trigger": self.trigger,
                                   "triggered": list(self.triggered)})


def create(arg: str, options: dict) -> GenICamSource:
    """'genicam:/path/producer.cti' ('genicam' alone: the bundled simulated producer)."""
    path = Path(arg).expanduser() if arg else bundled_producer()
    if path is None:
        raise ValueError("genicam source needs a GenTL producer: genicam:/path/producer.cti")
    options.pop("seed", None)  # a UI may pass the simulators' seed to any source
    allowed = {"cameras", "trigger", "pixel_format", "max_fps"}
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"genicam: unknown option(s) {sorted(unknown)}; known: {sorted(allowed)}")
    return GenICamSource(path, **options)
