"""Polygon fill (labelme's pixel rules) and the run-length codecs."""
from __future__ import annotations

import numpy as np
import pytest

from labeling.formats.base import FormatError
from labeling.formats.raster import fill_polygon, polygons_of
from labeling.formats.rle import (
    coco_decode,
    coco_encode,
    severstal_decode,
    severstal_encode,
)


def _fill(points, shape=(12, 12)):
    m = np.zeros(shape, np.uint8)
    fill_polygon(m, points, 1)
    return m


def test_square_includes_its_edges_and_truncates_vertices():
    m = _fill([[2.9, 3.99], [6.2, 3.0], [6.0, 7.7], [2.0, 7.0]])
    expected = np.zeros((12, 12), np.uint8)
    expected[3:8, 2:7] = 1  # vertices truncate to (2,3)..(6,7), edges included
    assert np.array_equal(m, expected)


def test_triangle_known_pixels():
    m = _fill([[2, 2], [10, 3], [6, 9]])
    assert m[2, 2] == 1 and m[3, 3:11].all() and not m[3, 2] and not m[3, 11]
    assert m[9, 6] == 1 and m[9].sum() == 1 and m[8, 5:8].all()


def test_clipping_and_degenerate_inputs():
    m = _fill([[-5, -5], [20, -5], [20, 20], [-5, 20]], (6, 7))
    assert m.all()
    assert not _fill([[3, 3]]).any()  # a single point has no area
    assert _fill([[1, 1], [5, 1]]).sum() == 5  # a line is drawn


def test_matches_pillow_on_random_polygons():
    """labelme rasterises with Pillow; where Pillow is installed, agree pixel for pixel."""
    pil = pytest.importorskip("PIL.ImageDraw")
    from PIL import Image
    rng = np.random.default_rng(7)
    for k in range(400):
        h, w = (int(v) for v in rng.integers(5, 30, 2))
        n = int(rng.integers(2, 9))
        pts = rng.uniform(-3, max(h, w) + 3, (n, 2))
        if k % 3 == 0:
            pts = np.round(pts * 2) / 2  # ties at half pixels
        img = Image.new("L", (w, h), 0)
        pil.Draw(img).polygon([tuple(p) for p in pts], fill=1, outline=1)
        assert np.array_equal(np.array(img), _fill(pts, (h, w))), pts.tolist()


def test_contours_refill_to_the_same_region():
    rng = np.random.default_rng(3)
    region = np.zeros((30, 30), np.uint8)
    for _ in range(4):
        y, x = rng.integers(3, 27, 2)
        region[y - 2:y + 3, x - 3:x + 2] = 1
    m = np.zeros_like(region)
    for poly in polygons_of(region > 0):
        fill_polygon(m, poly, 1)
    assert np.array_equal(m, region)


def test_coco_rle_roundtrip_and_order():
    region = np.zeros((3, 4), bool)
    region[0, 1] = region[1, 1] = region[2, 3] = True
    rle = coco_encode(region)
    assert rle == {"size": [3, 4], "counts": [3, 2, 6, 1]}  # down the columns
    assert np.array_equal(coco_decode(rle, (3, 4)), region)
    assert np.array_equal(coco_decode(coco_encode(~region), (3, 4)), ~region)
    with pytest.raises(FormatError, match="RLE size"):
        coco_decode(rle, (4, 3))


def test_severstal_rle_roundtrip():
    rng = np.random.default_rng(0)
    region = rng.random((9, 7)) > 0.6
    text = severstal_encode(region)
    assert np.array_equal(severstal_decode(text, (9, 7)), region)
    assert severstal_encode(np.zeros((2, 2), bool)) == ""
    with pytest.raises(FormatError, match="pairs"):
        severstal_decode("1 2 3", (2, 2))
