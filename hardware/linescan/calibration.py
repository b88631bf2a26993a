"""Dark/flat-field calibration of a line-scan detector.

corrected = (raw - dark) * mean(flat - dark) / (flat - dark), then dead pixels (those whose
flat-field response is far from their neighbours', or that do not respond at all) are replaced
by linear interpolation between the nearest good pixels on each side.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.errors import HardwareError


@dataclass
class Calibration:
    """Per-pixel dark offset and flat response, plus the dead-pixel map."""

    dark: np.ndarray  # (W,) float32, mean of dark lines
    flat: np.ndarray  # (W,) float32, mean of flat lines
    dead: np.ndarray  # (W,) bool

    def __post_init__(self) -> None:
        self.dark = np.asarray(self.dark, np.float32)
        self.flat = np.asarray(self.flat, np.float32)
        self.dead = np.asarray(self.dead, bool)
        if not (self.dark.shape == self.flat.shape == self.dead.shape) or self.dark.ndim != 1:
            raise HardwareError("calibration: dark, flat and dead maps must be 1-D and the same width")
        good = ~self.dead
        if good.sum() < 2:
            raise HardwareError("calibration: fewer than two working pixels (was the X-ray tube on?)")
        resp = self.flat - self.dark
        #: the corrected output's scale: an empty belt reads `level` everywhere
        self.level = float(resp[good].mean())
        self._scale = np.where(good, self.level / np.where(good, resp, 1.0), 0.0).astype(np.float32)
        idx = np.arange(len(good))
        gi = idx[good]
        self._dead_idx = idx[self.dead]
        # nearest good neighbours left/right of each dead pixel (edge pixels copy the one side)
        pos = np.searchsorted(gi, self._dead_idx)
        left = gi[np.clip(pos - 1, 0, len(gi) - 1)]
        right = gi[np.clip(pos, 0, len(gi) - 1)]
        span = (right - left).astype(np.float32)
        w = np.where(span > 0, (self._dead_idx - left) / np.where(span > 0, span, 1), 0.5)
        self._left, self._right, self._w = left, right, w.astype(np.float32)

    @property
    def width(self) -> int:
        return len(self.dark)

    def correct(self, raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Correct (n, W) raw lines to float32 in units where the empty belt reads `level`."""
        if raw.shape[-1] != self.width:
            raise HardwareError(f"calibration is for {self.width} pixels, lines have {raw.shape[-1]}")
        res = np.subtract(raw, self.dark, out=out, dtype=np.float32)
        res *= self._scale
        if len(self._dead_idx):
            res[..., self._dead_idx] = (res[..., self._left] * (1 - self._w) + res[..., self._right] * self._w)
        return res

    def save(self, path: str | Path) -> Path:
        """Write the calibration as .npz (dark, flat, dead)."""
        path = Path(path)
        with path.open("wb") as fh:
            np.savez(fh, dark=self.dark, flat=self.flat, dead=self.dead, version=np.int32(1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read a calibration written by save(); HardwareError if it is not one."""
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                return cls(z["dark"], z["flat"], z["dead"])
        except (OSError, KeyError, ValueError) as exc:
            raise HardwareError(f"{path} is not an okng line-scan calibration: {exc}") from None

    @classmethod
    def identity(cls, width: int, level: float = 1.0) -> Calibration:
        """No correction (a recorded strip that is already corrected)."""
        return cls(np.zeros(width), np.full(width, level), np.zeros(width, bool))


def find_dead_pixels(dark: np.ndarray, flat: np.ndarray, tolerance: float = 0.35,
                     window: int = 9) -> np.ndarray:
    """Pixels whose flat response differs from the local median by more than `tolerance` (or <= 0)."""
    resp = np.asarray(flat, np.float64) - np.asarray(dark, np.float64)
    pad = window // 2
    padded = np.pad(resp, pad, mode="edge")
    local = np.median(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)
    ref = np.where(local > 0, local, np.median(resp))
    return (resp <= 0) | (np.abs(resp - ref) > tolerance * np.abs(ref))


def calibrate(dark_lines: np.ndarray, flat_lines: np.ndarray, tolerance: float = 0.35) -> Calibration:
    """Build a Calibration from raw dark lines (tube off) and flat lines (tube on, empty belt)."""
    dark_lines, flat_lines = np.asarray(dark_lines), np.asarray(flat_lines)
    if dark_lines.ndim != 2 or flat_lines.ndim != 2 or dark_lines.shape[1] != flat_lines.shape[1]:
        raise HardwareError("calibrate: dark and flat must be (lines, width) with the same width")
    dark = dark_lines.mean(axis=0)
    flat = flat_lines.mean(axis=0)
    if np.median(flat - dark) <= 0:
        raise HardwareError("calibrate: the flat field is not brighter than the dark (tube off?)")
    return Calibration(dark, flat, find_dead_pixels(dark, flat, tolerance))


def capture_lines(read: Callable[[float], object], n: int, timeout: float = 1.0) -> np.ndarray:
    """Read `n` raw lines from a detector's read(timeout) (LineBlock-like objects with .lines)."""
    chunks, got = [], 0
    while got < n:
        block = read(timeout)
        chunks.append(block.lines)
        got += len(block.lines)
    return np.concatenate(chunks)[:n]


def calibrate_detector(detector, lines: int = 256, timeout: float = 1.0) -> Calibration:
    """Take dark then flat lines from a detector with set_condition (the simulator), back to scene."""
    try:
        detector.set_condition("dark")
        capture_lines(detector.read, 32, timeout)  # flush lines taken before the switch
        dark = capture_lines(detector.read, lines, timeout)
        detector.set_condition("flat")
        capture_lines(detector.read, 32, timeout)
        flat = capture_lines(detector.read, lines, timeout)
    finally:
        detector.set_condition("scene")
    return calibrate(dark, flat)
