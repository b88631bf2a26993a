"""A consistent snapshot of the project's labelled parts, read once when training starts.

Labels come from one read of the index and the event log (one transaction), so a label written
meanwhile by another process (the workstation) is either wholly in or wholly out; pixels are
immutable once stored. The snapshot keeps each view's ROI already fitted to the input size in
its native dtype (uint8 or uint16), which keeps memory low and leaves augmentation to each epoch.
Splits (training/splits.py) are stratified and BY PART: the views of one part never straddle
two sets.

The model task (training/tasks.py) sets the targets: OK/NG for `verdict`, the class index (0 =
OK) for `classes`, a 0/1 vector over the defect classes for `multilabel`. Masks refine them per
view, as for verdicts: a view of an NG part whose mask shows no defect inside the ROI is an OK
view; one whose mask does shows the classes painted there (the class covering most pixels for
`classes`). Splits stratify by verdict, class, or main class (multilabel).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labeling.progress import Progress, ProgressFn
from labeling.store import Project
from labeling.types import ROI, Label, Verdict

from .data import ViewGeometry, fit_content, fit_geometry, white_level
from .errors import TrainingError
from .splits import kfold, split_parts

CLASS_NAMES = ["OK", "NG"]


@dataclass
class ViewItem:
    part_id: int
    view: int
    camera: str
    target: Any  # the task's target: 0 OK / 1 NG, a class index, or a 0/1 vector (multilabel)
    content: np.ndarray  # ROI fitted to the input, native dtype
    white: float
    geometry: ViewGeometry
    # Where the inspector's mask says the defect is, fitted like `content` (uint8 coverage,
    # 0..255); None with mask_known: no defect anywhere in the view (an OK part, or a view the
    # part's masks leave clean); mask_known False: an NG view without a mask (where is unknown).
    mask: np.ndarray | None = None
    mask_known: bool = False

    @property
    def gray(self) -> bool:
        return self.content.ndim == 2


@dataclass
class PartItem:
    part_id: int
    verdict: Verdict
    defect_class: int
    views: list[int] = field(default_factory=list)  # indices into Snapshot.views
    classes: tuple[int, ...] = ()  # every defect class of the label (main first)
    label_target: Any = None  # the task's target of the whole part (None: verdict)
    group: str | None = None  # the value of the split's group_by field (None: a group of its own)

    @property
    def target(self) -> int:
        """The stratum of the part: 0 OK / 1 NG (verdict), its class (0 = OK) otherwise."""
        if self.label_target is None:
            return int(self.verdict == Verdict.NG)
        if isinstance(self.label_target, np.ndarray):
            return self.classes[0] if self.classes else 0
        return int(self.label_target)

    @property
    def ng(self) -> int:
        return int(self.verdict == Verdict.NG)


@dataclass
class Snapshot:
    project_path: str
    parts: list[PartItem]
    views: list[ViewItem]
    rois: dict[str, list[int]]
    input_size: tuple[int, int]
    fit: str
    task: str = "verdict"
    output_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    skipped: int = 0  # labelled parts the task cannot use (NG without a class for a class task)

    group_by: str | None = None

    def part_groups(self) -> list[str | None] | None:
        """Each part's group value (None without group_by)."""
        return [p.group for p in self.parts] if self.group_by else None

    def cameras(self) -> list[str]:
        """The cameras of the training views, in first-seen order (what the model expects)."""
        return list(dict.fromkeys(v.camera for v in self.views))

    def part_targets(self) -> np.ndarray:
        """The stratum per part (what splits balance): verdict, class, or main class."""
        return np.array([p.target for p in self.parts], dtype=np.int64)

    def part_labels(self, positions: Sequence[int]) -> np.ndarray:
        """The task's targets of these parts (for metrics): ints, or a (n, K) 0/1 matrix."""
        items = [self.parts[int(i)] for i in positions]
        if self.task == "multilabel":
            k = len(self.output_names)
            return np.array([p.label_target for p in items], dtype=np.int64).reshape(-1, k)
        return np.array([p.target for p in items], dtype=np.int64)

    def view_indices(self, part_positions: Sequence[int]) -> list[int]:
        return [v for i in part_positions for v in self.parts[i].views]

    def _rows(self) -> list[list[Any]]:
        # One class per part as before (a verdict snapshot hashes as it always did); several
        # classes add a fourth column.
        return [[p.part_id, p.verdict.name, p.defect_class, *([list(p.classes)] if len(p.classes) > 1 else [])]
                for p in self.parts]

    def label_hash(self) -> str:
        rows = self._rows()
        blob = json.dumps({"parts": rows, "rois": self.rois, "input": list(self.input_size), "fit": self.fit},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def meta(self) -> dict:
        """What the registry records: which parts with which labels, and a hash of it."""
        return {"hash": self.label_hash(), "n_parts": len(self.parts), "n_views": len(self.views),
                "n_ok": sum(1 - p.ng for p in self.parts), "n_ng": sum(p.ng for p in self.parts),
                "task": self.task, "parts": self._rows()}


def part_masks(project: Project, pid: int, n_views: int) -> list[np.ndarray | None]:
    """The inspector's mask of each view of a part (None where there is none), read once."""
    part = project.part(pid)
    return [project.read_mask(pid, k) if k < len(part.views) and part.views[k].has_mask else None
            for k in range(n_views)]


def view_targets(project: Project, pid: int, n_views: int, ng: bool, rois: list[ROI],
                 masks: list[np.ndarray | None] | None = None) -> list[int]:
    """NG parts: views whose mask shows a defect inside the ROI are NG, the rest OK; without
    any such mask every view of an NG part counts as NG (the inspector judged the part).
    `masks`: the part's masks when already read (part_masks)."""
    if not ng:
        return [0] * n_views
    masks = part_masks(project, pid, n_views) if masks is None else masks
    if not any(m is not None for m in masks):
        return [1] * n_views
    out = []
    for k in range(n_views):
        m = masks[k]
        r = rois[k]
        out.append(int(m is not None and bool(m[r.y:r.y + r.h, r.x:r.x + r.w].any())))
    return out if any(out) else [1] * n_views


def class_view_targets(project: Project, pid: int, n_views: int, label: Label, rois: list[ROI],
                       task: str, n_classes: int, masks: list[np.ndarray | None] | None = None) -> list[Any]:
    """Per-view targets of a class task (see the module docstring); label is OK or NG with a class.
    `masks`: the part's masks when already read (part_masks)."""
    multi = task == "multilabel"

    def hot(classes: Sequence[int]) -> np.ndarray:
        y = np.zeros(n_classes, np.float32)
        y[[c - 1 for c in classes if 0 < c <= n_classes]] = 1.0
        return y
    whole: Any = hot(label.classes) if multi else label.defect_class
    if label.verdict != Verdict.NG:
        return [hot(()) if multi else 0 for _ in range(n_views)]
    masks = part_masks(project, pid, n_views) if masks is None else masks
    if not any(m is not None for m in masks):
        return [whole] * n_views
    out: list[Any] = []
    for k in range(n_views):
        m = masks[k]
        r = rois[k]
        counts = np.bincount(m[r.y:r.y + r.h, r.x:r.x + r.w].ravel(), minlength=256) if m is not None \
            else np.zeros(256, np.int64)
        painted = [c for c in np.argsort(-counts[1:n_classes + 1], kind="stable") + 1 if counts[c]]
        if not counts[1:].any():
            out.append(hot(()) if multi else 0)  # no defect in this view's ROI: an OK view
        elif not painted:
            out.append(whole)  # painted without a class (value 255): the label's classes
        else:
            out.append(hot(painted) if multi else int(painted[0]))
    empty = all((not y.any()) if multi else y == 0 for y in out)
    return [whole] * n_views if empty else out


def view_masks(masks: list[np.ndarray | None] | None, geoms: Sequence[ViewGeometry]
               ) -> list[tuple[np.ndarray | None, bool]]:
    """(fitted defect coverage or None, known) per view, for mask-guided training
    (training.mask_guide); `masks` is an NG part's (part_masks), None for an OK part. An NG
    part's masks speak for all its views only when one of them shows a defect inside its ROI
    (the rule of view_targets); otherwise where is unknown."""
    if masks is None:
        return [(None, True)] * len(geoms)
    out: list[tuple[np.ndarray | None, bool]] = []
    for g, m in zip(geoms, masks):
        r = g.roi
        inside = None if m is None else m[r.y:r.y + r.h, r.x:r.x + r.w]
        if inside is None or not inside.any():
            out.append((None, True))
            continue
        # Area-fitted coverage: a defect thinner than an input pixel keeps a non-zero trace.
        out.append((fit_content(np.where(inside > 0, 255, 0).astype(np.uint8), g), True))
    if not any(m is not None for m, _ in out):
        return [(None, False)] * len(geoms)
    return out


def _check_counts(name: str, task: str, items: list[PartItem], names: list[str]) -> None:
    if task == "verdict":
        n_ok = sum(p.verdict == Verdict.OK for p in items)
        n_ng = len(items) - n_ok
        if n_ok < 2 or n_ng < 2:
            raise TrainingError(f"{name}: training needs at least 2 OK and 2 NG labelled "
                                f"parts, the project has {n_ok} OK and {n_ng} NG")
        return
    if task == "multilabel":
        names = ["OK", *names]  # the strata: OK, or the main class
    counts = np.bincount([p.target for p in items], minlength=len(names))
    usable = [names[i] for i, c in enumerate(counts) if c >= 2]
    if len(usable) < 2:
        have = ", ".join(f"{names[i]} {c}" for i, c in enumerate(counts)) or "none"
        raise TrainingError(f"{name}: a {task} model needs at least 2 parts in each of 2 classes "
                            f"(OK counts as a class; NG parts need a defect class): the project has {have}")


def load_snapshot(project_path: str | Path, input_size: tuple[int, int], fit: str = "letterbox",
                  progress: ProgressFn | None = None,
                  should_stop: Callable[[], bool] | None = None, task: str = "verdict",
                  group_by: str | None = None) -> Snapshot | None:
    """Read every labelled part once (None if stopped while reading).

    group_by names a part field (an extra import column such as "item"); a project where no
    labelled part has it is an error, not a silent split by part."""
    from .tasks import get_task
    t = get_task(task)
    project = Project.open(project_path, readonly=True)
    class_names = [c.name for c in project.settings.classes]
    n_classes = len(class_names)
    names = t.output_names(class_names)
    labelled = [p for p in project.parts() if p.verdict in (Verdict.OK, Verdict.NG) and p.views]
    usable = [p for p in labelled if t.target(p.label, n_classes) is not None]
    skipped = len(labelled) - len(usable)
    labelled = usable
    _check_counts(Path(project_path).name, task,
                  [PartItem(p.id, p.verdict, p.label.defect_class, [], p.label.classes,
                            None if task == "verdict" else t.target(p.label, n_classes)) for p in labelled], names)
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
        assert label is not None
        group = p.fields.get(group_by) if group_by else None
        item = PartItem(p.id, p.verdict, label.defect_class, [], label.classes,
                        None if task == "verdict" else t.target(label, n_classes), group=group or None)
        geoms = [fit_geometry(v.shape[:2], rois.get(v.camera), input_size, fit) for v in p.views]
        ng = p.verdict == Verdict.NG
        drawn = part_masks(project, p.id, len(p.views)) if ng else None  # read once: targets and guide
        if task == "verdict":
            targets = view_targets(project, p.id, len(p.views), ng, [g.roi for g in geoms], drawn)
        else:
            targets = class_view_targets(project, p.id, len(p.views), label, [g.roi for g in geoms], task,
                                         n_classes, drawn)
        masks = view_masks(drawn, geoms)
        for k, v in enumerate(p.views):
            g = geoms[k]
            img = project.read_image(p.id, k, roi=g.roi)
            if img.ndim == 3 and img.shape[2] == 1:
                img = img[:, :, 0]
            content = fit_content(img, g)
            white = white_level(img)
            item.views.append(len(views))
            views.append(ViewItem(p.id, k, v.camera, targets[k], content, white, g, *masks[k]))
        parts.append(item)
        if progress is not None:
            progress(Progress("load", i + 1, len(labelled), "reading parts"))
    return Snapshot(str(project_path), parts, views, {k: r.to_list() for k, r in rois.items()},
                    tuple(input_size), fit, task, names, skipped, group_by)


def stratified_split(targets: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Part positions (train, val), stratified by verdict (training.splits without a test set)."""
    s = split_parts(targets, val_fraction, 0.0, seed)
    return s.train, s.val


def stratified_kfold(targets: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, val) part-position splits; every part is validated exactly once (training.splits)."""
    return kfold(targets, k, seed)
