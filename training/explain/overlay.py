"""PNG overlays of explanations: view + heatmap colormap + mask contour (+ highlight contour)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from training.explain.dataset import ViewExplanation

MASK_BGR = (0, 255, 0)  # inspector's mask: green
HIGHLIGHT_BGR = (255, 255, 255)  # thresholded heatmap: white


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any gray/RGB 8- or 16-bit view -> 8-bit BGR for display (16-bit: stretched to its max)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        top = float(img.max()) if img.size else 1.0
        img = np.clip(img.astype(np.float32) * (255.0 / max(top, 1.0)), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR)


def overlay(image: np.ndarray, heat: np.ndarray, mask: np.ndarray | None = None,
            highlight: np.ndarray | None = None, alpha: float = 0.45) -> np.ndarray:
    """8-bit BGR overlay; the colormap is blended only where the heatmap is non-zero."""
    base = to_bgr8(image)
    h = np.clip(np.asarray(heat, np.float32), 0, 1)
    colour = cv2.applyColorMap((h * 255).astype(np.uint8), cv2.COLORMAP_JET)
    a = (alpha * (h > 0))[:, :, None].astype(np.float32)
    out = (base * (1 - a) + colour * a).astype(np.uint8)
    thick = max(1, round(max(out.shape[:2]) / 400))
    for m, bgr in ((highlight, HIGHLIGHT_BGR), (mask, MASK_BGR)):
        if m is not None and np.any(m):
            contours, _ = cv2.findContours((np.asarray(m) > 0).astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, contours, -1, bgr, thick)
    return out


def overlay_name(e: ViewExplanation) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in e.row.camera)
    return f"part{e.row.part_id:05d}_v{e.row.view}_{safe}_{e.row.verdict}.png"


class OverlayWriter:
    """Callable for explain_dataset(on_view=...): writes one PNG per view into out_dir."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.written: list[Path] = []

    def __call__(self, e: ViewExplanation) -> None:
        path = self.out_dir / overlay_name(e)
        if not cv2.imwrite(str(path), overlay(e.image, e.heat, e.mask, e.highlight)):
            raise OSError(f"could not write {path}")
        self.written.append(path)
