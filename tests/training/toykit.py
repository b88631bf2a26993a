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


def draw_defect(img: np.ndarray, cls: int, rng: np.random.Generator, top: int = 255) -> np.ndarray:
    """Paint defect class 1..4 (bar across, bar down, bright square, dark square); returns its mask."""
    h, w = img.shape[:2]
    m = np.zeros((h, w), np.uint8)
    y, x = int(rng.integers(2, h - 14)), int(rng.integers(2, w - 14))
    box = {1: (slice(y, y + 4), slice(2, w - 2)), 2: (slice(2, h - 2), slice(x, x + 4)),
           3: (slice(y, y + 12), slice(x, x + 12)), 4: (slice(y, y + 12), slice(x, x + 12))}[cls]
    img[box] = 0 if cls == 4 else int(0.95 * top)
    m[box] = cls
    return m


def make_class_project(path: Path, per_class: int = 10, n_ok: int = 10, size: tuple[int, int] = (48, 64),
                       views: int = 2, seed: int = 0, masks: bool = True, multi: int = 0,
                       ok_parts: bool = True) -> Path:
    """Four defect classes that look different (draw_defect) on one view of each NG part; `multi`
    more parts carry two classes (on two views); OK parts are plain noise (none if not ok_parts).
    The generator's truth is each part's label (classes main first)."""
    rng = np.random.default_rng(seed)
    settings = Settings(name="classes", cameras=[f"cam{i}" for i in range(views)], classes=list(BOLT_CLASSES))
    proj = Project.create(path, settings)
    h, w = size
    plan: list[tuple[int, ...]] = [()] * (n_ok if ok_parts else 0)
    plan += [(c,) for c in range(1, 5) for _ in range(per_class)]
    plan += [tuple(int(c) for c in rng.choice(np.arange(1, 5), 2, replace=False)) for _ in range(multi)]
    for i, classes in enumerate(plan):
        imgs = [rng.normal(80, 12, size=(h, w)).clip(0, 255).astype(np.uint8) for _ in range(views)]
        ms: list[np.ndarray | None] = [None] * views
        spots = rng.permutation(views)
        for c, k in zip(classes, spots):
            ms[int(k)] = draw_defect(imgs[int(k)], c, rng)
        label = Label(Verdict.NG, classes=classes) if classes else Label(Verdict.OK)
        proj.add_part(imgs, masks=ms if masks and classes else None, label=label, name=f"p{i}")
    return path
