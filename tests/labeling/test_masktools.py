"""Mask tools: strokes, polygons, flood fill, and an undo stack made of small diffs."""
from __future__ import annotations

import numpy as np

from labeling.masktools import (
    MaskEditor,
    fill_polygon,
    flood_fill,
    make_diff,
    paint_line,
)


def test_stroke_is_one_undo_step_stored_as_a_small_diff():
    mask = np.zeros((2448, 3264), np.uint8)
    ed = MaskEditor(mask)
    ed.begin_stroke((100, 100), 5, 2)
    for x in range(100, 200, 7):
        box = ed.stroke_to((x, 120), 5, 2)
        assert box is not None and box[2] - box[0] < 40  # only the dab's neighbourhood
    diff = ed.end_stroke()
    assert diff is not None and mask[120, 150] == 2 and mask[1000, 1000] == 0
    assert diff.nbytes < 2 * 120 * 40  # a bounding box, not a full copy (8 MB)
    ed.undo()
    assert not mask.any()
    ed.redo()
    assert mask[120, 150] == 2


def test_fifty_steps_undo_back_to_empty():
    mask = np.zeros((300, 400), np.uint8)
    ed = MaskEditor(mask, depth=60)
    for i in range(55):
        ed.begin_stroke((5 + i * 7, 10), 3, 1)
        ed.stroke_to((5 + i * 7, 250), 3, 1)
        ed.end_stroke()
    assert len(ed.stack) == 55
    for _ in range(55):
        ed.undo()
    assert not mask.any() and not ed.stack.can_undo()
    assert ed.stack.nbytes < 55 * 2 * 260 * 10


def test_eraser_and_polygon():
    mask = np.zeros((100, 100), np.uint8)
    ed = MaskEditor(mask)
    ed.apply("polygon", [(10, 10), (60, 10), (60, 60), (10, 60)], 3)
    assert mask[30, 30] == 3 and mask[5, 5] == 0 and mask[70, 70] == 0
    ed.begin_stroke((30, 30), 4, 0)
    ed.end_stroke()
    assert mask[30, 30] == 0 and mask[20, 20] == 3
    ed.undo()
    assert mask[30, 30] == 3
    ed.undo()
    assert not mask.any()
    assert fill_polygon(mask, [(1, 1), (2, 2)], 1) is None  # fewer than 3 points: nothing


def test_flood_fill_follows_the_image_region():
    img = np.full((80, 120), 40, np.uint8)
    img[20:50, 30:70] = 200  # a bright blob
    mask = np.zeros(img.shape, np.uint8)
    box = flood_fill(mask, img, (40, 30), 2)
    assert box == (30, 20, 70, 50)
    assert mask[20:50, 30:70].all() and mask.sum() == 2 * 30 * 40
    rgb = np.dstack([img] * 3).astype(np.uint16) * 200
    mask2 = np.zeros(img.shape, np.uint8)
    flood_fill(mask2, rgb, (5, 5), 1)
    assert mask2[0, 0] == 1 and mask2[30, 40] == 0
    assert flood_fill(mask2, img, (500, 5), 1) is None


def test_diff_of_nothing_is_none_and_lines_clip_at_borders():
    mask = np.zeros((50, 50), np.uint8)
    assert make_diff(mask, mask.copy(), (0, 0, 50, 50)) is None
    box = paint_line(mask, (-10, -10), (5, 5), 3, 1)
    assert box is not None and box[0] == 0 and mask[0, 0] == 1
    assert paint_line(mask, (500, 500), (600, 600), 3, 1) is None
