"""`folder:DIR`: replay recorded parts, one sub-folder per camera (sorted by name).

The contract's rule (docs/plc-register-map.md, "Images and parts"): the part answering trigger k uses
the k-th file, in sorted name order, of each camera's folder. A missing or unreadable file makes
that part a CaptureError and the next trigger goes on with k+1. An optional labels.csv gives the
ground truth per part (columns: index or name, verdict, defect_class).
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import cv2
import numpy as np

from hardware.errors import CaptureError, HardwareError
from hardware.sources.base import (
    Capture,
    RateLimiter,
    Source,
    SourceExhausted,
    SourceInfo,
    validate_views,
)

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".npy"}


def read_image(path: Path) -> np.ndarray:
    """Read one frame as RGB (or grey / 16-bit as stored); CaptureError if unreadable."""
    try:
        if path.suffix.lower() == ".npy":
            img = np.load(path, allow_pickle=False)
        else:
            img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except (OSError, ValueError) as exc:
        raise CaptureError(f"cannot read {path.name}: {exc}") from None
    if img is None:
        raise CaptureError(f"corrupt or unreadable image {path}")
    if img.ndim == 3 and img.shape[2] == 3 and path.suffix.lower() != ".npy":
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4 and path.suffix.lower() != ".npy":
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return img


def _read_labels(path: Path) -> tuple[dict[int, dict], dict[str, dict]]:
    by_index: dict[int, dict] = {}
    by_name: dict[str, dict] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            truth = {k: v for k, v in row.items() if k not in ("index", "name", "file", "part", "image")}
            if "verdict" not in truth and "label" in truth:  # the masks export format: image,label,...
                truth["verdict"] = truth.pop("label")
            if truth.get("defect_class", None) == "":
                truth["defect_class"] = None
            if row.get("index", "").isdigit():
                by_index[int(row["index"])] = truth
            for key in ("name", "file", "part", "image"):
                if row.get(key):
                    by_name[Path(row[key]).stem] = truth
    return by_index, by_name


class FolderSource:
    """Replays DIR/<camera>/<files>; options: loop (default False), max_fps, cameras (sub-folder names)."""

    def __init__(self, root: Path, loop: bool = False, max_fps: float | None = None,
                 cameras: list[str] | str | None = None) -> None:
        self.root = Path(root)
        self.loop = loop
        self.only = [c.strip() for c in cameras.split(",")] if isinstance(cameras, str) else cameras
        self._limiter = RateLimiter(max_fps)
        self.cameras: list[str] = []
        self.files: list[list[Path]] = []
        self.count = 0
        self._labels: tuple[dict[int, dict], dict[str, dict]] = ({}, {})

    def open(self) -> None:
        """Index the camera folders (a folder with images and no sub-folders is one camera)."""
        if not self.root.is_dir():
            raise HardwareError(f"replay folder {self.root} does not exist")
        def images(d: Path) -> list[Path]:
            return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())

        if self.only:
            missing = [c for c in self.only if not (self.root / c).is_dir()]
            if missing:
                raise HardwareError(f"replay folder {self.root} has no camera folder {', '.join(missing)}")
            dirs = [self.root / c for c in self.only]
        else:  # sub-folders holding images are cameras (a labelme/ of JSON files is not)
            subdirs = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
            dirs = [d for d in subdirs if images(d)] or [self.root]
        self.files = [images(d) for d in dirs]
        self.cameras = [d.name for d in dirs]
        if not any(self.files):
            raise HardwareError(f"replay folder {self.root} holds no images ({', '.join(sorted(IMAGE_EXTS))})")
        labels = self.root / "labels.csv"
        self._labels = _read_labels(labels) if labels.exists() else ({}, {})
        self.count = 0

    @property
    def parts(self) -> int:
        """Number of parts: the longest camera folder (shorter ones give CaptureError at the end)."""
        return max((len(f) for f in self.files), default=0)

    def _truth(self, k: int, paths: list[Path | None]) -> dict | None:
        by_index, by_name = self._labels
        if k in by_index:
            return dict(by_index[k])
        for p in paths:
            if p is not None and p.stem in by_name:
                return dict(by_name[p.stem])
        return None

    def capture(self, timeout: float = 1.0) -> Capture:
        """Part k from the k-th file of each camera folder (k = triggers since open)."""
        if not self.files:
            raise CaptureError("folder source is not open")
        n = self.parts
        if self.count >= n and not self.loop:
            raise SourceExhausted(f"replay of {self.root} finished after {n} parts")
        self._limiter.wait()
        k = self.count
        self.count += 1
        j = k % n
        paths = [files[j] if j < len(files) else None for files in self.files]
        views = []
        for cam, p in zip(self.cameras, paths):
            if p is None:
                raise CaptureError(f"part {k}: camera {cam} has no file number {j}")
            views.append(read_image(p))
        validate_views(views, self.cameras)
        truth = self._truth(j, paths)
        if truth is not None:
            truth.setdefault("part", j)
            truth["files"] = [p.name for p in paths if p is not None]
        return Capture(views=views, cameras=list(self.cameras), timestamp=time.time(), index=k,
                       truth=truth)

    def close(self) -> None:
        self.files = []

    def info(self) -> SourceInfo:
        w = h = 0
        if self.files and self.files[0]:
            try:
                img = read_image(self.files[0][0])
                h, w = img.shape[:2]
            except CaptureError:
                pass
        return SourceInfo(name=f"folder:{self.root}", kind="multi-camera", cameras=list(self.cameras),
                          resolution=(w, h), details={"parts": self.parts, "loop": self.loop,
                                                      "labels": bool(self._labels[0] or self._labels[1])})


def record(source: Source, root: Path, parts: int, timeout: float = 5.0, ext: str = ".png") -> Path:
    """Write `parts` captures of `source` as a replay folder (+ labels.csv when truth is known)."""
    root = Path(root)
    rows = []
    for k in range(parts):
        cap = source.capture(timeout)
        for cam, view in zip(cap.cameras, cap.views):
            d = root / cam
            d.mkdir(parents=True, exist_ok=True)
            out = view if view.ndim == 2 else cv2.cvtColor(view, cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(d / f"{k:06d}{ext}"), out):
                raise HardwareError(f"cannot write {d / f'{k:06d}{ext}'}")
        if cap.truth is not None:
            rows.append({"index": k, "verdict": cap.truth.get("verdict", ""),
                         "defect_class": cap.truth.get("defect_class") or ""})
    if rows:
        with (root / "labels.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=["index", "verdict", "defect_class"])
            w.writeheader()
            w.writerows(rows)
    return root


def create(arg: str, options: dict) -> FolderSource:
    """'folder:DIR' plus options loop, max_fps, cameras ('images' or ['cam0', 'cam1'])."""
    path = arg or options.pop("path", "")
    if not path:
        raise ValueError("folder source needs a directory: folder:DIR")
    options.pop("seed", None)  # a UI may pass the simulators' seed to any source
    allowed = {"loop", "max_fps", "cameras"}
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"folder: unknown option(s) {sorted(unknown)}; known: {sorted(allowed)}")
    return FolderSource(Path(path).expanduser(), **options)
