"""The acquisition thread: detector -> preallocated ring buffer, counting received and dropped lines.

One producer (this thread) and one consumer (the pipeline). The producer copies a block into the
ring and only then publishes the new total; the consumer copies out what is published and checks
afterwards that the producer did not lap it meanwhile. No lock on the hot path: the only shared
state is the published total, an int written by one thread.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Self

import numpy as np

from hardware.errors import CaptureError
from hardware.linescan.detector import COUNTER_MOD, LineDetector


@dataclass
class AcquisitionStats:
    """Counters of a run (all in lines)."""

    received: int = 0
    dropped: int = 0  # gaps in the detector's line counter: lines the detector sent but we never got
    overrun: int = 0  # lines lost because the consumer fell a whole ring behind
    timeouts: int = 0
    errors: int = 0
    last_error: str = ""


class Acquisition:
    """Reads a detector in a thread into a ring of `capacity` lines (default ~13 s at 1250 lines/s)."""

    def __init__(self, detector: LineDetector, capacity: int = 16384, read_timeout: float = 0.25) -> None:
        self.detector = detector
        self.capacity = capacity
        self.width = detector.width
        self._buf = np.zeros((capacity, self.width), np.uint16)
        self._line_no = np.zeros(capacity, np.int64)  # unwrapped detector line number per slot
        self._published = 0  # total lines written (monotonic), the single shared variable
        self._read_pos = 0
        self._expected: int | None = None  # unwrapped number of the next line we expect
        self.stats = AcquisitionStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.read_timeout = read_timeout

    # -- producer --------------------------------------------------------------
    def start(self) -> Acquisition:
        """Open the detector (if needed) and start the reading thread."""
        if not self.detector.is_open:
            self.detector.open()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="okng-linescan-acq", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (the detector stays open; close it separately)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)  # a detector read is bounded by read_timeout; 30 s is a hang
            if self._thread.is_alive():
                raise RuntimeError("line-scan acquisition thread did not stop")
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                block = self.detector.read(self.read_timeout)
            except CaptureError as exc:
                self.stats.timeouts += 1
                self.stats.last_error = str(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - one bad block must not end the acquisition
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(0.01)
                continue
            self._store(block.counter, block.lines)

    def _store(self, counter: int, lines: np.ndarray) -> None:
        n = len(lines)
        if n == 0:
            return
        if self._expected is None:
            first = counter
        else:
            gap = (counter - self._expected) % COUNTER_MOD
            first = self._expected + gap
            self.stats.dropped += gap
        pos = self._published % self.capacity
        k = min(n, self.capacity - pos)
        self._buf[pos:pos + k] = lines[:k]
        self._line_no[pos:pos + k] = np.arange(first, first + k)
        if k < n:
            self._buf[: n - k] = lines[k:]
            self._line_no[: n - k] = np.arange(first + k, first + n)
        self._expected = first + n
        self.stats.received += n
        self._published += n  # publish last: the consumer never sees a half-written block

    # -- consumer --------------------------------------------------------------
    @property
    def available(self) -> int:
        """Lines published but not yet read by the consumer."""
        return self._published - self._read_pos

    def read(self, max_lines: int | None = None, timeout: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Copy out the next lines: (line_numbers (n,), lines (n, W)); empty if none within timeout."""
        deadline = time.monotonic() + timeout
        while self._published == self._read_pos and time.monotonic() < deadline:
            time.sleep(0.002)
        end = self._published
        if end - self._read_pos > self.capacity:  # lapped: the oldest lines are gone
            self.stats.overrun += end - self._read_pos - self.capacity
            self._read_pos = end - self.capacity
        if max_lines is not None:
            end = min(end, self._read_pos + max_lines)
        n = end - self._read_pos
        idx = (self._read_pos + np.arange(n)) % self.capacity
        lines, numbers = self._buf[idx], self._line_no[idx]
        lapped = self._published - self._read_pos - self.capacity
        if lapped > 0:  # the producer overwrote part of what we copied: drop those lines
            self.stats.overrun += min(lapped, n)
            lines, numbers = lines[lapped:], numbers[lapped:]
        self._read_pos = end
        return numbers, lines
