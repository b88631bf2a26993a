"""The one heatmap convention of a stored prediction, for every producer and every reader.

A prediction's per-view heatmaps live in ``Prediction.extra["heatmaps"]``: one entry per view,
each a JSON list of rows of ints 0..255 (None for a view without one), in the FULL-IMAGE frame
of that view (same aspect, longer side HEAT_PX; 0 outside the model's ROI), min-max normalised
over the view content the model saw (CamRecipe's default). A reader therefore only stretches
the map over the view.

Producers: pre-labeling (training/predict.py) and the live-sort logger (hardware/sort/partlog.py
through hardware/sort/explain.py); both map their model-input Grad-CAM back with `to_full_image`.
Reader: `read_heatmaps`, which also migrates the live-sort logger's old key "gradcam" (16x16,
model-input frame) by mapping it through the model's ROI and letterbox.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from labeling.types import Part

HEATMAP_KEY = "heatmaps"
LEGACY_KEY = "gradcam"  # before the one convention: 16x16, model-input frame, 0..255
HEAT_PX = 64  # longer side of a stored heatmap: enough to see where the model looks, ~4 KB a view


def encode(heat: np.ndarray, size: int = HEAT_PX) -> list[list[int]]:
    """A full-image heatmap in 0..1 -> the stored form (0..255 ints, longer side `size`)."""
    heat = np.asarray(heat, np.float32)
    h, w = heat.shape[:2]
    s = size / max(h, w, 1)
    small = cv2.resize(heat, (max(1, round(w * s)), max(1, round(h * s))),
                       interpolation=cv2.INTER_AREA) if s < 1 else heat
    return np.clip(np.rint(small * 255), 0, 255).astype(np.uint8).tolist()


def to_full_image(cams_in: np.ndarray, geometries: Sequence[Any], recipe: Any = None) -> list[np.ndarray]:
    """Model-input maps (N, h, w) -> full-image maps in 0..1 (through letterbox and ROI)."""
    from .dataset import map_to_image
    from .recipe import CamRecipe
    recipe = recipe or CamRecipe()
    return [map_to_image(np.asarray(c, np.float32), g, recipe) for c, g in zip(cams_in, geometries)]


def decode(entry: Any) -> np.ndarray | None:
    """One stored map -> float32 (h, w) in 0..1, None when it is not a 2-D map."""
    if not isinstance(entry, (list, np.ndarray)):
        return None
    try:
        a = np.asarray(entry, np.float32)
    except ValueError:  # ragged rows: not a map
        return None
    if a.ndim != 2 or a.size == 0:
        return None
    return a / 255.0


# (part, view index) -> how that view was fitted into the model (training.data.ViewGeometry).
GeometryFn = Callable[[Part, int], Any]


def read_heatmaps(part: Part, legacy_geometry: GeometryFn | None = None) -> list[np.ndarray | None]:
    """Per-view full-image heatmaps in 0..1 from a part's prediction ([] when it has none).

    Old parts sorted before the one convention carry "gradcam" maps in the model-input frame:
    they are mapped back with `legacy_geometry` (see `model_geometry`), else shown as nothing
    rather than misplaced.
    """
    extra = part.prediction.extra if part.prediction else {}
    maps = extra.get(HEATMAP_KEY)
    if isinstance(maps, list):
        return [decode(m) for m in maps]
    old = extra.get(LEGACY_KEY)
    if not isinstance(old, list):  # absent, or an error text the logger stored instead
        return []
    out: list[np.ndarray | None] = []
    for i, m in enumerate(old):
        a = decode(m)
        if a is not None:
            if legacy_geometry is None or i >= len(part.views):
                a = None
            else:
                a = decode(encode(_input_map_to_image(a, legacy_geometry(part, i))))
        out.append(a)
    return out


def _input_map_to_image(cam_in: np.ndarray, geom: Any) -> np.ndarray:
    # The old maps were already min-max scaled over the whole input: only the frame changes.
    return np.clip(geom.to_image(cam_in), 0.0, 1.0)


def model_geometry(project: Any) -> GeometryFn:
    """The geometry a part's predicting model used for each view (for migrating old maps).

    A project model records its ROIs, input size and fit; a model that is not in the project
    (the untrained demo network) stretched the project's ROI into 96x128.
    """
    from training.card import ModelCard, read_card
    from training.data import fit_geometry
    cards: dict[str, ModelCard | None] = {}

    def geometry(part: Part, view: int) -> Any:
        mid = part.prediction.model_id if part.prediction else ""
        if mid not in cards:
            try:
                cards[mid] = read_card(project, mid)
            except Exception:  # noqa: BLE001 - any model not in the project: the demo network's frame
                cards[mid] = None
        card = cards[mid]
        info = part.views[view]
        camera = info.camera
        if card is None:
            roi = project.settings.rois.get(camera)
            return fit_geometry(info.shape[:2], roi, (96, 128), "resize")
        return fit_geometry(info.shape[:2], card.roi(camera), card.input_size, card.fit)

    return geometry
