"""Line-scan detectors: the X-ray detector simulator and the replay of a recorded strip.

A detector delivers blocks of 16-bit lines with its own line counter, paced by its line rate.
Like a real detector it has a small FIFO: lines not read in time are overwritten, which the
reader sees as a jump of the counter (a dropped line). Default rate 1250 lines/s: 1 m/s of belt
at 0.8 mm per pixel line.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.errors import CaptureError, HardwareError
from hardware.linescan.scene import Scene, WoolBelt

WIDTH = 640
DEFAULT_RATE = 1250.0
COUNTER_MOD = 1 << 32  # detectors count lines in a 32-bit register that wraps
CONDITIONS = ("scene", "dark", "flat")


@dataclass
class LineBlock:
    """Consecutive lines as delivered: `counter` is the (wrapping) number of the first line."""

    counter: int
    lines: np.ndarray  # (n, width) uint16
    timestamp: float


class LineDetector:
    """Base: timing, FIFO overflow and counters; subclasses produce the pixels of lines [c, c+n)."""

    width = WIDTH

    def __init__(self, rate: float | None = DEFAULT_RATE, fifo_lines: int = 4096,
                 block_lines: int = 16, max_block: int = 1024) -> None:
        self.rate = rate or None  # None: free-running, as fast as it is read (benchmarks)
        self.fifo_lines = fifo_lines
        self.block_lines = block_lines
        self.max_block = max_block
        self._t0 = 0.0
        self._next = 0  # unwrapped number of the next line to deliver
        self.lost = 0  # lines overwritten in the FIFO (the truth the reader must detect)
        self.is_open = False
        self._lock = threading.Lock()

    def open(self) -> None:
        """Start the line clock."""
        self._t0 = time.monotonic()
        self._next = 0
        self.lost = 0
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def _emitted(self, now: float) -> int:
        return int((now - self._t0) * self.rate)

    def read(self, timeout: float = 0.5) -> LineBlock:
        """Wait for at least `block_lines` lines (or timeout) and return what the FIFO holds."""
        if not self.is_open:
            raise CaptureError("detector is not open")
        with self._lock:
            if self.rate is None:
                n = self.max_block
            else:
                deadline = time.monotonic() + timeout
                while True:
                    now = time.monotonic()
                    avail = self._emitted(now) - self._next
                    if avail >= self.block_lines or (avail > 0 and now >= deadline):
                        break
                    if now >= deadline:
                        raise CaptureError(f"detector sent no line within {timeout:.2f} s")
                    due = self._t0 + (self._next + self.block_lines) / self.rate
                    time.sleep(max(0.0, min(due, deadline) - now))
                if avail > self.fifo_lines:  # the FIFO kept only the newest lines
                    self.lost += avail - self.fifo_lines
                    self._next += avail - self.fifo_lines
                    avail = self.fifo_lines
                n = min(avail, self.max_block)
            first = self._next
            lines = self._produce(first, n)
            self._next += n
        return LineBlock(counter=first % COUNTER_MOD, lines=lines, timestamp=time.time())

    def _produce(self, first: int, n: int) -> np.ndarray:
        raise NotImplementedError


class DetectorSimulator(LineDetector):
    """Simulated X-ray detector over a scene (demo wool strips by default).

    raw = dark + gain * clean + noise, clipped to 16 bits; `condition` "dark" (tube off) and
    "flat" (tube on, empty belt) serve calibration. A few dead pixels never respond (one stuck
    at full scale). Per-pixel gains average 1, so a calibrated line equals the clean one.
    """

    def __init__(self, scene: Scene | None = None, rate: float | None = DEFAULT_RATE, seed: int = 0,
                 dark_level: float = 1000.0, dark_spread: float = 60.0, gain_spread: float = 0.04,
                 sensitivity: float = 0.9, read_noise: float = 20.0, shot_noise: float = 0.25,
                 dead_pixels: int = 4, **kw) -> None:
        super().__init__(rate=rate, **kw)
        self.scene = scene if scene is not None else WoolBelt(seed=seed, width=self.width)
        self.width = self.scene.width
        rng = np.random.default_rng(seed + 7919)
        self.dark = (dark_level + rng.normal(0, dark_spread, self.width)).astype(np.float32)
        gain = rng.normal(1.0, gain_spread, self.width).clip(0.85, 1.15)
        self.dead = np.sort(rng.choice(np.arange(2, self.width - 2), size=dead_pixels, replace=False))
        gain[self.dead] = 0.0
        live = gain > 0
        gain[live] /= gain[live].mean()
        self.gain = gain.astype(np.float32)
        # ADU per count below 1 keeps the brightest pixel under full scale (no clipping)
        self.sensitivity = sensitivity
        self.stuck = self.dead[:1]  # one dead pixel stuck at full scale, the others dark
        self.read_noise = read_noise
        self.shot_noise = shot_noise
        self.condition = "scene"
        self._scene_origin = 0
        self._rng = np.random.default_rng(seed + 104729)

    def set_condition(self, condition: str) -> None:
        """'scene' (belt with products), 'dark' (tube off) or 'flat' (tube on, empty belt)."""
        if condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
        with self._lock:
            if condition == "scene" and self.condition != "scene":
                self._scene_origin = self._next  # the belt starts under the beam now
            self.condition = condition

    def scene_line(self, line: int) -> int:
        """Scene (strip) line index seen at unwrapped detector line `line`."""
        return line - self._scene_origin

    def _produce(self, first: int, n: int) -> np.ndarray:
        if self.condition == "dark":
            clean = np.zeros((n, self.width), np.float32)
        elif self.condition == "flat":
            clean = np.broadcast_to(self.scene.open_level, (n, self.width)).astype(np.float32)
        else:
            clean = self.scene.lines(first - self._scene_origin, n)
        signal = clean * (self.gain * self.sensitivity)
        noise = self._rng.standard_normal((n, self.width), dtype=np.float32)
        sigma = self.read_noise + self.shot_noise * np.sqrt(signal)
        raw = self.dark + signal + noise * sigma
        raw[:, self.stuck] = 65535.0
        return np.clip(raw, 0, 65535).astype(np.uint16)


class StripReplay(LineDetector):
    """Replays recorded raw lines (npy/HDF5/PNG16) at the line rate; loops or ends."""

    def __init__(self, strip: np.ndarray | str | Path, rate: float | None = DEFAULT_RATE,
                 loop: bool = True, **kw) -> None:
        super().__init__(rate=rate, **kw)
        self.strip = load_strip(strip) if isinstance(strip, (str, Path)) else np.asarray(strip)
        if self.strip.ndim != 2 or self.strip.dtype != np.uint16:
            raise HardwareError(f"a recorded strip must be (lines, width) uint16, got "
                                f"{self.strip.shape} {self.strip.dtype}")
        self.width = self.strip.shape[1]
        self.loop = loop

    def _produce(self, first: int, n: int) -> np.ndarray:
        total = len(self.strip)
        if not self.loop and first + n > total:
            if first >= total:
                raise CaptureError("recorded strip has ended")
            n = total - first
        idx = np.arange(first, first + n) % total
        return self.strip[idx]


def load_strip(path: str | Path) -> np.ndarray:
    """Read a recorded strip: .npy, .h5/.hdf5 (dataset 'strip' or the first 2-D one), .png/.tif 16-bit."""
    path = Path(path)
    if not path.exists():
        raise HardwareError(f"strip file {path} not found")
    ext = path.suffix.lower()
    if ext == ".npy":
        arr = np.load(path, allow_pickle=False)
    elif ext in (".h5", ".hdf5"):
        import h5py
        with h5py.File(path, "r") as f:
            names = ["strip"] if "strip" in f else [k for k in f if getattr(f[k], "ndim", 0) == 2]
            if not names:
                raise HardwareError(f"{path.name} holds no 2-D strip dataset")
            arr = f[names[0]][()]
    elif ext in (".png", ".tif", ".tiff"):
        import cv2
        arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise HardwareError(f"cannot read {path.name} as an image")
    else:
        raise HardwareError(f"unknown strip format {ext!r} (use .npy, .h5, .png or .tif)")
    if arr.ndim != 2 or arr.dtype != np.uint16:
        raise HardwareError(f"{path.name}: a strip must be 2-D 16-bit, got {arr.shape} {arr.dtype}")
    return arr


def save_strip(path: str | Path, strip: np.ndarray) -> Path:
    """Write a strip as .npy, .h5 (dataset 'strip') or a 16-bit .png/.tif."""
    path = Path(path)
    strip = np.asarray(strip, dtype=np.uint16)
    ext = path.suffix.lower()
    if ext == ".npy":
        np.save(path, strip)
    elif ext in (".h5", ".hdf5"):
        import h5py
        with h5py.File(path, "w") as f:
            f.create_dataset("strip", data=strip, compression="gzip", compression_opts=1)
    elif ext in (".png", ".tif", ".tiff"):
        import cv2
        if not cv2.imwrite(str(path), strip):
            raise HardwareError(f"cannot write {path}")
    else:
        raise HardwareError(f"unknown strip format {ext!r} (use .npy, .h5, .png or .tif)")
    return path
