"""Masks and labels as real data sets ship them, written here as real files: anti-aliased,
resized and JPEG'd masks, 16-bit/RGB/RGBA masks, class names on OK rows, wrong sizes, EXIF turns;
plus the dry run and the grouped error report."""
from __future__ import annotations

import json
import struct

import cv2
import numpy as np
import pytest
from fmt_helpers import write_png

from app.cli import main
from labeling.formats import import_into
from labeling.formats.base import THRESHOLDED
from labeling.store import Project
from labeling.types import Verdict

H, W = 30, 40


def _disc(value: int = 255, aa: bool = True, dtype=np.uint8, shape=(H, W)) -> np.ndarray:
    m = np.zeros(shape, dtype)
    cv2.circle(m, (shape[1] // 2, shape[0] // 2), min(shape) // 3, value, -1,
               cv2.LINE_AA if aa else cv2.LINE_8)
    return m


def _csv(d, rows, header="image,label,mask,defect_class"):
    d.mkdir(parents=True, exist_ok=True)
    (d / "labels.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return d / "labels.csv"


def _image(d, name, shape=(H, W)):
    # Each file its own pixels: two files with the same content are one image (a duplicate).
    value = 100 + sum(map(ord, name)) % 150
    return write_png(d / name, np.full(shape, value, np.uint8))


def test_anti_aliased_resized_and_jpeg_masks_are_binary_with_the_row_class(tmp_path):
    d = tmp_path / "s"
    aa = _disc()
    assert len(np.unique(aa)) > 10  # dozens of grey levels, as in the issue
    big = cv2.resize(_disc(aa=False, shape=(H * 4, W * 4)), (W, H), interpolation=cv2.INTER_AREA)
    rows = []
    for i, m in enumerate((aa, big)):
        _image(d, f"i{i}.png")
        write_png(d / f"m{i}.png", m)
        rows.append(f"i{i}.png,NG,m{i}.png,crack")
    _image(d, "i2.png")
    cv2.imwrite(str(d / "m2.jpg"), _disc(aa=False), [cv2.IMWRITE_JPEG_QUALITY, 70])
    rows.append("i2.png,NG,m2.jpg,crack")
    _image(d, "i3.png")
    write_png(d / "m3.png", _disc(aa=False))  # clean 0/255: nothing to report
    rows.append("i3.png,NG,m3.png,crack")
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, _csv(d, rows), "masks")
    assert r.errors == [] and r.imported == 4 and p.settings.class_index("crack") == 1
    assert r.warnings == {THRESHOLDED: {"count": 3, "examples": ["i0.png", "i1.png", "i2.png"]}}
    for part in p.parts():
        m = p.read_mask(part.id)
        assert set(np.unique(m)) == {0, 1} and part.label.defect_class == 1
    first = p.read_mask(p.parts()[0].id)
    assert np.array_equal(first, (aa >= 128).astype(np.uint8))  # threshold at half range


def test_class_index_masks_stay_class_indices(tmp_path):
    d = tmp_path / "s"
    m = np.zeros((H, W), np.uint8)
    m[2:6, 2:6], m[10:14, 10:20] = 1, 2
    _image(d, "a.png")
    write_png(d / "a_mask.png", m)
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, _csv(d, ["a.png,NG,a_mask.png,"]), "masks")
    assert not r.errors and not r.warnings and np.array_equal(p.read_mask(p.parts()[0].id), m)
    assert [c.name for c in p.settings.classes] == ["class 1", "class 2"]


def test_class_names_on_ok_rows_import_ok_with_one_warning(tmp_path):
    """Magnetic-tile style: "Free" on every OK row; solar-cell style: the module type on every row."""
    d = tmp_path / "s"
    rows = []
    for i in range(3):
        _image(d, f"ok{i}.png")
        rows.append(f"ok{i}.png,OK,,Free")
    _image(d, "ng.png")
    write_png(d / "ng_mask.png", _disc(aa=False))
    rows.append("ng.png,NG,ng_mask.png,Blowhole")
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, _csv(d, rows), "masks")
    assert r.errors == [] and r.imported == 4
    assert r.counts["verdicts"] == {"UNLABELED": 0, "OK": 3, "NG": 1}
    (w,) = r.warnings.values()
    assert w["count"] == 3
    assert [c.name for c in p.settings.classes] == ["Blowhole"]  # "Free" is no defect class
    oks = [x for x in p.parts() if x.verdict == Verdict.OK]
    assert all(x.fields == {"defect_class": "Free"} and x.label.defect_class == 0 for x in oks)


def test_extra_columns_are_kept_as_part_fields(tmp_path):
    d = tmp_path / "s"
    _image(d, "a.png")
    p = Project.create(tmp_path / "p.h5")
    import_into(p, _csv(d, ["a.png,OK,,,kos07,2"], "image,label,mask,defect_class,item,fold"), "masks")
    assert p.parts()[0].fields == {"item": "kos07", "fold": "2"}
    assert Project.open(p.path).parts()[0].fields == {"item": "kos07", "fold": "2"}  # stored


def test_wrong_size_masks_error_clearly_or_are_resized(tmp_path):
    d = tmp_path / "s"
    _image(d, "a.png")
    write_png(d / "a_mask.png", _disc(aa=False, shape=(H * 2, W * 2)))
    src = _csv(d, ["a.png,NG,a_mask.png,dent"])
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, src, "masks")
    assert r.imported == 0 and len(p) == 0
    assert r.errors == [("a.png", "mask is 80x60 but the image is 40x30 (resize it, or import with --resize-masks)")]
    r = import_into(p, src, "masks", resize_masks=True)
    assert r.imported == 1 and next(iter(r.warnings.values()))["count"] == 1
    m = p.read_mask(p.parts()[0].id)
    assert m.shape == (H, W) and np.array_equal(m, cv2.resize(_disc(aa=False, shape=(H * 2, W * 2)), (W, H),
                                                              interpolation=cv2.INTER_NEAREST) >= 128)


@pytest.mark.parametrize("kind", ["16bit", "16bit-aa", "rgb-gray", "rgb-red", "rgba-alpha", "rgba-rgb"])
def test_16bit_rgb_and_rgba_masks(tmp_path, kind):
    d = tmp_path / "s"
    _image(d, "a.png")
    disc = _disc(aa=False) > 0
    if kind == "16bit":
        m = disc.astype(np.uint16) * 65535
    elif kind == "16bit-aa":
        m = _disc(65535, dtype=np.uint16)
    elif kind == "rgb-gray":
        m = np.dstack([disc * 255] * 3).astype(np.uint8)
    elif kind == "rgb-red":
        m = np.dstack([disc * 255, disc * 0, disc * 0]).astype(np.uint8)
    elif kind == "rgba-alpha":  # a mask painted on a transparent layer: black paint, alpha = the mask
        m = np.dstack([np.zeros((H, W, 3), np.uint8), (disc * 255).astype(np.uint8)])
    else:  # white paint on black, fully opaque
        m = np.dstack([np.dstack([disc * 255] * 3), np.full((H, W), 255)]).astype(np.uint8)
    if m.ndim == 3:
        m = cv2.cvtColor(m, cv2.COLOR_RGBA2BGRA if m.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(d / "a_mask.png"), m)
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, _csv(d, ["a.png,NG,a_mask.png,dent"]), "masks")
    assert r.errors == [] and r.imported == 1
    got = p.read_mask(p.parts()[0].id)
    expect = (_disc(65535, dtype=np.uint16) >= 32768) if kind == "16bit-aa" else disc
    assert np.array_equal(got, expect.astype(np.uint8)) and p.parts()[0].label.defect_class == 1


def _exif_jpeg(img: np.ndarray, orientation: int) -> bytes:
    """A JPEG carrying an EXIF orientation tag (APP1 segment right after SOI)."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    app1 = b"Exif\x00\x00" + tiff
    data = buf.tobytes()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


def test_exif_rotated_jpeg_lines_up_with_its_mask(tmp_path):
    """Orientation 6 (turn 90 degrees clockwise to view): the mask is drawn on the upright image."""
    d = tmp_path / "s"
    d.mkdir()
    raw = np.zeros((20, 40), np.uint8)  # stored landscape 40x20
    raw[2:6, 30:36] = 255  # a bright defect near the top right of the stored frame
    (d / "a.jpg").write_bytes(_exif_jpeg(raw, 6))
    upright = np.rot90(raw, k=-1)  # what a viewer shows: 20 wide, 40 tall
    write_png(d / "a_mask.png", (upright > 128).astype(np.uint8) * 255)
    write_png(d / "b_mask.png", (raw > 128).astype(np.uint8) * 255)  # drawn on the stored frame
    (d / "b.jpg").write_bytes(_exif_jpeg(raw, 6))
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, _csv(d, ["a.jpg,NG,a_mask.png,dent", "b.jpg,NG,b_mask.png,dent"]), "masks")
    assert r.imported == 1
    part = p.parts()[0]
    img, m = p.read_image(part.id), p.read_mask(part.id)
    assert img.shape == (40, 20) and m.shape == (40, 20)
    assert img[m > 0].min() > 128 and img[m == 0].max() < 128  # defect pixels under the mask
    (err,) = r.errors
    assert err[0] == "b.jpg" and "EXIF" in err[1] and "turned 90 degrees" in err[1]


def _broken_source(d):
    rows = []
    for i in range(5):
        _image(d, f"w{i}.png")
        write_png(d / f"w{i}_mask.png", np.zeros((H + 1 + i, W), np.uint8))
        rows.append(f"w{i}.png,NG,w{i}_mask.png,dent")
    rows += ["missing0.png,OK,,", "missing1.png,OK,,"]
    _image(d, "good.png")
    rows.append("good.png,OK,,")
    return _csv(d, rows)


def test_errors_grouped_by_kind_with_a_full_report_file(tmp_path, capsys):
    src = _broken_source(tmp_path / "s")
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, src, "masks")
    groups = r.error_groups()
    assert [(g["count"], len(g["examples"])) for g in groups] == [(5, 3), (2, 2)]
    assert groups[0]["kind"].startswith("mask is NxN but the image is NxN")
    assert groups[1]["kind"] == "image file not found"
    rc = main(["import", str(tmp_path / "q.h5"), str(src), "--format", "masks"])
    out = capsys.readouterr().out
    assert rc == 0 and "imported 1 parts" in out and "5 x mask is NxN" in out and "2 x image file not found" in out
    assert out.count("w3.png") == 0  # only a few examples per kind on screen ...
    full = json.loads((tmp_path / "q.import-report.json").read_text())
    assert len(full["errors"]) == 7 and full["format"] == "masks"  # ... every one in the file
    main(["import", str(tmp_path / "q.h5"), str(src), "--format", "masks", "--report", str(tmp_path / "r.json")])
    assert (tmp_path / "r.json").is_file()


def test_dry_run_writes_nothing(tmp_path, capsys):
    src = _broken_source(tmp_path / "s")
    p = Project.create(tmp_path / "p.h5")
    before = (p.settings.to_dict(), (tmp_path / "p.h5").read_bytes())
    r = import_into(p, src, "masks", dry_run=True)
    assert r.dry_run and r.imported == 1 and len(r.errors) == 7 and r.added_classes == []
    assert (p.settings.to_dict(), (tmp_path / "p.h5").read_bytes()) == before and len(Project.open(p.path)) == 0
    rc = main(["import", str(tmp_path / "new.h5"), str(src), "--format", "masks", "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0 and "would import 1 parts" in out and "nothing written" in out
    assert sorted(x.name for x in tmp_path.iterdir()) == ["p.h5", "s"]  # no project, no report


def test_strict_still_imports_nothing(tmp_path):
    src = _broken_source(tmp_path / "s")
    rc = main(["import", str(tmp_path / "q.h5"), str(src), "--format", "masks", "--strict", "--json"])
    assert rc == 1 and len(Project.open(tmp_path / "q.h5")) == 0
