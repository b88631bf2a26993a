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


def _corner_fix(e: _Edge, i: int, y: int, x: F32, slanted: list[_Edge], ends: dict[tuple[int, float], list[int]]) -> F32:
    """Pull a vertex crossing in when it would leave the corner pixel detached.

    Only earlier slanted edges with an end on row y whose crossing rounds like x can matter;
    `ends` indexes them by (row, rounded x), so a polygon of n points costs O(n), not O(n^2)."""
    for j in ends.get((y, _roundf(x)), ()):
        if j >= i:
            break
        other = slanted[j]
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


def _x_at(y0: np.ndarray, x0: np.ndarray, dx: np.ndarray, y: np.ndarray) -> np.ndarray:
    """_Edge.x_at for arrays of edges (the same float32 operations)."""
    return (y - y0).astype(F32) * dx + x0


def _roundv(x: np.ndarray) -> np.ndarray:
    """_roundf for an array."""
    v = np.asarray(x, np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def _end_index(dx: np.ndarray, ymin: np.ndarray, ymax: np.ndarray, at_min: np.ndarray,
               at_max: np.ndarray) -> dict[tuple[int, float], list[int]]:
    """(row, rounded crossing) of both ends of every slanted edge -> edge indices, ascending."""
    ends: dict[tuple[int, float], list[int]] = {}
    rmin, rmax = _roundv(at_min).tolist(), _roundv(at_max).tolist()
    for j in np.flatnonzero(dx != 0).tolist():
        ends.setdefault((int(ymin[j]), rmin[j]), []).append(j)
        ends.setdefault((int(ymax[j]), rmax[j]), []).append(j)
    return ends


MAX_COORD = 1 << 24  # far beyond any image; keeps every vertex exact in float32 and int64


def check_polygon(points: object, what: str, max_points: int) -> np.ndarray:
    """(N, 2) float vertices of a source polygon, or a FormatError saying why not."""
    from .safety import FormatError
    try:
        pts = np.asarray(points, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise FormatError(f"{what}: polygon points are not numbers") from None
    if pts.size % 2:
        raise FormatError(f"{what}: polygon has an odd number of coordinates ({pts.size})")
    pts = pts.reshape(-1, 2)
    if len(pts) > max_points:
        raise FormatError(f"{what}: polygon has {len(pts):,} points, over the limit of {max_points:,} "
                          "(--max-polygon-points)")
    if not np.isfinite(pts).all():
        raise FormatError(f"{what}: polygon has a NaN or infinite coordinate")
    if np.abs(pts).max(initial=0) > MAX_COORD:
        raise FormatError(f"{what}: polygon coordinate {np.abs(pts).max():.3g} is far outside any image")
    return pts


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
    if not slanted:
        return
    # Every slanted edge's crossings at once (the same float32 arithmetic as _Edge.x_at).
    y0 = np.array([e.y0 for e in slanted], np.int64)
    x0 = np.array([e.x0 for e in slanted], np.int64).astype(F32)
    dx = np.array([e.dx for e in slanted], F32)
    ymin = np.array([e.ymin for e in slanted], np.int64)
    ymax = np.array([e.ymax for e in slanted], np.int64)
    lo, hi = np.maximum(ymin, top), np.minimum(ymax, bottom)
    counts = np.where(lo <= hi, hi - lo + 1, 0)
    offset = np.concatenate([[0], np.cumsum(counts)[:-1]])
    total = int(counts.sum())
    if not total:
        return
    owner = np.repeat(np.arange(len(slanted)), counts)
    r_all = lo[owner] + (np.arange(total) - offset[owner])
    x_all = (r_all - y0[owner]).astype(F32) * dx[owner] + x0[owner]
    at_min, at_max = _x_at(y0, x0, dx, ymin), _x_at(y0, x0, dx, ymax)
    ends = _end_index(dx, ymin, ymax, at_min, at_max)
    live = (dx != 0) & (counts > 0)
    for yend, ok in ((ymin, live & (lo <= ymin) & (ymin <= hi)),
                     (ymax, live & (lo <= ymax) & (ymax <= hi) & (ymax >= bottom))):
        idx = np.flatnonzero(ok)
        ks = offset[idx] + yend[idx] - lo[idx]
        keys = _roundv(x_all[ks])
        for i, k, yy, key in zip(idx.tolist(), ks.tolist(), yend[idx].tolist(), keys.tolist()):
            cands = ends.get((yy, key))
            if cands and cands[0] < i:
                x_all[k] = _corner_fix(slanted[i], i, yy, x_all[k], slanted, ends)
    # An edge's crossing at its lower end row counts twice (above the polygon's last row).
    dup = np.flatnonzero((counts > 0) & (lo <= ymax) & (ymax <= hi) & (ymax < bottom))
    dup_k = offset[dup] + ymax[dup] - lo[dup]
    rows = [r_all, ymax[dup]]
    xs = [x_all, x_all[dup_k]]
    r = np.concatenate(rows)
    x = np.concatenate(xs).astype(F32)
    order = np.lexsort((x, r))
    r, x = r[order], x[order]
    rank = np.arange(len(r)) - np.searchsorted(r, r, side="left")
    left = np.flatnonzero((rank % 2 == 0)[:-1] & (r[1:] == r[:-1]))
    _spans(mask, r[left], _round_half_up(x[left]), _round_half_down(x[left + 1]), value)


SPAN_ROWS = 256  # rows per block of the vectorised span fill (bounds its scratch memory)


def _spans(mask: np.ndarray, ys: np.ndarray, x0: np.ndarray, x1: np.ndarray, value: int) -> None:
    """Paint the runs [x0, x1] of rows ys (sorted by row): one vectorised pass per block of rows,
    so a jagged polygon with millions of runs costs numpy time, not a Python call per run."""
    h, w = mask.shape[:2]
    if len(ys) < 64:
        for yy, a, b in zip(ys.tolist(), x0.tolist(), x1.tolist()):
            _hline(mask, a, yy, b, value)
        return
    x0, x1 = np.maximum(x0, 0), np.minimum(x1, w - 1)
    keep = (ys >= 0) & (ys < h) & (x0 <= x1)
    ys, x0, x1 = ys[keep], x0[keep], x1[keep]
    if not len(ys):
        return
    for start in range(int(ys[0]), int(ys[-1]) + 1, SPAN_ROWS):
        a, b = np.searchsorted(ys, [start, start + SPAN_ROWS])
        if a == b:
            continue
        rows = min(SPAN_ROWS, h - start)
        diff = np.zeros((rows, w + 1), np.int32)
        np.add.at(diff, (ys[a:b] - start, x0[a:b]), 1)
        np.add.at(diff, (ys[a:b] - start, x1[a:b] + 1), -1)
        mask[start:start + rows][np.cumsum(diff, axis=1)[:, :w] > 0] = value


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
