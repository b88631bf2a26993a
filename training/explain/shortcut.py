"""The shortcut alarm: attention that piles up in one image region regardless of the defect.

The bolt-screening study found its first model looking at the jig and the lighting instead of
the coating. Such a shortcut shows as a per-camera mean heatmap (over OK and NG parts) whose
energy sits in a compact region that the inspectors' masks rarely touch. This module keeps
running per-camera sums on a coarse grid (bounded memory for any dataset size), finds hot
connected regions of the mean map, flags the ones that are compact, heavy and off the masks,
and suggests an ROI (x, y, w, h in full-image pixels) that excludes them while keeping the
area where the masks lie. numpy only.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

GRID_MAX = 96  # long side of the accumulation grid, in cells


@dataclass(frozen=True)
class ShortcutRule:
    """When a hot region of the mean heatmap counts as a shortcut.

    hot_level: cells >= hot_level x max of the mean map form the candidate regions.
    min_energy: share of the mean map's energy (above its floor) the region must hold.
    min_density: energy share / area share: how much denser than uniform attention the region
        must be ("compact"; deep layers give blurry maps, 3x4 cells for a 96x128 input, so an
        absolute area cap alone would miss a shortcut in a corner).
    max_area: largest share of the model's view the region may cover in any case.
    max_overlap: largest share of its cells that may touch the (dilated) union of masks.
    tolerance: dilation of the mask union, in grid cells (masks drawn a little too tight).
    max_retained: the suggested ROI may keep at most this share of the region's energy.
    """

    hot_level: float = 0.3
    min_energy: float = 0.3
    min_density: float = 2.0
    max_area: float = 0.5
    max_overlap: float = 0.25
    tolerance: int = 1
    max_retained: float = 0.25


@dataclass
class ShortcutAlarm:
    """Verdict for one camera; region and suggested_roi are [x, y, w, h] in full-image px."""

    camera: str
    flagged: bool
    views: int
    masked_views: int
    energy_share: float | None = None
    area_share: float | None = None
    mask_overlap: float | None = None
    ok_energy_share: float | None = None
    views_peaking_there: float | None = None
    at_view_edge: bool = False  # the region touches the border of what the model saw
    region: list[int] | None = None
    suggested_roi: list[int] | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pool(a: np.ndarray, gh: int, gw: int) -> np.ndarray:
    """Area-average an (H, W) map onto a (gh, gw) grid (any H, W)."""
    H, W = a.shape
    re, ce = (np.arange(gh) * H) // gh, (np.arange(gw) * W) // gw
    s = np.add.reduceat(np.add.reduceat(a.astype(np.float64), re, axis=0), ce, axis=1)
    cnt = np.diff(np.append(re, H))[:, None] * np.diff(np.append(ce, W))[None, :]
    return s / cnt


def _dilate(b: np.ndarray, t: int) -> np.ndarray:
    if t <= 0:
        return b.copy()
    p = np.pad(b, t)
    out = np.zeros_like(b)
    for dy in range(2 * t + 1):
        for dx in range(2 * t + 1):
            out |= p[dy:dy + b.shape[0], dx:dx + b.shape[1]]
    return out


def _components(b: np.ndarray) -> list[np.ndarray]:
    """4-connected components of a boolean grid, as boolean masks."""
    seen = np.zeros_like(b)
    comps = []
    for r0, c0 in zip(*np.nonzero(b)):
        if seen[r0, c0]:
            continue
        comp = np.zeros_like(b)
        q = deque([(r0, c0)])
        seen[r0, c0] = True
        while q:
            r, c = q.popleft()
            comp[r, c] = True
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= rr < b.shape[0] and 0 <= cc < b.shape[1] and b[rr, cc] and not seen[rr, cc]:
                    seen[rr, cc] = True
                    q.append((rr, cc))
        comps.append(comp)
    return comps


def _box(b: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), end exclusive, of a boolean array's true cells."""
    ys, xs = np.nonzero(b)
    if xs.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _union_box(a: tuple[int, int, int, int] | None, b: tuple[int, int, int, int] | None):
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def suggest_roi(view: tuple[int, int, int, int], keep: tuple[int, int, int, int] | None,
                exclude: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int] | None:
    """Largest axis-aligned box inside `view` that contains `keep` and misses every box of
    `exclude` (all (x0, y0, x1, y1), end exclusive). Each excluded box is cut off by one of
    its four sides; None when no cut keeps the masks."""
    x0, y0, x1, y1 = view
    for ex0, ey0, ex1, ey1 in sorted(exclude, key=lambda e: -(e[2] - e[0]) * (e[3] - e[1])):
        if ex1 <= x0 or ex0 >= x1 or ey1 <= y0 or ey0 >= y1:
            continue  # already outside
        cuts = [(x0, y0, min(x1, ex0), y1), (max(x0, ex1), y0, x1, y1),
                (x0, y0, x1, min(y1, ey0)), (x0, max(y0, ey1), x1, y1)]
        ok = [c for c in cuts if c[2] > c[0] and c[3] > c[1] and
              (keep is None or (c[0] <= keep[0] and c[1] <= keep[1] and c[2] >= keep[2] and c[3] >= keep[3]))]
        if not ok:
            return None
        x0, y0, x1, y1 = max(ok, key=lambda c: (c[2] - c[0]) * (c[3] - c[1]))
    return x0, y0, x1, y1


@dataclass
class _Camera:
    shape: tuple[int, int]
    grid: tuple[int, int]
    heat: np.ndarray
    heat_ok: np.ndarray
    masks: np.ndarray
    valid: np.ndarray
    views: int = 0
    ok_views: int = 0
    masked_views: int = 0
    mask_box: tuple[int, int, int, int] | None = None
    view_box: tuple[int, int, int, int] | None = None
    peaks: list[tuple[int, int]] = field(default_factory=list)


class ShortcutDetector:
    """Accumulates heatmaps per camera; `alarms()` gives one ShortcutAlarm per camera."""

    def __init__(self, rule: ShortcutRule | None = None, grid_max: int = GRID_MAX) -> None:
        self.rule = rule or ShortcutRule()
        self.grid_max = grid_max
        self.cameras: dict[str, _Camera] = {}

    def add(self, camera: str, heat: np.ndarray, mask: np.ndarray | None, ok: bool,
            valid: np.ndarray | None = None) -> None:
        """One view: its full-image heatmap, its mask (None/empty for none), OK or NG, and
        the part of the image the model saw (default: all of it)."""
        heat = np.asarray(heat, dtype=np.float32)
        H, W = heat.shape
        cam = self.cameras.get(camera)
        if cam is None:
            f = max(1, math.ceil(max(H, W) / self.grid_max))
            g = (max(1, round(H / f)), max(1, round(W / f)))
            z = np.zeros(g, np.float64)
            cam = self.cameras[camera] = _Camera((H, W), g, z.copy(), z.copy(), z.copy(), z.copy())
        sy, sx = cam.shape[0] / H, cam.shape[1] / W  # other sizes map by relative position
        v = np.ones((H, W), bool) if valid is None else np.asarray(valid, bool)
        cam.valid = np.maximum(cam.valid, _pool(v, *cam.grid))
        vb = _box(v)
        if vb:
            cam.view_box = _union_box(cam.view_box, _scale(vb, sx, sy))
        p = _pool(np.clip(heat, 0, None), *cam.grid)
        cam.views += 1
        cam.ok_views += int(ok)
        if p.sum() > 0:
            p /= p.sum()  # every view weighs the same, however peaked its map
            cam.heat += p
            if ok:
                cam.heat_ok += p
            cam.peaks.append(tuple(int(i) for i in np.unravel_index(int(np.argmax(p)), p.shape)))
        if mask is not None and np.any(mask):
            m = np.asarray(mask) > 0
            cam.masked_views += 1
            cam.masks += _pool(m, *cam.grid) > 0
            cam.mask_box = _union_box(cam.mask_box, _scale(_box(m), sx, sy))

    def alarms(self) -> list[ShortcutAlarm]:
        return [self._judge(name, cam) for name, cam in self.cameras.items()]

    def _judge(self, name: str, cam: _Camera) -> ShortcutAlarm:
        r = self.rule
        a = ShortcutAlarm(name, False, cam.views, cam.masked_views)
        total = cam.heat.sum()
        if total <= 0:
            a.note = "no heatmap energy for this camera"
            return a
        inside = cam.valid > 0
        # Shares are of the energy above the map's floor (its median over the view): the
        # low background every normalised map keeps would otherwise dilute any region.
        mean = np.clip(cam.heat - np.median(cam.heat[inside]), 0, None) * inside
        if mean.sum() <= 0:
            a.note = "attention is spread evenly: no region stands out"
            return a
        mean /= mean.sum()
        hot = (mean >= r.hot_level * mean.max()) & inside
        comps = _components(hot)
        union = _dilate(cam.masks > 0, r.tolerance)
        valid_cells = max(1, int(np.count_nonzero(cam.valid > 0)))
        ok_mean = np.clip(cam.heat_ok - np.median(cam.heat_ok[inside]), 0, None) * inside
        ok_total = ok_mean.sum()
        stats = []
        for c in comps:
            n = int(c.sum())
            near = _dilate(c, 1)
            stats.append({
                "comp": c, "energy": float(mean[c].sum()), "area": n / valid_cells,
                "overlap": float(np.count_nonzero(c & union)) / n,
                "ok_energy": float(ok_mean[c].sum() / ok_total) if ok_total > 0 else None,
                "peaks": sum(bool(near[p]) for p in cam.peaks) / max(1, len(cam.peaks))})
        flagged = [s for s in stats if s["energy"] >= r.min_energy and s["area"] <= r.max_area
                   and s["energy"] >= r.min_density * s["area"] and s["overlap"] <= r.max_overlap]
        show = max(flagged or stats, key=lambda s: s["energy"])
        a.energy_share, a.area_share = round(show["energy"], 4), round(show["area"], 4)
        a.mask_overlap = round(show["overlap"], 4)
        a.ok_energy_share = None if show["ok_energy"] is None else round(show["ok_energy"], 4)
        a.views_peaking_there = round(show["peaks"], 4)
        a.region = self._px_box(cam, _box(show["comp"]))
        if cam.masked_views == 0:
            a.note = "no masks for this camera: nothing to compare attention with"
            return a
        if not flagged:
            a.note = "attention follows the masks" if show["overlap"] > r.max_overlap else \
                "no compact off-mask region holds enough attention"
            return a
        a.flagged = True
        roi = self._suggest(cam, mean, [s["comp"] for s in flagged])
        share = round(100 * a.energy_share)
        view = cam.view_box or (0, 0, cam.shape[1], cam.shape[0])
        x, y, w, h = a.region
        cell = max(cam.shape[0] / cam.grid[0], cam.shape[1] / cam.grid[1])
        a.at_view_edge = (x - view[0] <= cell or y - view[1] <= cell or view[2] - (x + w) <= cell
                          or view[3] - (y + h) <= cell)
        if roi:
            a.suggested_roi = [roi[0], roi[1], roi[2] - roi[0], roi[3] - roi[1]]
            a.note = (f"{share} % of the attention sits in x,y,w,h={a.region}, which the masks "
                      f"{'never' if a.mask_overlap == 0 else 'rarely'} touch: likely a shortcut "
                      f"(jig, lighting, background). Crop to ROI {a.suggested_roi} and retrain.")
        else:
            a.note = (f"{share} % of the attention sits in x,y,w,h={a.region}, off the masks, but no "
                      f"rectangular ROI excludes it and keeps every mask: vary or mask that region.")
        if a.at_view_edge and cam.view_box and cam.view_box != (0, 0, cam.shape[1], cam.shape[0]):
            # Inside a crop, a region on its border is often the crop edge or the letterbox
            # padding seen through a coarse layer, not a thing in the scene.
            a.note += (" It lies on the border of the cropped view: check that the crop edge or "
                       "padding is not what the model uses (a wider ROI margin, or a finer layer).")
        return a

    def _suggest(self, cam: _Camera, mean: np.ndarray, comps: list[np.ndarray]):
        """The largest ROI that keeps every mask and at most max_retained of the flagged
        regions' energy. Candidates: cut each region off by one side, the region taken at
        rising levels of the map (a blurry map's outer ring may reach the masks while its
        core does not), and the box around the masks themselves (the study's thread crop)."""
        view = cam.view_box or (0, 0, cam.shape[1], cam.shape[0])
        flagged = np.any(comps, axis=0)
        top = float(mean[flagged].max())
        margin = max(2, round(0.02 * max(cam.shape)))
        keep = _grow(cam.mask_box, margin, view) if cam.mask_box else None
        cands = [keep] if keep else []
        for level in (self.rule.hot_level, 0.5, 0.7, 0.9):
            core = [c & (mean >= level * top) for c in comps]
            boxes = [_grow(self._px_xyxy(cam, b), margin, view) for b in map(_box, core) if b]
            for k in ((keep, cam.mask_box) if keep else (None,)):
                roi = suggest_roi(view, k, boxes)
                if roi:
                    cands.append(roi)
                    break
        (H, W), (gh, gw) = cam.shape, cam.grid
        yc, xc = (np.arange(gh) + 0.5) * H / gh, (np.arange(gw) + 0.5) * W / gw
        total = float(mean[flagged].sum())

        def retained(b: tuple[int, int, int, int]) -> float:
            inside = ((yc >= b[1]) & (yc < b[3]))[:, None] & ((xc >= b[0]) & (xc < b[2]))[None, :]
            return float(mean[flagged & inside].sum()) / total

        good = [c for c in cands if retained(c) <= self.rule.max_retained]
        return max(good, key=lambda b: (b[2] - b[0]) * (b[3] - b[1])) if good else None

    @staticmethod
    def _px_xyxy(cam: _Camera, b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        (H, W), (gh, gw) = cam.shape, cam.grid
        return (b[0] * W) // gw, (b[1] * H) // gh, (b[2] * W) // gw, (b[3] * H) // gh

    def _px_box(self, cam: _Camera, b: tuple[int, int, int, int] | None) -> list[int] | None:
        if b is None:
            return None
        x0, y0, x1, y1 = self._px_xyxy(cam, b)
        return [x0, y0, x1 - x0, y1 - y0]


def _scale(b: tuple[int, int, int, int] | None, sx: float, sy: float):
    if b is None or (sx == 1 and sy == 1):
        return b
    return (int(b[0] * sx), int(b[1] * sy), math.ceil(b[2] * sx), math.ceil(b[3] * sy))


def _grow(b: tuple[int, int, int, int], m: int, view: tuple[int, int, int, int]):
    return (max(view[0], b[0] - m), max(view[1], b[1] - m), min(view[2], b[2] + m), min(view[3], b[3] + m))
