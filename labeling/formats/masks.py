"""`masks`: labels.csv (image,label[,mask][,defect_class][,part][,camera], ...) or images/ + masks/.

Paths in the CSV are relative to the CSV. `part` groups rows into one multi-view part (its value
is the part's name) and `camera` names the row's view; every other column (item, fold, ...) is
kept as part metadata (Part.fields), so a later split can group by it. A mask file (PNG, BMP,
TIFF, even JPEG; 8/16-bit; gray, RGB or RGBA) is read by base.mask_from_file: a few small values
are class indices (1..N), anything else a binary defect mask thresholded at half range that
carries the row's defect_class (else class 1). A defect_class on an OK row ("Free", a module
type) does not make the part NG: the value is kept as the field `defect_class`.
Folder pairs match images/<stem>.* with masks/<stem>_mask.png or masks/<stem>.png; a part is NG
when its mask has class pixels. Export writes labels.csv (with part, camera and the parts' fields)
+ images/ + class-index masks/: everything round-trips.
"""
from __future__ import annotations

import csv
import io
from functools import partial
from pathlib import Path

from ..store import Project
from ..types import Verdict
from .base import (
    ClassRef,
    ExportJob,
    FormatError,
    ImportItem,
    ItemError,
    MaskData,
    ReadResult,
    csv_rows,
    first_existing,
    image_files,
    mask_from_file,
    read_image,
    read_mask_file,
    rel,
)
from .safety import read_text

MAIN = "labels.csv"
COLUMNS = ("image", "label", "mask", "defect_class", "part", "camera")


def load_png_mask(path: Path, what: str, ref: ClassRef | None, shape: tuple[int, int]) -> MaskData:
    return mask_from_file(read_mask_file(path, what), ref)


def _read_csv(path: Path) -> ReadResult:
    root = path.parent
    try:
        rows = list(csv_rows(read_text(path)))
    except FormatError as exc:
        yield ItemError(path.name, f"cannot read CSV ({exc})")
        return
    if not rows or isinstance(rows[0][1], str):
        yield ItemError(path.name, "empty CSV (expected a header image,label[,mask][,defect_class])" if not rows
                        else f"cannot read the CSV header ({rows[0][1]})")
        return
    head: list[str] = rows[0][1]  # type: ignore[assignment]
    header = [h.strip().lower() for h in head]
    if "image" not in header or "label" not in header:
        yield ItemError(path.name, f"CSV header {head} lacks the columns 'image' and 'label'")
        return
    col = {name: header.index(name) for name in COLUMNS if name in header}
    extra = {head[i].strip(): i for i, h in enumerate(header) if h and h not in col}
    has_class = "defect_class" in col
    for line, row in rows[1:]:
        where = f"{path.name} line {line}"
        if isinstance(row, str):
            yield ItemError(where, row)
            continue
        if not any(c.strip() for c in row):
            continue
        if any("\x00" in c for c in row):
            yield ItemError(where, "row holds a NUL byte (a damaged or binary file)")
            continue
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
                         load_image=partial(read_image, img_path, image),
                         part=cells.get("part") or None, camera=cells.get("camera") or None,
                         fields={k: row[i].strip() for k, i in extra.items() if row[i].strip()})


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
    description = ("labels.csv (image,label[,mask][,defect_class][,part][,camera], extra columns kept) "
                   "with mask files, or images/ + masks/ folders")
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
        keys = sorted({k for p in project.parts() for k in p.fields if k.lower() not in COLUMNS})
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow([*COLUMNS, *keys])
        for part, view, stem in job.views():
            label = part.label
            verdict = label.verdict if label else Verdict.UNLABELED
            job.save_image(f"images/{stem}.png", project.read_image(part.id, view))
            mask = project.read_mask(part.id, view)
            mpath = ""
            if mask is not None:
                mpath = f"masks/{stem}_mask.png"
                job.save_image(mpath, mask)
            # An OK part keeps the class-column value it came with ("Free"): it comes back the same.
            cls = job.class_name(label.defect_class) if label and label.defect_class \
                else part.fields.get("defect_class", "")
            w.writerow([f"images/{stem}.png", verdict.name, mpath, cls, part.name, part.views[view].camera,
                        *(part.fields.get(k, "") for k in keys)])
        job.save_text(job.main_file or MAIN, out.getvalue())
        job.save_classes()
