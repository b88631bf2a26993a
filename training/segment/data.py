"""Views and their masks as segmentation samples: (normalised image, one channel per class).

Every labelled part takes part: OK parts with empty masks (they teach what is not a defect),
NG parts with the masks their inspector drew; an NG part with no mask on any view is left out
(its defect pixels are unknown, an empty target would teach the model to miss them). A view of
an NG part without a mask, next to masked views, counts as clean (as training.snapshot does).

Large views and long X-ray strips are fitted WHOLE into the model input (ROI crop then the
classifiers' letterbox, training.data), not tiled: proposals, the area rule and live sort then
see one map per view mapping back pixel for pixel through ViewGeometry, and one forward per
view keeps live sort within the classifiers' latency budget. For a long strip choose a
non-square input (e.g. 256x1024) so the letterbox does not squash it; tiny defects on large
photos are where tiles would do better (not done: see the issue).

Geometric augmentations (flips, 90-degree turns of square inputs) are applied to the image
and its mask together.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from labeling.progress import Progress, ProgressFn
from labeling.store import Project
from labeling.types import Verdict

from ..data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ViewGeometry,
    fit_content,
    fit_geometry,
    to_float_rgb,
    to_tensor,
    white_level,
)
from ..errors import TrainingError

# A mask pixel survives shrinking when it covers a quarter of the output pixel: thin cracks
# (1-2 px on a 1250 px image) would vanish under nearest-neighbour or a half-coverage rule.
MASK_COVERAGE = 0.25


@dataclass
class SegView:
    part_id: int
    view: int
    camera: str
    content: np.ndarray  # ROI fitted to the input, native dtype
    white: float
    geometry: ViewGeometry
    mask: np.ndarray  # (C, h, w) bool over the model input (padding is background)


@dataclass
class SegPart:
    part_id: int
    target: int  # 0 OK, 1 NG
    views: list[int]  # indices into SegSnapshot.views
    group: str | None = None  # the split's group_by field value (None: a group of its own)


@dataclass
class SegSnapshot:
    project_path: str
    classes: list[str]
    parts: list[SegPart]
    views: list[SegView]
    rois: dict[str, list[int]]
    input_size: tuple[int, int]
    skipped: list[int]  # NG parts left out: no mask drawn
    group_by: str | None = None

    def part_groups(self) -> list[str | None] | None:
        """Each part's group value (None without group_by), for training.splits."""
        return [p.group for p in self.parts] if self.group_by else None

    def part_targets(self) -> np.ndarray:
        return np.array([p.target for p in self.parts], dtype=np.int64)

    def view_indices(self, part_positions: Sequence[int]) -> list[int]:
        return [v for i in part_positions for v in self.parts[int(i)].views]

    def meta(self) -> dict:
        t = self.part_targets()
        return {"n_parts": len(self.parts), "n_views": len(self.views), "n_ok": int((t == 0).sum()),
                "n_ng": int(t.sum()), "skipped_ng_without_mask": list(self.skipped),
                "parts": [[p.part_id, "NG" if p.target else "OK", 0] for p in self.parts]}


def class_names(project: Project) -> list[str]:
    """The project's defect classes; one "defect" channel when it defines none."""
    return [c.name for c in project.settings.classes] or ["defect"]


def fit_mask(mask: np.ndarray | None, geom: ViewGeometry, n_classes: int) -> np.ndarray:
    """A full-image class-index mask -> (C, h, w) bool over the model input."""
    ih, iw = geom.input_size
    out = np.zeros((n_classes, ih, iw), dtype=bool)
    if mask is None or not mask.any():
        return out
    r = geom.roi
    crop = mask[r.y:r.y + r.h, r.x:r.x + r.w]
    ch, cw = geom.content_size
    top, left = geom.pad
    for c in range(n_classes):
        # Masks of a project without classes hold 1 (or 255 from some importers): any > 0.
        layer = (crop > 0) if n_classes == 1 else (crop == c + 1)
        if not layer.any():
            continue
        small = cv2.resize(layer.astype(np.float32), (cw, ch), interpolation=cv2.INTER_AREA)
        out[c, top:top + ch, left:left + cw] = small >= MASK_COVERAGE
    return out


def load_seg_snapshot(project_path: str | Path, input_size: tuple[int, int], progress: ProgressFn | None = None,
                      should_stop: Callable[[], bool] | None = None,
                      group_by: str | None = None) -> SegSnapshot | None:
    """Read every usable labelled part once (None if stopped while reading); group_by names a
    part field whose value keeps parts together in the split (training.splits)."""
    project = Project.open(project_path, readonly=True)
    names = class_names(project)
    labelled = [p for p in project.parts() if p.verdict in (Verdict.OK, Verdict.NG) and p.views]
    if group_by and not any(p.fields.get(group_by) not in (None, "") for p in labelled):
        raise TrainingError(f"no labelled part has a field {group_by!r} to group by")
    rois = dict(project.settings.rois)
    parts: list[SegPart] = []
    views: list[SegView] = []
    skipped: list[int] = []
    for i, p in enumerate(labelled):
        if should_stop is not None and should_stop():
            return None
        ng = p.verdict == Verdict.NG
        if ng and not any(v.has_mask for v in p.views):
            skipped.append(p.id)
            continue
        group = p.fields.get(group_by) if group_by else None
        item = SegPart(p.id, int(ng), [], None if group in (None, "") else str(group))
        for k, v in enumerate(p.views):
            g = fit_geometry(v.shape[:2], rois.get(v.camera), input_size, "letterbox")
            img = project.read_image(p.id, k, roi=g.roi)
            if img.ndim == 3 and img.shape[2] == 1:
                img = img[:, :, 0]
            mask = project.read_mask(p.id, k) if v.has_mask else None
            item.views.append(len(views))
            views.append(SegView(p.id, k, v.camera, fit_content(img, g), white_level(img), g,
                                 fit_mask(mask, g, len(names))))
        parts.append(item)
        if progress is not None:
            progress(Progress("load", i + 1, len(labelled), "reading parts and masks"))
    t = np.array([p.target for p in parts])
    if (t == 1).sum() < 2 or len(parts) < 4:
        raise TrainingError(f"{Path(project_path).name}: segmentation needs at least 2 NG parts with masks and "
                            f"4 parts in all; the project has {int((t == 1).sum())} NG parts with masks "
                            f"({len(skipped)} NG without) and {len(parts)} usable parts")
    return SegSnapshot(str(project_path), names, parts, views, {k: r.to_list() for k, r in rois.items()},
                       tuple(input_size), skipped, group_by)


def view_tensor(v: SegView, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    return to_tensor(to_float_rgb(v.content, v.white), v.geometry, mean, std)


def augment_pair(x: torch.Tensor, m: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random flips / quarter turn on an image (3, h, w) and its mask (C, h, w)."""
    if rng.random() < 0.5:
        x, m = x.flip(-1), m.flip(-1)
    if rng.random() < 0.5:
        x, m = x.flip(-2), m.flip(-2)
    if x.shape[-1] == x.shape[-2] and rng.random() < 0.5:
        x, m = x.rot90(1, (-2, -1)), m.rot90(1, (-2, -1))
    return x, m


def make_batch(snap: SegSnapshot, idx: Sequence[int], rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, h, w) inputs and (N, C, h, w) float targets; augmented when rng is given."""
    xs, ms = [], []
    for i in idx:
        v = snap.views[int(i)]
        x, m = view_tensor(v), torch.from_numpy(v.mask.astype(np.float32))
        if rng is not None:
            x, m = augment_pair(x, m, rng)
        xs.append(x.contiguous())
        ms.append(m.contiguous())
    return torch.stack(xs), torch.stack(ms)
