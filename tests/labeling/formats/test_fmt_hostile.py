"""Each hostile input of issue 12 ends as one clear line about one file; the rest imports."""
from __future__ import annotations

import json
import os
import zlib

import cv2
import numpy as np
import pytest
from fmt_helpers import write_png

from labeling.formats import import_into
from labeling.formats.base import FormatError
from labeling.formats.rle import coco_decode, severstal_encode
from labeling.formats.safety import ImportLimits
from labeling.store import Project


def _img(seed: int, shape=(12, 16)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)


def _project(tmp_path, name="p.h5"):
    return Project.create(tmp_path / name)


def _errors(r) -> dict[str, str]:
    return dict(r.errors)


def _huge_png(side: int = 20000) -> bytes:
    """A PNG header declaring side x side 8-bit gray, with a few KB of (short) pixel data."""
    ihdr = b"IHDR" + side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    idat = b"IDAT" + zlib.compress(b"\0" * (side + 1) * 8)
    chunk = lambda c: (len(c) - 4).to_bytes(4, "big") + c + zlib.crc32(c).to_bytes(4, "big")
    return b"\x89PNG\r\n\x1a\n" + chunk(ihdr) + chunk(idat) + chunk(b"IEND")


def test_coco_counts_that_wrap_int64_are_refused_not_a_segfault():
    with pytest.raises(FormatError, match="run past the image"):
        coco_decode({"size": [48, 64], "counts": [2 ** 62] * 4}, (48, 64))
    with pytest.raises(FormatError, match="whole numbers"):
        coco_decode({"size": [48, 64], "counts": [10.0, 5.0]}, (48, 64))


def test_images_refused_by_their_header_before_decoding(tmp_path):
    d = tmp_path / "src"
    write_png(d / "OK" / "fine.png", _img(1))
    (d / "OK" / "huge.png").write_bytes(_huge_png())  # 20000x20000 in a few KB
    bmp = bytearray(54)
    bmp[:2], bmp[10], bmp[14], bmp[26], bmp[28] = b"BM", 54, 40, 1, 24
    bmp[18:22] = bmp[22:26] = (1 << 30).to_bytes(4, "little")
    (d / "OK" / "huge.bmp").write_bytes(bytes(bmp))  # cv2.error escaped here before
    write_png(d / "OK" / "dot.png", np.full((1, 1), 9, np.uint8))
    r = import_into(_project(tmp_path), d, "imagefolder")
    e = _errors(r)
    assert r.imported == 1 and len(e) == 3
    assert e["OK/huge.png"] == ("image is 20000x20000 = 400 Mpixels, over the limit of 64 Mpixels (--max-pixels)")
    assert "over the limit" in e["OK/huge.bmp"]
    assert "smaller than the minimum of 2 pixels" in e["OK/dot.png"]
    lower = import_into(_project(tmp_path, "q.h5"), d, "imagefolder", limits=ImportLimits(max_pixels=100))
    assert lower.imported == 0 and "over the limit of 0.0001 Mpixels" in _errors(lower)["OK/fine.png"]


def test_corrupt_jpeg_scan_data_is_an_error_and_nothing_reaches_stderr(tmp_path, capfd):
    d = tmp_path / "src"
    (d / "OK").mkdir(parents=True)
    _, buf = cv2.imencode(".jpg", cv2.resize(_img(2), (64, 64)))
    data = buf.tobytes()
    bad = bytearray(data)
    sos = bad.find(b"\xff\xda")
    for k in range(6):  # restart markers where entropy-coded data belongs
        bad[sos + 30 + 7 * k] = 0xFF
        bad.insert(sos + 31 + 7 * k, 0xD0 + k)
    raw = cv2.imdecode(np.frombuffer(bytes(bad), np.uint8), cv2.IMREAD_UNCHANGED)
    assert raw is not None  # OpenCV alone returns an image and only prints a libjpeg warning
    capfd.readouterr()
    (d / "OK" / "cut.jpg").write_bytes(bytes(bad))
    (d / "OK" / "good.jpg").write_bytes(data)
    r = import_into(_project(tmp_path), d, "imagefolder")
    assert r.imported == 1 and list(_errors(r)) == ["OK/cut.jpg"]
    assert _errors(r)["OK/cut.jpg"].startswith("damaged image data (Corrupt JPEG data")
    assert capfd.readouterr().err == ""


def test_symlink_loops_nul_bytes_and_paths_outside(tmp_path):
    d = tmp_path / "src"
    write_png(d / "images" / "a.png", _img(3))
    write_png(tmp_path / "outside.png", _img(4))
    os.symlink("loop2.png", d / "images" / "loop1.png")
    os.symlink("loop1.png", d / "images" / "loop2.png")
    rows = ["image,label", "images/a.png,OK", "images/loop1.png,OK", "images/b\0.png,OK", "../outside.png,OK",
            f"{tmp_path / 'outside.png'},OK"]
    (d / "labels.csv").write_text("\n".join(rows) + "\n")
    r = import_into(_project(tmp_path), d / "labels.csv", "masks")
    e = _errors(r)
    assert r.imported == 1
    assert e["images/loop1.png"] == "symbolic link loop"
    assert e["labels.csv line 4"] == "row holds a NUL byte (a damaged or binary file)"
    assert e["../outside.png"] == "lies outside the source folder (import with --allow-outside to allow it)"
    assert sum("outside the source folder" in m for _, m in r.errors) == 2  # the absolute path too
    allowed = import_into(_project(tmp_path, "q.h5"), d / "labels.csv", "masks",
                          limits=ImportLimits(allow_outside=True))
    assert allowed.imported == 2  # a.png and outside.png (named twice: the second is a duplicate)


def test_json_nested_deep_nan_points_and_bad_base64(tmp_path):
    d = tmp_path / "lm"
    for i in range(4):
        write_png(d / f"i{i}.png", _img(10 + i))
    (d / "i0.json").write_text('{"shapes": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (d / "i1.json").write_text(json.dumps({"imagePath": "i1.png", "shapes": [
        {"label": "dent", "points": [[1, 1], [float("nan"), 5], [6, 6]]}]}))
    (d / "i2.json").write_text(json.dumps({"imagePath": "gone.png", "imageData": "abc", "shapes": []}))
    (d / "i3.json").write_text(json.dumps({"imagePath": "i3.png", "imageHeight": "abc", "imageWidth": 16, "shapes": [
        {"label": "dent", "points": [[1, 1], [5, 1], [5, 5]]}]}))
    r = import_into(_project(tmp_path), d, "labelme")
    e = _errors(r)
    assert r.imported == 1  # i2.png: an image without a JSON of its own is OK
    assert e["i0.json"] == "JSON nested too deeply to read"
    assert e["i1.png"] == "shape 1 (polygon): polygon has a NaN or infinite coordinate"
    assert e["i2.json"] == "imageData is not valid base64 data"
    assert e["i3.png"] == "imageHeight 'abc' is not a whole number"
    text = " ".join(e.values())
    assert "Incorrect padding" not in text and "invalid literal" not in text


def test_polygon_point_limit(tmp_path):
    d = tmp_path / "lm"
    write_png(d / "a.png", _img(20))
    pts = [[1 + (k % 7), 1 + (k % 5)] for k in range(2_000)]
    (d / "a.json").write_text(json.dumps({"imagePath": "a.png", "shapes": [{"label": "x", "points": pts}]}))
    r = import_into(_project(tmp_path), d, "labelme", limits=ImportLimits(max_polygon_points=1_000))
    assert _errors(r)["a.png"] == ("shape 1 (polygon): polygon has 2,000 points, over the limit of 1,000 "
                                   "(--max-polygon-points)")
    assert import_into(_project(tmp_path, "q.h5"), d, "labelme").imported == 1


def test_severstal_class_300_huge_numbers_and_a_long_row(tmp_path):
    d = tmp_path / "sv"
    big = np.zeros((400, 400), bool)
    big[::2, :] = True  # 80,000 runs: a row far over csv's 131,072-character field limit
    write_png(d / "train_images" / "big.png", _img(30, (400, 400)))
    for name in ("c300.png", "huge.png", "ok.png"):
        write_png(d / "train_images" / name, _img(hash(name) % 1000))
    enc = severstal_encode(big)
    assert len(enc) > 131_072
    rows = ["ImageId,ClassId,EncodedPixels", f"big.png,1,{enc}", "c300.png,300,1 2",
            "huge.png,1,1 99999999999999999999999", "ok.png,2,1 3"]
    (d / "train.csv").write_text("\n".join(rows) + "\n")
    p = _project(tmp_path)
    r = import_into(p, d, "severstal")
    e = _errors(r)
    assert e["train.csv line 3"] == "malformed row: ClassId '300' is not a class number 1..255"
    assert "runs past" in e["train_images/huge.png"]
    assert e["train_images/c300.png"] == "skipped: its row on line 3 of train.csv is malformed"  # not a clean OK
    assert r.imported == 2  # big (its long row read) and ok
    by = {x.name: x for x in p.parts()}
    assert np.array_equal(p.read_mask(by["big"].id) > 0, big)


def test_same_image_twice_by_copy_or_hard_link(tmp_path):
    d = tmp_path / "src"
    a = write_png(d / "OK" / "a.png", _img(40))
    (d / "OK" / "copy.png").write_bytes(a.read_bytes())
    os.link(a, d / "OK" / "link.png")
    write_png(d / "OK" / "b.png", _img(41))
    p = _project(tmp_path)
    r = import_into(p, d, "imagefolder")
    assert r.imported == 2 and len(p) == 2
    assert all(m == "duplicate: the same image as OK/a.png appears twice in the source"
               for m in _errors(r).values()) and len(r.errors) == 2
    again = import_into(p, d, "imagefolder")
    assert again.imported == 0 and all("already in the project" in m for _, m in again.errors)


def test_an_unexpected_error_in_one_part_costs_that_part_and_the_report_is_true(tmp_path, monkeypatch):
    from labeling.formats import engine
    d = tmp_path / "src"
    for i in range(3):
        write_png(d / "OK" / f"x{i}.png", _img(50 + i))
    real = engine._add

    def flaky(project, fmt, group, prepared, user):
        if group[0].file == "OK/x1.png":
            raise RuntimeError("disk on fire")
        real(project, fmt, group, prepared, user)

    monkeypatch.setattr(engine, "_add", flaky)
    p = _project(tmp_path)
    r = import_into(p, d, "imagefolder")
    assert r.imported == 2 and len(Project.open(p.path).parts()) == 2
    assert _errors(r) == {"OK/x1.png": "unexpected error (RuntimeError: disk on fire)"}


def test_cli_prints_the_summary_and_writes_the_report_with_limits(tmp_path, capsys):
    from app.cli import main
    d = tmp_path / "src"
    write_png(d / "OK" / "a.png", _img(60, (40, 40)))
    write_png(d / "OK" / "b.png", _img(61, (10, 10)))
    proj = tmp_path / "cli.h5"
    assert main(["import", str(proj), str(d), "--format", "imagefolder", "--max-pixels", "0.001"]) == 0
    out = capsys.readouterr().out
    assert "imported 1 parts" in out and "over the limit of 0.001 Mpixels (--max-pixels)" in out
    report = json.loads(proj.with_name("cli.import-report.json").read_text())
    assert report["imported"] == 1 and report["errors"][0]["file"] == "OK/a.png"
    assert len(Project.open(proj).parts()) == 1
