"""`coco`: COCO instance segmentation JSON (RLE, compressed RLE, polygons) with images/.

An image with annotations is NG, without is OK, unless the image entry carries okng's extra
keys ("okng_label", "okng_class", "okng_mask"; COCO readers ignore unknown keys). Multi-view
parts: "okng_part" (the part's name; entries with the same one are one part) and "okng_camera";
"okng_fields" holds the part's extra fields (item, fold, ...). Annotations are painted in file
order. Export writes one uncompressed-RLE annotation per class per image (iscrowd 1), so masks
round-trip exactly; categories carry okng's colour and hotkey; cameras and ROIs travel in
okng_classes.json. Everything round-trips.
"""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..store import Project
from ..types import Verdict
from .base import (
    CLASSES_FILE,
    ClassRef,
    ExportJob,
    FormatError,
    ImportItem,
    ItemError,
    MaskData,
    ReadResult,
    first_existing,
    load_json,
    mask_values,
    read_image,
    rel,
)
from .raster import check_polygon, fill_polygon
from .rle import coco_decode, coco_encode
from .safety import describe, limits

MAIN = "annotations.json"


def _find_json(src: Path) -> Path:
    if src.is_file():
        return src
    for cand in (src / MAIN, src / "annotations" / MAIN):
        if cand.is_file():
            return cand
    found = sorted(p for p in src.glob("*.json") if p.name != CLASSES_FILE)
    if not found and (src / "annotations").is_dir():
        found = sorted((src / "annotations").glob("*.json"))
    if len(found) != 1:
        raise FormatError(f"{src}: expected one COCO JSON ({MAIN}), found {len(found)}")
    return found[0]


def _mask(anns: list[dict[str, Any]], cats: dict[int, str], what: str, shape: tuple[int, int]) -> MaskData:
    out = np.zeros(shape, np.uint8)
    local: dict[int, int] = {}
    for a in anns:
        if not isinstance(a, dict):
            raise FormatError(f"{what}: an annotation is not a JSON object")
        cid = a.get("category_id")
        if cid not in cats:
            raise FormatError(f"{what}: annotation {a.get('id')} has unknown category_id {cid!r}")
        value = local.setdefault(cid, len(local) + 1)
        seg = a.get("segmentation")
        if isinstance(seg, dict):
            region = coco_decode(seg, shape)
        elif isinstance(seg, list):
            region = np.zeros(shape, np.uint8)
            for poly in seg:
                pts = check_polygon(poly, f"annotation {a.get('id')}", limits().max_polygon_points)
                if len(pts) < 3:
                    raise FormatError(f"{what}: annotation {a.get('id')} has a polygon with {pts.size} values")
                fill_polygon(region, pts, 1)
            region = region.astype(bool)
        else:
            raise FormatError(f"{what}: annotation {a.get('id')} has no segmentation")
        out[region] = value
    classes: dict[int, ClassRef] = {v: cats[c] for c, v in local.items()}
    return MaskData(out, classes)


class CocoFormat:
    name = "coco"
    description = "COCO instance segmentation JSON (RLE or polygons) with its images"
    main_file = MAIN

    def read(self, src: Path) -> ReadResult:
        jpath = _find_json(src)
        root = jpath.parent
        try:
            data = load_json(jpath)
            if not isinstance(data, dict) or not isinstance(data.get("images"), list):
                raise FormatError(f"{jpath.name}: not a COCO file (no 'images' list)")
            cats = {int(c["id"]): str(c["name"]) for c in data.get("categories") or []}
            by_image: dict[Any, list[dict[str, Any]]] = {}
            for a in data.get("annotations") or []:
                by_image.setdefault(a["image_id"], []).append(a)
        except (FormatError, KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            yield ItemError(jpath.name, str(exc) if isinstance(exc, FormatError)
                            else f"malformed COCO file ({describe(exc)})")
            return
        for img in data["images"]:
            try:
                hash(img.get("id")) if isinstance(img, dict) else None
            except TypeError:
                yield ItemError(jpath.name, f"image entry with an id that is not a number or name: {str(img)[:60]}")
                continue
            name = str(img.get("file_name", "")) if isinstance(img, dict) else ""
            if not name:
                yield ItemError(jpath.name, f"image entry without file_name: {str(img)[:60]}")
                continue
            path = first_existing([root / "images" / name, root / name, root.parent / "images" / name]) \
                or root / "images" / name
            anns = by_image.pop(img.get("id"), [])
            try:
                verdict = Verdict.parse(img["okng_label"]) if "okng_label" in img else None
            except ValueError as exc:
                yield ItemError(rel(path, root), str(exc))
                continue
            what = rel(path, root)
            has_mask = bool(anns) or bool(img.get("okng_mask"))
            fields = img.get("okng_fields")
            yield ImportItem(file=what, path=path, verdict=verdict,
                             defect_class=img.get("okng_class"),
                             part=str(img["okng_part"]) if img.get("okng_part") else None,
                             camera=str(img["okng_camera"]) if img.get("okng_camera") else None,
                             fields={str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {},
                             load_mask=partial(_mask, anns, cats, what) if has_mask else None,
                             load_image=partial(read_image, path, what))
        for image_id in by_image:
            yield ItemError(jpath.name, f"annotations for image_id {image_id!r}, which is not in 'images'")

    def write(self, project: Project, dest: Path, job: ExportJob) -> None:
        cats = [{"id": i, "name": c.name, "supercategory": "defect", "color": c.color, "hotkey": c.hotkey}
                for i, c in enumerate(project.settings.classes, start=1)]
        images: list[dict[str, Any]] = []
        anns: list[dict[str, Any]] = []
        for part, view, stem in job.views():
            img = project.read_image(part.id, view)
            job.save_image(f"images/{stem}.png", img)
            label = part.label
            mask = project.read_mask(part.id, view)
            entry = {"id": len(images) + 1, "file_name": f"{stem}.png", "height": int(img.shape[0]),
                     "width": int(img.shape[1]),
                     "okng_label": (label.verdict if label else Verdict.UNLABELED).name,
                     "okng_class": job.class_name(label.defect_class) if label and label.defect_class else "",
                     "okng_mask": mask is not None, "okng_part": part.name,
                     "okng_camera": part.views[view].camera}
            if part.fields:
                entry["okng_fields"] = part.fields
            images.append(entry)
            for c in (v for v in mask_values(mask) if v) if mask is not None else ():
                region = mask == c
                x, y, w, h = cv2.boundingRect(region.astype(np.uint8))
                anns.append({"id": len(anns) + 1, "image_id": entry["id"], "category_id": c,
                             "segmentation": coco_encode(region), "area": int(region.sum()),
                             "bbox": [x, y, w, h], "iscrowd": 1})
        doc = {"info": {"description": f"okng export of {project.settings.name}"},
               "images": images, "annotations": anns, "categories": cats}
        job.save_text(job.main_file or MAIN, json.dumps(doc))
        job.save_classes()
