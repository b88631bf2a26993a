"""The masks Grad-CAM is compared with: the inspectors' (the default) or a segmentation model's.

A classifier that looks where the inspectors painted is one check; looking where a segmentation
model of the same project finds the defect is another, and works on parts nobody painted.
``reference_masks("inspector")`` reads the drawn masks; ``reference_masks(SEG_ID)`` uses that
model's stored proposals (`okng predict --model SEG_ID`) where every view of a part has one from
it, and otherwise proposes on the spot (the model is loaded once and kept).
"""
from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from labeling.store import Project
from labeling.types import Part

INSPECTOR = "inspector"
ReferenceFn = Callable[[Project, Part, int], "np.ndarray | None"]

_models: dict[tuple[str, str], object] = {}  # (project path, model id) -> SegModel
_lock = threading.Lock()


def inspector_mask(project: Project, part: Part, view: int) -> np.ndarray | None:
    return project.read_mask(part.id, view) if part.views[view].has_mask else None


def _segmenter(project: Project, model_id: str) -> object:
    from training.segment.inference import load_segmenter
    key = (str(project.path), model_id)
    with _lock:
        if key not in _models:
            _models[key] = load_segmenter(project, model_id, device="cpu")
        return _models[key]


def reference_masks(source: str | None = INSPECTOR) -> ReferenceFn:
    """A (project, part, view) -> class-index mask function for the source named."""
    if not source or source == INSPECTOR:
        return inspector_mask
    cache: dict[int, list[np.ndarray]] = {}  # part id -> its views' masks (a part is proposed whole)

    def model_mask(project: Project, part: Part, view: int) -> np.ndarray | None:
        if part.id not in cache:
            stored = [project.read_proposal(part.id, v) for v in range(len(part.views))]
            if all(s is not None and s[1] == source for s in stored):
                cache[part.id] = [s[0] for s in stored]  # type: ignore[index]
            else:
                model = _segmenter(project, source)
                _, views = model.propose(project.read_views(part.id), [v.camera for v in part.views])
                cache[part.id] = [vp.mask for vp in views]
        return cache[part.id][view]
    return model_mask


def reference_caption(source: str | None) -> str:
    return "Inspector mask" if not source or source == INSPECTOR else f"Mask of {source}"
