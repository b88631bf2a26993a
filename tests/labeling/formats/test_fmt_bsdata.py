"""The real bsdata set (subset): labelme polygons and provided PNG masks must agree exactly."""
from __future__ import annotations

import csv
import shutil

import cv2
import numpy as np

from labeling.formats import import_into
from labeling.store import Project
from labeling.types import Verdict


def _subset(bsdata, dest, n_ng=12, n_ok=12):
    """A small bsdata look-alike in dest: symlinked images/masks, copied JSONs, a short labels.csv."""
    with open(bsdata / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    ng = [r for r in rows if r["label"] == "NG"]
    # the largest frames too, not only the common 1130x460 ones
    pick = ng[:n_ng - 2] + sorted(ng[n_ng - 2:], key=lambda r: -int(r["width"]))[:2]
    pick += [r for r in rows if r["label"] == "OK"][:n_ok]
    for sub in ("images", "masks", "labelme"):
        (dest / sub).mkdir(parents=True)
    for r in pick:
        (dest / r["image"]).symlink_to(bsdata / r["image"])
        if r["mask"]:
            (dest / r["mask"]).symlink_to(bsdata / r["mask"])
            shutil.copy(bsdata / r["labelme"], dest / r["labelme"])  # imagePath ../images/ still fits
    with open(dest / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(pick)
    return pick


def _state(p: Project) -> dict:
    return {x.name: (x.verdict, x.label.defect_class, p.read_mask(x.id), x.meta["file"]) for x in p.parts()}


def test_bsdata_labelme_and_masks_agree(bsdata, tmp_path):
    pick = _subset(bsdata, tmp_path / "bs")
    a = Project.create(tmp_path / "a.h5")
    b = Project.create(tmp_path / "b.h5")
    ra = import_into(a, tmp_path / "bs", "labelme")
    rb = import_into(b, tmp_path / "bs" / "labels.csv", "masks")
    for r in (ra, rb):
        assert r.errors == [] and r.imported == len(pick)
        assert r.counts["verdicts"]["NG"] == 12 and r.counts["verdicts"]["OK"] == 12
    assert [c.name for c in a.settings.classes] == ["Pitting"]
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for name, (verdict, cls, mask, file) in sa.items():
        vb, cb, mb, fb = sb[name]
        assert (verdict, cls, file) == (vb, cb, fb)
        if verdict == Verdict.NG:
            assert cls == 1 and np.array_equal(mask, mb)
            given = cv2.imread(str(bsdata / "masks" / f"{name}_mask.png"), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(mask, (given == 255).astype(np.uint8)), name
        else:
            assert mask is None and mb is None
    # the same images again, through the other format: all duplicates, nothing added
    again = import_into(a, tmp_path / "bs" / "labels.csv", "masks")
    assert again.imported == 0 and len(again.errors) == len(pick)
    assert all("already in the project" in m for _, m in again.errors)


def test_bsdata_image_is_rgb(bsdata, tmp_path):
    _subset(bsdata, tmp_path / "bs", n_ng=2, n_ok=1)
    p = Project.create(tmp_path / "p.h5")
    import_into(p, tmp_path / "bs", "labelme")
    part = p.parts()[0]
    img = p.read_image(part.id)
    bgr = cv2.imread(str(bsdata / part.meta["file"]))
    assert img.shape == bgr.shape and np.array_equal(img, bgr[:, :, ::-1])
