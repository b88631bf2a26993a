"""Sources written by other tools (not by okng's exporter): each format's own conventions."""
from __future__ import annotations

import base64
import json

import cv2
import numpy as np
from fmt_helpers import write_png

from labeling.formats import import_into
from labeling.formats.rle import coco_encode, coco_string_encode
from labeling.store import Project
from labeling.types import Verdict


def _by_name(p: Project) -> dict:
    return {x.name: x for x in p.parts()}


def test_severstal_is_column_major_and_one_based(tmp_path):
    write_png(tmp_path / "train_images" / "a.jpg.png", np.zeros((4, 3), np.uint8))
    write_png(tmp_path / "train_images" / "clean.png", np.full((4, 3), 1, np.uint8))
    # 4 rows x 3 columns: pixel 1 = (row 0, col 0); pixels 6..7 = rows 1..2 of column 1
    (tmp_path / "train.csv").write_text(
        "ImageId,ClassId,EncodedPixels\na.jpg.png,1,1 1\na.jpg.png,3,6 2\n")
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, tmp_path, "severstal")
    assert r.errors == [] and r.imported == 2
    parts = _by_name(p)
    m = p.read_mask(parts["a.jpg"].id)
    expected = np.zeros((4, 3), np.uint8)
    expected[0, 0] = 1
    expected[1:3, 1] = 3
    assert np.array_equal(m, expected)
    assert parts["a.jpg"].verdict == Verdict.NG and parts["a.jpg"].label.defect_class == 3
    assert parts["clean"].verdict == Verdict.OK and p.read_mask(parts["clean"].id) is None
    assert [c.name for c in p.settings.classes] == ["class 1", "class 2", "class 3"]


def test_severstal_old_layout_and_runs_past_the_image(tmp_path):
    write_png(tmp_path / "train_images" / "b.png", np.zeros((4, 3), np.uint8))
    write_png(tmp_path / "train_images" / "c.png", np.zeros((4, 3), np.uint8))
    (tmp_path / "train.csv").write_text(
        "ImageId_ClassId,EncodedPixels\nb.png_1,\nb.png_2,2 3\nc.png_1,11 5\n")
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, tmp_path / "train.csv", "severstal")
    assert r.imported == 1 and "runs past a 3x4 image" in r.errors[0][1]
    assert np.count_nonzero(p.read_mask(p.parts()[0].id) == 2) == 3


def test_coco_compressed_rle_polygons_and_categories(tmp_path):
    write_png(tmp_path / "images" / "x.png", np.zeros((10, 12), np.uint8))
    write_png(tmp_path / "images" / "y.png", np.full((10, 12), 1, np.uint8))  # a copy would be a duplicate
    region = np.zeros((10, 12), bool)
    region[2:6, 3:9] = True
    counts = coco_encode(region)["counts"]
    doc = {"images": [{"id": 7, "file_name": "x.png", "height": 10, "width": 12},
                      {"id": 8, "file_name": "y.png", "height": 10, "width": 12}],
           "categories": [{"id": 4, "name": "dent"}, {"id": 9, "name": "scratch"}],
           "annotations": [
               {"id": 1, "image_id": 7, "category_id": 9,
                "segmentation": {"size": [10, 12], "counts": coco_string_encode(counts)}},
               {"id": 2, "image_id": 7, "category_id": 4,
                "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}]}
    (tmp_path / "instances.json").write_text(json.dumps(doc))
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, tmp_path, "coco")
    assert r.errors == [] and r.imported == 2
    parts = _by_name(p)
    m = p.read_mask(parts["x"].id)
    names = [c.name for c in p.settings.classes]
    assert names == ["scratch", "dent"]  # learned in order of use
    assert np.array_equal(m == 1, region)
    assert (m[0:3, 0:3] == 2).all() and np.count_nonzero(m == 2) == 9
    assert parts["x"].label.defect_class == 1 and parts["y"].verdict == Verdict.OK


def test_coco_compressed_string_known_value():
    # a 3x3 mask with only its centre set: counts 4,1,4, each one 5-bit character
    from labeling.formats.rle import coco_string_decode
    assert coco_string_encode([4, 1, 4]) == "414"
    assert coco_string_decode("414") == [4, 1, 4]
    big = [100000, 3, 7, 65000, 2, 1, 0, 9]
    assert coco_string_decode(coco_string_encode(big)) == big


def test_labelme_embedded_image_rectangle_and_flags(tmp_path):
    img = np.zeros((8, 10, 3), np.uint8)
    img[..., 0] = 90
    _, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    doc = {"version": "5.0.1", "flags": {"NG": True},
           "shapes": [{"label": "scratch", "points": [[1.2, 2.7], [4.9, 5.1]], "shape_type": "rectangle"},
                      {"label": "dent", "points": [[8, 5], [9, 5]], "shape_type": "circle"},
                      {"label": "dent", "points": [[0, 0]], "shape_type": "point"}],
           "imagePath": "gone.png", "imageData": base64.b64encode(png.tobytes()).decode(),
           "imageHeight": 8, "imageWidth": 10}
    (tmp_path / "e.json").write_text(json.dumps(doc))
    write_png(tmp_path / "plain.png", np.zeros((5, 5), np.uint8))
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, tmp_path, "labelme")
    assert r.errors == [] and r.imported == 2
    parts = _by_name(p)
    e = parts["e"]
    assert np.array_equal(p.read_image(e.id), img)
    m = p.read_mask(e.id)
    assert (m[2:6, 1:5] == 1).all() and np.count_nonzero(m == 1) == 16  # rows 2..5, columns 1..4
    assert m[5, 8] == 2 and m[4, 8] == m[6, 8] == m[5, 7] == m[5, 9] == 2 and m[0, 0] == 0
    assert e.verdict == Verdict.NG and parts["plain"].verdict == Verdict.OK


def test_mask_folder_pairs(tmp_path):
    write_png(tmp_path / "images" / "a.png", np.zeros((6, 6), np.uint8))
    write_png(tmp_path / "images" / "b.png", np.full((6, 6), 1, np.uint8))
    write_png(tmp_path / "images" / "c.png", np.full((6, 6), 2, np.uint8))
    m = np.zeros((6, 6), np.uint8)
    m[1:3, 1:3] = 255
    write_png(tmp_path / "masks" / "a_mask.png", m)
    idx = np.zeros((6, 6), np.uint8)
    idx[4, 4] = 2
    write_png(tmp_path / "masks" / "b.png", idx)
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, tmp_path, "masks")
    assert r.errors == [] and r.imported == 3
    parts = _by_name(p)
    assert parts["a"].verdict == Verdict.NG and parts["a"].label.defect_class == 1
    assert np.count_nonzero(p.read_mask(parts["a"].id) == 1) == 4
    assert parts["b"].label.defect_class == 2 and parts["c"].verdict == Verdict.OK


def test_imagefolder_class_folders(tmp_path):
    write_png(tmp_path / "good" / "a.png", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "scratch" / "b.png", np.full((4, 4), 1, np.uint8))
    write_png(tmp_path / "NG" / "dent" / "c.png", np.full((4, 4), 2, np.uint8))
    write_png(tmp_path / "loose.png", np.full((4, 4), 3, np.uint8))
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, tmp_path, "imagefolder")
    parts = _by_name(p)
    assert r.imported == 3 and r.errors == [("loose.png", "image is not inside an OK/, NG/ or class folder")]
    assert parts["a"].verdict == Verdict.OK
    names = [c.name for c in p.settings.classes]
    assert names[parts["b"].label.defect_class - 1] == "scratch"
    assert names[parts["c"].label.defect_class - 1] == "dent"
