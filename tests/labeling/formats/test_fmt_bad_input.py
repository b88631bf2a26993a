"""Bad sources give one clear message per file, import the rest, and never damage the project."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from fmt_helpers import CLASSES, write_png

from labeling.formats import import_into
from labeling.store import Project
from labeling.types import Settings, Verdict


def _csv_source(tmp_path):
    """labels.csv with 3 good rows and one of each kind of bad row."""
    d = tmp_path / "src"
    img = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    write_png(d / "images" / "good1.png", img)
    write_png(d / "images" / "good2.png", img + 1)
    write_png(d / "images" / "good3.png", img + 2)
    write_png(d / "images" / "wrongsize.png", img + 3)  # distinct pixels: a copy is a duplicate
    write_png(d / "images" / "badclass.png", img + 4)
    (d / "images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    m = np.zeros((12, 10), np.uint8)
    m[2:5, 3:6] = 255
    write_png(d / "masks" / "good2_mask.png", m)
    write_png(d / "masks" / "small_mask.png", np.zeros((5, 5), np.uint8))
    rows = ["image,label,mask,defect_class",
            "images/good1.png,OK,,",
            "images/good2.png,NG,masks/good2_mask.png,dent",
            "images/missing.png,OK,,",
            "images/corrupt.png,NG,,",
            "images/wrongsize.png,NG,masks/small_mask.png,dent",
            "images/badclass.png,NG,,rust",
            "images/good1.png,OK,,",
            "images/good3.png,maybe,,",
            "images/good3.png,NG,,scratch",
            "only-one-field"]
    (d / "labels.csv").write_text("\n".join(rows) + "\n")
    return d


def _project(tmp_path, classes=True):
    return Project.create(tmp_path / "p.h5", Settings(classes=list(CLASSES) if classes else []))


def test_bad_rows_are_reported_and_good_ones_imported(tmp_path):
    src = _csv_source(tmp_path)
    p = _project(tmp_path)
    r = import_into(p, src / "labels.csv", "masks")
    errors = dict(r.errors)
    assert r.imported == 3 and r.skipped == 7
    assert "not found" in errors["images/missing.png"]
    assert "cannot decode" in errors["images/corrupt.png"]
    assert "5x5" in errors["images/wrongsize.png"] and "10x12" in errors["images/wrongsize.png"]
    assert "unknown defect class 'rust'" in errors["images/badclass.png"]
    assert "duplicate" in next(m for f, m in r.errors if f == "images/good1.png")
    assert "unknown verdict 'maybe'" in next(m for f, m in r.errors if f == "images/good3.png")
    assert any("labels.csv line 11" in f for f, _ in r.errors)
    again = Project.open(p.path)  # the file is sound and holds exactly the good parts
    assert sorted(x.name for x in again.parts()) == ["good1", "good2", "good3"]
    good2 = next(x for x in again.parts() if x.name == "good2")
    assert good2.label.defect_class == 2  # dent
    mask = again.read_mask(good2.id)
    assert set(np.unique(mask)) == {0, 2}  # 0/255 mask -> the row's class
    assert [c.name for c in again.settings.classes] == [c.name for c in CLASSES]


def test_strict_imports_nothing_when_anything_is_wrong(tmp_path):
    src = _csv_source(tmp_path)
    p = _project(tmp_path)
    r = import_into(p, src / "labels.csv", "masks", strict=True)
    assert r.imported == 0 and r.skipped == 10 and len(r.errors) == 7
    assert len(Project.open(p.path).parts()) == 0


def test_strict_imports_everything_when_all_is_well(tmp_path):
    src = _csv_source(tmp_path)
    lines = (src / "labels.csv").read_text().splitlines()
    (src / "labels.csv").write_text("\n".join(lines[:3]) + "\n")
    p = _project(tmp_path, classes=False)
    r = import_into(p, src / "labels.csv", "masks", strict=True)
    assert r.imported == 2 and r.errors == []
    assert [c.name for c in Project.open(p.path).settings.classes] == ["dent"]


def test_unknown_class_added_when_allowed(tmp_path):
    src = _csv_source(tmp_path)
    p = _project(tmp_path)
    r = import_into(p, src / "labels.csv", "masks", add_classes=True)
    assert r.imported == 4 and r.added_classes == ["rust"]
    assert Project.open(p.path).settings.classes[-1].name == "rust"


def test_same_source_twice_gives_duplicates_only(tmp_path):
    src = _csv_source(tmp_path)
    p = _project(tmp_path)
    import_into(p, src / "labels.csv", "masks")
    r = import_into(p, src / "labels.csv", "masks")
    assert r.imported == 0
    assert sum("already in the project" in m for _, m in r.errors) == 4  # good1 x2, good2, good3
    assert len(Project.open(p.path).parts()) == 3


def test_malformed_files(tmp_path):
    p = _project(tmp_path)
    (tmp_path / "bad.csv").write_text("foo,bar\n1,2\n")
    r = import_into(p, tmp_path / "bad.csv", "masks")
    assert r.imported == 0 and "lacks the columns 'image' and 'label'" in r.errors[0][1]
    lm = tmp_path / "lm"
    write_png(lm / "a.png", np.zeros((6, 6), np.uint8))
    write_png(lm / "b.png", np.zeros((6, 6), np.uint8))
    (lm / "a.json").write_text('{"shapes": [ {"label": "dent", ')
    r = import_into(p, lm, "labelme")
    assert r.errors[0][0] == "a.json" and "malformed JSON" in r.errors[0][1]
    assert r.errors[1][0] == "a.png" and "unreadable" in r.errors[1][1]  # not taken for OK
    assert r.imported == 1  # b.png, an image without JSON: OK
    (tmp_path / "c.json").write_text("[1, 2]")
    r = import_into(p, tmp_path / "c.json", "coco")
    assert "not a COCO file" in r.errors[0][1]
    (tmp_path / "s.csv").write_text("ImageId,ClassId,EncodedPixels\nx.png,one,1 2\n")
    r = import_into(p, tmp_path / "s.csv", "severstal")
    assert "malformed row" in r.errors[0][1]
    assert len(Project.open(p.path).parts()) == 1


def test_labelme_json_size_must_match_image(tmp_path):
    d = tmp_path / "lm"
    write_png(d / "a.png", np.zeros((6, 8), np.uint8))
    (d / "a.json").write_text(json.dumps({"shapes": [{"label": "dent", "points": [[1, 1], [4, 1], [4, 4]],
                                                        "shape_type": "polygon"}],
                                          "imagePath": "a.png", "imageHeight": 60, "imageWidth": 80}))
    p = _project(tmp_path)
    r = import_into(p, d, "labelme")
    assert r.imported == 0 and "80x60" in r.errors[0][1] and "8x6" in r.errors[0][1]


def test_sixteen_bit_and_colour_kept(tmp_path):
    d = tmp_path / "f"
    img16 = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 97)
    (d / "OK").mkdir(parents=True)
    assert cv2.imwrite(str(d / "OK" / "x16.tif"), img16)
    assert cv2.imwrite(str(d / "OK" / "x16b.png"), img16 + 1)
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's order
    assert cv2.imwrite(str(d / "OK" / "blue.png"), bgr)
    p = _project(tmp_path)
    r = import_into(p, d, "imagefolder")
    assert r.imported == 3
    by = {x.name: x for x in p.parts()}
    assert np.array_equal(p.read_image(by["x16"].id), img16)
    assert p.read_image(by["x16b"].id).dtype == np.uint16
    rgb = p.read_image(by["blue"].id)
    assert rgb.shape == (4, 5, 3) and (rgb[..., 2] == 200).all() and (rgb[..., 0] == 0).all()


def test_progress_and_stop(tmp_path):
    src = _csv_source(tmp_path)
    p = _project(tmp_path)
    seen = []
    import_into(p, src / "labels.csv", "masks", progress=seen.append)
    assert (seen[-1].done, seen[-1].total) == (8, 8)  # the two rows that fail to parse are no items
    p2 = Project.create(tmp_path / "p2.h5", Settings(classes=list(CLASSES)))
    calls = iter([False, True])
    r = import_into(p2, src / "labels.csv", "masks", should_stop=lambda: next(calls, True))
    assert r.stopped and r.imported == 1 and len(p2.parts()) == 1


def test_missing_source_and_readonly(tmp_path):
    p = _project(tmp_path)
    with pytest.raises(FileNotFoundError):
        import_into(p, tmp_path / "nope", "masks")
    with pytest.raises(ValueError):
        import_into(p, tmp_path, "nope")
    ro = Project.open(p.path, readonly=True)
    with pytest.raises(Exception, match="read-only"):
        import_into(ro, tmp_path, "imagefolder")


def test_ok_with_class_imports_ok_and_keeps_the_value(tmp_path):
    """A class on an OK row ("Free", a module type) is redundant, not a reason to drop the part."""
    d = tmp_path / "s"
    write_png(d / "a.png", np.zeros((4, 4), np.uint8))
    (d / "labels.csv").write_text("image,label,defect_class\na.png,OK,dent\n")
    p = _project(tmp_path)
    r = import_into(p, d, "masks")
    assert r.imported == 1 and not r.errors and len(r.warnings) == 1
    part = p.parts()[0]
    assert part.verdict == Verdict.OK and part.label.defect_class == 0 and part.fields == {"defect_class": "dent"}
    assert Verdict.OK  # the verdict parser stays the store's


def test_odd_labelme_shapes_are_reported(tmp_path):
    d = tmp_path / "lm"
    write_png(d / "a.png", np.zeros((6, 6), np.uint8))
    (d / "a.json").write_text(json.dumps({"shapes": ["not a shape"], "imagePath": "a.png"}))
    write_png(d / "b.png", np.zeros((6, 6), np.uint8))
    (d / "b.json").write_text(json.dumps({"shapes": [{"label": "dent", "points": "x"}], "imagePath": "b.png"}))
    p = _project(tmp_path)
    r = import_into(p, d, "labelme")
    assert r.imported == 0 and [f for f, _ in r.errors] == ["a.png", "b.png"]
    assert len(Project.open(p.path).parts()) == 0
