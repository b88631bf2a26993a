"""Augmentations on float (h, w, 3) views in [0, 1]; the same code trains and previews.

Each augmentation is one function in AUGMENTATIONS (applied in that order) taking
(image, strength, rng, gray). They work in float32, so 16-bit X-ray views keep their range;
CLAHE round-trips through uint16 for the same reason.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .config import AugmentConfig


def _hflip(x: np.ndarray, p: float, rng: np.random.Generator, gray: bool) -> np.ndarray:
    return x[:, ::-1] if rng.random() < p else x


def _vflip(x: np.ndarray, p: float, rng: np.random.Generator, gray: bool) -> np.ndarray:
    return x[::-1] if rng.random() < p else x


def _rotate(x: np.ndarray, deg: float, rng: np.random.Generator, gray: bool) -> np.ndarray:
    a = rng.uniform(-deg, deg)
    h, w = x.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), a, 1.0)
    return cv2.warpAffine(np.ascontiguousarray(x), m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def _crop(x: np.ndarray, amount: float, rng: np.random.Generator, gray: bool) -> np.ndarray:
    h, w = x.shape[:2]
    ch = max(1, round(h * rng.uniform(1 - amount, 1)))
    cw = max(1, round(w * rng.uniform(1 - amount, 1)))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return cv2.resize(np.ascontiguousarray(x[y0:y0 + ch, x0:x0 + cw]), (w, h), interpolation=cv2.INTER_LINEAR)


def _shift(x: np.ndarray, amount: float, rng: np.random.Generator, gray: bool) -> np.ndarray:
    # A small translation (reflect padded): the part is never exactly centred on the line.
    h, w = x.shape[:2]
    dy, dx = (int(rng.integers(-round(n * amount), round(n * amount) + 1)) for n in (h, w))
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(np.ascontiguousarray(x), m, (w, h), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_REFLECT_101)


def _brightness(x: np.ndarray, amount: float, rng: np.random.Generator, gray: bool) -> np.ndarray:
    return x + np.float32(rng.uniform(-amount, amount))


def _contrast(x: np.ndarray, amount: float, rng: np.random.Generator, gray: bool) -> np.ndarray:
    m = np.float32(x.mean())
    return (x - m) * np.float32(1 + rng.uniform(-amount, amount)) + m


def _hsv(x: np.ndarray, hue: float, sat: float, val: float, rng: np.random.Generator, gray: bool) -> np.ndarray:
    if gray:  # hue and saturation mean nothing on a gray view; V is a brightness scale
        return x * np.float32(1 + rng.uniform(-val, val)) if val else x
    hsv = cv2.cvtColor(np.clip(x, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
    if hue:
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-hue, hue)) % 360.0
    if sat:
        hsv[..., 1] *= np.float32(1 + rng.uniform(-sat, sat))
    if val:
        hsv[..., 2] *= np.float32(1 + rng.uniform(-val, val))
    hsv[..., 1:] = np.clip(hsv[..., 1:], 0, 1)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _noise(x: np.ndarray, std: float, rng: np.random.Generator, gray: bool) -> np.ndarray:
    n = rng.normal(0, std, size=x.shape[:2] + ((1,) if gray else (3,))).astype(np.float32)
    return x + n


def _clahe(x: np.ndarray, p: float, rng: np.random.Generator, gray: bool) -> np.ndarray:
    if rng.random() >= p:
        return x
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    if gray:
        g = clahe.apply((np.clip(x[..., 0], 0, 1) * 65535).astype(np.uint16)).astype(np.float32) / 65535
        return np.repeat(g[:, :, None], 3, axis=2)
    lab = cv2.cvtColor(np.clip(x, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)
    lum = (lab[..., 0] / 100 * 65535).astype(np.uint16)
    lab[..., 0] = clahe.apply(lum).astype(np.float32) / 65535 * 100
    return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)


Aug = Callable[[np.ndarray, AugmentConfig, np.random.Generator, bool], np.ndarray]

# Order matters: geometry first, then photometric, noise last (as a camera would add it).
AUGMENTATIONS: dict[str, Aug] = {
    "hflip": lambda x, c, r, g: _hflip(x, c.hflip, r, g),
    "vflip": lambda x, c, r, g: _vflip(x, c.vflip, r, g),
    "rotate": lambda x, c, r, g: _rotate(x, c.rotate, r, g),
    "crop": lambda x, c, r, g: _crop(x, c.crop, r, g),
    "shift": lambda x, c, r, g: _shift(x, c.shift, r, g),
    "brightness": lambda x, c, r, g: _brightness(x, c.brightness, r, g),
    "contrast": lambda x, c, r, g: _contrast(x, c.contrast, r, g),
    "hsv": lambda x, c, r, g: _hsv(x, c.hue, c.saturation, c.value, r, g),
    "clahe": lambda x, c, r, g: _clahe(x, c.clahe, r, g),
    "noise": lambda x, c, r, g: _noise(x, c.noise, r, g),
}
_ENABLED: dict[str, Callable[[AugmentConfig], bool]] = {
    "hsv": lambda c: bool(c.hue or c.saturation or c.value),
}


# Those that move pixels: a defect mask must move with them (augment_with_mask).
GEOMETRIC = frozenset({"hflip", "vflip", "rotate", "crop", "shift"})


def _enabled(name: str, cfg: AugmentConfig) -> bool:
    return _ENABLED.get(name, lambda c: bool(getattr(c, name)))(cfg)


def augment(x: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator, gray: bool = False) -> np.ndarray:
    """One random augmentation of a float (h, w, 3) view in [0, 1]."""
    for name, fn in AUGMENTATIONS.items():
        if _enabled(name, cfg):
            x = fn(x, cfg, rng, gray)
    return np.clip(np.ascontiguousarray(x, dtype=np.float32), 0.0, 1.0)


def augment_with_mask(x: np.ndarray, mask: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator,
                      gray: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """augment() of a view and its float (h, w) mask in [0, 1], drawing the same random numbers
    (a run with masks sees the pixels a run without them would): geometric steps move the mask
    as a fourth channel, photometric ones touch only the pixels."""
    x4 = np.concatenate([x, mask[:, :, None].astype(np.float32)], axis=2)
    for name, fn in AUGMENTATIONS.items():
        if not _enabled(name, cfg):
            continue
        if name in GEOMETRIC:
            x4 = fn(x4, cfg, rng, gray)
        else:
            x4 = np.concatenate([fn(np.ascontiguousarray(x4[:, :, :3]), cfg, rng, gray), x4[:, :, 3:]], axis=2)
    x4 = np.clip(np.ascontiguousarray(x4, dtype=np.float32), 0.0, 1.0)
    return np.ascontiguousarray(x4[:, :, :3]), np.ascontiguousarray(x4[:, :, 3])


def flip_variant(x: np.ndarray, variant: int) -> np.ndarray:
    """Deterministic flip variant 0..3 (bit 0 = horizontal, bit 1 = vertical)."""
    if variant & 1:
        x = x[:, ::-1]
    if variant & 2:
        x = x[::-1]
    return np.ascontiguousarray(x)


def flip_variants(cfg: AugmentConfig) -> list[int]:
    """The flip variants a flips-only config can produce (for frozen-feature caching)."""
    out = [0]
    if cfg.hflip:
        out.append(1)
    if cfg.vflip:
        out += [2] + ([3] if cfg.hflip else [])
    return out


def sample_flip_variant(cfg: AugmentConfig, rng: np.random.Generator) -> int:
    """Draw a flip variant with the config's probabilities (same law as augment())."""
    v = 1 if (cfg.hflip and rng.random() < cfg.hflip) else 0
    if cfg.vflip and rng.random() < cfg.vflip:
        v |= 2
    return v
