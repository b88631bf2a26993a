"""numpy <-> Qt image helpers: display levels for uint8/uint16, gray/RGB views (thumbnail: labeling.images)."""
from __future__ import annotations

import numpy as np
from PyQt6.QtGui import QImage, QPixmap

from labeling.images import thumbnail  # the one thumbnail; to_pixmap shrinks with it


def display_levels(img: np.ndarray) -> tuple[float, float]:
    """Levels for display: full range for uint8, robust percentiles for 16-bit (X-ray)."""
    if img.dtype == np.uint8:
        return (0.0, 255.0)
    step = max(1, img.size // 200_000)
    sample = img.reshape(-1)[::step]
    lo, hi = np.percentile(sample, (0.5, 99.5))
    return (float(lo), float(max(hi, lo + 1)))


def to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    lo, hi = display_levels(img)
    return np.clip((img.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def to_qimage(img: np.ndarray) -> QImage:
    """A QImage that owns a copy of the pixels (safe after img is gone)."""
    a = np.ascontiguousarray(to_uint8(img))
    h, w = a.shape[:2]
    if a.ndim == 2:
        return QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8).copy()
    if a.shape[2] == 4:
        return QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGBA8888).copy()
    return QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGB888).copy()


def to_pixmap(img: np.ndarray, size: int | None = None) -> QPixmap:
    return QPixmap.fromImage(to_qimage(thumbnail(img, size) if size else img))
