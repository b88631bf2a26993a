"""The Explain mode's work, Qt-free: list and load models, Grad-CAM over the dataset, one view.

Every function is a plain long function ``fn(..., progress=, should_stop=)`` that the Explain
view runs in a Worker (and ``run_session(spec, progress, should_stop)`` the whole mode in one
call, in the shape of hardware/sort/session.py, for a child process or a script). They read the
project through handles of their own (or an immutable snapshot), never the window's Project.
A loaded model is shared between calls, so Grad-CAM on it runs under the caller's lock (hooks
and modes are per module, not per thread).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from labeling.images import thumbnail
from labeling.store import Project

DISPLAY_MAX = 900  # px, long side of the images sent to the GUI


@dataclass(frozen=True)
class ExplainSpec:
    """What to explain: everything a child process needs, picklable."""

    project_path: str
    model_id: str = "active"
    layer: str | None = None  # None: the model's recorded target layer
    reference: str = "inspector"  # compare with the inspectors' masks, or a segmentation model's (its id)


def run_session(spec: ExplainSpec, progress: Callable[[Any], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Load the spec's model and explain every labelled part: the report dict (rows kept)."""
    got = load_explainer(spec.project_path, spec.model_id)
    return explain_all(spec.project_path, got["loaded"], str(got["loaded"].id or spec.model_id), spec.layer,
                       threading.Lock(), progress=progress, should_stop=should_stop, reference=spec.reference)


def load_explainer(path: str | Path, model_id: str, progress: Any = None, should_stop: Any = None) -> dict[str, Any]:
    """Load a model for explaining; its conv layers for the selector."""
    from training.explain.cam import layer_names
    from training.inference import load_model
    loaded = load_model(path, model_id)
    return {"model_id": model_id, "loaded": loaded, "layers": layer_names(loaded.model),
            "default": loaded.target_layer}


def explain_all(path: str | Path, loaded: Any, model_id: str, layer: str | None, lock: threading.Lock,
                progress: Callable[[Any], None] | None = None,
                should_stop: Callable[[], bool] | None = None, target_class: str | int = "ng",
                reference: str = "inspector") -> dict[str, Any]:
    """Grad-CAM over every labelled part and its agreement with the masks (report dict, rows kept).

    target_class: "ng" (a class model: each part's own defect class), "predicted", or an output
    index (any class of a class model). reference: "inspector", or a segmentation model's id
    whose masks the heatmaps are compared with (training.explain.reference)."""
    from training.explain.dataset import explain_loaded
    from training.explain.recipe import CamRecipe
    from training.explain.reference import reference_masks
    project = Project.open(path, readonly=True)
    with lock:  # one Grad-CAM at a time on a shared model (hooks, modes)
        rep = explain_loaded(project, loaded, model_id, CamRecipe(layer=layer or None, target_class=target_class),
                             progress=progress, should_stop=should_stop, reference=reference_masks(reference))
    out = rep.to_dict(rows=False)
    out["reference"] = reference
    out["rows"] = list(rep.rows)
    return out


def explain_one(project: Project, loaded: Any, part_id: int, view: int, layer: str | None, guided: bool,
                lock: threading.Lock, progress: Any = None, should_stop: Any = None,
                target_class: str | int = "ng", reference: str = "inspector") -> dict[str, Any]:
    """Display images of one view: the view, its reference mask (the inspector's or a
    segmentation model's), the (Guided) Grad-CAM overlay, agreement.

    project: a handle of the caller's thread, or an immutable snapshot holding the part
    (Project.snapshot), never a Project another thread changes."""
    from training.explain.dataset import explain_loaded
    from training.explain.overlay import overlay, to_bgr8
    from training.explain.recipe import CamRecipe
    from training.explain.reference import reference_caption, reference_masks
    recipe = CamRecipe(layer=layer or None, target_class=target_class)
    got: dict[str, Any] = {}

    def keep(e: Any) -> None:
        if e.row.view == view:
            got["e"] = e
    with lock:
        explain_loaded(project, loaded, "", recipe, parts=[part_id], on_view=keep,
                       reference=reference_masks(reference))
        e = got.get("e")
        if e is None:
            raise ValueError(f"part {part_id} has no view {view}")
        heat = _guided(project, loaded, part_id, view, recipe) if guided else e.heat
    base = cv2.cvtColor(to_bgr8(e.image), cv2.COLOR_BGR2RGB)
    over = cv2.cvtColor(overlay(e.image, heat, e.mask, None if guided else e.highlight), cv2.COLOR_BGR2RGB)
    mask = e.mask if e.mask is not None else np.zeros(e.heat.shape, np.uint8)
    dim = (base * 0.35).astype(np.uint8)
    mask_img = dim.copy()
    mask_img[mask > 0] = (46, 204, 113)
    agree = dim.copy()
    m, h = mask > 0, np.asarray(e.highlight, bool)
    agree[m & ~h] = (46, 204, 113)
    agree[h & ~m] = (255, 77, 77)
    agree[h & m] = (255, 210, 77)
    r = e.row
    return {"part_id": part_id, "view": view, "guided": guided, "row": r,
            "images": [thumbnail(x, DISPLAY_MAX) for x in (base, mask_img, over, agree)],
            "captions": [f"Part {part_id} · {r.camera} ({r.cls})",
                         reference_caption(reference) + ("" if e.mask is not None and e.mask.any() else " (none)"),
                         ("Guided Grad-CAM" if guided else "Grad-CAM") + f" · {recipe.layer or loaded.target_layer}",
                         "Agreement" + (f" · IoU {r.iou:.2f}" if r.iou is not None else "")]}


def _guided(project: Any, loaded: Any, part_id: int, view: int, recipe: Any) -> np.ndarray:
    """Guided Grad-CAM of one view as a full-image map in [0, 1]."""
    from training.explain.cam import guided_gradcam, saliency
    from training.explain.dataset import map_to_image, target_class_index
    part = project.part(part_id)
    classes = project.settings.classes
    dc = part.label.defect_class if part.label else 0
    defect = classes[dc - 1].name if 0 < dc <= len(classes) else None
    t, geom = loaded.preprocess(project.read_image(part_id, view), part.views[view].camera)
    x = t if t.ndim == 4 else t[None]
    cls = target_class_index(recipe, loaded.class_names, part, defect)
    g = guided_gradcam(loaded.model, x, recipe.layer or loaded.target_layer, cls, target=recipe.target)
    sal = saliency(g)[0].detach().cpu().numpy()
    return map_to_image(sal, geom, recipe)
