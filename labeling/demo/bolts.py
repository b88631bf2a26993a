"""Simulated coated bolts seen by four cameras (the bolt-screening study's rig).

An M10 bolt (25 mm thread, pre-applied anti-loosening coating over 16-17 mm) hangs by its head
from a slotted conveyor plate; four cameras at ~90 degrees see it under a ring light and a bar
light. Defects are placed on the cylinder in (angle, height) coordinates and projected into each
view, so one defect is seen by the cameras facing it and the class masks are exact.

THE PLANTED SHORTCUT: an NG part is, with probability `shortcut`, shot with the jig clamp moved
and polished bright in a fixed top corner (a glare patch). A careless classifier can tell OK from
NG by that corner alone; it lies outside `thread_roi()`, so the study's ROI crop removes it.

Speed: everything that does not change between parts (background, jig, head, the threaded shank
bare and coated, sensor-noise fields) is rendered once per (seed, size) and cached; a part is a
few slice copies and masked copies, so 4 views of 1280x960 render in a few tens of milliseconds.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..types import BOLT_CLASSES, ROI, Verdict

CAMERAS = ["cam0", "cam1", "cam2", "cam3"]
VIEW_ANGLES = (10.0, 100.0, 190.0, 280.0)  # camera azimuths around the bolt, degrees
METAL = np.array([186, 190, 197], np.float32)  # zinc-plated steel, RGB
COATING = np.array([38, 96, 212], np.float32)  # blue pre-applied coating
FOREIGN_COLORS = ((150, 82, 30), (35, 30, 28), (232, 228, 214), (200, 40, 36))  # rust, grease, lint, paint
# Bolt layout in millimetres (ISO 4017 M10 proportions); the picture is scaled to the frame height.
HEAD_H, HEAD_HALF_W, RAIL_H, SHANK_LEN, THREAD_LEN, CHAMFER = 6.4, 8.5, 3.0, 35.0, 25.0, 1.0
RADIUS, MINOR, PITCH = 5.0, 4.1, 1.5


@dataclass
class BoltPart:
    """One rendered part: four RGB views, their class-index masks, the label and ground truth."""

    views: list[np.ndarray]
    masks: list[np.ndarray]
    verdict: Verdict
    defect_class: int
    truth: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Geo:
    """Pixel geometry for one frame size (all views share rows; columns shift per camera)."""

    W: int
    H: int
    mm: float
    cx: tuple[int, ...]
    head_top: int
    head_bot: int
    rail_bot: int
    t0: int  # first thread row
    t1: int  # first chamfer row
    tip: int
    pitch: float

    def y(self, mm_from_tip: float) -> float:
        return self.tip - mm_from_tip * self.mm


@functools.lru_cache(maxsize=16)
def _geo(W: int, H: int) -> _Geo:
    mm = 0.9 * H / (HEAD_H + SHANK_LEN)
    head_top = round(0.05 * H)
    head_bot = round(head_top + HEAD_H * mm)
    tip = min(H - 1, round(head_bot + SHANK_LEN * mm))
    # Cameras are not perfectly centred on the bolt: a small fixed offset each.
    cx = tuple(round(W / 2 + f * H) for f in (-0.012, 0.008, -0.004, 0.014))
    return _Geo(W, H, mm, cx, head_top, head_bot, round(head_bot + RAIL_H * mm),
                round(tip - THREAD_LEN * mm), round(tip - CHAMFER * mm), tip, PITCH * mm)


def thread_roi(size: tuple[int, int] = (640, 480)) -> ROI:
    """The coated-thread region, the same for all four cameras: the crop that removes the shortcut."""
    g = _geo(int(size[0]), int(size[1]))
    half = RADIUS * g.mm * 1.25 + 2
    x0 = max(0, math.floor(min(g.cx) - half))
    x1 = min(g.W, math.ceil(max(g.cx) + half))
    y0 = max(0, int(g.t0 - 1.0 * g.mm))
    y1 = min(g.H, int(g.tip + 1.0 * g.mm) + 1)
    return ROI(x0, y0, x1 - x0, y1 - y0)


def _jig_box(g: _Geo, view: int) -> list[int]:
    """Where the shortcut clamp sits in a view: a top corner (left for cam0/1, right for cam2/3)."""
    w, h = max(4, int(0.16 * g.W)), max(4, int(0.30 * g.H))
    x = int(0.02 * g.W) if view < 2 else g.W - w - int(0.02 * g.W)
    return [x, int(0.02 * g.H), w, min(h, g.t0 - int(2 * g.mm) - int(0.02 * g.H))]


# ------------------------------------------------------------------------------ static layers
def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    small = rng.standard_normal((max(2, int(h / scale)), max(2, int(w / scale)))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _background(g: _Geo, view: int, rng: np.random.Generator) -> np.ndarray:
    """Matte backdrop lit by the bar light, conveyor chain on top, plate (rail) and side bracket."""
    H, W = g.H, g.W
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    side = 1.0 if view % 2 == 0 else -1.0
    light = 0.55 + 0.35 * np.exp(-(((xx - W * (0.5 + 0.18 * side)) / (0.55 * W)) ** 2)) \
        - 0.12 * (yy / H)
    tex = 0.03 * _smooth_noise(rng, H, W, max(2.0, H / 40))
    img = (np.array([78, 82, 90], np.float32)[None, None, :] * (light + tex)[:, :, None])
    # Conveyor chain: dark band with links.
    ch = max(2, int(0.035 * H))
    img[:ch] = (40, 40, 44)
    link = max(4, int(0.05 * H))
    for x in range(-(view * link) // 3 % link - link, W, link):
        cv2.rectangle(img, (x + 1, 1), (x + link - 2, ch - 2), (96, 96, 102), max(1, ch // 6))
    # Hanger from the chain down to the plate: two thin rods either side of the bolt.
    for dx in (-0.22, 0.22):
        x = int(W / 2 + dx * H)
        cv2.rectangle(img, (x - max(1, int(0.006 * H)), ch), (x + max(1, int(0.006 * H)), g.head_bot),
                      (120, 122, 128), -1)
    # Side bracket holding the plate (always there; the shortcut clamp is drawn over it).
    bx = int(0.045 * W) if view < 2 else W - int(0.045 * W) - max(3, int(0.05 * W))
    cv2.rectangle(img, (bx, ch), (bx + max(3, int(0.05 * W)), g.rail_bot), (64, 66, 72), -1)
    return img


def _clamp(img: np.ndarray, g: _Geo, view: int, bright: bool) -> None:
    """The jig clamp in the top corner; `bright` is the shortcut: moved down, polished, glaring.

    Drawn inside the jig box only, so the shortcut changes nothing else in the frame.
    """
    x, y, w, h = _jig_box(g, view)
    sub = img[y:y + h, x:x + w].copy()
    t = max(1, int(0.004 * g.H))
    left = view < 2
    if not bright:
        cw, chh = int(0.6 * w), int(0.45 * h)
        c0 = 0 if left else w - cw
        cv2.rectangle(sub, (c0, 0), (c0 + cw - 1, chh), (58, 58, 64), -1)
        cv2.rectangle(sub, (c0, 0), (c0 + cw - 1, chh), (84, 84, 90), t)
    else:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        gx = 0.3 * w if left else 0.7 * w
        glare = np.exp(-(((xx - gx) / (0.45 * w)) ** 2 + ((yy - 0.55 * h) / (0.5 * h)) ** 2))
        sub += (glare * 120.0)[:, :, None]
        cw, chh = int(0.7 * w), int(0.5 * h)
        c0, r0 = (int(0.1 * w) if left else w - cw - int(0.1 * w)), int(0.35 * h)
        cv2.rectangle(sub, (c0, r0), (c0 + cw, r0 + chh), (226, 226, 220), -1)
        cv2.rectangle(sub, (c0, r0 + chh // 2), (c0 + cw, r0 + chh), (196, 198, 196), -1)
        cv2.rectangle(sub, (c0, r0), (c0 + cw, r0 + chh), (250, 250, 246), t)
    img[y:y + h, x:x + w] = sub


def _lighting(u: np.ndarray, view: int) -> tuple[np.ndarray, np.ndarray]:
    """Diffuse (ring light, coaxial) and specular (bar light to one side) terms across the cylinder."""
    cosa = np.sqrt(np.clip(1.0 - u * u, 0.0, 1.0))
    us = 0.32 if view % 2 == 0 else -0.36
    return cosa, np.exp(-((u - us) / 0.09) ** 2)


def _cylinder(g: _Geo, view: int, rows: np.ndarray, cols: np.ndarray, threaded: bool,
              coated: bool, radius: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Shade a (possibly threaded, possibly coated) cylinder; returns (RGB float, silhouette)."""
    cx = g.cx[view]
    R = RADIUS * g.mm
    u = np.clip((cols[None, :] - cx) / R, -1.0, 1.0)
    alpha = np.arcsin(u)
    cosa, spec = _lighting(u, view)
    if threaded:
        # Helix: crests tilt by half a pitch across the visible half turn; each camera sees its phase.
        phase = 2 * np.pi * rows[:, None] / g.pitch + alpha + math.radians(VIEW_ANGLES[view])
        crest = 0.5 + 0.5 * np.cos(phase)
        edge_l = 2 * np.pi * rows / g.pitch - np.pi / 2 + math.radians(VIEW_ANGLES[view])
        edge_r = edge_l + np.pi
        tri = lambda p: np.abs(((p / (2 * np.pi)) % 1.0) * 2 - 1)  # 1 at crest, 0 at root
        rmin = MINOR * g.mm
        rl = rmin + (R - rmin) * tri(edge_l)
        rr = rmin + (R - rmin) * tri(edge_r)
        d = cols[None, :] - cx
        sil = ((d < 0) & (-d <= rl[:, None])) | ((d >= 0) & (d <= rr[:, None]))
    else:
        phase = np.zeros((len(rows), 1), np.float32)
        crest = np.ones_like(phase)
        rad = np.broadcast_to(np.asarray(radius, np.float32).reshape(-1, 1), (len(rows), 1))
        sil = np.abs(cols[None, :] - cx) <= rad
    if coated:
        lum = 0.16 + 0.74 * cosa * (0.82 + 0.18 * crest) + 0.05 * np.sin(phase)
        rgb = COATING[None, None, :] * lum[:, :, None] + (110.0 * spec * (0.4 + 0.6 * crest))[:, :, None]
    else:
        lum = 0.12 + 0.62 * cosa * (0.45 + 0.55 * crest) + 0.10 * np.sin(phase) * threaded
        rgb = METAL[None, None, :] * lum[:, :, None] + (170.0 * spec * crest ** 3)[:, :, None]
    return rgb, sil


def _static_bolt(img: np.ndarray, g: _Geo, view: int) -> None:
    """Head, plain shank and chamfered tip (everything of the bolt that is the same for each part)."""
    cols = np.arange(g.W, dtype=np.float32)
    cx = g.cx[view]
    # Hex head: facets by azimuth, each flat-shaded; chamfered top corners.
    hw = HEAD_HALF_W * g.mm
    u = np.clip((cols - cx) / hw, -1, 1)
    az = np.degrees(np.arcsin(u)) + VIEW_ANGLES[view]
    facet = np.floor((az + 30.0) / 60.0) * 60.0 - VIEW_ANGLES[view]
    fl = 0.25 + 0.6 * np.cos(np.radians(facet)).clip(0, 1)
    head = METAL[None, :] * fl[:, None]
    xs = np.abs(cols - cx) <= hw
    for y in range(g.head_top, g.head_bot):
        cut = max(0.0, (g.head_top + 0.8 * g.mm - y))  # top chamfer
        m = np.abs(cols - cx) <= hw - cut
        img[y, m & xs] = head[m & xs] * (0.9 + 0.1 * (y - g.head_top) / max(1, g.head_bot - g.head_top))
    # Slotted plate (rail) the head rests on, seen edge-on: hides the top of the shank.
    img[g.head_bot:g.rail_bot] = (92, 94, 100)
    if g.rail_bot > g.head_bot:
        img[g.head_bot] = (150, 152, 160)
    # Plain shank.
    rows = np.arange(g.rail_bot, g.t0, dtype=np.float32)
    if len(rows):
        rgb, sil = _cylinder(g, view, rows, cols, False, False, RADIUS * 0.96 * g.mm)
        sil = np.broadcast_to(sil, rgb.shape[:2])
        img[g.rail_bot:g.t0][sil] = rgb[sil]
    # Chamfer to the flat tip.
    rows = np.arange(g.t1, g.tip + 1, dtype=np.float32)
    if len(rows):
        rad = RADIUS * g.mm * (1.0 - 0.28 * (rows - g.t1) / max(1.0, g.tip - g.t1))
        rgb, sil = _cylinder(g, view, rows, cols, False, False, rad)
        img[g.t1:g.tip + 1][sil] = rgb[sil] * 0.85


@dataclass
class _View:
    bg: tuple[np.ndarray, np.ndarray]  # (normal jig, shortcut jig), uint8 full frames
    bare: np.ndarray  # threaded strip, (t1 - t0 + P, x1 - x0, 3) uint8, periodic in rows
    coat: np.ndarray
    sil: np.ndarray  # bool, same rows/cols
    shade: np.ndarray  # per-column diffuse term (x1 - x0,), for painting foreign matter
    x0: int
    x1: int


@dataclass
class _Layers:
    geo: _Geo
    views: list[_View]
    noise: np.ndarray  # uint8 sensor-noise field, 128 = none, 16 px larger than a frame
    P: int  # integer rows in one pitch (phase shift range)


@functools.lru_cache(maxsize=3)  # ~35 MB per entry at 1280x960
def _layers(seed: int, W: int, H: int) -> _Layers:
    g = _geo(W, H)
    rng = np.random.default_rng([seed, W, H, 0x0B0])
    P = max(1, math.ceil(g.pitch))
    views = []
    for k in range(4):
        base = _background(g, k, rng)
        _static_bolt(base, g, k)
        bgs = []
        for bright in (False, True):
            img = base.copy()
            _clamp(img, g, k, bright)
            out = np.clip(img, 0, 255).astype(np.uint8)
            out.flags.writeable = False
            bgs.append(out)
        half = math.ceil(RADIUS * g.mm) + 2
        x0, x1 = max(0, g.cx[k] - half), min(W, g.cx[k] + half + 1)
        rows = np.arange(g.t0 - P, g.t1, dtype=np.float32)
        cols = np.arange(x0, x1, dtype=np.float32)
        bare, sil = _cylinder(g, k, rows, cols, True, False, 0)
        coat, _ = _cylinder(g, k, rows, cols, True, True, 0)
        cosa, _ = _lighting(np.clip((cols - g.cx[k]) / (RADIUS * g.mm), -1, 1), k)
        views.append(_View(tuple(bgs), np.clip(bare, 0, 255).astype(np.uint8),
                           np.clip(coat, 0, 255).astype(np.uint8), sil, 0.25 + 0.75 * cosa, x0, x1))
    noise = np.clip(128.0 + rng.normal(0.0, 3.0, (H + 16, W + 16, 3)), 0, 255).astype(np.uint8)
    noise.flags.writeable = False
    return _Layers(g, views, noise, P)


# ------------------------------------------------------------------------------ one part
def _plan(index: int, seed: int, ng_rate: float, shortcut: float, P: int) -> dict[str, Any]:
    """Every random choice of one part, drawn in a fixed order so parts are reproducible."""
    rng = np.random.default_rng([int(seed), int(index), 0xB017])
    ng = bool(rng.random() < ng_rate)
    cls = int(rng.integers(1, 5))
    plan: dict[str, Any] = {
        "ng": ng, "cls": cls if ng else 0, "shortcut": bool(ng and rng.random() < shortcut),
        "shift": int(rng.integers(0, P)), "band_bot": float(rng.uniform(2.0, 3.0)),
        "band_len": float(rng.uniform(16.0, 17.0)),
        "fuzz": rng.uniform(0, 2 * np.pi, (4, 2, 2)), "gain": rng.uniform(0.94, 1.06, 4),
        "noise_at": rng.integers(0, 16, (4, 2)), "defects": [], "short_keep": 1.0, "color": 0,
    }
    n = int(rng.integers(3, 6)) if cls == 1 else 3
    theta0 = float(rng.uniform(0, 360))
    lo, hi = plan["band_bot"], plan["band_bot"] + plan["band_len"]
    for i in range(n):
        item = {"theta_deg": (theta0 + i * 360.0 / n + float(rng.uniform(-15, 15))) % 360.0}
        if cls == 1:  # gaps in the spray
            item.update(r_deg=float(rng.uniform(18, 40)), r_mm=float(rng.uniform(0.7, 2.0)))
        else:  # foreign blobs (also the recipe for others, unused)
            item.update(r_deg=float(np.degrees(rng.uniform(1.2, 2.4) / RADIUS)),
                        r_mm=float(rng.uniform(0.9, 2.2)))
        item["z_mm"] = float(rng.uniform(lo + item["r_mm"] * 0.6, hi - item["r_mm"] * 0.6))
        item["jitter"] = rng.uniform(0.75, 1.2, 10).tolist()
        plan["defects"].append(item)
    plan["short_keep"] = float(rng.uniform(0.3, 0.65))
    plan["color"] = int(rng.integers(0, len(FOREIGN_COLORS)))
    if cls not in (1, 4) or not ng:
        plan["defects"] = []
    return plan


def _polygon(item: dict[str, Any], g: _Geo, view: int, x0: int, y0: int) -> np.ndarray | None:
    """Project a defect outline from cylinder (angle, height) into a view; None when facing away."""
    R = RADIUS * g.mm
    rel = math.radians((item["theta_deg"] - VIEW_ANGLES[view] + 180.0) % 360.0 - 180.0)
    if math.cos(rel) < 0.1:
        return None
    t = np.linspace(0, 2 * np.pi, len(item["jitter"]), endpoint=False)
    j = np.asarray(item["jitter"])
    a = np.clip(rel + np.radians(item["r_deg"]) * j * np.cos(t), -1.55, 1.55)
    x = g.cx[view] + R * np.sin(a) - x0
    y = g.y(item["z_mm"] + item["r_mm"] * j * np.sin(t)) - y0
    return np.round(np.stack([x, y], 1) * 16).astype(np.int32)


def _band(g: _Geo, fuzz: np.ndarray, cols: np.ndarray, bot_mm: float, top_mm: float,
          rows: np.ndarray) -> np.ndarray:
    """Rows between the band's two spray edges (edges wander by ~0.25 mm around the bolt)."""
    amp = 0.25 * g.mm
    wl = max(4.0, 3.0 * g.mm)
    e_top = amp * (np.sin(cols / wl + fuzz[0, 0]) + 0.5 * np.sin(cols / (0.37 * wl) + fuzz[0, 1]))
    e_bot = amp * (np.sin(cols / wl + fuzz[1, 0]) + 0.5 * np.sin(cols / (0.37 * wl) + fuzz[1, 1]))
    return (rows[:, None] >= g.y(top_mm) + e_top[None, :]) & (rows[:, None] < g.y(bot_mm) + e_bot[None, :])


def _render_view(L: _Layers, plan: dict[str, Any], k: int) -> tuple[np.ndarray, np.ndarray]:
    g, v = L.geo, L.views[k]
    bg = v.bg[int(plan["shortcut"])]
    oy, ox = (int(a) for a in plan["noise_at"][k])
    noise = L.noise[oy:oy + g.H, ox:ox + g.W]
    gain = float(plan["gain"][k])
    # One pass makes the whole frame: exposure gain + sensor noise (stored offset by 128).
    out = cv2.addWeighted(bg, gain, noise, 1.0, -128.0)
    h = g.t1 - g.t0
    d = plan["shift"]
    reg = bg[g.t0:g.t1, v.x0:v.x1].copy()  # the thread region is composed clean, then noised
    sil = v.sil[d:d + h]
    cv2.copyTo(v.bare[d:d + h], sil.view(np.uint8), reg)
    rows = np.arange(g.t0, g.t1, dtype=np.float32)
    cols = np.arange(v.x0, v.x1, dtype=np.float32)
    lo, hi = plan["band_bot"], plan["band_bot"] + plan["band_len"]
    band = _band(g, plan["fuzz"][k], cols, lo, hi, rows) & sil
    cls = plan["cls"]
    defect = np.zeros(band.shape, np.uint8)
    for item in plan["defects"]:
        poly = _polygon(item, g, k, v.x0, g.t0)
        if poly is not None:
            cv2.fillPoly(defect, [poly], 1, lineType=cv2.LINE_8, shift=4)
    defect = defect.view(bool) & sil
    coated = band
    if cls == 1:
        defect &= band
        coated = band & ~defect
    elif cls == 2:
        coated = np.zeros_like(band)
        defect = band
    elif cls == 3:
        actual = _band(g, plan["fuzz"][k], cols, lo, lo + plan["band_len"] * plan["short_keep"], rows) & sil
        defect = band & ~actual
        coated = actual
    cv2.copyTo(v.coat[d:d + h], coated.view(np.uint8), reg)
    if cls == 4:
        ys, xs = np.nonzero(defect)
        color = np.asarray(FOREIGN_COLORS[plan["color"]], np.float32)
        speck = 0.9 + 0.2 * ((xs * 7 + ys * 13) % 5 == 0)  # a little grain so it is not a flat decal
        reg[ys, xs] = np.clip(color[None, :] * (v.shade[xs] * speck)[:, None], 0, 255).astype(np.uint8)
    cv2.addWeighted(reg, gain, noise[g.t0:g.t1, v.x0:v.x1], 1.0, -128.0, dst=out[g.t0:g.t1, v.x0:v.x1])
    mask = np.zeros((g.H, g.W), np.uint8)
    if cls:
        np.multiply(defect.view(np.uint8), cls, out=mask[g.t0:g.t1, v.x0:v.x1])
    return out, mask


def render_part(index: int, seed: int = 0, size: tuple[int, int] = (640, 480), ng_rate: float = 0.5,
                shortcut: float = 0.8) -> BoltPart:
    """Render part `index` of the demo line (deterministic for (index, seed, size, rates))."""
    W, H = int(size[0]), int(size[1])
    if W < 32 or H < 32:
        raise ValueError(f"bolt demo size {W}x{H}: at least 32x32")
    L = _layers(int(seed), W, H)
    plan = _plan(index, seed, ng_rate, shortcut, L.P)
    views, masks = zip(*(_render_view(L, plan, k) for k in range(4)))
    cls = plan["cls"]
    g = L.geo
    truth = {
        "generator": "bolts", "index": int(index), "seed": int(seed), "size": [W, H],
        "verdict": "NG" if plan["ng"] else "OK", "defect_class": cls,
        "defect_name": BOLT_CLASSES[cls - 1].name if cls else "",
        "shortcut": plan["shortcut"], "jig_box": [_jig_box(g, k) for k in range(4)],
        "thread_roi": thread_roi((W, H)).to_list(), "cameras": list(CAMERAS),
        "view_angles_deg": list(VIEW_ANGLES),
        "rotation_deg": round(360.0 * (L.P - plan["shift"]) / g.pitch % 360.0, 2),
        "band_mm_from_tip": [round(plan["band_bot"], 3), round(plan["band_bot"] + plan["band_len"], 3)],
        "px_per_mm": round(g.mm, 4),
        "defects": [{k: round(v, 3) for k, v in d.items() if k != "jitter"} for d in plan["defects"]],
        "mask_pixels": [int(np.count_nonzero(m)) for m in masks],
    }
    if cls == 3:
        truth["coated_mm"] = round(plan["band_len"] * plan["short_keep"], 3)
    if cls == 4:
        truth["foreign_rgb"] = list(FOREIGN_COLORS[plan["color"]])
    return BoltPart(list(views), list(masks), Verdict.NG if plan["ng"] else Verdict.OK, cls, truth)
