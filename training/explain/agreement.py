"""Agreement between heatmaps and inspectors' masks (numpy only, no torch).

Per view: pixel IoU of the thresholded heatmap with the mask (micro-assembly study, eq. 8),
share of heatmap energy inside the mask and that share over the mask's share of the view (the
lift: thin cracks hold little energy even when looked at), pointing game (by default at the
map's own resolution: cell_tolerance), and the centroid / spread of the highlighted pixels
(its Table 3). Per dataset: mean +- std per class, pooled centroid and
spread, and a ranked list of NG views where the model looks away from the defect. The
shortcut alarm lives in training/explain/shortcut.py.

Heatmaps here are full-image float maps (already normalised, 0 outside the model's view);
masks are class-index arrays of the same (H, W), 0 = background.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# -- normalisation and thresholds ---------------------------------------------------------

def normalise_map(m: np.ndarray, mode: str = "minmax", eps: float = 1e-8) -> np.ndarray:
    """Per-map normalisation to [0, 1]: "minmax" or "max" (see CamRecipe for why it matters).

    eps is relative to the map's scale (its largest magnitude): a fixed 1e-8 swamped maps whose
    whole range is smaller (an untrained MobileNet gives ~1e-9) and blanked them. A map with
    no range at all (constant, or all zero) normalises to zeros, never NaN."""
    m = np.asarray(m, dtype=np.float32)
    if m.size == 0:
        return m
    hi, lo = float(m.max()), float(m.min())
    if mode == "minmax":
        den = (hi - lo) + eps * max(abs(hi), abs(lo))
        return ((m - lo) / den).astype(np.float32) if den > 0 else np.zeros_like(m)
    if mode == "max":
        den = max(hi, 0.0) * (1.0 + eps)
        return (np.clip(m, 0, None) / den).astype(np.float32) if den > 0 else np.zeros_like(m)
    raise ValueError(f"unknown normalisation {mode!r} (expected 'minmax' or 'max')")


def otsu_level(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a set of values (maximises the between-class variance)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return 0.0
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return hi
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)[:-1].astype(np.float64)
    w1 = v.size - w0
    s0 = np.cumsum(hist * centres)[:-1]
    m0 = s0 / np.maximum(w0, 1)
    m1 = (float((hist * centres).sum()) - s0) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(edges[1:][int(np.argmax(between))])


def _fixed(m: np.ndarray, valid: np.ndarray, t: float) -> np.ndarray:
    return (m >= t) & valid


def _top(m: np.ndarray, valid: np.ndarray, pct: float) -> np.ndarray:
    vals = m[valid]
    k = round(vals.size * pct / 100.0)
    if k <= 0:
        return np.zeros_like(valid)
    level = np.partition(vals, vals.size - k)[vals.size - k]
    return (m >= level) & valid & (m > 0)


def _otsu(m: np.ndarray, valid: np.ndarray, _p: float) -> np.ndarray:
    vals = m[valid]
    if vals.size == 0 or float(vals.max()) <= 0:
        return np.zeros_like(valid)
    return (m > otsu_level(vals)) & valid


# name -> (function(map, valid, parameter) -> highlight, default parameter)
THRESHOLD_RULES: dict[str, tuple[Callable[[np.ndarray, np.ndarray, float], np.ndarray], float]] = {
    "fixed": (_fixed, 0.5),
    "top": (_top, 10.0),
    "otsu": (_otsu, 0.0),
}


def parse_threshold(rule: str) -> tuple[str, float]:
    """"fixed:0.5" | "fixed" | "top:10" | "otsu" -> (name, parameter)."""
    name, _, arg = str(rule).strip().lower().partition(":")
    if name not in THRESHOLD_RULES:
        raise ValueError(f"unknown threshold rule {rule!r} (use fixed:T with 0<T<=1, top:P with "
                         f"0<P<=100, or otsu)")
    try:
        p = float(arg) if arg else THRESHOLD_RULES[name][1]
    except ValueError:
        raise ValueError(f"threshold rule {rule!r}: {arg!r} is not a number") from None
    if (name == "fixed" and not 0 < p <= 1) or (name == "top" and not 0 < p <= 100):
        raise ValueError(f"threshold rule {rule!r} out of range (fixed:T needs 0<T<=1, top:P 0<P<=100)")
    return name, p


def threshold_map(m: np.ndarray, rule: str = "fixed:0.5", valid: np.ndarray | None = None) -> np.ndarray:
    """Boolean highlight of a normalised map; `valid` limits it to the model's view (ROI)."""
    name, p = parse_threshold(rule)
    m = np.asarray(m, dtype=np.float32)
    v = np.ones(m.shape, bool) if valid is None else np.asarray(valid, bool)
    return THRESHOLD_RULES[name][0](m, v, p)


# -- per view -------------------------------------------------------------------------------

def pixel_iou(highlight: np.ndarray, mask: np.ndarray) -> float | None:
    """|GT AND highlight| / |GT OR highlight| (eq. 8); None when both are empty."""
    h, g = np.asarray(highlight, bool), np.asarray(mask) > 0
    union = int(np.count_nonzero(h | g))
    return None if union == 0 else int(np.count_nonzero(h & g)) / union


def energy_in_mask(heat: np.ndarray, mask: np.ndarray) -> float | None:
    """Share of the heatmap's total (non-negative) energy that lies inside the mask."""
    g = np.asarray(mask) > 0
    if not g.any():
        return None
    e = np.clip(np.asarray(heat, dtype=np.float64), 0, None)
    total = float(e.sum())
    return 0.0 if total <= 0 else float(e[g].sum()) / total


def energy_lift(heat: np.ndarray, mask: np.ndarray, valid: np.ndarray | None = None) -> float | None:
    """Energy in the mask over the mask's share of the view the model saw (`valid`, default the
    whole image): 1 = no more heat on the defect than a flat map puts there, 3 = three times.
    Energy alone cannot tell a thin crack looked at (0.02 of the heat on 0.3 % of the view) from
    one ignored; the lift can, whatever the mask's size."""
    g = np.asarray(mask) > 0
    seen = np.ones(g.shape, bool) if valid is None else np.asarray(valid, bool)
    area = int(np.count_nonzero(g & seen))
    energy = energy_in_mask(heat, mask)
    if energy is None or area == 0:
        return None
    return energy / (area / max(1, int(np.count_nonzero(seen))))


def cell_tolerance(grid: tuple[int, int], geom: Any) -> tuple[float, float]:
    """Half a cell of a (gh, gw) Grad-CAM grid in the view's pixels (rows, columns), through
    the view geometry (training.data.ViewGeometry): the map cannot point finer than its cell,
    so a peak within half a cell of the mask means the peak's cell holds part of the defect."""
    ih, iw = geom.input_size
    ch, cw = geom.content_size
    return (0.5 * ih / max(1, grid[0]) * geom.roi.h / max(1, ch),
            0.5 * iw / max(1, grid[1]) * geom.roi.w / max(1, cw))


def pointing_game(heat: np.ndarray, mask: np.ndarray, tolerance: float | tuple[float, float] = 0.0) -> bool | None:
    """Is the heatmap's peak inside the mask, or within `tolerance` of it: a radius in px, or
    (rows, columns) half-widths of a box (cell_tolerance: the map's own resolution)?

    Ties go to the first peak in row-major order; a map with no positive value misses.
    """
    g = np.asarray(mask) > 0
    if not g.any():
        return None
    heat = np.asarray(heat)
    if float(heat.max()) <= 0:
        return False
    r, c = np.unravel_index(int(np.argmax(heat)), heat.shape)
    if g[r, c]:
        return True
    if isinstance(tolerance, tuple):
        th, tw = (math.floor(t) for t in tolerance)
        return bool(g[max(0, r - th):r + th + 1, max(0, c - tw):c + tw + 1].any())
    t = math.ceil(tolerance)
    if t <= 0:
        return False
    r0, c0 = max(0, r - t), max(0, c - t)
    ys, xs = np.nonzero(g[r0:r + t + 1, c0:c + t + 1])
    return bool(ys.size) and bool((((ys + r0 - r) ** 2 + (xs + c0 - c) ** 2) <= tolerance ** 2).any())


def highlight_stats(highlight: np.ndarray) -> tuple[int, tuple[float, float] | None, tuple[float, float] | None]:
    """(pixel count, centroid (x, y), spread (std x, std y)), coordinates normalised to the
    image width and height (Table 3 of the micro-assembly study)."""
    h = np.asarray(highlight, bool)
    ys, xs = np.nonzero(h)
    if xs.size == 0:
        return 0, None, None
    H, W = h.shape
    x, y = (xs + 0.5) / W, (ys + 0.5) / H  # pixel centres
    return int(xs.size), (float(x.mean()), float(y.mean())), (float(x.std()), float(y.std()))


@dataclass
class ViewRow:
    """Agreement of one view's heatmap with its mask (None where there is no mask)."""

    part_id: int
    view: int
    camera: str
    verdict: str  # "OK" | "NG"
    cls: str  # defect class name, "OK" for OK parts
    score: float | None = None  # the model's P(target class)
    iou: float | None = None
    energy: float | None = None
    lift: float | None = None  # energy over the mask's share of the view (energy_lift)
    pointing: bool | None = None
    highlight_px: int = 0
    centroid: tuple[float, float] | None = None
    spread: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def view_agreement(heat: np.ndarray, mask: np.ndarray | None, *, rule: str = "fixed:0.5",
                   valid: np.ndarray | None = None, tolerance: float | tuple[float, float] = 0.0,
                   ) -> dict[str, Any]:
    """Per-view metrics: iou, energy, lift, pointing (None without a mask), highlight stats."""
    highlight = threshold_map(heat, rule, valid)
    n, centroid, spread = highlight_stats(highlight)
    out: dict[str, Any] = {"iou": None, "energy": None, "lift": None, "pointing": None, "highlight_px": n,
                           "centroid": centroid, "spread": spread}
    if mask is not None and np.any(mask):
        if mask.shape != heat.shape:
            raise ValueError(f"mask shape {mask.shape} differs from heatmap shape {heat.shape}")
        out.update(iou=pixel_iou(highlight, mask), energy=energy_in_mask(heat, mask),
                   lift=energy_lift(heat, mask, valid), pointing=pointing_game(heat, mask, tolerance))
    return out


# -- per dataset ----------------------------------------------------------------------------

def _mean_std(vals: Iterable[float]) -> dict[str, float | int | None]:
    a = np.asarray([float(v) for v in vals], dtype=np.float64)
    if a.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(a.mean()), "std": float(a.std()), "n": int(a.size)}


def pooled_highlight(rows: Iterable[ViewRow]) -> dict[str, Any]:
    """Centroid and spread of all highlighted pixels of these views pooled together."""
    n = sx = sy = sxx = syy = 0.0
    for r in rows:
        if r.highlight_px and r.centroid and r.spread:
            k = r.highlight_px
            (cx, cy), (dx, dy) = r.centroid, r.spread
            n += k
            sx, sy = sx + k * cx, sy + k * cy
            sxx, syy = sxx + k * (dx * dx + cx * cx), syy + k * (dy * dy + cy * cy)
    if n == 0:
        return {"centroid": None, "spread": None, "pixels": 0}
    mx, my = sx / n, sy / n
    return {"centroid": [mx, my],
            "spread": [math.sqrt(max(sxx / n - mx * mx, 0.0)), math.sqrt(max(syy / n - my * my, 0.0))],
            "pixels": int(n)}


def summarise(rows: list[ViewRow]) -> dict[str, dict[str, Any]]:
    """Per class (defect class names and "OK"): mean +- std of IoU and energy over views with
    a mask, pointing-game hit rate, pooled highlight centroid and spread."""
    out: dict[str, dict[str, Any]] = {}
    for cls in sorted({r.cls for r in rows}, key=lambda c: (c != "OK", c)):
        rs = [r for r in rows if r.cls == cls]
        masked = [r for r in rs if r.iou is not None]
        hits = [r.pointing for r in masked if r.pointing is not None]
        out[cls] = {"views": len(rs), "parts": len({r.part_id for r in rs}), "masked_views": len(masked),
                    "iou": _mean_std(r.iou for r in masked),
                    "energy": _mean_std(r.energy for r in masked if r.energy is not None),
                    "lift": _mean_std(r.lift for r in masked if r.lift is not None),
                    "pointing": (sum(hits) / len(hits)) if hits else None,
                    **pooled_highlight(rs)}
    return out


# A masked NG view "looks away" when its map's peak misses the mask, or when the mask holds under
# ENERGY_BELOW of the heat and under LIFT_BELOW times what a flat map puts on it. Energy alone
# flagged every thin defect: a KolektorSDD crack covers 0.1-0.8 % of a view, so even a map on it
# puts ~2 % of its heat there (lift ~3, README "Explain on thin defects").
ENERGY_BELOW = 0.5
LIFT_BELOW = 2.0


def looks_away(rows: list[ViewRow], limit: int = 20, energy_below: float = ENERGY_BELOW,
               lift_below: float = LIFT_BELOW) -> list[dict[str, Any]]:
    """NG views with a mask where the model looks away from the defect (the rule above), worst
    first: ranked by lift, then energy, then IoU."""
    def away(r: ViewRow) -> bool:
        weak = (r.energy or 0.0) < energy_below and (r.lift is None or r.lift < lift_below)
        return weak or r.pointing is False
    bad = [r for r in rows if r.iou is not None and away(r)]
    bad.sort(key=lambda r: (r.lift or 0.0, r.energy or 0.0, r.iou or 0.0))
    keys = ("part_id", "view", "camera", "cls", "iou", "energy", "lift", "pointing", "centroid")
    return [{k: getattr(r, k) for k in keys} for r in bad[:limit]]


@dataclass
class Totals:
    """Overall agreement over every masked view (the headline numbers)."""

    views: int = 0
    masked_views: int = 0
    iou: dict[str, Any] = field(default_factory=dict)
    energy: dict[str, Any] = field(default_factory=dict)
    pointing: float | None = None
    lift: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: list[ViewRow]) -> Totals:
        masked = [r for r in rows if r.iou is not None]
        hits = [r.pointing for r in masked if r.pointing is not None]
        return cls(len(rows), len(masked), _mean_std(r.iou for r in masked),
                   _mean_std(r.energy for r in masked if r.energy is not None),
                   (sum(hits) / len(hits)) if hits else None,
                   _mean_std(r.lift for r in masked if r.lift is not None))
