"""Evaluate a stored model on the project's current labels (`okng evaluate`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from labeling.progress import Progress, ProgressFn
from labeling.store import Project
from labeling.types import Verdict

from .errors import TrainingError
from .inference import aggregate, load_model, resolve_model_id
from .metrics import binary_report
from .snapshot import CLASS_NAMES, class_view_targets, view_targets


def evaluate_model(project_path: str | Path, model_id: str = "active", all_parts: bool = False,
                   device: str = "auto", progress: ProgressFn | None = None) -> dict[str, Any]:
    """Part- and view-level metrics at the model's threshold.

    Scope: the model's validation parts plus parts labelled since it was trained (data it never
    learned from), or every labelled part with all_parts (optimistic: includes training parts).
    """
    project = Project.open(project_path, readonly=True)
    mid = resolve_model_id(project, model_id)
    loaded = load_model(project, mid, device)
    seen = loaded.card.seen_part_ids
    val_ids = set(loaded.card.val_part_ids)
    parts = [p for p in project.parts() if p.verdict in (Verdict.OK, Verdict.NG) and p.views]
    if not all_parts:
        parts = [p for p in parts if p.id in val_ids or p.id not in seen]
    if not parts:
        raise TrainingError(f"no labelled parts to evaluate model {mid} on "
                            "(all were used for training: try --all)")
    task = loaded.task
    n_classes = len(project.settings.classes)
    names = list(loaded.class_names)
    part_y, part_s, view_y, view_s, part_t, part_p, view_p, view_t = [], [], [], [], [], [], [], []
    for i, p in enumerate(parts):
        images = project.read_views(p.id)
        cams = [v.camera for v in p.views]
        batch, geoms = loaded.prepare_batch(images, cams)
        probs = loaded.probabilities(batch)
        dec = loaded.decide_probs(probs, geoms)
        part_y.append(int(p.verdict == Verdict.NG))
        part_s.append(aggregate(dec.view_scores))
        rois = [g.roi for g in dec.geometries]
        if task.name == "verdict":
            view_y += view_targets(project, p.id, len(p.views), p.verdict == Verdict.NG, rois)
        elif p.label is not None and task.target(p.label, n_classes) is not None:
            part_t.append(task.target(p.label, n_classes))
            part_p.append(probs[int(np.argmax(dec.view_scores))])  # the deciding view's outputs
            view_t += class_view_targets(project, p.id, len(p.views), p.label, rois, task.name, n_classes)
            view_p += list(probs)
        view_s += dec.view_scores
        if progress is not None:
            progress(Progress("evaluate", i + 1, len(parts), f"part {p.id}"))
    thr = loaded.threshold
    out: dict[str, Any] = {"model_id": mid, "task": task.name, "classes": names,
                           "scope": "all labelled parts" if all_parts else "held-out parts", "threshold": thr}
    if task.name == "verdict":
        out["parts"] = binary_report(np.array(part_y), np.array(part_s), thr, CLASS_NAMES)
        out["views"] = binary_report(np.array(view_y), np.array(view_s), thr, CLASS_NAMES)
        return out
    if not part_t:
        raise TrainingError(f"no part with a defect class (or OK) to evaluate the {task.name} model {mid} on")
    th = loaded.thresholds
    out["thresholds"] = th
    out["parts"] = task.report(np.asarray(part_t), np.asarray(part_p), names, thr, th)
    out["views"] = task.report(np.asarray(view_t).astype(np.int64), np.asarray(view_p), names, thr, th)
    # Every labelled part in scope (NG without a class too) for the derived verdict.
    out["verdict"] = binary_report(np.array(part_y), np.array(part_s), thr, CLASS_NAMES)
    return out
