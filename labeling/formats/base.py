"""What every format shares: the import item, per-file errors, image files, the export job.

A format's `read(src)` only describes what it finds (lazily: pixels are loaded when the engine
asks), so validation, class handling, duplicates and store writes live in one place (engine.py).
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..store import Project
from ..types import DefectClass, Part, Verdict

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
CLASSES_FILE = "okng_classes.json"  # sidecar every export writes: class order, colours, hotkeys

# A class reference in a source: a name, or a 1-based class number (severstal ClassId,
# class-index PNG masks).
ClassRef = str | int
# Given the image's (H, W): a mask in the source's own class values plus value -> class ref.
MaskLoader = Callable[[tuple[int, int]], tuple[np.ndarray, dict[int, ClassRef]]]


class FormatError(ValueError):
    """A problem with one source file; becomes one line in ImportReport.errors."""


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

    @property
    def part_name(self) -> str:
        return self.name or Path(self.file).stem


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
def decode_image(data: bytes, what: str) -> np.ndarray:
    """Pixels of an encoded image: gray or RGB, uint8 or uint16 kept as they are."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if img is None:
        raise FormatError(f"{what}: cannot decode image (corrupt or unsupported file)")
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


def read_image(path: Path, what: str | None = None) -> np.ndarray:
    what = what or str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise FormatError(f"{what}: image file not found") from None
    except OSError as exc:
        raise FormatError(f"{what}: cannot read image ({exc.strerror or exc})") from None
    return decode_image(data, what)


def read_mask_png(path: Path, what: str) -> np.ndarray:
    """An 8-bit single-channel mask file."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        raise FormatError(f"{what}: mask file {path.name} not found or unreadable") from None
    m = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if m is None:
        raise FormatError(f"{what}: cannot decode mask {path.name} (corrupt file)")
    if m.ndim == 3 and all(np.array_equal(m[:, :, 0], m[:, :, i]) for i in range(1, m.shape[2])):
        m = m[:, :, 0]  # a gray mask saved as RGB
    if m.dtype != np.uint8 or m.ndim != 2:
        raise FormatError(f"{what}: mask {path.name} must be an 8-bit single-channel PNG "
                          f"(got {m.dtype}, shape {m.shape})")
    return m


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
    return path.is_file() and path.suffix.lower() in IMAGE_EXTS and not path.name.startswith(".")


def image_files(folder: Path, recursive: bool = True) -> list[Path]:
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if is_image(p))


def rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()


def binary_mask(region: np.ndarray, ref: ClassRef) -> tuple[np.ndarray, dict[int, ClassRef]]:
    return region.astype(np.uint8), {1: ref}


def mask_values(m: np.ndarray) -> list[int]:
    """Distinct values of a uint8 mask (bincount: far faster than np.unique on big masks)."""
    return np.flatnonzero(np.bincount(m.ravel(), minlength=256)).tolist()


def index_mask(m: np.ndarray) -> tuple[np.ndarray, dict[int, ClassRef]]:
    return m, {v: v for v in mask_values(m) if v}


def load_json(path: Path) -> object:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FormatError(f"{path.name}: file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path.name}: malformed JSON ({exc})") from None


# ------------------------------------------------------------------ export
@dataclass
class ExportJob:
    """Shared export bookkeeping handed to Format.write: names, files, progress, stop."""

    project: Project
    dest: Path
    progress: Callable[[int, int], None] | None = None
    should_stop: Callable[[], bool] | None = None
    main_file: str = ""  # the format's main file name (dest may rename it: out/mine.csv)
    exported: int = 0
    files: int = 0
    stopped: bool = False
    _used: set[str] = field(default_factory=set)

    def views(self) -> Iterator[tuple[Part, int, str]]:
        """(part, view index, unique file stem) for every view; stops when asked to."""
        parts = self.project.parts()
        for done, part in enumerate(parts):
            if self.should_stop and self.should_stop():
                self.stopped = True
                return
            for v, info in enumerate(part.views):
                base = part.name if len(part.views) == 1 else f"{part.name}_{info.camera}"
                yield part, v, self._unique(self.safe(base), part.id)
            self.exported += 1
            if self.progress:
                self.progress(done + 1, len(parts))

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
        classes = [{"name": c.name, "color": c.color, "hotkey": c.hotkey}
                   for c in self.project.settings.classes]
        where = (folder or self.dest) / CLASSES_FILE
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_text(json.dumps({"classes": classes}, indent=1), encoding="utf-8")
        self.files += 1


def read_classes_file(folder: Path) -> list[DefectClass] | None:
    """The sidecar class list next to a source, if there is one (and it is sound)."""
    path = folder / CLASSES_FILE
    if not path.is_file():
        return None
    data = load_json(path)
    try:
        return [DefectClass(str(c["name"]), str(c.get("color", "#ff0000")), str(c.get("hotkey", "")))
                for c in data["classes"]]  # type: ignore[index]
    except (KeyError, TypeError) as exc:
        raise FormatError(f"{CLASSES_FILE}: malformed class list ({exc})") from None


def first_existing(paths: Iterable[Path]) -> Path | None:
    return next((p for p in paths if p.exists()), None)
