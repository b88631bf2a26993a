"""The Label mode's long work, Qt-free: pre-labeling a project, and reading a part for display.

``run_session(spec, progress, should_stop)`` is pre-labeling in the shape of
hardware/sort/session.py: a picklable spec in, progress reports out, a summary dict back. The
workstation runs it in a child process (app.child.in_child), `okng predict` in its own. The run opens its own Project handle from the path;
the window then reloads its handle on its store-writer thread.

``load_part(project, part_id)`` reads what the Label view shows of a part (views, masks,
thumbnails, heatmaps in the one convention of training/explain/heatmaps.py); the view runs it
in a Worker on an immutable snapshot of the window's project (Project.snapshot).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeling.images import thumbnail
from labeling.progress import ProgressFn
from labeling.store import Project

from . import core_share
from .explain.heatmaps import HEAT_PX, model_geometry, read_heatmaps


@dataclass(frozen=True)
class PredictSpec:
    """What to pre-label with: everything a child process needs, picklable."""

    project_path: str
    model_id: str = "active"
    parts: tuple[int, ...] | None = None  # None: every part with views
    redo: bool = False  # also the parts this model already predicted
    heatmaps: bool = True
    heat_px: int = HEAT_PX
    device: str = "auto"
    camera_map: tuple[tuple[str, str], ...] = ()  # (part camera, model camera) pairs (training.cameras)


def run_session(spec: PredictSpec, progress: ProgressFn | None = None,
                should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Pre-label the spec's parts and store the predictions; the summary dict of predict_parts
    (a stopped run keeps, and reports, what it finished)."""
    from .card import read_card
    from .inference import resolve_model_id
    project = Project.open(spec.project_path, readonly=True)
    mid = resolve_model_id(project, spec.model_id)
    if read_card(project, mid).task == "segment":  # mask proposals, kept apart from the masks
        from .segment.propose import propose_parts
        return propose_parts(spec.project_path, mid, spec.parts, spec.device, progress, should_stop)
    from .predict import predict_parts  # loads torch: not when the view only reads parts

    def relay(p: Any) -> None:  # after each part: a training started or ended beside it
        core_share.rebalance()
        if progress is not None:
            progress(p)
    # Pre-labeling a large project beside a training is two runs on one CPU: it takes its share.
    with core_share.session():
        return predict_parts(Path(spec.project_path), spec.model_id, spec.parts, spec.redo, spec.heatmaps,
                             spec.heat_px, spec.device, progress=relay, should_stop=should_stop,
                             camera_map=dict(spec.camera_map))


def load_part(project: Project, part_id: int, thumb_px: int = 160, progress: Any = None,
              should_stop: Any = None) -> dict[str, Any]:
    """A part's views, masks, view thumbnails and full-image heatmaps (0..1) for display."""
    part = project.part(part_id)
    images = project.read_views(part_id)
    masks = [project.read_mask(part_id, i) if v.has_mask else None for i, v in enumerate(part.views)]
    proposals = [project.read_proposal(part_id, i) for i in range(len(part.views))]
    return {"part": part_id, "images": images, "masks": masks,
            "proposals": [p[0] if p is not None else None for p in proposals],
            "thumbs": [thumbnail(im, thumb_px) for im in images],
            "heatmaps": read_heatmaps(part, model_geometry(project))}
