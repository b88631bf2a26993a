"""`labelme`: labelme JSON files (polygons, rectangles, circles, masks) rasterised to class masks.

Layout found on import: SRC/labelme/*.json + SRC/images/ (bsdata), or JSON files beside their
images anywhere under SRC. imagePath is relative to the JSON; imageData (base64) is used when the
file is missing. Images without a JSON are OK. The shape label is the defect class; the part is
NG when its shapes cover pixels. Export writes images/ + labelme/ with one polygon per contour of
each class; where polygons cannot reproduce a mask exactly (single pixels, holes) the image's
classes are written as labelme 5 "mask" shapes instead, so masks always round-trip.
Multi-view parts: the JSON's "okng" key holds "part" and "camera" (and "fields", the part's extra
fields); images without a JSON follow the file-name rule PART__CAMERA.png (base.view_name).
Cameras, ROIs and class colours travel in okng_classes.json. Everything round-trips.
"""
from __future__ import annotations

import base64
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
    b64decode,
    decode_image,
    image_files,
    load_json,
    mask_values,
    read_image,
    rel,
)
from .raster import check_polygon, fill_polygon, polygons_of
from .safety import describe, limits, path_key

OKNG_KEY = "okng"  # extra top-level key (labelme keeps unknown keys): verdict, class, mask flag


def _paint(shape: dict[str, Any], out: np.ndarray, value: int, what: str) -> None:
    kind = shape.get("shape_type") or "polygon"
    pts = check_polygon(shape.get("points") or [], what, limits().max_polygon_points)
    if kind == "polygon":
        fill_polygon(out, pts, value)
    elif kind == "rectangle" and len(pts) == 2:
        (x0, y0), (x1, y1) = pts
        fill_polygon(out, [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], value)
    elif kind == "circle" and len(pts) == 2:
        cx, cy = (round(float(v)) for v in pts[0])
        radius = round(float(np.hypot(*(pts[1] - pts[0]))))
        if radius > 2 * max(out.shape):  # covers the whole image anyway; cv2 wants int32
            radius = 2 * max(out.shape) + abs(cx) + abs(cy)
        cv2.circle(out, (cx, cy), radius, int(value), -1)
    elif kind == "mask" and len(pts) >= 1:
        crop = decode_image(b64decode(shape.get("mask") or "", "its 'mask' data"), "mask shape") > 0
        if crop.ndim == 3:
            crop = crop.any(axis=2)
        x0, y0 = int(pts[0][0]), int(pts[0][1])
        h = min(crop.shape[0], out.shape[0] - y0)
        w = min(crop.shape[1], out.shape[1] - x0)
        if h > 0 and w > 0 and x0 >= 0 and y0 >= 0:
            out[y0:y0 + h, x0:x0 + w][crop[:h, :w]] = value
    # point, line, linestrip: no area, nothing to paint


def _dim(value: object, name: str) -> int:
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole:
        raise FormatError(f"{name} {str(value)[:20]!r} is not a whole number")
    return int(value)


def _shapes_mask(data: dict[str, Any], what: str, shape: tuple[int, int]) -> MaskData:
    h, w = shape
    jh, jw = data.get("imageHeight"), data.get("imageWidth")
    if jh is not None and jw is not None and (_dim(jh, "imageHeight"), _dim(jw, "imageWidth")) != (h, w):
        raise FormatError(f"{what}: JSON says {jw}x{jh} but the image is {w}x{h}")
    names: list[str] = []
    out = np.zeros((h, w), np.uint8)
    for k, s in enumerate(data.get("shapes") or []):
        if not isinstance(s, dict):
            raise FormatError(f"{what}: shape {k + 1} is not a JSON object")
        label = str(s.get("label", "")).strip()
        if label not in names:
            names.append(label)
        if len(names) > 255:
            raise FormatError(f"{what}: more than 255 shape labels")
        try:
            _paint(s, out, names.index(label) + 1, f"shape {k + 1} ({s.get('shape_type') or 'polygon'})")
        except FormatError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise FormatError(f"{what}: bad shape {s.get('shape_type')!r} ({describe(exc)})") from None
    classes: dict[int, ClassRef] = {i: n for i, n in enumerate(names, start=1)}
    return MaskData(out, classes)


def _verdict(data: dict[str, Any]) -> Verdict | None:
    info = data.get(OKNG_KEY)
    if isinstance(info, dict) and "verdict" in info:
        return Verdict.parse(info["verdict"])
    for key, on in (data.get("flags") or {}).items():
        if on:
            try:
                return Verdict.parse(key)
            except ValueError:
                pass
    return None


def _item(jpath: Path, root: Path) -> ImportItem | ItemError:
    what = rel(jpath, root)
    try:
        data = load_json(jpath)
        if not isinstance(data, dict) or not isinstance(data.get("shapes", []), list):
            raise FormatError(f"{jpath.name}: not a labelme file (no 'shapes' list)")
        image_path = jpath.parent / str(data.get("imagePath") or "")
        info = data.get(OKNG_KEY) if isinstance(data.get(OKNG_KEY), dict) else {}
        verdict = _verdict(data)
    except (FormatError, ValueError) as exc:
        return ItemError(what, describe(exc))
    if data.get("imagePath") and image_path.is_file():
        load = partial(read_image, image_path, rel(image_path, root))
        path, file = image_path, rel(image_path, root)
    elif data.get("imageData"):
        load = partial(lambda d: decode_image(b64decode(d, "imageData"), what), data["imageData"])
        path, file = jpath, what
    else:
        return ItemError(rel(image_path, root) if data.get("imagePath") else what,
                         f"image {data.get('imagePath')!r} of {jpath.name} not found (and no imageData)")
    has_mask = bool(data.get("shapes")) or bool(info.get("mask"))
    fields = info.get("fields")
    return ImportItem(file=file, path=path, load_image=load, verdict=verdict,
                      defect_class=info.get("defect_class"),
                      part=str(info["part"]) if info.get("part") else None,
                      camera=str(info["camera"]) if info.get("camera") else None,
                      fields={str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {},
                      load_mask=partial(_shapes_mask, data, what) if has_mask else None)


class LabelmeFormat:
    name = "labelme"
    description = "labelme JSON polygons (imagePath relative, imageData optional); images without JSON are OK"
    main_file = None

    def read(self, src: Path) -> ReadResult:
        root = src.parent if src.is_file() else src
        if src.is_file():
            jsons = [src]
        else:
            jdir = src / "labelme" if (src / "labelme").is_dir() else src
            jsons = sorted(p for p in jdir.rglob("*.json") if p.name != CLASSES_FILE)
        referenced: set[Path] = set()
        broken: set[str] = set()  # stems of unreadable JSONs: their images must not pass as OK
        for jpath in jsons:
            item = _item(jpath, root)
            if isinstance(item, ImportItem):
                referenced.add(path_key(item.path))
            else:
                broken.add(jpath.stem)
            yield item
        if src.is_dir():
            img_root = src / "images" if (src / "images").is_dir() else src
            for path in image_files(img_root):
                if path.stem in broken:
                    yield ItemError(rel(path, root), f"skipped: its labelme file {path.stem}.json is unreadable")
                elif path_key(path) not in referenced:
                    yield ImportItem(file=rel(path, root), path=path, verdict=Verdict.OK,
                                     load_image=partial(read_image, path, rel(path, root)))

    def write(self, project: Project, dest: Path, job: ExportJob) -> None:
        for part, view, stem in job.views():
            img = project.read_image(part.id, view)
            job.save_image(f"images/{stem}.png", img)
            mask = project.read_mask(part.id, view)
            label = part.label
            verdict = label.verdict if label else Verdict.UNLABELED
            if mask is None and verdict == Verdict.OK and not part.fields:
                continue  # an image without JSON is OK (its name says part and camera)
            doc = {"version": "5.4.1", "flags": {}, "shapes": _shapes_of(mask, job) if mask is not None else [],
                   "imagePath": f"../images/{stem}.png", "imageData": None,
                   "imageHeight": int(img.shape[0]), "imageWidth": int(img.shape[1]),
                   OKNG_KEY: {"verdict": verdict.name, "mask": mask is not None,
                              "defect_class": job.class_name(label.defect_class)
                              if label and label.defect_class else "",
                              "part": part.name, "camera": part.views[view].camera,
                              **({"fields": part.fields} if part.fields else {})}}
            job.save_text(f"labelme/{stem}.json", json.dumps(doc, indent=1))
        job.save_classes()


def _shape(label: str, points: list[list[float]], kind: str = "polygon", **extra: Any) -> dict[str, Any]:
    return {"label": label, "points": points, "group_id": None, "description": "",
            "shape_type": kind, "flags": {}, **extra}


def _shapes_of(mask: np.ndarray, job: ExportJob) -> list[dict[str, Any]]:
    classes = [c for c in mask_values(mask) if c]
    polys = [(c, p) for c in classes for p in polygons_of(mask == c)]
    check = np.zeros_like(mask)
    for c, p in polys:
        fill_polygon(check, p, c)
    if np.array_equal(check, mask):
        return [_shape(job.class_name(c), p.tolist()) for c, p in polys]
    out = []
    for c in classes:
        ys, xs = np.nonzero(mask == c)
        y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
        _, png = cv2.imencode(".png", (mask[y0:y1 + 1, x0:x1 + 1] == c).astype(np.uint8) * 255)
        out.append(_shape(job.class_name(c), [[float(x0), float(y0)], [float(x1), float(y1)]], "mask",
                          mask=base64.b64encode(png.tobytes()).decode("ascii")))
    return out
