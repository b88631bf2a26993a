"""`xray`: the line-scan detector as an image source; each product cut from the strip is one part.

Unlike a triggered camera rig, products arrive on their own: capture() waits for the next one.
With the simulator, dark/flat calibration is taken at open() (as an operator would at start-up)
unless a saved calibration is given, and each part carries the generator's ground truth.
"""
from __future__ import annotations

import queue
import time
from pathlib import Path

import numpy as np

from hardware.errors import CaptureError
from hardware.linescan.calibration import Calibration, calibrate_detector
from hardware.linescan.detector import DEFAULT_RATE, DetectorSimulator, StripReplay
from hardware.linescan.pipeline import LineScanPipeline
from hardware.sources.base import Capture, SourceInfo

CAMERAS = ["xray"]


class LineScanSource:
    """Options: seed, rate (lines/s), calibration (path), replay (strip file), dtype ('uint16'|'float32')."""

    def __init__(self, seed: int = 0, rate: float | None = DEFAULT_RATE, calibration: str | None = None,
                 replay: str | None = None, dtype: str = "uint16") -> None:
        self.seed, self.rate, self.replay = seed, rate, replay
        self.calibration_path = calibration
        self.dtype = np.dtype(dtype)
        self.pipeline: LineScanPipeline | None = None
        self.count = 0
        self.calibration: Calibration | None = None

    def open(self) -> None:
        """Open the detector, calibrate (or load calibration), start acquiring."""
        if self.replay:
            det = StripReplay(Path(self.replay).expanduser(), rate=self.rate)
        else:
            det = DetectorSimulator(seed=self.seed, rate=self.rate)
        det.open()
        if self.calibration_path:
            self.calibration = Calibration.load(self.calibration_path)
        elif isinstance(det, DetectorSimulator):
            self.calibration = calibrate_detector(det)
        self.pipeline = LineScanPipeline(det, self.calibration)
        self.pipeline.start()
        self.count = 0

    def capture(self, timeout: float = 1.0) -> Capture:
        """Wait for the next product; CaptureError if none is cut within `timeout`."""
        if self.pipeline is None:
            raise CaptureError("xray source is not open")
        try:
            product = self.pipeline.products.get(timeout=timeout)
        except queue.Empty:
            raise CaptureError(f"no product on the belt within {timeout:.2f} s") from None
        k = self.count
        self.count += 1
        img = product.image
        if self.dtype == np.uint16:
            img = np.clip(img, 0, 65535).astype(np.uint16)
        truth = {"start_line": product.start_line, "end_line": product.end_line}
        det = self.pipeline.detector
        if isinstance(det, DetectorSimulator):
            a, b = det.scene_line(product.start_line), det.scene_line(product.end_line)
            overlaps = det.scene.products(a, b)
            if overlaps:
                best = max(overlaps, key=lambda p: min(p.end, b) - max(p.start, a))
                truth.update(verdict=best.verdict, defect_class=best.defect_class,
                             scene_start=best.start, scene_end=best.end, strip=best.strip)
        return Capture(views=[img], cameras=list(CAMERAS), timestamp=time.time(), index=k, truth=truth)

    def close(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop()
            self.pipeline.detector.close()
            self.pipeline = None

    def info(self) -> SourceInfo:
        det = self.pipeline.detector if self.pipeline else None
        details = {"rate": self.rate, "replay": self.replay, "seed": self.seed}
        if self.pipeline is not None:
            s = self.pipeline.stats
            details.update(lines=s.lines, dropped=s.dropped, products=s.products)
        if self.calibration is not None:
            details["dead_pixels"] = np.flatnonzero(self.calibration.dead).tolist()
        return SourceInfo(name="xray", kind="line-scan", cameras=list(CAMERAS),
                          resolution=(det.width if det else 640, 0), details=details)


def create(arg: str, options: dict) -> LineScanSource:
    """'xray' (simulator) or 'xray:STRIP_FILE' (replay of a recorded raw strip)."""
    if arg:
        options.setdefault("replay", arg)
    allowed = {"seed", "rate", "calibration", "replay", "dtype"}
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"xray: unknown option(s) {sorted(unknown)}; known: {sorted(allowed)}")
    return LineScanSource(**options)
