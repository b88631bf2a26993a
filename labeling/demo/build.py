"""Build a labelled demo project from the generators (the embedded default, `okng demo`).

Bolt projects deliberately start WITHOUT ROIs: a model trained on the full frames can learn the
planted jig/lighting shortcut, and the Grad-CAM agreement report should find it. The ROI that
fixes it (the coated thread) is stored in settings.extra["demo"]["suggested_roi"] for the docs
and tests, not applied.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..progress import Progress, ProgressFn
from ..store import Project
from ..types import (
    BOLT_CLASSES,
    XRAY_CLASSES,
    Label,
    PartSource,
    ProjectKind,
    Role,
    Settings,
    User,
    Verdict,
)
from . import bolts, xray

GENERATOR_VERSION = 1
DEMO_USER = User("demo", Role.INSPECTOR)
Rendered = tuple[list[np.ndarray], list[np.ndarray], Verdict, int, dict[str, Any]]


@dataclass(frozen=True)
class DemoKind:
    """How to make one kind of demo project: its settings and how to render part i."""

    settings: Callable[[str, int, tuple[int, int]], Settings]
    render: Callable[[int, int, tuple[int, int]], Rendered]
    min_size: tuple[int, int]  # smallest (width, height) the generator accepts


def _bolt_settings(name: str, seed: int, size: tuple[int, int]) -> Settings:
    return Settings(name=name, kind=ProjectKind.MULTI_CAMERA, cameras=list(bolts.CAMERAS),
                    classes=list(BOLT_CLASSES), rois={},
                    extra={"demo": {"kind": "bolts", "seed": seed, "size": list(size),
                                    "version": GENERATOR_VERSION,
                                    "suggested_roi": bolts.thread_roi(size).to_list()}})


def _bolt_render(index: int, seed: int, size: tuple[int, int]) -> Rendered:
    p = bolts.render_part(index, seed, size)
    return p.views, p.masks, p.verdict, p.defect_class, p.truth


def _xray_settings(name: str, seed: int, size: tuple[int, int]) -> Settings:
    return Settings(name=name, kind=ProjectKind.LINE_SCAN, cameras=["xray"], classes=list(XRAY_CLASSES),
                    rois={}, extra={"demo": {"kind": "xray", "seed": seed, "width": size[0],
                                             "lines": size[1], "version": GENERATOR_VERSION}})


def _xray_render(index: int, seed: int, size: tuple[int, int]) -> Rendered:
    img, mask, verdict, cls, truth = xray._product(index, seed, lines=size[1], width=size[0])
    return [img], [mask], verdict, cls, truth


KINDS: dict[str, DemoKind] = {
    "bolts": DemoKind(_bolt_settings, _bolt_render, (32, 32)),
    "xray": DemoKind(_xray_settings, _xray_render, (16, 8)),
}


def make_demo_project(path: str | Path, kind: str = "bolts", parts: int = 40, seed: int = 0,
                      size: tuple[int, int] = (640, 480), overwrite: bool = False,
                      progress: ProgressFn | None = None,
                      should_stop: Callable[[], bool] | None = None,
                      user: User = DEMO_USER) -> Project:
    """Create a labelled demo project at `path` (bolts: WxH views; xray: W px wide, H lines a product).

    Each part carries its label by `user`, its masks (all-zero for OK) and meta["truth"]. Stopping
    early (should_stop() true) leaves a valid project with the parts made so far.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown demo kind {kind!r} (known: {', '.join(sorted(KINDS))})")
    if int(parts) < 0:
        raise ValueError(f"demo parts must be >= 0, got {parts}")
    size = (int(size[0]), int(size[1]))
    spec = KINDS[kind]
    if size[0] < spec.min_size[0] or size[1] < spec.min_size[1]:  # checked before the file exists
        raise ValueError(f"demo size {size[0]}x{size[1]} is too small for {kind} "
                         f"(at least {spec.min_size[0]}x{spec.min_size[1]})")
    project = Project.create(path, spec.settings(f"demo-{kind}", int(seed), size), overwrite=overwrite)
    cams = project.settings.cameras
    for i in range(int(parts)):
        if should_stop is not None and should_stop():
            break
        views, masks, verdict, cls, truth = spec.render(i, int(seed), size)
        project.add_part(views, cameras=cams[:len(views)], name=f"{kind}-{i:05d}", source=PartSource.DEMO,
                         masks=masks, meta={"demo": {"kind": kind, "index": i, "seed": int(seed)}, "truth": truth},
                         label=Label(verdict, cls, user, time.time(), "demo ground truth"))
        if progress is not None:
            progress(Progress("demo", i + 1, int(parts), f"part {i + 1} of {int(parts)}"))
    return project
