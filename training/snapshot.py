"""A consistent snapshot of the project's labelled parts, read once when training starts.

Labels come from one read of the index and the event log (one transaction), so a label written
meanwhile by another process (the workstation) is either wholly in or wholly out; pixels are
immutable once stored. The snapshot keeps each view's ROI already fitted to the input size in
its native dtype (uint8 or uint16), which keeps memory low and leaves augmentation to each epoch.
Splits (training/splits.py) are stratified and BY PART: the views of one part never straddle
two sets.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labeling.progress import Progress, ProgressFn
from labeling.store import Project
from labeling.types import ROI, Verdict

from .data import ViewGeometry, fit_content, fit_geometry, white_level
from .errors import TrainingError
from .splits import kfold, split_parts

CLASS_NAMES = ["OK", "NG"]


@dataclass
class ViewItem:
    part_id: int
    view: int
    camera: str
    target: int  # 0 OK, 1 NG
    content: np.ndarray  # ROI fitted to the input, native dtype
    white: float
    geometry: ViewGeometry

    @property
    def gray(self) -> bool:
        return self.content.ndim == 2


@dataclass
class PartItem:
    part_id: int
    verdict: Verdict
    defect_class: int
    views: list[int] = field(default_factory=list)  # indices into Snapshot.views
    group: str | None = None  # the value of the split's group_by field (None: a group of its own)

    @property
    def target(self) -> int:
        return int(self.verdict == Verdict.NG)


@dataclass
class Snapshot:
    project_path: str
    parts: list[PartItem]
    views: list[ViewItem]
    rois: dict[str, list[int]]
    input_size: tuple[int, int]
    fit: str

    group_by: str | None = None

    def part_groups(self) -> list[str | None] | None:
        """Each part's group value (None without group_by)."""
        return [p.group for p in self.parts] if self.group_by else None

    def cameras(self) -> list[str]:
        """The cameras of the training views, in first-seen order (what the model expects)."""
        return list(dict.fromkeys(v.camera for v in self.views))

    def part_targets(self) -> np.ndarray:
        return np.array([p.target for p in self.parts], dtype=np.int64)

    def view_indices(self, part_positions: Sequence[int]) -> list[int]:
        return [v for i in part_positions for v in self.parts[i].views]

    def label_hash(self) -> str:
        rows = [[p.part_id, p.verdict.name, p.defect_class] for p in self.parts]
        blob = json.dumps({"parts": rows, "rois": self.rois, "input": list(self.input_size), "fit": self.fit},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def meta(self) -> dict:
        """What the registry records: which parts with which labels, and a hash of it."""
        return {"hash": self.label_hash(), "n_parts": len(self.parts), "n_views": len(self.views),
                "n_ok": int((self.part_targets() == 0).sum()), "n_ng": int(self.part_targets().sum()),
                "parts": [[p.part_id, p.verdict.name, p.defect_class] for p in self.parts]}


def view_targets(project: Project, pid: int, n_views: int, ng: bool, rois: list[ROI]) -> list[int]:
    """NG parts: views whose mask shows a defect inside the ROI are NG, the rest OK; without
    any such mask every view of an NG part counts as NG (the inspector judged the part)."""
    if not ng:
        return [0] * n_views
    part = project.part(pid)
    if not any(v.has_mask for v in part.views):
        return [1] * n_views
    out = []
    for k in range(n_views):
        m = project.read_mask(pid, k) if part.views[k].has_mask else None
        r = rois[k]
        out.append(int(m is not None and bool(m[r.y:r.y + r.h, r.x:r.x + r.w].any())))
    return out if any(out) else [1] * n_views


def load_snapshot(project_path: str | Path, input_size: tuple[int, int], fit: str = "letterbox",
                  progress: ProgressFn | None = None,
                  should_stop: Callable[[], bool] | None = None, group_by: str | None = None) -> Snapshot | None:
    """Read every labelled part once (None if stopped while reading).

    group_by names a part field (an extra import column such as "item"); a project where no
    labelled part has it is an error, not a silent split by part."""
    project = Project.open(project_path, readonly=True)
    labelled = [p for p in project.parts() if p.verdict in (Verdict.OK, Verdict.NG) and p.views]
    n_ok = sum(p.verdict == Verdict.OK for p in labelled)
    n_ng = len(labelled) - n_ok
    if n_ok < 2 or n_ng < 2:
        raise TrainingError(f"{Path(project_path).name}: training needs at least 2 OK and 2 NG labelled "
                            f"parts, the project has {n_ok} OK and {n_ng} NG")
    if group_by and not any(p.fields.get(group_by) not in (None, "") for p in labelled):
        known = sorted({k for p in labelled for k in p.fields})
        raise TrainingError(f"no labelled part has a field {group_by!r} to group by "
                            f"(fields of the parts: {', '.join(known) or 'none'})")
    rois = dict(project.settings.rois)
    parts: list[PartItem] = []
    views: list[ViewItem] = []
    for i, p in enumerate(labelled):
        if should_stop is not None and should_stop():
            return None
        label = p.label
        group = p.fields.get(group_by) if group_by else None
        item = PartItem(p.id, p.verdict, label.defect_class if label else 0, group=group or None)
        geoms = [fit_geometry(v.shape[:2], rois.get(v.camera), input_size, fit) for v in p.views]
        targets = view_targets(project, p.id, len(p.views), p.verdict == Verdict.NG, [g.roi for g in geoms])
        for k, v in enumerate(p.views):
            g = geoms[k]
            img = project.read_image(p.id, k, roi=g.roi)
            if img.ndim == 3 and img.shape[2] == 1:
                img = img[:, :, 0]
            content = fit_content(img, g)
            white = white_level(img)
            item.views.append(len(views))
            views.append(ViewItem(p.id, k, v.camera, targets[k], content, white, g))
        parts.append(item)
        if progress is not None:
            progress(Progress("load", i + 1, len(labelled), "reading parts"))
    return Snapshot(str(project_path), parts, views, {k: r.to_list() for k, r in rois.items()},
                    tuple(input_size), fit, group_by)


def stratified_split(targets: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Part positions (train, val), stratified by verdict (training.splits without a test set)."""
    s = split_parts(targets, val_fraction, 0.0, seed)
    return s.train, s.val


def stratified_kfold(targets: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, val) part-position splits; every part is validated exactly once (training.splits)."""
    return kfold(targets, k, seed)
