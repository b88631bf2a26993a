"""What every format shares: the import item, per-file errors, image and mask files, the export job.

A format's `read(src)` only describes what it finds (lazily: pixels are loaded when the engine
asks), so validation, class handling, duplicates and store writes live in one place (engine.py).

Multi-view parts: an item may name its part and camera (a CSV column, a JSON attribute); where a
format has only file names, a file named ``PART__CAMERA.ext`` whose CAMERA is one of the project's
(or the source's okng_classes.json) cameras is view CAMERA of part PART (see view_name).
"""
from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..progress import Progress, ProgressFn
from ..store import Project
from ..types import ROI, DefectClass, Part, ProjectKind, Verdict, class_color
from .imagecheck import decode
from .safety import FormatError, check_path, describe, limits, read_text

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
CLASSES_FILE = "okng_classes.json"  # sidecar every export writes: classes, cameras, ROIs
VIEW_SEP = "__"  # PART__CAMERA.png: the file-name rule for formats without a part/camera field

# A class reference in a source: a name, or a 1-based class number (severstal ClassId,
# class-index PNG masks).
ClassRef = str | int


@dataclass
class MaskData:
    """A mask in the source's own values, what each value means, and how it was read."""

    values: np.ndarray  # (H, W) uint8
    classes: dict[int, ClassRef]  # value -> class ref
    note: str = ""  # a reading worth reporting once with a count ("thresholded", ...)


# Given the image's (H, W): the mask found for it.
MaskLoader = Callable[[tuple[int, int]], MaskData]


@dataclass
class ImportItem:
    """One image to import (one part with one view)."""

    file: str  # path relative to the source root: meta "file", and the name in messages
    path: Path  # the image file itself (duplicate key); the container file for embedded images
    load_image: Callable[[], np.ndarray]
    verdict: Verdict | None = None  # None: NG if the mask has any class pixel, else OK
    # None for NG: the class covering most mask pixels; "": explicitly no class
    defect_class: ClassRef | None = None
    load_mask: MaskLoader | None = None
    name: str = ""  # part name; default: the image's file stem
    part: str | None = None  # views with the same part key form one part (None: a part of its own)
    camera: str | None = None  # the view's camera (None: the project's first camera)
    fields: dict[str, str] = field(default_factory=dict)  # extra source columns: part metadata

    @property
    def part_name(self) -> str:
        return self.name or self.part or Path(self.file).stem


def view_name(stem: str, cameras: Iterable[str]) -> tuple[str, str] | None:
    """(part, camera) of a file stem PART__CAMERA when CAMERA is a known camera, else None.

    Only known cameras count, so a foreign data set whose names happen to hold "__" is not
    grouped by accident."""
    part, sep, cam = stem.rpartition(VIEW_SEP)
    if sep and part and cam in set(cameras):
        return part, cam
    return None


@dataclass
class ItemError:
    """A source file that cannot become an item at all (malformed JSON/CSV row, ...)."""

    file: str
    message: str


ReadResult = Iterator[ImportItem | ItemError]


class Format(Protocol):
    name: str
    description: str
    main_file: str | None  # file name a dest may end with (labels.csv, ...); None: a folder

    def read(self, src: Path) -> ReadResult: ...

    def write(self, project: Project, dest: Path, job: ExportJob) -> None: ...


# ------------------------------------------------------------------ image files
# ANYDEPTH|ANYCOLOR keeps gray/colour and 8/16 bit as stored but, unlike IMREAD_UNCHANGED, turns a
# JPEG upright by its EXIF orientation: the way viewers and labelling tools show it, so the way
# its mask was drawn.
_IMAGE_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def decode_image(data: bytes, what: str) -> np.ndarray:
    """Pixels of an encoded image, upright (EXIF): gray or RGB, uint8 or uint16 kept as they are.

    The header's size is checked against the import's limits first, and decoder damage reports
    (corrupt JPEG scan data) are errors (imagecheck.decode)."""
    if not data:
        raise FormatError(f"{what}: empty image file")
    img = decode(data, _IMAGE_FLAGS, what)
    if img.dtype not in (np.uint8, np.uint16):
        raise FormatError(f"{what}: pixel type {img.dtype} not supported (8- or 16-bit only)")
    if img.ndim == 3:
        if img.shape[2] == 1:
            img = img[:, :, 0]
        elif img.shape[2] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        else:
            raise FormatError(f"{what}: {img.shape[2]} channels not supported")
    return np.ascontiguousarray(img)


def read_bytes(path: Path, what: str, kind: str = "image") -> bytes:
    """An image or mask file's bytes: inside the source folder (or allowed), of a sane size."""
    try:
        try:
            real = check_path(path)
        except FormatError as exc:
            raise FormatError(f"{what}: {exc}") from None
        size = real.stat().st_size
        cap = limits().max_pixels * 8 + (1 << 20)  # 16-bit RGBA, uncompressed, plus headers
        if size > cap:
            raise FormatError(f"{what}: {kind} file is {size / 1e6:.0f} MB, more than any image within "
                              "--max-pixels can take")
        return real.read_bytes()
    except FileNotFoundError:
        raise FormatError(f"{what}: {kind} file not found") from None
    except IsADirectoryError:
        raise FormatError(f"{what}: {kind} path is a folder, not a file") from None
    except OSError as exc:
        raise FormatError(f"{what}: cannot read {kind} ({exc.strerror or exc})") from None


def read_image(path: Path, what: str | None = None) -> np.ndarray:
    what = what or str(path)
    return decode_image(read_bytes(path, what), what)


def _png_has_alpha(data: bytes) -> bool:
    """PNG colour type 4 (gray + alpha) or 6 (RGBA), read from the IHDR chunk."""
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 25 and data[25] in (4, 6)


def read_mask_file(path: Path, what: str) -> np.ndarray:
    """A mask file as one (H, W) uint8 or uint16 plane, upright (EXIF) like its image.

    Gray stays; RGB that is gray in disguise becomes gray; other colour masks become their
    brightest channel (any colour on black is defect); with a varying alpha, transparent pixels
    are background (a mask painted on an otherwise empty layer is its alpha)."""
    data = read_bytes(path, f"{what}: mask {Path(path).name}", "mask")
    if not data:
        raise FormatError(f"{what}: mask {Path(path).name} is an empty file")
    alpha_png = _png_has_alpha(data)
    # PNGs carry no EXIF turn; everything else is decoded upright like its image.
    flags = cv2.IMREAD_UNCHANGED if alpha_png else _IMAGE_FLAGS
    m = decode(data, flags, f"{what}: mask {Path(path).name}")
    if m.dtype not in (np.uint8, np.uint16):
        raise FormatError(f"{what}: mask {path.name} has pixel type {m.dtype} (8- or 16-bit only)")
    if m.ndim == 3:
        alpha = m[:, :, -1] if m.shape[2] in (2, 4) else None
        color = m[:, :, :-1] if alpha is not None else m
        if all(np.array_equal(color[:, :, 0], color[:, :, i]) for i in range(1, color.shape[2])):
            plane = color[:, :, 0]
        else:
            plane = color.max(axis=2)
        if alpha is not None and alpha.min() != alpha.max():
            top = np.iinfo(alpha.dtype).max
            plane = alpha if plane.min() == plane.max() else np.where(alpha > top // 2, plane, 0)
        m = plane
    return np.ascontiguousarray(m)


def read_mask_png(path: Path, what: str) -> np.ndarray:
    """An 8-bit single-plane mask file (kept for callers that need the raw 0/255 values)."""
    m = read_mask_file(path, what)
    if m.dtype != np.uint8:
        raise FormatError(f"{what}: mask {path.name} must be 8-bit (got {m.dtype})")
    return m


THRESHOLDED = "mask read as binary at half range (anti-aliased, resized or lossy: not class indices)"


def mask_from_file(m: np.ndarray, ref: ClassRef | None) -> MaskData:
    """Class values of a mask file: class indices, or a binary defect mask carrying `ref`.

    Class-index masks hold a few small values (1..N, all under half range). Anything else
    (0/255, anti-aliased edges, a resized or JPEG'd mask, 16-bit 0/65535) is a binary defect
    mask: a pixel at or above half range is defect, of class `ref` (the row's class; else 1)."""
    ref = ref if ref not in (None, "") else 1
    if m.dtype == np.uint16:
        if int(m.max(initial=0)) <= 255:
            m = m.astype(np.uint8)
        else:
            top = int(m.max())
            note = "" if top == 65535 and not np.any((m > 0) & (m < 65535)) else THRESHOLDED
            return MaskData((m >= 32768).astype(np.uint8), {1: ref}, note)
    values = mask_values(m)
    if values[-1] < 128 and len(values) <= 33:
        return MaskData(m, {v: v for v in values if v})
    note = "" if set(values) <= {0, 255} else THRESHOLDED
    return MaskData((m >= 128).astype(np.uint8), {1: ref}, note)


def write_image(path: Path, img: np.ndarray) -> None:
    """PNG (lossless, keeps uint16); the store holds RGB, OpenCV writes BGR."""
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(path.suffix or ".png", img)
    if not ok:
        raise OSError(f"cannot encode {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.tobytes())


def is_image(path: Path) -> bool:
    """An image file by its name; a broken or looping link named like one is listed too, so the
    import says so instead of passing over it in silence."""
    return (path.suffix.lower() in IMAGE_EXTS and not path.name.startswith(".")
            and (path.is_file() or (path.is_symlink() and not path.exists())))


def image_files(folder: Path, recursive: bool = True) -> list[Path]:
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if is_image(p))


def rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()


def binary_mask(region: np.ndarray, ref: ClassRef) -> MaskData:
    return MaskData(region.astype(np.uint8), {1: ref})


def mask_values(m: np.ndarray) -> list[int]:
    """Distinct values of a uint8 mask (bincount: far faster than np.unique on big masks)."""
    return np.flatnonzero(np.bincount(m.ravel(), minlength=256)).tolist()


def index_mask(m: np.ndarray) -> MaskData:
    return MaskData(m, {v: v for v in mask_values(m) if v})


def load_json(path: Path) -> object:
    """A JSON file, refused by size first; deep nesting, huge numbers and bad syntax in words."""
    try:
        text = read_text(path)
    except FormatError as exc:
        raise FormatError(f"{Path(path).name}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{Path(path).name}: malformed JSON ({exc.msg} at line {exc.lineno} "
                          f"column {exc.colno})") from None
    except RecursionError:
        raise FormatError(f"{Path(path).name}: JSON nested too deeply to read") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise FormatError(f"{Path(path).name}: JSON holds a number too large to read ({str(exc)[:60]})") from None


def csv_rows(text: str) -> Iterator[tuple[int, list[str] | str]]:
    """(line number, cells) per CSV row, or (line number, why) for a row the csv module refuses
    (a field over its 131,072-character limit): one bad row costs that row, not the file."""
    reader = csv.reader(io.StringIO(text))
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            why = str(exc)
            if "field limit" in why:
                why = f"a field longer than {csv.field_size_limit():,} characters"
            elif "NUL" in why or "null" in why:
                why = "a NUL byte (a damaged or binary file)"
            yield line, f"unreadable CSV row ({why})"
            line = reader.line_num + 1
            continue
        yield line, row
        line = reader.line_num + 1


def b64decode(text: object, what: str) -> bytes:
    """Base64 (labelme imageData, mask shapes) with bad data as a FormatError in words."""
    if not isinstance(text, str):
        raise FormatError(f"{what} is not a base64 string")
    try:
        return base64.b64decode("".join(text.split()), validate=True)  # writers may wrap lines
    except (ValueError, binascii.Error):
        raise FormatError(f"{what} is not valid base64 data") from None


# ------------------------------------------------------------------ export
@dataclass
class ExportJob:
    """Shared export bookkeeping handed to Format.write: names, files, progress, stop."""

    project: Project
    dest: Path
    progress: ProgressFn | None = None
    should_stop: Callable[[], bool] | None = None
    main_file: str = ""  # the format's main file name (dest may rename it: out/mine.csv)
    exported: int = 0
    files: int = 0
    stopped: bool = False
    _used: set[str] = field(default_factory=set)

    def views(self) -> Iterator[tuple[Part, int, str]]:
        """(part, view index, unique file stem) for every view; stops when asked to.

        A part seen by the project's first camera alone is `PART`; any other view is
        `PART__CAMERA` (view_name reads it back), so parts and cameras survive formats that
        only have file names."""
        parts = self.project.parts()
        cameras = self.project.settings.cameras
        first = cameras[0] if cameras else ""
        for done, part in enumerate(parts):
            if self.should_stop and self.should_stop():
                self.stopped = True
                return
            stem = self._unique(self.safe(part.name), part.id)
            for v, info in enumerate(part.views):
                if len(part.views) == 1 and info.camera == first and not view_name(stem, cameras):
                    yield part, v, stem  # (a part named like "x__cam1" gets its camera spelled out)
                else:
                    yield part, v, f"{stem}{VIEW_SEP}{self.safe(info.camera)}"
            self.exported += 1
            if self.progress:
                self.progress(Progress("export", done + 1, len(parts), part.name))

    @staticmethod
    def safe(name: str) -> str:
        """A file or folder name for a part or class name (no path separators)."""
        return re.sub(r"[/\\\x00]+", "_", name).strip(" .") or "_"

    def _unique(self, stem: str, pid: int) -> str:
        if stem.lower() in self._used:
            stem = f"{stem}_{pid}"
        while stem.lower() in self._used:
            stem += "_"
        self._used.add(stem.lower())
        return stem

    def save_image(self, relpath: str, img: np.ndarray) -> None:
        write_image(self.dest / relpath, img)
        self.files += 1

    def save_text(self, relpath: str, text: str) -> None:
        path = self.dest / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.files += 1

    def class_name(self, index: int) -> str:
        classes = self.project.settings.classes
        return classes[index - 1].name if 1 <= index <= len(classes) else f"class {index}"

    def save_classes(self, folder: Path | None = None) -> None:
        """The sidecar: classes (order, colours, hotkeys), cameras (order) and ROIs."""
        settings = self.project.settings
        doc = {"classes": [{"name": c.name, "color": c.color, "hotkey": c.hotkey} for c in settings.classes],
               "kind": settings.kind.value, "cameras": list(settings.cameras),
               "rois": {cam: roi.to_list() for cam, roi in settings.rois.items()}}
        where = (folder or self.dest) / CLASSES_FILE
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        self.files += 1


@dataclass
class Sidecar:
    """What okng_classes.json beside a source says about the project it came from."""

    classes: list[DefectClass] | None = None
    kind: ProjectKind | None = None  # multi-camera or line-scan
    cameras: list[str] = field(default_factory=list)
    rois: dict[str, ROI] = field(default_factory=dict)


def read_sidecar(folder: Path) -> Sidecar:
    """The sidecar next to a source, if there is one (and it is sound)."""
    path = folder / CLASSES_FILE
    if not path.is_file():
        return Sidecar()
    data = load_json(path)
    try:
        # A sidecar without colours gets the palette's, not one red for every class
        classes = [DefectClass(str(c["name"]), str(c.get("color") or class_color(n)), str(c.get("hotkey", "")))
                   for n, c in enumerate(data["classes"])]  # type: ignore[index,arg-type]
        cameras = [str(c) for c in data.get("cameras") or []]  # type: ignore[union-attr]
        rois = {str(k): ROI(*(int(x) for x in v)) for k, v in (data.get("rois") or {}).items()}  # type: ignore[union-attr]
        kind = ProjectKind(data["kind"]) if data.get("kind") else None  # type: ignore[union-attr,index]
        if len(classes) > 255:
            raise FormatError(f"{CLASSES_FILE}: {len(classes)} classes, a project holds at most 255")
    except FormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise FormatError(f"{CLASSES_FILE}: malformed sidecar ({describe(exc)})") from None
    return Sidecar(classes, kind, cameras, rois)


def read_classes_file(folder: Path) -> list[DefectClass] | None:
    """The sidecar's class list, if there is a sidecar."""
    return read_sidecar(folder).classes


def first_existing(paths: Iterable[Path]) -> Path | None:
    return next((p for p in paths if p.exists()), None)
