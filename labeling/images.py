"""Small image helpers shared by every room (the window's thumbnails, the sort panel's views)."""
from __future__ import annotations

import cv2
import numpy as np


def thumbnail(img: np.ndarray, size: int = 160) -> np.ndarray:
    """A copy whose longer side is at most `size` pixels, dtype kept (16-bit X-ray stays 16-bit);
    the image itself when it is already that small."""
    a = np.asarray(img)
    h, w = a.shape[:2]
    s = size / max(h, w, 1)
    if s >= 1:
        return a
    return cv2.resize(a, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
