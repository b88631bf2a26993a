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

    Scope: parts the model never trained on and made no choice on: its held-out TEST parts plus
    parts labelled since it was trained (a card from before the test split: its validation
    parts, which chose its epoch and threshold, said so in the scope). all_parts scores every
    labelled part (optimistic: it includes the training parts, and the scope says so).
    """
    project = Project.open(project_path, readonly=True)
    mid = resolve_model_id(project, model_id)
    loaded = load_model(project, mid, device)
    card = loaded.card
    seen = card.seen_part_ids
    held = set(card.held_out_part_ids)
    parts = [p for p in project.parts() if p.verdict in (Verdict.OK, Verdict.NG) and p.views]
    if all_parts:
        scope = "ALL labelled parts, training parts included (optimistic)"
    else:
        parts = [p for p in parts if p.id in held or p.id not in seen]
        n_new = sum(p.id not in seen for p in parts)
        scope = (f"held-out test parts ({len(parts) - n_new}) and parts labelled since training ({n_new})"
                 if card.headline_split == "test" else
                 f"validation parts ({len(parts) - n_new}: they chose this older model's epoch and threshold) "
                 f"and parts labelled since training ({n_new})")
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
    out: dict[str, Any] = {"model_id": mid, "task": task.name, "classes": names, "scope": scope,
                           "split": "all" if all_parts else card.headline_split, "threshold": thr}
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
