"""Polygons to pixels, pixels to polygons.

labelme (and every dataset made with its tools, bsdata included) turns polygons into masks with
Pillow's ImageDraw.polygon. To get pixel-identical masks without depending on Pillow, this module
follows the same rules, written here as a vectorised scan-line fill:

* vertices are truncated towards zero to whole pixels (a labelme point (12.7, 3.2) lies in pixel
  column 12, row 3: pixel i spans [i, i+1));
* every non-horizontal edge covers the rows from its lower to its upper vertex inclusive; its
  crossing at the end row is counted twice (except on the polygon's last row), which draws the
  vertex pixel and keeps the even-odd pairing right; horizontal edges are drawn whole;
* each pair of sorted crossings fills from round-half-up(left) to round-half-down(right);
* where two slanted edges meet at a vertex row and the vertex sticks out more than a pixel
  beyond both edges on the adjacent row, the crossing is pulled in so the corner stays joined;
* crossings are computed in float32, as Pillow does, so ties round the same way.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

F32 = np.float32


def _truncate(a: np.ndarray) -> np.ndarray:
    return np.trunc(a).astype(np.int64)


def _round_half_up(x: np.ndarray) -> np.ndarray:
    """Pixel index of a left crossing (ties go right)."""
    x = np.asarray(x, F32)
    pos = np.floor(x + F32(0.5))
    neg = -np.floor(np.abs(x) + F32(0.5))
    return np.where(x >= 0, pos, neg).astype(np.int64)


def _round_half_down(x: np.ndarray) -> np.ndarray:
    """Pixel index of a right crossing (ties go left)."""
    x = np.asarray(x, F32)
    pos = np.ceil(x - F32(0.5))
    neg = -np.ceil(np.abs(x) - F32(0.5))
    return np.where(x >= 0, pos, neg).astype(np.int64)


def _roundf(x: float) -> float:
    return float(np.sign(x) * np.floor(abs(float(x)) + 0.5))


class _Edge:
    __slots__ = ("dx", "x0", "xmax", "xmin", "y0", "ymax", "ymin")

    def __init__(self, x0: int, y0: int, x1: int, y1: int) -> None:
        self.x0, self.y0 = x0, y0
        self.xmin, self.xmax = min(x0, x1), max(x0, x1)
        self.ymin, self.ymax = min(y0, y1), max(y0, y1)
        self.dx = F32(0.0) if y0 == y1 else F32(x1 - x0) / F32(y1 - y0)

    def x_at(self, y: np.ndarray | int) -> np.ndarray:
        return np.asarray(y - self.y0).astype(F32) * self.dx + F32(self.x0)


def _edges(pts: np.ndarray) -> list[_Edge]:
    edges: list[_Edge] = []
    n = len(pts)
    for i in range(n - 1):
        x0, y0 = pts[i]
        x1, y1 = pts[i + 1]
        if y0 == y1 and i > 0 and y0 == pts[i - 1][1] and edges:
            # Two horizontal runs in a row going the same way are one run.
            px = pts[i - 1][0]
            if x1 > x0 > px:
                edges[-1].xmax = x1
                continue
            if x1 < x0 < px:
                edges[-1].xmin = x1
                continue
        edges.append(_Edge(x0, y0, x1, y1))
    if n and (pts[-1][0] != pts[0][0] or pts[-1][1] != pts[0][1]):
        edges.append(_Edge(pts[-1][0], pts[-1][1], pts[0][0], pts[0][1]))
    return edges


def _corner_fix(e: _Edge, i: int, y: int, x: F32, slanted: list[_Edge]) -> F32:
    """Pull a vertex crossing in when it would leave the corner pixel detached."""
    for other in slanted[:i]:
        if (y != other.ymin and y != other.ymax) or other.dx == 0:
            continue
        if _roundf(x) != _roundf(other.x_at(y)):
            continue
        nxt = y - 1 if y == e.ymax else y + 1
        if not other.ymin <= nxt <= other.ymax:
            continue
        a, b = e.x_at(nxt), other.x_at(nxt)
        if x > a + F32(1) and x > b + F32(1):
            return F32(_roundf(max(a, b)) + 1)
        if x < a - F32(1) and x < b - F32(1):
            return F32(_roundf(min(a, b)) - 1)
        break
    return x


def fill_polygon(mask: np.ndarray, points: Sequence[Sequence[float]], value: int) -> None:
    """Paint `value` into `mask` inside the polygon (labelme/Pillow pixel rules, see module doc)."""
    pts = _truncate(np.asarray(points, dtype=float).reshape(-1, 2))
    h = mask.shape[0]
    edges = _edges(pts)
    if not edges:
        return
    top = max(0, min(h - 1, min(e.ymin for e in edges)))
    bottom = min(h, max(0, max(e.ymax for e in edges)))
    rows: list[np.ndarray] = []
    xs: list[np.ndarray] = []
    for e in edges:
        if e.ymin == e.ymax:
            _hline(mask, e.xmin, e.ymin, e.xmax, value)
    slanted = [e for e in edges if e.ymin != e.ymax]
    for i, e in enumerate(slanted):
        lo, hi = max(e.ymin, top), min(e.ymax, bottom)
        if lo > hi:
            continue
        y = np.arange(lo, hi + 1)
        x = e.x_at(y)
        if e.dx != 0:
            for yy in {e.ymin, e.ymax}:
                at_end = yy == e.ymax
                if lo <= yy <= hi and (not at_end or yy >= bottom):
                    x[yy - lo] = _corner_fix(e, i, yy, x[yy - lo], slanted)
        rows.append(y)
        xs.append(x)
        if lo <= e.ymax <= hi and e.ymax < bottom:
            rows.append(np.array([e.ymax]))
            xs.append(np.array([x[e.ymax - lo]], F32))
    if not rows:
        return
    r = np.concatenate(rows)
    x = np.concatenate(xs).astype(F32)
    order = np.lexsort((x, r))
    r, x = r[order], x[order]
    rank = np.arange(len(r)) - np.searchsorted(r, r, side="left")
    left = np.flatnonzero((rank % 2 == 0)[:-1] & (r[1:] == r[:-1]))
    for yy, x0, x1 in zip(r[left], _round_half_up(x[left]), _round_half_down(x[left + 1])):
        _hline(mask, int(x0), int(yy), int(x1), value)


def _hline(mask: np.ndarray, x0: int, y: int, x1: int, value: int) -> None:
    h, w = mask.shape[:2]
    if not 0 <= y < h or x0 >= w or x1 < 0:
        return
    x0, x1 = max(x0, 0), min(x1, w - 1)
    if x0 <= x1:
        mask[y, x0:x1 + 1] = value


def polygons_of(region: np.ndarray) -> list[np.ndarray]:
    """Outer contours of a boolean region as (N, 2) float arrays of pixel-centre (x, y) vertices."""
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1, 2).astype(float) for c in contours]
