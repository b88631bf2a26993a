"""Mask proposals: a segmentation model's masks stored per view APART from the inspector's.

The Label view shows a proposal as an outline and `M` accepts it into the mask (undoable);
the store records how far each proposal is from the drawn mask (labeling.masktools.disagreement),
which the queue's "Proposal disagreement" order sorts by.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from labeling.progress import Progress, ProgressFn, StopFn
from labeling.store import Project, ProjectError

from ..errors import TrainingError
from .inference import load_segmenter


def propose_parts(project_path: str | Path, model_id: str, part_ids: Iterable[int] | None = None,
                  device: str = "auto", progress: ProgressFn | None = None,
                  should_stop: StopFn | None = None) -> dict[str, Any]:
    """Store proposals for the parts (default: all with views); a summary dict back (the keys
    of training.predict.predict_parts', so `okng predict` prints both alike)."""
    t0 = time.monotonic()
    project = Project.open(project_path)
    model = load_segmenter(project, model_id, device)
    ids = [p.id for p in project.parts() if p.views] if part_ids is None else [int(i) for i in part_ids]
    verdicts: dict[str, int] = {}
    failed: list[str] = []
    done = 0
    for k, pid in enumerate(ids):
        if should_stop is not None and should_stop():
            break
        try:
            part = project.part(pid)
            images = project.read_views(pid)
            decision, views = model.propose(images, [v.camera for v in part.views])
            for i, vp in enumerate(views):
                project.set_proposal(pid, i, vp.mask, model.id)
        except (OSError, ValueError, TrainingError, ProjectError) as exc:  # one bad part: say so, go on
            failed.append(f"part {pid}: {type(exc).__name__}: {exc}")
            continue
        verdicts[decision.verdict.name] = verdicts.get(decision.verdict.name, 0) + 1
        done += 1
        if progress is not None:
            progress(Progress("predict", k + 1, len(ids), f"proposals for part {pid}"))
    return {"model_id": model.id, "task": "segment", "parts": len(ids), "predicted": done, "verdicts": verdicts,
            "failed": failed, "seconds": time.monotonic() - t0, "layer": ""}
