"""`masks`: labels.csv (image,label[,mask][,defect_class]) or images/ + masks/ folder pairs.

Paths in the CSV are relative to the CSV; other columns are ignored. A mask PNG is 8-bit and
either class-index (1..N) or 0/255 (255 = the row's defect_class, else class 1). Folder pairs
match images/<stem>.* with masks/<stem>_mask.png or masks/<stem>.png; a part is NG when its mask
has class pixels. Export writes labels.csv + images/ + class-index masks/.
"""
from __future__ import annotations

import csv
import io
from functools import partial
from pathlib import Path

import numpy as np

from ..store import Project
from ..types import Verdict
from .base import (
    ClassRef,
    ExportJob,
    FormatError,
    ImportItem,
    ItemError,
    ReadResult,
    binary_mask,
    first_existing,
    image_files,
    index_mask,
    mask_values,
    read_image,
    read_mask_png,
    rel,
)

MAIN = "labels.csv"


def load_png_mask(path: Path, what: str, ref: ClassRef | None, shape: tuple[int, int]
                  ) -> tuple[np.ndarray, dict[int, ClassRef]]:
    m = read_mask_png(path, what)
    values = set(mask_values(m))
    if 255 in values and values <= {0, 255}:
        return binary_mask(m == 255, ref if ref not in (None, "") else 1)
    return index_mask(m)


def _read_csv(path: Path) -> ReadResult:
    root = path.parent
    try:
        text = path.read_text(encoding="utf-8-sig")
        rows = list(csv.reader(io.StringIO(text)))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        yield ItemError(path.name, f"cannot read CSV ({exc})")
        return
    if not rows:
        yield ItemError(path.name, "empty CSV (expected a header image,label[,mask][,defect_class])")
        return
    header = [h.strip().lower() for h in rows[0]]
    if "image" not in header or "label" not in header:
        yield ItemError(path.name, f"CSV header {rows[0]} lacks the columns 'image' and 'label'")
        return
    col = {name: header.index(name) for name in ("image", "label", "mask", "defect_class") if name in header}
    has_class = "defect_class" in col
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        where = f"{path.name} line {line}"
        if len(row) < len(header):
            yield ItemError(where, f"row has {len(row)} fields, the header has {len(header)}")
            continue
        cells = {name: row[i].strip() for name, i in col.items()}
        image = cells["image"]
        if not image:
            yield ItemError(where, "empty image path")
            continue
        try:
            verdict = Verdict.parse(cells["label"])
        except ValueError as exc:
            yield ItemError(image, f"{where}: {exc}")
            continue
        cls = cells.get("defect_class") or None
        mask = cells.get("mask", "")
        img_path = root / image
        loader = partial(load_png_mask, root / mask, image, cls) if mask else None
        yield ImportItem(file=rel(img_path, root), path=img_path, verdict=verdict,
                         defect_class=(cls or "") if has_class else None, load_mask=loader,
                         load_image=partial(read_image, img_path, image))


def _read_pairs(src: Path) -> ReadResult:
    images, masks = src / "images", src / "masks"
    for path in image_files(images):
        stem = path.stem
        sub = path.parent.relative_to(images)
        mask = first_existing([masks / sub / f"{stem}_mask.png", masks / sub / f"{stem}.png"])
        yield ImportItem(file=rel(path, src), path=path, verdict=None,
                         load_mask=partial(load_png_mask, mask, rel(path, src), None) if mask else None,
                         load_image=partial(read_image, path, rel(path, src)))


class MasksFormat:
    name = "masks"
    description = "labels.csv (image,label[,mask][,defect_class]) with PNG masks, or images/ + masks/ folders"
    main_file = MAIN

    def read(self, src: Path) -> ReadResult:
        if src.is_file():
            yield from _read_csv(src)
        elif (src / MAIN).is_file():
            yield from _read_csv(src / MAIN)
        elif (src / "images").is_dir():
            yield from _read_pairs(src)
        else:
            raise FormatError(f"{src}: no {MAIN} and no images/ folder (masks format)")

    def write(self, project: Project, dest: Path, job: ExportJob) -> None:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["image", "label", "mask", "defect_class"])
        for part, view, stem in job.views():
            label = part.label
            verdict = label.verdict if label else Verdict.UNLABELED
            job.save_image(f"images/{stem}.png", project.read_image(part.id, view))
            mask = project.read_mask(part.id, view)
            mpath = ""
            if mask is not None:
                mpath = f"masks/{stem}_mask.png"
                job.save_image(mpath, mask)
            cls = job.class_name(label.defect_class) if label and label.defect_class else ""
            w.writerow([f"images/{stem}.png", verdict.name, mpath, cls])
        job.save_text(job.main_file or MAIN, out.getvalue())
        job.save_classes()
