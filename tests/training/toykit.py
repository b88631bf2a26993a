"""Tiny separable projects built in tmp_path: NG parts carry a bright blob, OK parts do not."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from labeling.store import Project
from labeling.types import BOLT_CLASSES, Label, Settings, Verdict


def make_toy_project(path: Path, n_ok: int = 12, n_ng: int = 12, size: tuple[int, int] = (48, 64),
                     views: int = 2, dtype: str = "uint8", seed: int = 0, masks: bool = False) -> Path:
    """Separable toy data: noise everywhere, a bright 10x10 blob on one view of each NG part."""
    rng = np.random.default_rng(seed)
    settings = Settings(name="toy", cameras=[f"cam{i}" for i in range(views)], classes=list(BOLT_CLASSES))
    proj = Project.create(path, settings)
    top = 255 if dtype == "uint8" else 4095
    h, w = size
    for i in range(n_ok + n_ng):
        ng = i >= n_ok
        imgs, ms = [], []
        hot = int(rng.integers(0, views))
        for k in range(views):
            img = rng.normal(0.3 * top, 0.05 * top, size=(h, w)).clip(0, top).astype(dtype)
            m = np.zeros((h, w), np.uint8)
            if ng and k == hot:
                y, x = int(rng.integers(2, h - 12)), int(rng.integers(2, w - 12))
                img[y:y + 10, x:x + 10] = int(0.95 * top)
                m[y:y + 10, x:x + 10] = 1
            imgs.append(img)
            ms.append(m if (masks and ng) else None)
        label = Label(Verdict.NG, 1) if ng else Label(Verdict.OK)
        proj.add_part(imgs, masks=ms if masks else None, label=label, name=f"p{i}")
    return path
