"""From corrected lines to products: strip assembly and splitting at the belt gaps.

StripAssembler turns numbered raw lines into a continuous corrected strip (a dropped line is
filled with its predecessor so product lengths stay true to the belt) and keeps a bounded
history for display. ProductSplitter cuts the strip into products where the mean transmission
of a line drops below the belt level, with hysteresis and a minimum length, so each product
becomes one part.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from hardware.linescan.calibration import Calibration


class Product(NamedTuple):
    """One product cut from the strip: lines [start_line, end_line) of the detector."""

    image: np.ndarray  # (end_line - start_line, W) float32, corrected
    start_line: int
    end_line: int


class StripAssembler:
    """Correct and assemble numbered lines into a gap-free strip; keep the last `history` lines."""

    def __init__(self, calibration: Calibration | None = None, width: int = 640, history: int = 8192) -> None:
        self.calibration = calibration
        self.width = calibration.width if calibration is not None else width
        self.history = history
        self._hist = np.zeros((history, self.width), np.float32)
        self.next_line: int | None = None  # detector line number the strip continues with
        self.lines = 0  # lines in the strip so far (filled ones included)
        self.filled = 0
        self.gaps: deque[tuple[int, int]] = deque(maxlen=1000)  # (first missing line, count), newest last

    def push(self, numbers: np.ndarray, raw: np.ndarray) -> tuple[int, np.ndarray]:
        """Add numbered raw lines; return (first line number, corrected contiguous lines)."""
        if len(numbers) == 0:
            return (self.next_line or 0), np.empty((0, self.width), np.float32)
        lines = (self.calibration.correct(raw) if self.calibration is not None
                 else raw.astype(np.float32))
        first = int(numbers[0]) if self.next_line is None else self.next_line
        steps = np.diff(numbers, prepend=first - 1)
        if np.all(steps == 1):
            out = lines
        else:  # fill gaps by repeating the previous line: lengths stay in belt units
            if np.any(steps < 1):
                keep = steps >= 1  # a line number seen twice (never from one detector) is ignored
                numbers, lines = numbers[keep], lines[keep]
            for j in np.flatnonzero(np.diff(numbers, prepend=first - 1) > 1):
                start = first if j == 0 else int(numbers[j - 1]) + 1
                self.gaps.append((start, int(numbers[j]) - start))
            total = int(numbers[-1]) - first + 1
            where = (numbers - first).astype(np.int64)
            src = np.searchsorted(where, np.arange(total), side="right") - 1
            fill_from_prev = src < 0
            out = lines[np.clip(src, 0, None)]
            if fill_from_prev.any() and self.lines:
                out[fill_from_prev] = self._hist[(self.lines - 1) % self.history]
            self.filled += total - len(numbers)
        self._remember(out)
        self.next_line = first + len(out)
        return first, out

    def _remember(self, out: np.ndarray) -> None:
        n = len(out)
        if n >= self.history:
            out = out[-self.history:]
        pos = self.lines % self.history
        k = min(len(out), self.history - pos)
        self._hist[pos:pos + k] = out[:k]
        self._hist[: len(out) - k] = out[k:]
        self.lines += n

    def strip(self, last: int | None = None) -> np.ndarray:
        """The most recent `last` lines of the strip (default: all kept)."""
        n = min(self.lines, self.history, last if last is not None else self.history)
        idx = (self.lines - n + np.arange(n)) % self.history
        return self._hist[idx]


@dataclass
class SplitterStats:
    products: int = 0
    too_short: int = 0
    cut_too_long: int = 0


class ProductSplitter:
    """Split a strip into products by mean transmission per line, with hysteresis.

    A product starts at the first line whose mean falls below `enter * level` and ends after
    `min_gap` consecutive lines back above `leave * level` (enter < leave: a noisy edge cannot
    chatter). Products shorter than `min_length` are debris and dropped; longer than
    `max_length` are cut. `level` is the empty-belt reading (Calibration.level); None estimates
    it from the belt itself.
    """

    def __init__(self, level: float | None = None, enter: float = 0.90, leave: float = 0.95,
                 min_gap: int = 8, min_length: int = 40, max_length: int = 4000) -> None:
        if not 0 < enter < leave <= 1.0:
            raise ValueError("splitter thresholds need 0 < enter < leave <= 1")
        self.level = level
        self._fixed_level = level is not None
        self.enter, self.leave = enter, leave
        self.min_gap, self.min_length, self.max_length = min_gap, min_length, max_length
        self.stats = SplitterStats()
        self._in_product = False
        self._start = 0
        self._clear = 0  # consecutive clear lines while in a product
        self._chunks: list[np.ndarray] = []
        self._chunk_first: list[int] = []

    def feed(self, first_line: int, lines: np.ndarray) -> list[Product]:
        """Feed contiguous corrected lines starting at `first_line`; return finished products."""
        if len(lines) == 0:
            return []
        means = lines.mean(axis=1, dtype=np.float64)
        if self.level is None:
            self.level = float(np.percentile(means, 95))
        out: list[Product] = []
        if self._in_product:
            self._chunks.append(lines)
            self._chunk_first.append(first_line)
        lo, hi = self.enter * self.level, self.leave * self.level
        gap_means = []
        for i, m in enumerate(means.tolist()):
            line = first_line + i
            if not self._in_product:
                if m < lo:
                    self._in_product, self._start, self._clear = True, line, 0
                    self._chunks, self._chunk_first = [lines[i:]], [line]
                else:
                    gap_means.append(m)
            elif m > hi:
                self._clear += 1
                if self._clear >= self.min_gap:
                    out += self._finish(line - self.min_gap + 1)
                    self._in_product = False
            else:
                self._clear = 0
                if line + 1 - self._start >= self.max_length:
                    self.stats.cut_too_long += 1
                    out += self._finish(line + 1)
                    self._in_product, self._start = True, line + 1
                    self._chunks, self._chunk_first = [lines[i + 1:]], [line + 1]
        if gap_means and not self._fixed_level:  # follow slow drifts of the source and the belt
            self.level = 0.98 * self.level + 0.02 * float(np.median(gap_means))
        return out

    def _finish(self, end: int) -> list[Product]:
        start = self._start
        self._in_product = False
        if end - start < self.min_length:
            self.stats.too_short += 1
            return []
        parts = [c[max(0, start - f): end - f] for c, f in zip(self._chunks, self._chunk_first) if f < end]
        image = np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
        self._chunks, self._chunk_first = [], []
        self.stats.products += 1
        return [Product(image, start, end)]

    def flush(self) -> list[Product]:
        """End of run: emit the product in progress (if long enough)."""
        if not self._in_product or not self._chunks:
            return []
        end = self._chunk_first[-1] + len(self._chunks[-1])
        return self._finish(end)
