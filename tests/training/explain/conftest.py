"""Shared by the explain tests: one torch thread (on a loaded 2-core machine OpenMP threads
spin against each other: measured 10x slower with 2 threads than with 1) and a tiny project."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from labeling.store import Project
from labeling.types import BOLT_CLASSES, Label, Settings, Verdict

H, W = 48, 64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _make_project(path: Path, jig: bool, n: int = 12, seed: int = 0) -> Project:
    rng = np.random.default_rng(seed)
    proj = Project.create(path, Settings(name="t", cameras=["cam0", "cam1"], classes=list(BOLT_CLASSES)))
    for i in range(n):
        ng = i % 2 == 1
        imgs, masks = [], []
        for k in range(2):
            img = rng.normal(70, 8, (H, W)).clip(0, 255).astype(np.uint8)
            m = np.zeros((H, W), np.uint8)
            if jig:
                img[2:12, 2:14] = 255  # the clamp, polished: brightest thing in every view
            if ng and k == 0:
                y, x = int(rng.integers(20, 36)), int(rng.integers(24, 52))
                img[y:y + 8, x:x + 8] = 220
                m[y:y + 8, x:x + 8] = 1
            imgs.append(np.repeat(img[:, :, None], 3, axis=2))
            masks.append(m if m.any() else None)
        proj.add_part(imgs, masks=masks, label=Label(Verdict.NG, 1) if ng else Label(Verdict.OK))
    return proj


@pytest.fixture(scope="session")
def make_project() -> Callable[..., Project]:
    """Two-camera project: noise views, NG parts carry a bright 8x8 defect (masked) on cam0;
    with jig=True every view also shows a brighter clamp in its top-left corner."""
    return _make_project
