"""Seeded hostile import sources for the five formats, and the check every import must pass.

`make_case(root, fmt, seed)` writes a small valid source (three parts: OK, NG with a mask, NG with
a mask) and then damages it with one or two mutations picked by the seed: broken or lying image
files, broken JSON/CSV, huge numbers, NaN, deep nesting, path tricks, symlink loops, duplicates,
wrong sizes. `run_case(case, workdir)` imports it into a fresh project and returns an outcome:

* crash: an exception left import_into (a segfault or a hang is caught by bench/fuzz_import.py,
  which runs cases in a child process with a timeout);
* traceback / stderr: anything printed on file descriptor 2 during the import;
* inconsistent: the project file, reopened, holds another number of parts than the report says;
* garbled: an error message with parser internals, the file's name twice, or a line break;
* silent: a mutation that must be refused (corrupt JPEG data, NaN, a duplicate, a path outside
  the source, a 1x1 image, ...) was imported without an error;
* otherwise ok (with or without per-file errors).

Same seed, same bytes: a failing case is reproduced with make_case(root, fmt, seed).
"""
from __future__ import annotations

import json
import os
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

FORMATS = ("imagefolder", "masks", "labelme", "coco", "severstal")
GARBLED = ("Incorrect padding", "invalid literal", "Traceback", "could not convert", "object has no attribute",
           "embedded null", "Symlink loop", "OpenCV(", "field larger than field limit")


@dataclass
class Case:
    fmt: str
    seed: int
    src: Path
    mutations: list[str]
    must_error: bool  # a mutation that must show up as an error (never accepted silently)


@dataclass
class _Src:
    """The source being built: image files by part name, masks, and what the label file says."""

    root: Path
    fmt: str
    rng: np.random.Generator
    images: dict[str, Path] = field(default_factory=dict)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    text: str = ""  # CSV text (masks, severstal)
    doc: object = None  # JSON document (coco) or {name: labelme doc}
    tag: str = ""
    damaged: set[str] = field(default_factory=set)  # images a mutation already took: one each


# ------------------------------------------------------------------ base sources
def _png(img: np.ndarray, ext: str = ".png") -> bytes:
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def _base(s: _Src) -> None:
    rng = s.rng
    for i in range(3):
        h, w = (int(v) for v in rng.integers(8, 24, 2))
        shape = (h, w, 3) if rng.random() < 0.3 else (h, w)
        img = rng.integers(0, 255, shape, dtype=np.uint8)
        img.flat[0] = i  # distinct pixels whatever the dice say
        name = f"p{i}"
        folder = {"imagefolder": ("OK", "NG/scratch", "NG/dent")[i], "severstal": "train_images"}.get(s.fmt, "images")
        path = s.root / folder / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_png(img))
        s.images[name] = path
        if i:
            m = np.zeros((h, w), np.uint8)
            m[2:h - 2, 2:w - 3] = 1
            s.masks[name] = m
    if s.fmt == "masks":
        rows = ["image,label,mask,defect_class"]
        for name, path in s.images.items():
            if name in s.masks:
                (s.root / "masks").mkdir(exist_ok=True)
                (s.root / "masks" / f"{name}_mask.png").write_bytes(_png(s.masks[name] * 255))
                rows.append(f"images/{path.name},NG,masks/{name}_mask.png,scratch")
            else:
                rows.append(f"images/{path.name},OK,,")
        s.text = "\n".join(rows) + "\n"
    elif s.fmt == "severstal":
        from labeling.formats.rle import severstal_encode
        rows = ["ImageId,ClassId,EncodedPixels"]
        rows += [f"{n}.png,1,{severstal_encode(m.astype(bool))}" for n, m in s.masks.items()]
        s.text = "\n".join(rows) + "\n"
    elif s.fmt == "labelme":
        docs = {}
        for name, path in s.images.items():
            shapes = []
            if name in s.masks:
                ys, xs = np.nonzero(s.masks[name])
                shapes.append({"label": "scratch", "shape_type": "polygon", "points": [
                    [float(xs.min()), float(ys.min())], [float(xs.max()), float(ys.min())],
                    [float(xs.max()), float(ys.max())], [float(xs.min()), float(ys.max())]]})
            h, w = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED).shape[:2]
            docs[name] = {"shapes": shapes, "imagePath": f"../images/{path.name}", "imageHeight": h, "imageWidth": w}
        s.doc = docs
    elif s.fmt == "coco":
        from labeling.formats.rle import coco_encode
        images, anns = [], []
        for k, (name, path) in enumerate(s.images.items(), start=1):
            images.append({"id": k, "file_name": path.name})
            if name in s.masks:
                anns.append({"id": len(anns) + 1, "image_id": k, "category_id": 1, "iscrowd": 1,
                             "segmentation": coco_encode(s.masks[name].astype(bool))})
        s.doc = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "scratch"}]}


def _write_labels(s: _Src) -> None:
    if s.fmt == "masks":
        (s.root / "labels.csv").write_text(s.text, encoding="utf-8", errors="surrogateescape")
    elif s.fmt == "severstal":
        (s.root / "train.csv").write_text(s.text, encoding="utf-8", errors="surrogateescape")
    elif s.fmt == "labelme":
        (s.root / "labelme").mkdir(exist_ok=True)
        for name, doc in s.doc.items():  # type: ignore[union-attr]
            text = doc if isinstance(doc, str) else json.dumps(doc)
            (s.root / "labelme" / f"{name}.json").write_text(text)
    elif s.fmt == "coco":
        doc = s.doc
        (s.root / "annotations.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))


# ------------------------------------------------------------------ mutations
# Each takes the source and returns whether the damage must be reported as an error.
Mutation = Callable[[_Src], bool]


def _pick_image(s: _Src) -> Path | None:
    """An image no other mutation has touched (so each mutation's expectation holds), or None."""
    names = sorted(set(s.images) - s.damaged)
    if not names:
        return None
    name = names[int(s.rng.integers(len(names)))]
    s.damaged.add(name)
    return s.images[name]


def m_truncate(s: _Src) -> bool:
    p = _pick_image(s)
    if p is None:
        return False
    data = p.read_bytes()
    p.write_bytes(data[: int(s.rng.integers(0, max(1, len(data) - 1)))])
    return True


def m_flip_bytes(s: _Src) -> bool:
    p = _pick_image(s)
    if p is None:
        return False
    data = bytearray(p.read_bytes())
    for _ in range(int(s.rng.integers(1, 8))):
        data[int(s.rng.integers(len(data)))] = int(s.rng.integers(256))
    p.write_bytes(bytes(data))
    return False  # a flipped byte may land where no decoder can notice


def m_corrupt_jpeg(s: _Src) -> bool:
    """Real JPEG, damaged scan data: OpenCV only warns; it must be an error."""
    p = _pick_image(s)
    if p is None:
        return False
    img = cv2.imdecode(np.frombuffer(p.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
    big = cv2.resize(img, (64, 64), interpolation=cv2.INTER_NEAREST)
    data = bytearray(_png(big, ".jpg"))
    sos = data.find(b"\xff\xda")
    if s.rng.random() < 0.5:
        data = data[: sos + 40 + int(s.rng.integers(0, 20))]  # truncated scan, no EOI
    else:
        for k in range(6):
            data[sos + 30 + 7 * k] = 0xFF  # markers where entropy-coded data belongs
            data.insert(sos + 31 + 7 * k, 0xD0 + k % 8)
    p.write_bytes(bytes(data))
    _retarget(s, p, p.with_suffix(".jpg"))
    return True


def m_huge_header(s: _Src) -> bool:
    """A PNG or BMP declaring 20000x20000 (or more) in a few hundred bytes."""
    p = _pick_image(s)
    if p is None:
        return False
    side = int(s.rng.choice([20000, 65535, 1 << 20, (1 << 31) - 1]))
    if s.rng.random() < 0.5:
        ihdr = b"IHDR" + side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
        idat = zlib.compress(b"\x00" * 4096)
        data = (b"\x89PNG\r\n\x1a\n" + len(ihdr[4:]).to_bytes(4, "big") + ihdr
                + zlib.crc32(ihdr).to_bytes(4, "big") + len(idat).to_bytes(4, "big") + b"IDAT" + idat
                + zlib.crc32(b"IDAT" + idat).to_bytes(4, "big"))
    else:
        side = min(side, (1 << 31) - 1)
        data = (b"BM" + (54 + 16).to_bytes(4, "little") + b"\0\0\0\0" + (54).to_bytes(4, "little")
                + (40).to_bytes(4, "little") + side.to_bytes(4, "little", signed=True)
                + side.to_bytes(4, "little", signed=True) + (1).to_bytes(2, "little") + (24).to_bytes(2, "little")
                + b"\0" * 24 + b"\0" * 16)
        _retarget(s, p, p.with_suffix(".bmp"))
        p = p.with_suffix(".bmp")
    p.write_bytes(data)
    return True


def m_tiny(s: _Src) -> bool:
    p = _pick_image(s)
    if p is None:
        return False
    p.write_bytes(_png(np.full((1, int(s.rng.integers(1, 5))), 7, np.uint8)))
    return True


def m_not_an_image(s: _Src) -> bool:
    p = _pick_image(s)
    if p is None:
        return False
    p.write_bytes(bytes(s.rng.choice([b"", b"hello", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM"])))
    return True


def m_duplicate(s: _Src) -> bool:
    """The same image twice: a copy or a hard link under another name (same folder and label)."""
    p = _pick_image(s)
    if p is None:
        return False
    name = next(n for n, q in s.images.items() if q == p)
    twin = p.with_name(f"{p.stem}twin{p.suffix}")
    if s.rng.random() < 0.5:
        twin.write_bytes(p.read_bytes())
    else:
        os.link(p, twin)
    _add_row_like(s, name, twin)
    return True


def m_symlink_loop(s: _Src) -> bool:
    p = _pick_image(s)
    if p is None:
        return False
    p.unlink()
    other = p.with_name(p.stem + "_loop" + p.suffix)
    os.symlink(other.name, p)
    os.symlink(p.name, other)
    return True


def m_outside(s: _Src) -> bool:
    """The label file names an image outside the source folder (../ or an absolute path)."""
    outside = s.root.parent / f"outside-{s.tag}.png"
    outside.write_bytes(_png(s.rng.integers(0, 255, (9, 9), dtype=np.uint8)))
    target = f"../{outside.name}" if s.rng.random() < 0.5 else str(outside)
    if s.fmt == "masks":
        s.text += f"{target},OK,,\n"
    elif s.fmt == "labelme":
        s.doc["outside"] = {"shapes": [], "imagePath": ("../" + target) if target.startswith("..") else target}  # type: ignore[index]
    elif s.fmt == "coco":
        s.doc["images"].append({"id": 99, "file_name": target})  # type: ignore[index]
    elif s.fmt == "severstal":  # ImageId is relative to train_images/
        s.text += f"{'../' + target if target.startswith('..') else target},1,1 2\n"
    else:  # imagefolder: a symlinked folder is the user's layout; a ../ name cannot occur
        return False
    return True


def m_nul(s: _Src) -> bool:
    if s.fmt in ("masks", "severstal"):
        lines = s.text.splitlines()
        k = int(s.rng.integers(1, len(lines))) if len(lines) > 1 else 0
        pos = int(s.rng.integers(0, len(lines[k]) + 1))
        lines[k] = lines[k][:pos] + "\x00" + lines[k][pos:]
        s.text = "\n".join(lines) + "\n"
    elif s.fmt == "coco":
        s.doc["images"][0]["file_name"] += "\x00.png"  # type: ignore[index]
    elif s.fmt == "labelme":
        first = min(s.doc)  # type: ignore[arg-type]
        s.doc[first]["imagePath"] += "\x00"  # type: ignore[index]
    return False


def m_long_row(s: _Src) -> bool:
    junk = " ".join(["1 1"] * int(s.rng.integers(45_000, 70_000)))  # > 131,072 characters
    if s.fmt == "severstal":
        s.text += f"p1.png,2,{junk}\n"
    elif s.fmt == "masks":
        s.text += f"images/p1.png,NG,,{junk}\n"
    return False


def m_bad_numbers(s: _Src) -> bool:
    r = s.rng
    if s.fmt == "severstal":
        v = r.choice(["300", "0", "-1", "abc", "1.5", "99999999999999999999999", "²"])
        nums = r.choice(["1 99999999999999999999", "-5 3", "1 2 3", "a b", str(10 ** 30) + " 1", "1.0 2.0",
                         " ".join(["1"] * 9)])
        s.text += f"p2.png,{v},{nums}\n"
        return v != "1"
    if s.fmt == "coco":
        ann = {"id": 50, "image_id": 1, "category_id": 1}
        kind = int(r.integers(6))
        if kind == 0:
            ann["segmentation"] = {"size": None, "counts": [2 ** 62] * 4}
        elif kind == 1:
            ann["segmentation"] = {"size": None, "counts": [1.0, 2.0, 3.5]}
        elif kind == 2:
            ann["segmentation"] = {"size": None, "counts": [-3, 5]}
        elif kind == 3:
            ann["segmentation"] = {"size": None, "counts": "0" * 40 + "PPPPPPPPPPPPPPPPPP"}
        elif kind == 4:
            ann["segmentation"] = [[1.0, 2.0, float("nan"), 4.0, 5.0, 6.0]]
        else:
            ann["segmentation"] = [[1e308, 1e308, -1e308, 3.0, 4.0, 5.0]]
        first = s.doc["images"][0]  # type: ignore[index]
        h, w = cv2.imdecode(np.frombuffer(s.images["p0"].read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED).shape[:2]
        if isinstance(ann["segmentation"], dict):
            ann["segmentation"]["size"] = [h, w]
        ann["image_id"] = first["id"]
        s.doc["annotations"].append(ann)  # type: ignore[index]
        return True
    if s.fmt == "labelme":
        doc = s.doc["p1"]  # type: ignore[index]
        kind = int(r.integers(7))
        if kind == 0:
            doc["shapes"][0]["points"][1] = [float("nan"), 3.0]
        elif kind == 1:
            doc["shapes"][0]["points"][2] = [float("inf"), -float("inf")]
        elif kind == 2:
            doc["shapes"][0]["points"][0] = ["abc", 2]
        elif kind == 3:
            doc["imageHeight"] = "abc"
        elif kind == 4:
            doc["shapes"].append({"label": "scratch", "shape_type": "circle", "points": [[3, 3], [1e300, 3]]})
            return False  # a circle bigger than the image covers it: legal, if odd
        elif kind == 5:
            doc["shapes"].append({"label": "x", "shape_type": "mask", "points": [[0, 0], [3, 3]], "mask": "abc"})
        else:
            doc["shapes"][0]["points"] = [[1, 1]] * 100_001 + [[5, 5], [1, 7]]
        return True
    if s.fmt == "masks":
        s.text += "images/p0.png,maybe,,\n"
        return True
    return False


def m_deep_json(s: _Src) -> bool:
    deep = "[" * 100_000 + "]" * 100_000
    if s.fmt == "labelme":
        s.doc["p1"] = '{"shapes": ' + deep + "}"  # type: ignore[index]
    elif s.fmt == "coco":
        s.doc = '{"images": ' + deep + "}"
    else:
        (s.root / "okng_classes.json").write_text('{"classes": ' + deep + "}")
    return True


def m_broken_text(s: _Src) -> bool:
    r = s.rng
    if s.fmt in ("masks", "severstal"):
        k = int(r.integers(4))
        if k == 0:
            s.text = s.text[: int(r.integers(len(s.text)))]
        elif k == 1:
            s.text = s.text.replace(",", ";", 1)
        elif k == 2:
            s.text += '"unterminated,quote\n' * 3
        else:
            s.text = s.text[:20] + "\udcff\udcfe" + s.text[20:]  # bytes that are not UTF-8
        return False
    if s.fmt in ("labelme", "coco"):
        text = json.dumps(s.doc) if s.fmt == "coco" else json.dumps(s.doc["p2"])  # type: ignore[index]
        k = int(r.integers(5))
        cut = [text[: int(r.integers(len(text)))], text.replace("[", "{", 1), "[1, 2]", "null",
               '{"images": [{"id": [1], "file_name": "p0.png"}], "shapes": "x", "imageData": "YWJj="}'][k]
        if s.fmt == "coco":
            s.doc = cut
        else:
            s.doc["p2"] = cut  # type: ignore[index]
        return False
    (s.root / "OK" / "notes.txt").write_text("not an image")
    return False


def m_image_data(s: _Src) -> bool:
    """labelme: the image only as imageData, sometimes broken base64."""
    if s.fmt != "labelme":
        return m_flip_bytes(s)
    if "p2" in s.damaged:
        return False
    s.damaged.add("p2")
    doc = s.doc["p2"]  # type: ignore[index]
    s.images["p2"].unlink()
    bad = s.rng.random() < 0.6
    import base64
    good = base64.b64encode(_png(s.rng.integers(0, 255, (12, 12), dtype=np.uint8))).decode()
    doc.update(imageData=good[:-3] if bad else good, imagePath="gone.png", imageHeight=12, imageWidth=12)
    doc["shapes"] = []
    return bad


def m_wrong_mask(s: _Src) -> bool:
    if s.fmt == "masks":
        (s.root / "masks" / "p1_mask.png").write_bytes(_png(np.zeros((3, 40), np.uint8)))
        return True
    if s.fmt == "labelme":
        s.doc["p1"]["imageWidth"] = 4000  # type: ignore[index]
        return True
    if s.fmt == "coco":
        for a in s.doc["annotations"]:  # type: ignore[index]
            a["segmentation"]["size"] = [5, 5]
        return bool(s.doc["annotations"])  # type: ignore[index]
    if s.fmt == "severstal":
        s.text += "p0.png,1,1 100000\n"
        return True
    return False


def m_sidecar(s: _Src) -> bool:
    r = s.rng
    docs = [{"classes": [{"name": f"c{i}"} for i in range(300)]}, {"classes": [{"name": "a"}], "rois": {"cam0": [1e400, 0, 1, 1]}},
            {"classes": "x"}, {"classes": [{"name": "a"}], "cameras": [[1]], "kind": "nope"}]
    text = json.dumps(docs[int(r.integers(len(docs)))]).replace("1e400", "1e999")
    (s.root / "okng_classes.json").write_text(text)
    return False


MUTATIONS: dict[str, Mutation] = {f.__name__[2:]: f for f in (
    m_truncate, m_flip_bytes, m_corrupt_jpeg, m_huge_header, m_tiny, m_not_an_image, m_duplicate, m_symlink_loop,
    m_outside, m_nul, m_long_row, m_bad_numbers, m_deep_json, m_broken_text, m_image_data, m_wrong_mask, m_sidecar)}


def _retarget(s: _Src, old: Path, new: Path) -> None:
    """Rename an image (extension change) and fix every reference to it."""
    if old != new and old.exists():
        old.rename(new)
    name = next(n for n, q in s.images.items() if q == old)
    s.images[name] = new
    if s.fmt in ("masks", "severstal"):
        s.text = s.text.replace(old.name, new.name)
    elif s.fmt == "labelme":
        doc = s.doc.get(name)  # type: ignore[union-attr]
        if isinstance(doc, dict) and doc.get("imagePath", "").endswith(old.name):
            doc["imagePath"] = doc["imagePath"][: -len(old.name)] + new.name
    elif s.fmt == "coco" and isinstance(s.doc, dict):
        for img in s.doc["images"]:
            if img.get("file_name") == old.name:
                img["file_name"] = new.name


def _add_row_like(s: _Src, name: str, twin: Path) -> None:
    if s.fmt == "masks":
        line = next(row for row in s.text.splitlines() if f"/{s.images[name].name}," in row)
        s.text += line.replace(s.images[name].name, twin.name, 1) + "\n"
    elif s.fmt == "labelme":
        doc = s.doc.get(name)  # type: ignore[union-attr]
        if isinstance(doc, dict):
            s.doc[f"{name}twin"] = {**doc, "imagePath": f"../images/{twin.name}"}  # type: ignore[index]
    elif s.fmt == "coco" and isinstance(s.doc, dict):
        s.doc["images"].append({"id": 77, "file_name": twin.name})
    # imagefolder and severstal list every image in their folders


def make_case(root: Path, fmt: str, seed: int) -> Case:
    """Write case `seed` of format `fmt` under root (a fresh folder); same seed, same bytes."""
    rng = np.random.default_rng([seed, FORMATS.index(fmt)])
    src = root / f"{fmt}-{seed}"
    src.mkdir(parents=True)
    s = _Src(src, fmt, rng, tag=f"{fmt}-{seed}")
    _base(s)
    names = sorted(MUTATIONS)
    picked = [names[int(i)] for i in rng.choice(len(names), size=int(rng.integers(1, 3)), replace=False)]
    picked.sort(key=lambda n: n in ("deep_json", "broken_text"))  # these may turn a document into text
    must = False
    for name in picked:
        must |= bool(MUTATIONS[name](s))
    _write_labels(s)
    return Case(fmt, seed, src if fmt != "coco" or rng.random() < 0.5 else src / "annotations.json", picked, must)


# ------------------------------------------------------------------ running a case
def run_case(case: Case, workdir: Path) -> dict:
    """Import the case into a fresh project; the outcome (see module doc) and the report's counts."""
    from labeling.formats import import_into
    from labeling.store import Project

    out = {"fmt": case.fmt, "seed": case.seed, "mutations": case.mutations, "outcome": "ok", "detail": ""}
    path = workdir / f"{case.fmt}-{case.seed}.h5"
    project = Project.create(path)
    with tempfile.TemporaryFile() as err:
        saved = os.dup(2)
        os.dup2(err.fileno(), 2)
        try:
            report = import_into(project, case.src, case.fmt)
        except BaseException as exc:  # noqa: BLE001 - what the fuzz is looking for
            os.dup2(saved, 2)
            out.update(outcome="crash", detail=f"{type(exc).__name__}: {exc}"[:300])
            return out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        err.seek(0)
        said = err.read().decode("utf-8", "replace")
    out.update(imported=report.imported, errors=len(report.errors))
    held = len(Project.open(path, readonly=True).parts())
    bad = [f"{f}: {m}" for f, m in report.errors
           if "\n" in m or any(g in m for g in GARBLED) or (f and m.startswith(f + ":"))]
    if "Traceback" in said:
        out.update(outcome="traceback", detail=said[-300:])
    elif said.strip():
        out.update(outcome="stderr", detail=said[-300:])
    elif held != report.imported:
        out.update(outcome="inconsistent", detail=f"file holds {held} parts, report says {report.imported}")
    elif bad:
        out.update(outcome="garbled", detail=bad[0][:300])
    elif case.must_error and not report.errors:
        out.update(outcome="silent", detail=f"{case.mutations} imported {report.imported} parts without an error")
    return out
