"""Simulated X-ray line-scan strips of mineral wool (the X-ray mineral-wool study's conveyor).

Physics, kept simple but in the right direction: the detector row (640 elements over 512 mm)
counts photons that pass the belt and the wool, I = I0 * exp(-mu_t) with Poisson-like noise and a
fixed per-element gain pattern. The image is that transmission in 16-bit counts, so DENSER IS
DARKER: empty belt is bright (~55k), wool is mid-grey, and the visible defects add attenuation:

* D1 melt drop: a glass bead that did not become fibre: round, very dark, sphere-chord profile.
* D2 binder lump: irregular soft-edged blob, moderately darker.
* D3 shot cluster: tens of small dense shots around a point; the mask is the cluster region
  (the convex hull of the shots), the way an expert outlines it.
* D6 dirt: irregular, sharp-edged, strongly attenuating patch with grainy inside.

D4 (burnt) and D5 (uncured) wool do not change X-ray attenuation: such products are OK here and
only their truth records the invisible defect. Rows are scan lines (the belt direction).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..types import XRAY_CLASSES, Verdict

I0 = 60000.0  # open-beam counts (16-bit headroom kept)
MU_BELT = 0.085
TILE = 1024  # rows of cached wool texture (mirrored, so period 2*TILE without seams)
INVISIBLE = ("D4 burnt wool", "D5 uncured wool")


@dataclass
class XrayStrip:
    """A stretch of belt with several products: 16-bit transmission, class mask, per-product truth."""

    image: np.ndarray
    mask: np.ndarray
    products: list[tuple[int, int]]
    verdicts: list[Verdict]
    classes: list[int]
    truth: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Layers:
    fibre: np.ndarray  # (2*TILE, W + 32) float32, unit std, fibrous texture
    noise: np.ndarray  # (2*TILE, W + 32) float32, unit normal (quantum noise field)
    gain: np.ndarray  # (W,) float32, detector element gain pattern


@functools.lru_cache(maxsize=4)
def _layers(seed: int, W: int) -> _Layers:
    rng = np.random.default_rng([seed, W, 0x3A7])
    s = max(W / 640.0, 0.15)
    white = rng.standard_normal((TILE, W + 32)).astype(np.float32)
    fib = np.zeros_like(white)
    n = max(5, round(19 * s))
    for ang in rng.uniform(-70, 70, 5).tolist() + [90.0 + a for a in rng.uniform(-25, 25, 2)]:
        k = np.zeros((n, n), np.float32)
        c = (n - 1) / 2
        dx, dy = math.cos(math.radians(ang)) * c, math.sin(math.radians(ang)) * c
        cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
        fib += cv2.filter2D(white, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT) * rng.uniform(0.6, 1.0)
    fib += 0.35 * cv2.GaussianBlur(white, (0, 0), 3.0 * s + 0.5)
    fib = (fib - fib.mean()) / fib.std()
    fib = np.vstack([fib, fib[::-1]])
    noise = rng.standard_normal((2 * TILE, W + 32)).astype(np.float32)
    gain = (1.0 + 0.008 * rng.standard_normal(W) + 0.006 * np.sin(np.arange(W) / 37.0)).astype(np.float32)
    for a in (fib, noise, gain):
        a.flags.writeable = False
    return _Layers(fib, noise, gain)


def _window(field_: np.ndarray, row: int, col: int, lines: int, W: int) -> np.ndarray:
    """Rows row..row+lines of a periodic cached field (wrapping), columns col..col+W."""
    T = field_.shape[0]
    row %= T
    if row + lines <= T:
        return field_[row:row + lines, col:col + W]
    return field_[(np.arange(lines) + row) % T, col:col + W]


def _smooth(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth random field with features of about `cell` pixels (unit-ish std)."""
    small = rng.standard_normal((max(2, int(h / cell) + 2), max(2, int(w / cell) + 2))).astype(np.float32)
    # Cubic to a quarter size, then linear: looks the same as full cubic at a fraction of the cost.
    mid = cv2.resize(small, (max(2, w // 4), max(2, h // 4)), interpolation=cv2.INTER_CUBIC)
    return cv2.resize(mid, (w, h), interpolation=cv2.INTER_LINEAR)


# ------------------------------------------------------------------------------ defects
def _spheres(mu: np.ndarray, hit: np.ndarray, centres: np.ndarray, radii: np.ndarray, peak: np.ndarray) -> None:
    """Add dense spheres (chord-length profile) to mu and mark their disks in hit."""
    H, W = mu.shape
    for (y, x), r, p in zip(centres, radii, peak):
        y0, y1 = max(0, int(y - r - 1)), min(H, int(y + r + 2))
        x0, x1 = max(0, int(x - r - 1)), min(W, int(x + r + 2))
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        d2 = ((yy - y) ** 2 + (xx - x) ** 2) / (r * r)
        chord = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
        mu[y0:y1, x0:x1] += p * chord
        hit[y0:y1, x0:x1] |= d2 <= 1.0


def _blob(rng: np.random.Generator, H: int, W: int, cy: float, cx: float, r: float,
          elong: float = 1.0) -> np.ndarray:
    """An irregular filled polygon (uint8 0/1) of about radius r."""
    n = int(rng.integers(12, 22))
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * cv2.GaussianBlur(rng.uniform(0.5, 1.25, (1, n)), (0, 0), 0.8).ravel()
    rot = rng.uniform(0, np.pi)
    x, y = rad * np.cos(t) * elong, rad * np.sin(t)
    px = cx + x * math.cos(rot) - y * math.sin(rot)
    py = cy + x * math.sin(rot) + y * math.cos(rot)
    m = np.zeros((H, W), np.uint8)
    cv2.fillPoly(m, [np.round(np.stack([px, py], 1) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return m


def _d1(rng, mu, s, cy, cx):  # melt drops
    n = int(rng.integers(1, 4))
    hit = np.zeros(mu.shape, bool)
    c = np.stack([cy + rng.normal(0, 12 * s, n), cx + rng.normal(0, 12 * s, n)], 1)
    _spheres(mu, hit, c, np.maximum(1.5, rng.uniform(3.5, 8.0, n) * s), rng.uniform(1.3, 2.2, n))
    return hit


def _d2(rng, mu, s, cy, cx):  # binder lump: soft edges, mask at half maximum
    r = max(2.0, rng.uniform(9, 24) * s)
    f = cv2.GaussianBlur(_blob(rng, *mu.shape, cy, cx, r).astype(np.float32), (0, 0), max(0.6, r / 5))
    mu += rng.uniform(0.45, 0.75) * f
    return f >= 0.5


def _d3(rng, mu, s, cy, cx):  # shot cluster
    n = int(rng.integers(14, 45))
    spread = max(2.0, rng.uniform(6, 14) * s)
    hit = np.zeros(mu.shape, bool)
    c = np.stack([cy + rng.normal(0, spread, n), cx + rng.normal(0, spread, n)], 1)
    _spheres(mu, hit, c, np.maximum(0.8, rng.uniform(1.0, 2.4, n) * s), rng.uniform(0.9, 1.6, n))
    pts = np.argwhere(hit)[:, ::-1].astype(np.int32)
    if len(pts) < 3:
        return hit
    region = np.zeros(mu.shape, np.uint8)
    cv2.fillConvexPoly(region, cv2.convexHull(pts), 1)
    return region.view(bool)


def _d6(rng, mu, s, cy, cx):  # dirt: sharp, grainy, strongly attenuating
    r = max(2.0, rng.uniform(7, 22) * s)
    m = _blob(rng, *mu.shape, cy, cx, r, elong=rng.uniform(1.0, 2.2)).astype(bool)
    y0, x0 = (max(0, int(v - 3 * r)) for v in (cy, cx))
    sub = m[y0:int(cy + 3 * r) + 1, x0:int(cx + 3 * r) + 1]
    grain = cv2.GaussianBlur(rng.standard_normal(sub.shape).astype(np.float32), (0, 0), 1.5 * s + 0.3)
    grain = 1.0 + 0.4 * (grain - grain.mean()) / (grain.std() + 1e-6)  # clumpy, not a flat decal
    mu[y0:y0 + sub.shape[0], x0:x0 + sub.shape[1]][sub] += rng.uniform(0.6, 1.1) * grain[sub].clip(0.2, 2)
    return m


DEFECTS: dict[int, Callable[..., np.ndarray]] = {1: _d1, 2: _d2, 3: _d3, 4: _d6}


# ------------------------------------------------------------------------------ products
def _product(index: int, seed: int, lines: int, width: int, ng_rate: float = 0.5
             ) -> tuple[np.ndarray, np.ndarray, Verdict, int, dict[str, Any]]:
    lines, width = int(lines), int(width)
    if lines < 8 or width < 16:
        raise ValueError(f"x-ray product {lines} lines x {width} px: at least 8 x 16")
    L = _layers(int(seed), width)
    rng = np.random.default_rng([int(seed), int(index), 0x3A70])
    s = max(width / 640.0, 0.15)
    ng = bool(rng.random() < ng_rate)
    cls = int(rng.integers(1, 5)) if ng else 0
    invisible = INVISIBLE[int(rng.integers(0, 2))] if (not ng and rng.random() < 0.25) else ""
    mu_wool = float(rng.uniform(0.45, 0.9))  # thickness x density of this product
    # Wool attenuation: product level, slow density waves, fibrous texture.
    mu = _smooth(rng, lines, width, 60 * s + 4) * 0.09 + _smooth(rng, lines, width, 14 * s + 2) * 0.04
    mu += 0.07 * _window(L.fibre, int(rng.integers(0, 2 * TILE)), int(rng.integers(0, 32)), lines, width)
    mu = mu_wool * (1.0 + mu)
    # Slab side edges (ragged cut); outside it only the belt.
    yy = np.arange(lines, dtype=np.float32)
    left = rng.uniform(0.02, 0.07) * width + 1.5 * s * np.sin(yy / 23.0 + rng.uniform(0, 6))
    right = width - rng.uniform(0.02, 0.07) * width + 1.5 * s * np.sin(yy / 29.0 + rng.uniform(0, 6))
    xs = np.arange(width, dtype=np.float32)
    slab = (xs[None, :] >= left[:, None]) & (xs[None, :] < right[:, None])
    mu *= slab
    mask = np.zeros((lines, width), np.uint8)
    spots = []
    if cls:
        for _ in range(int(rng.integers(1, 3))):
            cy = float(rng.uniform(0.1, 0.9) * lines)
            cx = float(rng.uniform(left.max() + 0.06 * width, right.min() - 0.06 * width))
            hit = DEFECTS[cls](rng, mu, s, cy, cx) & slab
            mask[hit] = cls
            spots.append([round(cx, 1), round(cy, 1)])
    mu += MU_BELT
    img = I0 * np.exp(-mu) * L.gain[None, :]
    # Quantum noise ~ sqrt(counts) (detector gain ~4 counts per photon).
    img += np.sqrt(img * 4.0) * _window(L.noise, int(rng.integers(0, 2 * TILE)), int(rng.integers(0, 32)),
                                        lines, width)
    out = np.clip(img, 0, 65535).astype(np.uint16)
    verdict = Verdict.NG if ng else Verdict.OK
    truth = {"generator": "xray", "index": int(index), "seed": int(seed), "lines": lines, "width": width,
             "verdict": verdict.name, "defect_class": cls,
             "defect_name": XRAY_CLASSES[cls - 1].name if cls else "",
             "invisible_defect": invisible, "mu_wool": round(mu_wool, 4), "defect_centres": spots,
             "slab_x": [round(float(left.mean()), 1), round(float(right.mean()), 1)],
             "mask_pixels": int(np.count_nonzero(mask)), "physics": "transmission counts, denser is darker"}
    return out, mask, verdict, cls, truth


def render_product(index: int, seed: int = 0, lines: int = 600, width: int = 640
                   ) -> tuple[np.ndarray, np.ndarray, Verdict, int]:
    """One wool product crop: (uint16 transmission, uint8 class mask, verdict, defect class)."""
    img, mask, verdict, cls, _ = _product(index, seed, lines, width)
    return img, mask, verdict, cls


def render_product_truth(index: int, seed: int = 0, lines: int = 600, width: int = 640) -> dict[str, Any]:
    """The ground truth of render_product(index, seed, lines, width) (same random draws)."""
    return _product(index, seed, lines, width)[4]


def render_strip(index: int, seed: int = 0, products: int = 4, width: int = 640,
                 product_lines: tuple[int, int] = (400, 900)) -> XrayStrip:
    """A stretch of belt: gap, product, gap, ... gap. Product j is product index*products + j."""
    lo, hi = int(product_lines[0]), int(product_lines[1])
    if products < 1 or lo < 8 or hi < lo:
        raise ValueError(f"render_strip: products={products}, product_lines={product_lines} not valid")
    rng = np.random.default_rng([int(seed), int(index), 0x57A1])
    L = _layers(int(seed), width)
    gaps = rng.integers(max(4, lo // 8), max(5, lo // 3), products + 1)
    sizes = rng.integers(lo, hi + 1, products)
    total = int(gaps.sum() + sizes.sum())
    empty = I0 * math.exp(-MU_BELT) * L.gain[None, :]
    noise = _window(L.noise, int(rng.integers(0, 2 * TILE)), int(rng.integers(0, 32)), total, width)
    image = np.clip(empty + np.sqrt(empty * 4.0) * noise, 0, 65535).astype(np.uint16)
    mask = np.zeros((total, width), np.uint8)
    spans, verdicts, classes, truths = [], [], [], []
    y = int(gaps[0])
    for j in range(products):
        n = int(sizes[j])
        img, m, v, c, t = _product(int(index) * products + j, seed, n, width)
        image[y:y + n], mask[y:y + n] = img, m
        spans.append((y, y + n))
        verdicts.append(v)
        classes.append(c)
        truths.append(t)
        y += n + int(gaps[j + 1])
    truth = {"generator": "xray-strip", "index": int(index), "seed": int(seed), "width": width,
             "lines": total, "products": [list(p) for p in spans], "product_truth": truths,
             "physics": "transmission counts, denser is darker; rows are scan lines"}
    return XrayStrip(image, mask, spans, verdicts, classes, truth)
