"""Severstal keeps every class of an image (multilabel), on import and through a round trip."""
from __future__ import annotations

import numpy as np

from labeling.formats import export_project, import_into
from labeling.formats.rle import severstal_encode
from labeling.store import Project
from labeling.types import DefectClass, Label, Settings, Verdict

CLASSES = [DefectClass(f"defect {k}", "#ff0000", str(k)) for k in range(1, 5)]


def _write_png(path, img):
    import cv2
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


def test_severstal_csv_with_three_classes_on_one_image(tmp_path):
    shape = (32, 64)
    img = np.full(shape, 90, np.uint8)
    _write_png(tmp_path / "src" / "train_images" / "a.png", img)
    _write_png(tmp_path / "src" / "train_images" / "b.png", img + 10)  # duplicates by content are skipped
    small, mid, big = (np.zeros(shape, bool) for _ in range(3))
    small[1:3, 1:3] = True
    mid[10:15, 10:20] = True
    big[20:30, 30:60] = True
    rows = ["ImageId,ClassId,EncodedPixels",
            f"a.png,1,{severstal_encode(small)}", f"a.png,3,{severstal_encode(big)}",
            f"a.png,4,{severstal_encode(mid)}", f"b.png,2,{severstal_encode(mid)}"]
    (tmp_path / "src" / "train.csv").write_text("\n".join(rows) + "\n")
    dst = Project.create(tmp_path / "dst.h5", Settings(classes=list(CLASSES)))
    rep = import_into(dst, tmp_path / "src", "severstal")
    assert rep.errors == [] and rep.imported == 2
    by_name = {p.name: p for p in dst.parts()}
    assert by_name["a"].label.classes == (3, 4, 1)  # most pixels first
    assert by_name["a"].label.defect_class == 3
    assert by_name["b"].label.classes == (2,)
    assert rep.counts["classes"] == {"defect 1": 1, "defect 3": 1, "defect 4": 1, "defect 2": 1}


def test_severstal_multilabel_roundtrip(tmp_path):
    src = Project.create(tmp_path / "src.h5", Settings(name="steel", classes=list(CLASSES)))
    shape = (24, 40)
    img = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    mask = np.zeros(shape, np.uint8)
    mask[2:12, 2:30] = 2
    mask[14:20, 5:15] = 4
    mask[20:22, 30:33] = 1
    src.add_part([img], name="sheet", masks=[mask], label=Label(Verdict.NG, classes=(2, 4, 1)))
    src.add_part([255 - img], name="clean", label=Label(Verdict.OK))  # other pixels: not a duplicate
    export_project(src, tmp_path / "out", "severstal")
    dst = Project.create(tmp_path / "dst.h5")
    assert import_into(dst, tmp_path / "out", "severstal").errors == []
    by_name = {p.name: p for p in dst.parts()}
    assert by_name["sheet"].label.classes == (2, 4, 1)
    assert [c.name for c in dst.settings.classes] == [c.name for c in CLASSES]
    assert np.array_equal(dst.read_mask(by_name["sheet"].id, 0), mask)
    assert by_name["clean"].label.classes == () and by_name["clean"].verdict == Verdict.OK
