"""Augmentation preview: the exact training-time pipeline, rendered as images to look at."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from labeling.store import Project

from .backbones import get_backbone
from .config import TrainConfig
from .data import fit_content, fit_geometry, to_float_rgb, white_level
from .transforms import augment


def preview_augmentations(project: Project | str | Path, part_id: int, config: TrainConfig, n: int = 8,
                          view: int = 0, seed: int = 0) -> list[np.ndarray]:
    """n augmented versions of one view as uint8 RGB (h, w, 3) at the model input size.

    The same crop/fit/augment code as training; padding shows as black so the letterbox is visible.
    """
    if not isinstance(project, Project):
        project = Project.open(project, readonly=True)
    part = project.part(part_id)
    if not 0 <= view < len(part.views):
        raise ValueError(f"part {part_id} has {len(part.views)} views, not view {view}")
    info = part.views[view]
    size = config.input_hw(get_backbone(config.arch).input_size)
    geom = fit_geometry(info.shape[:2], project.settings.rois.get(info.camera), size, config.fit)
    img = project.read_image(part_id, view, roi=geom.roi)
    content = fit_content(img, geom)
    base = to_float_rgb(content, white_level(img))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(n)):
        x = augment(base, config.augment, rng, content.ndim == 2)
        canvas = np.zeros((*size, 3), dtype=np.uint8)
        top, left = geom.pad
        ch, cw = geom.content_size
        canvas[top:top + ch, left:left + cw] = (x * 255 + 0.5).astype(np.uint8)
        out.append(canvas)
    return out
