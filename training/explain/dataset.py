"""explain_dataset: Grad-CAM over a project's parts and its agreement with the masks.

For each view: preprocess exactly as the model saw it (ROI crop, letterbox), Grad-CAM at the
recipe's layer, upsample to the input, normalise over the part of the input that holds the
image (letterbox padding excluded), map back into full-image coordinates with
ViewGeometry.to_image (so the map lies on the inspector's mask), threshold, and compare.
Nothing is written to the project.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from labeling.progress import Progress, ProgressFn
from labeling.store import Project, iter_labeled
from labeling.types import Part, Verdict
from training.errors import TrainingError
from training.explain.agreement import (
    Totals,
    ViewRow,
    cell_tolerance,
    looks_away,
    normalise_map,
    summarise,
    threshold_map,
    view_agreement,
)
from training.explain.cam import gradcam_and_logits, layer_names, resolve_layer, upsample
from training.explain.recipe import CamRecipe
from training.explain.shortcut import ShortcutDetector, ShortcutRule


class Explainable(Protocol):
    """What explain needs of a loaded model (training.inference.LoadedModel fits)."""

    model: torch.nn.Module
    class_names: list[str]
    input_size: tuple[int, int]
    target_layer: str

    def preprocess(self, image: np.ndarray, camera: str) -> tuple[torch.Tensor, Any]: ...




@dataclass
class ViewExplanation:
    """One view's full-image heatmap with what it was compared to (for overlays / the UI)."""

    row: ViewRow
    image: np.ndarray
    heat: np.ndarray  # float32 (H, W) in [0, 1], 0 outside the model's view
    highlight: np.ndarray  # bool (H, W)
    mask: np.ndarray | None


@dataclass
class ExplainReport:
    """Agreement of a model's Grad-CAM with the project's masks, and the recipe used."""

    model_id: str
    recipe: CamRecipe
    layer: str
    class_names: list[str]
    rows: list[ViewRow] = field(default_factory=list)
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)
    totals: Totals = field(default_factory=Totals)
    looks_away: list[dict[str, Any]] = field(default_factory=list)
    shortcut: list[Any] = field(default_factory=list)  # ShortcutAlarm per camera
    stopped: bool = False
    elapsed_s: float = 0.0
    tolerance: float | None = None  # the pointing game's, in px; None: half a cell of the layer's map

    @property
    def shortcut_flagged(self) -> bool:
        return any(a.flagged for a in self.shortcut)

    def to_dict(self, rows: bool = True) -> dict[str, Any]:
        d = {"model_id": self.model_id, "recipe": self.recipe.to_dict(), "layer": self.layer,
             "class_names": list(self.class_names), "parts": len({r.part_id for r in self.rows}),
             "views": len(self.rows), "totals": self.totals.__dict__, "summary": self.summary,
             "looks_away": self.looks_away, "shortcut_flagged": self.shortcut_flagged,
             "shortcut": [a.to_dict() for a in self.shortcut], "stopped": self.stopped,
             "pointing_tolerance": "cell" if self.tolerance is None else self.tolerance,
             "elapsed_s": round(self.elapsed_s, 3)}
        if rows:
            d["rows"] = [r.to_dict() for r in self.rows]
        return d


def target_class_index(recipe: CamRecipe, class_names: list[str], part: Part,
                       defect_name: str | None) -> int | None:
    """The class to explain for a part: a fixed index, None (= predicted), or the NG class.

    "ng" resolves to a class named NG; in a two-class model without one, to the class that is
    not OK; in a per-defect model, to the part's own defect class (predicted for OK parts).
    """
    n = len(class_names)
    if isinstance(recipe.target_class, int):
        if not 0 <= recipe.target_class < n:
            raise TrainingError(f"class index {recipe.target_class} out of range 0..{n - 1}")
        return recipe.target_class
    if recipe.target_class == "predicted":
        return None
    upper = [c.strip().upper() for c in class_names]
    for alias in ("NG", "NOK", "DEFECT", "BAD"):
        if alias in upper:
            return upper.index(alias)
    if n == 2 and "OK" in upper:
        return 1 - upper.index("OK")
    if defect_name and defect_name.upper() in upper:
        return upper.index(defect_name.upper())
    if part.verdict == Verdict.OK:
        return None
    raise TrainingError(f"no NG class among the model's classes {class_names}; "
                        f"choose a class index or 'predicted'")


def _content_box(geom: Any) -> tuple[slice, slice]:
    pad, size = getattr(geom, "pad", (0, 0)), getattr(geom, "content_size", None)
    if not size or size == (0, 0):
        return slice(None), slice(None)
    return slice(pad[0], pad[0] + size[0]), slice(pad[1], pad[1] + size[1])


def map_to_image(cam_in: np.ndarray, geom: Any, recipe: CamRecipe) -> np.ndarray:
    """An input-resolution map -> normalised full-image heatmap (0 outside the ROI).

    Normalising before mapping, over the image content only: after mapping, the zeros outside
    the ROI would pin the minimum, and letterbox padding is not part of the view.
    """
    ys, xs = _content_box(geom)
    content = cam_in[ys, xs]
    norm = normalise_map(content, recipe.normalise, recipe.eps)
    full = np.zeros_like(cam_in, dtype=np.float32)
    full[ys, xs] = norm
    return np.clip(geom.to_image(full), 0.0, 1.0).astype(np.float32)


def explain_loaded(project: Project, loaded: Explainable, model_id: str = "",
                   recipe: CamRecipe | None = None, parts: Iterable[int] | None = None,
                   batch_size: int = 8, progress: ProgressFn | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   on_view: Callable[[ViewExplanation], None] | None = None,
                   tolerance: float | None = None, rule: ShortcutRule | None = None,
                   reference: Callable[[Project, Part, int], np.ndarray | None] | None = None) -> ExplainReport:
    """explain_dataset for an already loaded model (any object fitting Explainable); reference:
    the masks to compare with (training.explain.reference; default the inspectors'); tolerance:
    the pointing game's radius in px, None for half a cell of the layer's map (cell_tolerance)."""
    recipe = recipe or CamRecipe()
    layer = recipe.layer or default_layer(loaded)
    resolve_layer(loaded.model, layer)  # a clear error before any work
    chosen = _parts(project, parts)
    classes = project.settings.classes
    todo = [(p, v) for p in chosen for v in range(len(p.views))]
    report = ExplainReport(model_id, recipe, layer, list(loaded.class_names), tolerance=tolerance)
    detector = ShortcutDetector(rule)
    valid_cache: dict[Any, np.ndarray] = {}
    t0 = time.monotonic()
    done = 0
    for start in range(0, len(todo), max(1, batch_size)):
        if should_stop and should_stop():
            report.stopped = True
            break
        chunk = todo[start:start + batch_size]
        items, tensors, targets = [], [], []
        for part, v in chunk:
            cam_name = part.views[v].camera
            image = project.read_image(part.id, v)
            defect = classes[part.label.defect_class - 1].name if part.label and \
                0 < part.label.defect_class <= len(classes) else None
            t, geom = loaded.preprocess(image, cam_name)
            tensors.append(t[0] if t.ndim == 4 else t)
            targets.append(target_class_index(recipe, loaded.class_names, part, defect))
            items.append((part, v, cam_name, image, geom, defect))
        x = torch.stack(tensors)
        n_fixed = sum(t is not None for t in targets)
        # One Grad-CAM pass per batch resolves "predicted" (None) itself; only a batch that
        # mixes fixed and predicted classes needs a no-grad forward first.
        cls = None if n_fixed == 0 else targets if n_fixed == len(targets) \
            else _fill_predicted(loaded.model, x, targets)
        grid_cams, logits, idx = gradcam_and_logits(loaded.model, x, layer, cls, target=recipe.target,
                                                    relu=recipe.relu)
        grid = (int(grid_cams.shape[-2]), int(grid_cams.shape[-1]))  # the finest place the map can point at
        cams = upsample(grid_cams, tuple(x.shape[-2:]), mode=recipe.upsample, align_corners=recipe.align_corners)
        probs = logits.float().softmax(1).gather(1, idx[:, None])[:, 0].cpu().numpy()
        cams_np = cams.cpu().numpy()
        for i, (part, v, cam_name, image, geom, defect) in enumerate(items):
            heat = map_to_image(cams_np[i], geom, recipe)
            valid = valid_cache.get(geom)
            if valid is None:
                valid = valid_cache[geom] = geom.to_image(np.ones(cams_np[i].shape, np.float32)) > 0.5
            if reference is not None:
                mask = reference(project, part, v)
            else:
                mask = project.read_mask(part.id, v) if part.views[v].has_mask else None
            ng = part.verdict == Verdict.NG
            m = view_agreement(heat, mask if ng else None, rule=recipe.threshold, valid=valid,
                               tolerance=cell_tolerance(grid, geom) if tolerance is None else tolerance)
            row = ViewRow(part.id, v, cam_name, "NG" if ng else "OK",
                          (defect or "NG") if ng else "OK", float(probs[i]), **m)
            report.rows.append(row)
            detector.add(cam_name, heat, mask if ng else None, ok=not ng, valid=valid)
            if on_view:
                on_view(ViewExplanation(row, image, heat, threshold_map(heat, recipe.threshold, valid),
                                        mask))
        done += len(chunk)
        if progress:
            progress(Progress("explain", done, len(todo), f"part {chunk[-1][0].id}"))
    report.summary = summarise(report.rows)
    report.totals = Totals.of(report.rows)
    report.looks_away = looks_away(report.rows)
    report.shortcut = detector.alarms()
    report.elapsed_s = time.monotonic() - t0
    return report


def default_layer(loaded: Explainable) -> str:
    """The model's recorded Grad-CAM layer, else its backbone's, else its deepest conv stage."""
    if getattr(loaded, "target_layer", ""):
        return loaded.target_layer
    from training.backbones import BACKBONES
    spec = BACKBONES.get(str(getattr(loaded, "arch", "")))
    if spec is not None:
        return spec.target_layer
    names = layer_names(loaded.model)
    if not names:
        raise TrainingError("the model has no convolution layer to explain")
    return names[-1]


def _fill_predicted(model: torch.nn.Module, x: torch.Tensor, targets: list[int | None]) -> list[int]:
    """Mixed batch (some fixed classes, some predicted): resolve the predicted ones first."""
    from training.explain.cam import preserved_state
    with preserved_state(model), torch.no_grad():
        p = next(model.parameters())
        pred = model(x.to(p.device)).argmax(1).tolist()
    return [pred[i] if t is None else t for i, t in enumerate(targets)]


def _parts(project: Project, parts: Iterable[int] | None) -> list[Part]:
    if parts is None:
        chosen = iter_labeled(project)
    else:
        chosen = [project.part(int(i)) for i in parts]
    chosen = [p for p in chosen if p.views]
    if not chosen:
        raise TrainingError("no labelled parts with views to explain")
    return chosen


def explain_dataset(project: Project | str | Path, model_id: str = "active",
                    recipe: CamRecipe | None = None, parts: Iterable[int] | None = None,
                    batch_size: int = 8, progress: ProgressFn | None = None,
                    should_stop: Callable[[], bool] | None = None,
                    on_view: Callable[[ViewExplanation], None] | None = None,
                    device: str = "auto", tolerance: float | None = None) -> ExplainReport:
    """Grad-CAM of a project model over labelled parts (all by default) and its agreement
    with the masks: per-view rows, per-class summary, looks-away list, shortcut alarm.

    on_view receives every ViewExplanation as it is made (e.g. an OverlayWriter); nothing
    else keeps full-size heatmaps, so memory stays flat on large projects.
    """
    from training.inference import load_model
    if not isinstance(project, Project):
        project = Project.open(project, readonly=True)
    loaded = load_model(project, model_id, device=device)
    mid = str((getattr(loaded, "meta", None) or {}).get("id", model_id))
    return explain_loaded(project, loaded, mid, recipe, parts, batch_size, progress,
                          should_stop, on_view, tolerance)


__all__ = [
    "ExplainReport",
    "ViewExplanation",
    "default_layer",
    "explain_dataset",
    "explain_loaded",
    "layer_names",
    "map_to_image",
    "target_class_index",
]
