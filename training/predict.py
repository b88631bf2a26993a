"""Pre-labeling: run a project model over its parts and store each part's prediction.

For each chosen part (by default those without a prediction from this model): ONE forward of all
its views with Grad-CAM on the NG class (gradcam_and_logits gives the logits and the maps from
the same pass), the part decision by the live-sort rule (training.inference.decide: NG if any
view reaches the model's threshold), and per-view heatmaps mapped back onto the full image
(through letterbox and ROI), stored with the prediction in the one heatmap convention
(training/explain/heatmaps.py). The Label view then shows the verdict and heatmap beside the inspector's
label, orders its queue by the model's uncertainty and accepts the verdict with one key.

Each prediction is stored as soon as it is made (the store's journal): a cancelled run keeps
what it finished, and running again continues where it stopped.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeling.progress import Progress, ProgressFn
from labeling.store import Project
from labeling.types import Prediction

from .errors import TrainingError
from .explain.cam import gradcam_and_logits
from .explain.dataset import default_layer
from .explain.heatmaps import HEAT_PX, HEATMAP_KEY, encode, to_full_image
from .explain.recipe import CamRecipe
from .inference import load_model


@dataclass(frozen=True)
class PartPredicted:
    """Payload of predict's Progress (stage "predict"), sent after every part."""

    part_id: int
    verdict: str


def _todo(project: Project, model_id: str, parts: Iterable[int] | None, redo: bool) -> list[Any]:
    chosen = project.parts() if parts is None else [project.part(int(i)) for i in parts]
    chosen = [p for p in chosen if p.views]
    if redo:
        return chosen
    return [p for p in chosen if not any(pr.model_id == model_id for pr in project.predictions(p.id))]


def predict_parts(project: Project | str | Path, model_id: str = "active", parts: Iterable[int] | None = None,
                  redo: bool = False, heatmaps: bool = True, heat_px: int = HEAT_PX, device: str = "auto",
                  progress: ProgressFn | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  camera_map: dict[str, str] | None = None) -> dict[str, Any]:
    """Predict parts with a stored project model and store the predictions; a summary dict.

    parts: ids (all parts with views by default); redo: also parts this model already predicted.
    The parts' cameras are checked against the model's first (training.cameras: a mismatch is
    an error, camera_map maps them explicitly).
    """
    if not isinstance(project, Project):
        project = Project.open(project)
    loaded = load_model(project, model_id, device=device)
    if not heatmaps:  # Grad-CAM needs torch's gradients; scores alone run on the card's runtime
        from .runtime import with_runtime
        loaded, _info = with_runtime(loaded, project.path)
    return predict_loaded(project, loaded, parts, redo, heatmaps, heat_px, progress, should_stop, camera_map)


def predict_loaded(project: Project, loaded: Any, parts: Iterable[int] | None = None, redo: bool = False,
                   heatmaps: bool = True, heat_px: int = HEAT_PX,
                   progress: ProgressFn | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   camera_map: dict[str, str] | None = None) -> dict[str, Any]:
    """predict_parts for an already loaded model (training.inference.LoadedModel or alike)."""
    mid = str(loaded.id)
    layer = default_layer(loaded)
    recipe = CamRecipe(layer=layer)
    todo = _todo(project, mid, parts, redo)
    if hasattr(loaded, "check_cameras"):  # before any work: a mismatch stops the whole run
        loaded.check_cameras([v.camera for p in todo for v in p.views], camera_map, exact=False,
                             what=f"{project.path.name}'s parts")
    counts = {"OK": 0, "NG": 0}
    failed: list[str] = []
    stopped = False
    t0 = time.monotonic()
    for k, part in enumerate(todo):
        if should_stop is not None and should_stop():
            stopped = True
            break
        try:
            pred = _predict_one(project, loaded, mid, part, layer, recipe, heatmaps, heat_px)
        except (OSError, ValueError, TrainingError) as exc:  # one unreadable part: say so, go on
            failed.append(f"part {part.id}: {exc}")
            continue
        project.add_prediction(part.id, pred)
        counts[pred.verdict.name] = counts.get(pred.verdict.name, 0) + 1
        if progress is not None:
            progress(Progress("predict", k + 1, len(todo), f"part {part.id}: {pred.verdict.name}",
                              PartPredicted(part.id, pred.verdict.name)))
    return {"model_id": mid, "layer": layer if heatmaps else None, "parts": len(todo),
            "predicted": sum(counts.values()), "verdicts": counts, "runtime": getattr(loaded, "runtime", "torch"), "failed": failed, "stopped": stopped,
            "seconds": round(time.monotonic() - t0, 3)}


def _predict_one(project: Project, loaded: Any, mid: str, part: Any, layer: str, recipe: CamRecipe,
                 heatmaps: bool, heat_px: int) -> Prediction:
    images = project.read_views(part.id)
    batch, geoms = loaded.prepare_batch(images, [v.camera for v in part.views])
    extra: dict[str, Any] = {}
    if heatmaps:
        cams, logits, _idx = gradcam_and_logits(loaded.model, batch, layer, loaded.cam_class,
                                                size=tuple(batch.shape[-2:]))
        probs = loaded.probabilities_of(logits.detach())
        maps = cams.detach().float().cpu().numpy()
        extra[HEATMAP_KEY] = [encode(m, heat_px) for m in to_full_image(maps, geoms, recipe)]
        extra["layer"] = layer
    else:
        probs = loaded.probabilities(batch)
    dec = loaded.decide_probs(probs, geoms)  # a class model proposes the class too
    return Prediction(mid, dec.verdict, tuple(round(float(s), 6) for s in dec.view_scores),
                      round(float(dec.confidence), 6), int(dec.defect_class), time.time(), extra)
