"""What passes under the X-ray beam: an endless belt of demo wool strips (or a recorded clean strip).

A Scene answers "clean transmitted intensity of scene lines [start, start+n)" plus where its
products are, so simulated runs can be checked against ground truth line by line.
"""
from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class SceneProduct:
    """One product in scene line coordinates (end exclusive) with its ground truth."""

    start: int
    end: int
    verdict: str
    defect_class: int
    strip: int = -1


class Scene(Protocol):
    width: int
    open_level: np.ndarray  # (width,) clean intensity of the empty belt (what a flat-field sees)

    def lines(self, start: int, n: int) -> np.ndarray: ...

    def products(self, start: int, end: int) -> list[SceneProduct]: ...


def _plain_verdict(v: object) -> str:
    return getattr(v, "name", None) or str(v)


class WoolBelt:
    """Demo wool strips (labeling.demo.xray.render_strip) laid end to end (each starts and ends with belt).

    Strips are rendered on demand and a few are cached, so an endless run has bounded memory.
    """

    def __init__(self, seed: int = 0, width: int = 640, products_per_strip: int = 4,
                 gap: int = 0, cache: int = 4) -> None:
        from labeling.demo.xray import render_strip
        self._render = render_strip
        self.seed = seed
        self.width = width
        self.products_per_strip = products_per_strip
        self.gap = gap
        self._cache: OrderedDict[int, object] = OrderedDict()
        self._cache_size = cache
        self._starts = [0]  # scene line where strip i starts (strips rendered so far + 1)
        first = self._strip(0)
        img = first.image.astype(np.float32)
        belt = np.ones(len(img), bool)
        for s, e in first.products:
            belt[max(0, s):e] = False
        rows = img[belt] if belt.sum() >= 8 else img[np.argsort(img.mean(1))[-8:]]
        self.open_level = np.median(rows, axis=0).astype(np.float32)
        self._gap_line = self.open_level[None, :]

    def _strip(self, i: int):
        if i not in self._cache:
            self._cache[i] = self._render(i, seed=self.seed, products=self.products_per_strip,
                                          width=self.width)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(i)
        strip = self._cache[i]
        if i == len(self._starts) - 1:  # first time this strip is laid: the next one starts after it
            self._starts.append(self._starts[i] + len(strip.image) + self.gap)
        return strip

    def _locate(self, line: int) -> int:
        while line >= self._starts[-1]:
            self._strip(len(self._starts) - 1)
        return bisect.bisect_right(self._starts, line) - 1

    def lines(self, start: int, n: int) -> np.ndarray:
        """Clean float32 intensities of scene lines [start, start+n); belt gap between strips."""
        out = np.empty((n, self.width), np.float32)
        pos, done = start, 0
        if pos < 0:  # before the first strip: empty belt
            k = min(n, -pos)
            out[:k] = self._gap_line
            pos, done = pos + k, k
        while done < n:
            i = self._locate(pos)
            strip = self._strip(i).image
            off = pos - self._starts[i]
            if off < len(strip):
                k = min(n - done, len(strip) - off)
                out[done:done + k] = strip[off:off + k]
            else:
                k = min(n - done, self._starts[i + 1] - pos)
                out[done:done + k] = self._gap_line
            done += k
            pos += k
        return out

    def products(self, start: int, end: int) -> list[SceneProduct]:
        """Products overlapping scene lines [start, end) (rendering strips as needed)."""
        found = []
        i = self._locate(max(start, 0))
        while self._starts[i] < end:
            strip = self._strip(i)
            s0 = self._starts[i]
            for j, (a, b) in enumerate(strip.products):
                if s0 + b > start and s0 + a < end:
                    found.append(SceneProduct(s0 + int(a), s0 + int(b), _plain_verdict(strip.verdicts[j]),
                                              int(strip.classes[j]), strip=i))
            i += 1
        return found
