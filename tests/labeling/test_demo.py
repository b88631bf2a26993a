"""Demo-data generators: determinism, exact masks, the planted shortcut, X-ray strips, demo projects."""
from __future__ import annotations

import numpy as np
import pytest

from labeling.demo import (
    bolts,
    render_part,
    render_product,
    render_product_truth,
    render_strip,
    thread_roi,
)
from labeling.demo.build import make_demo_project
from labeling.store import Project, ProjectError
from labeling.types import ProjectKind, Verdict

TINY = (96, 72)
SMALL = (160, 120)


def _coating_like(rgb: np.ndarray) -> np.ndarray:
    """Pixels of the blue coating: blue well above red and green."""
    rgb = rgb.astype(np.int32)
    return rgb[..., 2] - (rgb[..., 0] + rgb[..., 1]) // 2 > 40


def _boxes_overlap(a: list[int], b: list[int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


# ------------------------------------------------------------------------------ bolts
def test_bolt_parts_are_deterministic_per_seed_and_index():
    a, b = render_part(5, seed=3, size=TINY), render_part(5, seed=3, size=TINY)
    for va, vb, ma, mb in zip(a.views, b.views, a.masks, b.masks):
        assert np.array_equal(va, vb) and np.array_equal(ma, mb)
    assert a.truth == b.truth and a.verdict == b.verdict
    other = render_part(6, seed=3, size=TINY)
    assert any(not np.array_equal(x, y) for x, y in zip(a.views, other.views))
    reseeded = render_part(5, seed=4, size=TINY)
    assert any(not np.array_equal(x, y) for x, y in zip(a.views, reseeded.views))


def test_bolt_views_masks_and_labels_agree():
    seen = set()
    for i in range(48):
        p = render_part(i, size=SMALL)
        assert len(p.views) == len(p.masks) == 4
        for v, m in zip(p.views, p.masks):
            assert v.shape == (120, 160, 3) and v.dtype == np.uint8
            assert m.shape == (120, 160) and m.dtype == np.uint8
        assert p.truth["verdict"] == p.verdict.name and p.truth["defect_class"] == p.defect_class
        if p.verdict == Verdict.OK:
            assert p.defect_class == 0 and not any(m.any() for m in p.masks)
            assert all(_coating_like(v).sum() > 50 for v in p.views)  # the band is there
        else:
            assert p.verdict == Verdict.NG and 1 <= p.defect_class <= 4
            for m in p.masks:  # defects are placed so that every camera sees one
                assert set(np.unique(m).tolist()) == {0, p.defect_class}
            seen.add(p.defect_class)
    assert seen == {1, 2, 3, 4}


def test_bolt_masks_cover_exactly_the_pixels_without_coating():
    found: dict[int, int] = {}
    for i in range(60):
        p = render_part(i, size=(320, 240))
        if p.defect_class == 0 or p.defect_class in found:
            continue
        found[p.defect_class] = i
        for v, m in zip(p.views, p.masks):
            inside = _coating_like(v)[m > 0]
            # Gaps, missing band, missing length and foreign matter: none of it looks like coating.
            assert inside.mean() < 0.05, (p.defect_class, inside.mean())
        if p.defect_class in (1, 4):  # the rest of the band is still coated
            assert any(_coating_like(v)[m == 0].sum() > 200 for v, m in zip(p.views, p.masks))
    assert set(found) == {1, 2, 3, 4}


def test_shortcut_rate_follows_the_request_and_only_marks_ng():
    parts = [render_part(i, size=TINY, shortcut=0.8) for i in range(300)]
    ng = [p for p in parts if p.verdict == Verdict.NG]
    assert 100 < len(ng) < 200
    assert not any(p.truth["shortcut"] for p in parts if p.verdict == Verdict.OK)
    rate = sum(p.truth["shortcut"] for p in ng) / len(ng)
    assert abs(rate - 0.8) < 0.1
    assert not any(render_part(i, size=TINY, shortcut=0.0).truth["shortcut"] for i in range(40))
    assert all(render_part(i, size=TINY, shortcut=1.0).truth["shortcut"]
               for i in range(40) if render_part(i, size=TINY).verdict == Verdict.NG)


def test_shortcut_changes_only_the_jig_box_which_lies_outside_the_thread_roi():
    ng = next(i for i in range(50) if render_part(i, size=SMALL).verdict == Verdict.NG)
    clean, short = render_part(ng, size=SMALL, shortcut=0.0), render_part(ng, size=SMALL, shortcut=1.0)
    assert short.truth["shortcut"] and not clean.truth["shortcut"]
    roi = thread_roi(SMALL).to_list()
    for k, (a, b) in enumerate(zip(clean.views, short.views)):
        x, y, w, h = short.truth["jig_box"][k]
        diff = np.any(a != b, axis=2)
        assert diff[y:y + h, x:x + w].mean() > 0.2  # a big, bright, learnable difference
        diff[y:y + h, x:x + w] = False
        assert not diff.any()
        assert b[y:y + h, x:x + w].mean() > a[y:y + h, x:x + w].mean() + 20
        assert np.array_equal(clean.masks[k], short.masks[k])
    for size in (TINY, SMALL, (640, 480), (1280, 960), (3264, 2448)):
        roi = thread_roi(size).to_list()
        assert roi[0] + roi[2] <= size[0] and roi[1] + roi[3] <= size[1]
        geo = bolts._geo(*size)  # geometry only: no need to render a full 8-megapixel part
        for k in range(4):
            box = bolts._jig_box(geo, k)
            assert box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= size[0] and box[3] > 0
            assert not _boxes_overlap(box, roi)


def test_defects_lie_inside_the_thread_roi():
    for size in (TINY, (320, 240)):
        x, y, w, h = thread_roi(size).to_list()
        for i in range(30):
            p = render_part(i, size=size)
            for m in p.masks:
                outside = m.copy()
                outside[y:y + h, x:x + w] = 0
                assert not outside.any()
            for box in p.truth["jig_box"]:
                assert not _boxes_overlap(box, [x, y, w, h])


def test_bolt_rejects_sizes_too_small():
    with pytest.raises(ValueError):
        render_part(0, size=(20, 16))


# ------------------------------------------------------------------------------ x-ray
def test_xray_products_are_deterministic_16bit_with_consistent_masks():
    a = render_product(2, seed=1, lines=160, width=640)
    b = render_product(2, seed=1, lines=160, width=640)
    assert all(np.array_equal(x, y) for x, y in zip(a[:2], b[:2])) and a[2:] == b[2:]
    assert not np.array_equal(a[0], render_product(3, seed=1, lines=160, width=640)[0])
    seen = set()
    for i in range(24):
        img, mask, verdict, cls = render_product(i, lines=200, width=640)
        assert img.dtype == np.uint16 and img.shape == (200, 640) and mask.shape == (200, 640)
        truth = render_product_truth(i, lines=200, width=640)
        assert truth["defect_class"] == cls and truth["verdict"] == verdict.name
        if verdict == Verdict.OK:
            assert cls == 0 and not mask.any()
        else:
            assert set(np.unique(mask).tolist()) == {0, cls}
            # Denser is darker: the defect attenuates more than the wool around it.
            near = np.zeros_like(mask, bool)
            ys, xs = np.nonzero(mask)
            near[max(0, ys.min() - 20):ys.max() + 20, max(0, xs.min() - 20):xs.max() + 20] = True
            near &= mask == 0
            assert img[mask > 0].mean() < img[near].mean() - 1500
            seen.add(cls)
        assert img.max() > 40000  # the belt beside the slab is brighter than wool
    assert seen == {1, 2, 3, 4}


def test_xray_strip_products_gaps_and_masks():
    s = render_strip(1, seed=0, products=3, width=640, product_lines=(120, 200))
    assert s.image.dtype == np.uint16 and s.image.shape[1] == 640 and s.mask.shape == s.image.shape
    assert len(s.products) == len(s.verdicts) == len(s.classes) == 3
    assert s.products[0][0] > 0 and s.products[-1][1] < s.image.shape[0]
    for (a, b), (c, _) in zip(s.products, s.products[1:]):
        assert 120 <= b - a <= 200 and b < c
        gap = s.image[b:c]
        assert not s.mask[b:c].any() and gap.mean() > s.image[a:b].mean() + 5000
    for j, ((a, b), v, c) in enumerate(zip(s.products, s.verdicts, s.classes)):
        img, mask, verdict, cls = render_product(1 * 3 + j, seed=0, lines=b - a, width=640)
        assert np.array_equal(s.image[a:b], img) and np.array_equal(s.mask[a:b], mask)
        assert (verdict, cls) == (v, c)
        assert s.truth["product_truth"][j]["defect_class"] == c
    with pytest.raises(ValueError):
        render_strip(0, products=0)


# ------------------------------------------------------------------------------ projects
def test_make_demo_project_bolts_matches_the_generated_labels(tmp_path):
    calls = []
    proj = make_demo_project(tmp_path / "b.h5", kind="bolts", parts=10, seed=2, size=TINY,
                             progress=lambda p: calls.append((p.done, p.total)))
    assert calls[-1] == (10, 10) and len(calls) == 10
    proj = Project.open(tmp_path / "b.h5", readonly=True)
    st = proj.stats()
    gen = [render_part(i, seed=2, size=TINY) for i in range(10)]
    assert st["parts"] == 10 and st["views"] == 40 and st["masks"] == 40
    assert st["labels"]["NG"] == sum(p.verdict == Verdict.NG for p in gen)
    assert st["labels"]["OK"] == sum(p.verdict == Verdict.OK for p in gen)
    names = proj.settings.classes
    want: dict[str, int] = {}
    for p in gen:
        if p.defect_class:
            want[names[p.defect_class - 1].name] = want.get(names[p.defect_class - 1].name, 0) + 1
    assert st["defect_classes"] == want
    assert proj.settings.kind == ProjectKind.MULTI_CAMERA and proj.settings.rois == {}
    assert proj.settings.cameras == ["cam0", "cam1", "cam2", "cam3"]
    assert proj.settings.extra["demo"]["suggested_roi"] == thread_roi(TINY).to_list()
    for part, g in zip(sorted(proj.parts(), key=lambda p: p.id), gen):
        assert part.label.verdict == g.verdict and part.label.defect_class == g.defect_class
        assert part.label.user.name == "demo" and part.source.value == "demo"
        assert part.meta["truth"]["shortcut"] == g.truth["shortcut"]
        assert np.array_equal(proj.read_image(part.id, 2), g.views[2])
        assert np.array_equal(proj.read_mask(part.id, 3), g.masks[3])


def test_make_demo_project_xray(tmp_path):
    proj = make_demo_project(tmp_path / "x.h5", kind="xray", parts=6, seed=1, size=(128, 64))
    assert proj.settings.kind == ProjectKind.LINE_SCAN and proj.settings.cameras == ["xray"]
    assert [c.name[:2] for c in proj.settings.classes] == ["D1", "D2", "D3", "D6"]
    for part in proj.parts():
        img, mask = proj.read_image(part.id, 0), proj.read_mask(part.id, 0)
        assert img.dtype == np.uint16 and img.shape == (64, 128)
        i = part.meta["demo"]["index"]
        ref = render_product(i, seed=1, lines=64, width=128)
        assert np.array_equal(img, ref[0]) and np.array_equal(mask, ref[1])
        assert (part.label.verdict, part.label.defect_class) == (ref[2], ref[3])


def test_make_demo_project_stops_early_and_stays_valid(tmp_path):
    done = []
    proj = make_demo_project(tmp_path / "s.h5", parts=50, size=TINY, progress=lambda p: done.append(p.done),
                             should_stop=lambda: len(done) >= 3)
    assert len(proj.parts()) == 3
    again = Project.open(tmp_path / "s.h5")
    assert again.stats()["parts"] == 3 and all(p.label is not None for p in again.parts())
    with pytest.raises(ProjectError):
        make_demo_project(tmp_path / "s.h5", parts=1, size=TINY)
    assert len(make_demo_project(tmp_path / "s.h5", parts=1, size=TINY, overwrite=True).parts()) == 1
    with pytest.raises(ValueError):
        make_demo_project(tmp_path / "t.h5", kind="rivets", parts=1)
    with pytest.raises(ValueError, match="too small"):
        make_demo_project(tmp_path / "t.h5", kind="bolts", parts=1, size=(24, 24))
    assert not (tmp_path / "t.h5").exists()
