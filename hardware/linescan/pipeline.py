"""The line-scan pipeline: acquisition -> correction and assembly -> product splitting.

`LineScanPipeline.run_for` / `step` drive it from the caller's thread (tests, benchmarks);
`start()` runs it in its own thread and queues products, which is what the `xray` source uses.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

from hardware.linescan.acquisition import Acquisition
from hardware.linescan.assembly import Product, ProductSplitter, StripAssembler
from hardware.linescan.calibration import Calibration
from hardware.linescan.detector import LineDetector


@dataclass
class PipelineStats:
    lines: int = 0
    products: int = 0
    dropped: int = 0
    overrun: int = 0
    filled: int = 0
    busy_s: float = 0.0  # time spent correcting/assembling/splitting (not waiting)


class LineScanPipeline:
    """Detector + Acquisition + StripAssembler + ProductSplitter, wired together."""

    def __init__(self, detector: LineDetector, calibration: Calibration | None = None,
                 splitter: ProductSplitter | None = None, capacity: int = 16384,
                 max_queue: int = 64) -> None:
        self.detector = detector
        self.acquisition = Acquisition(detector, capacity=capacity)
        self.assembler = StripAssembler(calibration, width=detector.width)
        level = calibration.level if calibration is not None else None
        self.splitter = splitter or ProductSplitter(level=level)
        self.products: queue.Queue[Product] = queue.Queue(maxsize=max_queue)
        self.lost_products = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = 0.0

    def step(self, timeout: float = 0.05, max_lines: int = 4096) -> list[Product]:
        """Process whatever the acquisition holds (waiting up to `timeout`); return new products."""
        numbers, raw = self.acquisition.read(max_lines=max_lines, timeout=timeout)
        if len(numbers) == 0:
            return []
        t = time.perf_counter()
        first, lines = self.assembler.push(numbers, raw)
        found = self.splitter.feed(first, lines)
        self._busy += time.perf_counter() - t
        return found

    def run_for(self, seconds: float) -> list[Product]:
        """Acquire and process for `seconds` in this thread (acquisition in its own)."""
        found: list[Product] = []
        started = not self.acquisition.running
        if started:
            self.acquisition.start()
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                found += self.step()
        finally:
            if started:
                self.acquisition.stop()
        while self.acquisition.available:
            found += self.step(timeout=0)
        return found

    def start(self) -> None:
        """Run acquisition and processing in background threads; products go to `self.products`."""
        self.acquisition.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="okng-linescan-proc", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for p in self.step():
                try:
                    self.products.put_nowait(p)
                except queue.Full:  # nobody is taking parts: keep the newest, count the loss
                    self.lost_products += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.acquisition.stop()

    @property
    def stats(self) -> PipelineStats:
        a = self.acquisition.stats
        return PipelineStats(lines=self.assembler.lines, products=self.splitter.stats.products,
                             dropped=a.dropped, overrun=a.overrun, filled=self.assembler.filled,
                             busy_s=self._busy)
