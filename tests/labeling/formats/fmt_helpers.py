"""Small builders shared by the format tests (tiny images, real project files)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from labeling.store import Project
from labeling.types import DefectClass, Label, PartSource, Settings, Verdict

CLASSES = [DefectClass("scratch", "#112233", "1"), DefectClass("dent", "#445566", "2"),
           DefectClass("stain", "#778899", "")]


def blob_mask(shape: tuple[int, int], seed: int, classes: int = 2) -> np.ndarray:
    """Class-index mask with a blob per class; odd seeds add a hole and a lone pixel (no polygon)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    m = np.zeros(shape, np.uint8)
    for c in range(1, classes + 1):
        cy, cx = rng.integers(4, h - 4), rng.integers(4, w - 4)
        cv2.ellipse(m, (int(cx), int(cy)), (int(rng.integers(2, 6)), int(rng.integers(2, 5))),
                    float(rng.integers(0, 180)), 0, 360, c, -1)
    if seed % 2:
        m[1, 1] = 1  # a single pixel
        m[h - 5:h - 1, w - 5:w - 1] = 1
        m[h - 3, w - 3] = 0  # a hole
    return m


def rich_project(path: Path, masks: bool = True, severstal_safe: bool = False) -> Project:
    """Parts of every kind: gray/RGB/16-bit, OK, NG with and without class and mask, unlabeled."""
    p = Project.create(path, Settings(name="src", classes=list(CLASSES)))
    rng = np.random.default_rng(1)
    shapes = [(20, 30), (24, 18, 3), (16, 22), (20, 30, 3), (18, 18), (22, 26)]
    dtypes = [np.uint8, np.uint8, np.uint16, np.uint8, np.uint8, np.uint8]
    for i, (shape, dt) in enumerate(zip(shapes, dtypes)):
        top = 65535 if dt == np.uint16 else 255
        img = rng.integers(0, top, shape, dtype=dt)
        if i == 0:
            p.add_part([img], name="ok-plain", source=PartSource.IMPORT, label=Label(Verdict.OK))
        elif i == 1:
            m = blob_mask(shape[:2], i) if masks else None
            cls = int(np.argmax(np.bincount(m.ravel())[1:]) + 1) if severstal_safe else 2
            p.add_part([img], name="ng-rgb", masks=[m], label=Label(Verdict.NG, cls))
        elif i == 2:
            m = blob_mask(shape[:2], i, classes=3) if masks else None
            cls = int(np.argmax(np.bincount(m.ravel(), minlength=4)[1:]) + 1) if severstal_safe else 3
            p.add_part([img], name="ng-16bit", masks=[m], label=Label(Verdict.NG, cls))
        elif i == 3 and not severstal_safe:
            p.add_part([img], name="ng-noclass", label=Label(Verdict.NG, 0))
        elif i == 4 and not severstal_safe:
            p.add_part([img], name="unlabeled-one")
        elif i == 5:
            p.add_part([img], name="ok-two", label=Label(Verdict.OK))
    return p


def snapshot(p: Project) -> dict:
    """Everything a round trip must keep, by part name."""
    out = {}
    for part in p.parts():
        img = p.read_image(part.id, 0)
        mask = p.read_mask(part.id, 0)
        out[part.name] = {
            "image": img, "dtype": str(img.dtype), "mask": mask,
            "verdict": part.verdict, "cls": part.label.defect_class if part.label else 0,
        }
    return out


def assert_same(a: Project, b: Project, *, masks: bool = True, colours: bool = True) -> None:
    sa, sb = snapshot(a), snapshot(b)
    assert sorted(sa) == sorted(sb)
    for name in sa:
        x, y = sa[name], sb[name]
        assert x["dtype"] == y["dtype"], name
        assert np.array_equal(x["image"], y["image"]), name
        assert (x["verdict"], x["cls"]) == (y["verdict"], y["cls"]), name
        if masks:
            assert (x["mask"] is None) == (y["mask"] is None), name
            if x["mask"] is not None:
                assert np.array_equal(x["mask"], y["mask"]), name
    ca, cb = a.settings.classes, b.settings.classes
    assert [c.name for c in ca] == [c.name for c in cb]
    if colours:
        assert ca == cb


def write_png(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), img)
    return path
