"""The image source contract: one Protocol (open, capture a part, close, info) and its data.

A *capture* is one part: all views taken for one trigger. Every source (simulator, folder
replay, OpenCV, GenICam, X-ray line scan) returns the same `Capture`, so the sort engine and the
app never care where pixels come from.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from hardware.errors import CaptureError, HardwareError

__all__ = [
    "Capture",
    "CaptureError",
    "HardwareError",
    "RateLimiter",
    "Source",
    "SourceExhausted",
    "SourceInfo",
    "parse_resolution",
    "validate_views",
]

KINDS = ("multi-camera", "line-scan")


class SourceExhausted(HardwareError):
    """A replay reached its end with looping off: no more parts (not a per-part error)."""


@dataclass
class Capture:
    """The views of one part (one trigger), in camera order."""

    views: list[np.ndarray]
    cameras: list[str]
    timestamp: float
    index: int
    truth: dict | None = None  # ground truth when the source knows it (sim, labelled folder)


@dataclass
class SourceInfo:
    """What a source is: shown in the UI and written into the part's metadata."""

    name: str
    kind: str  # "multi-camera" | "line-scan"
    cameras: list[str]
    resolution: tuple[int, int]  # (width, height); height 0 when it varies (line-scan parts)
    details: dict = field(default_factory=dict)


@runtime_checkable
class Source(Protocol):
    """A device (or its simulator) that delivers one `Capture` per trigger.

    `capture()` raises CaptureError on a camera timeout or a corrupt frame: that part only, the
    source stays usable and the next call answers the next trigger.
    """

    def open(self) -> None: ...

    def capture(self, timeout: float = 1.0) -> Capture: ...

    def close(self) -> None: ...

    def info(self) -> SourceInfo: ...


def parse_resolution(text: str) -> tuple[int, int]:
    """'1280x960' -> (1280, 960); a clear ValueError otherwise."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"resolution must look like 1280x960, got {text!r}") from None
    if w < 8 or h < 8 or w > 16384 or h > 16384:
        raise ValueError(f"resolution {w}x{h} out of range (8..16384)")
    return w, h


def validate_views(views: list, cameras: list[str], shape: tuple[int, int] | None = None) -> None:
    """Raise CaptureError unless every view is a sane image (right count, dtype, size, finite)."""
    if len(views) != len(cameras):
        raise CaptureError(f"expected {len(cameras)} views, got {len(views)}")
    for cam, v in zip(cameras, views):
        if not isinstance(v, np.ndarray) or v.size == 0:
            raise CaptureError(f"camera {cam}: empty or missing frame")
        if v.dtype not in (np.uint8, np.uint16):
            raise CaptureError(f"camera {cam}: unexpected pixel type {v.dtype}")
        if v.ndim not in (2, 3) or (v.ndim == 3 and v.shape[2] not in (1, 3, 4)):
            raise CaptureError(f"camera {cam}: corrupt frame of shape {v.shape}")
        if shape is not None and v.shape[:2] != (shape[1], shape[0]):
            raise CaptureError(f"camera {cam}: truncated frame {v.shape[1]}x{v.shape[0]}, "
                               f"expected {shape[0]}x{shape[1]}")


class RateLimiter:
    """Paces calls to at most `max_fps` per second (None or 0: unlimited)."""

    def __init__(self, max_fps: float | None = None) -> None:
        self.period = 1.0 / max_fps if max_fps else 0.0
        self._next = 0.0

    def wait(self) -> None:
        """Sleep until the next slot; slots do not accumulate while idle (no bursts)."""
        if not self.period:
            return
        now = time.monotonic()
        if now < self._next:
            time.sleep(self._next - now)
            now = self._next
        self._next = now + self.period
