"""`severstal`: the Kaggle steel-defect CSV (ImageId,ClassId,EncodedPixels) and its images.

EncodedPixels are 1-based "start length" runs going down columns. ClassId is a class number
(okng_classes.json beside the CSV names them). Images sit in train_images/ (or images/, or the
CSV's folder); images without a run are OK, with runs NG, labelled with every class that has
pixels (multilabel; the class covering most pixels first).
The older layout (ImageId_ClassId,EncodedPixels) is read too. Multi-view parts go by the file-name
rule PART__CAMERA.png (base.view_name); cameras, ROIs and class colours travel in okng_classes.json.
What the format cannot hold: verdicts follow the masks (an NG part without mask pixels comes back
OK, an unlabeled part OK or NG, the classes are those with mask pixels; where runs of two
classes overlap, the later row's class holds the pixel), all-zero masks come back as no mask,
and part fields are lost.
"""
from __future__ import annotations

import csv
import io
from functools import partial
from pathlib import Path

import numpy as np

from ..store import Project
from .base import (
    ClassRef,
    ExportJob,
    FormatError,
    ImportItem,
    ItemError,
    MaskData,
    ReadResult,
    csv_rows,
    image_files,
    mask_values,
    read_image,
    rel,
)
from .rle import severstal_decode, severstal_encode
from .safety import path_key, read_text

MAIN = "train.csv"
IMAGE_DIRS = ("train_images", "images")


def _find_csv(src: Path) -> Path:
    if src.is_file():
        return src
    if (src / MAIN).is_file():
        return src / MAIN
    found = sorted(src.glob("*.csv"))
    if len(found) != 1:
        raise FormatError(f"{src}: expected one Severstal CSV ({MAIN}), found {len(found)}")
    return found[0]


def _rows(text: str) -> list[tuple[int, list[str] | str]]:
    """CSV rows by physical line: Severstal rows never span lines, and an EncodedPixels longer
    than the csv module's 131,072-character field limit (a big image's runs) is split by hand
    instead of failing the whole file."""
    out: list[tuple[int, list[str] | str]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if len(line) > 100_000 and '"' not in line:
            out.append((n, line.split(",")))
            continue
        for _, row in csv_rows(line):
            out.append((n, row))
    return out


def _mask(runs: list[tuple[int, str]], what: str, shape: tuple[int, int]) -> MaskData:
    out = np.zeros(shape, np.uint8)
    for cls, text in runs:
        try:
            out[severstal_decode(text, shape)] = cls
        except FormatError as exc:
            raise FormatError(f"{what}: class {cls}: {exc}") from None
    classes: dict[int, ClassRef] = {c: c for c, _ in runs}
    return MaskData(out, classes)


class SeverstalFormat:
    name = "severstal"
    description = "Kaggle Severstal steel CSV (ImageId,ClassId,EncodedPixels) with train_images/"
    main_file = MAIN

    def read(self, src: Path) -> ReadResult:
        cpath = _find_csv(src)
        root = cpath.parent
        img_dir = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), root)
        try:
            text = read_text(cpath)
        except FormatError as exc:
            yield ItemError(cpath.name, f"cannot read CSV ({exc})")
            return
        rows = _rows(text)
        first = rows[0][1] if rows else []
        header = [h.strip() for h in first] if isinstance(first, list) else []
        if header[:3] == ["ImageId", "ClassId", "EncodedPixels"]:
            split = False
        elif header[:2] == ["ImageId_ClassId", "EncodedPixels"]:
            split = True
        else:
            yield ItemError(cpath.name, f"CSV header {header} is not ImageId,ClassId,EncodedPixels")
            return
        runs: dict[str, list[tuple[int, str]]] = {}
        broken: dict[str, int] = {}  # image -> line of a malformed row: never passed off as a clean OK
        for line, row in rows[1:]:
            where = f"{cpath.name} line {line}"
            if isinstance(row, str):
                yield ItemError(where, row)
                continue
            if not any(c.strip() for c in row):
                continue
            try:
                if split:
                    image, _, cls_text = row[0].strip().rpartition("_")
                    enc = row[1] if len(row) > 1 else ""
                else:
                    image, cls_text, enc = row[0].strip(), row[1], row[2] if len(row) > 2 else ""
                cls_text = cls_text.strip()
                if not image:
                    raise ValueError("no ImageId")
                if not (cls_text.isascii() and cls_text.isdigit()) or not 1 <= int(cls_text) <= 255:
                    raise ValueError(f"ClassId {cls_text[:20]!r} is not a class number 1..255")
                if "\x00" in image:
                    raise ValueError("ImageId holds a NUL byte")
                cls = int(cls_text)
            except (ValueError, IndexError) as exc:
                why = str(exc) if isinstance(exc, ValueError) and str(exc) else f"too few fields ({len(row)})"
                yield ItemError(where, f"malformed row: {why}")
                name = (row[0].strip().rpartition("_")[0] if split else row[0].strip()) if row else ""
                if name and "\x00" not in name:
                    broken.setdefault(name, line)
                continue
            runs.setdefault(image, [])
            if enc.strip():
                runs[image].append((cls, enc.strip()))
        listed = {path_key(p): p for p in image_files(img_dir, recursive=False)}
        for image, line in broken.items():
            path = img_dir / image
            listed.pop(path_key(path), None)
            runs.pop(image, None)
            yield ItemError(rel(path, root), f"skipped: its row on line {line} of {cpath.name} is malformed")
        for image, image_runs in runs.items():
            path = img_dir / image
            listed.pop(path_key(path), None)
            what = rel(path, root)
            yield ImportItem(file=what, path=path, verdict=None,
                             load_mask=partial(_mask, image_runs, what) if image_runs else None,
                             load_image=partial(read_image, path, what))
        for path in sorted(listed.values()):
            yield ImportItem(file=rel(path, root), path=path, verdict=None,
                             load_image=partial(read_image, path, rel(path, root)))

    def write(self, project: Project, dest: Path, job: ExportJob) -> None:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["ImageId", "ClassId", "EncodedPixels"])
        for part, view, stem in job.views():
            job.save_image(f"train_images/{stem}.png", project.read_image(part.id, view))
            mask = project.read_mask(part.id, view)
            for c in (v for v in mask_values(mask) if v) if mask is not None else ():
                w.writerow([f"{stem}.png", c, severstal_encode(mask == c)])
        job.save_text(job.main_file or MAIN, out.getvalue())
        job.save_classes()

