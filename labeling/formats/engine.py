"""Import and export driver shared by all formats: validation, classes, duplicates, store writes.

Nothing reaches the store before an item is fully checked (image decodes, mask has the image's
size, every class resolves, not a duplicate), and each part goes in with one add_part call, so a
bad file can never leave half a part behind. New defect classes are written to the settings only
right before the first part that needs them.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..store import Project, ProjectError
from ..types import SYSTEM_USER, DefectClass, Label, PartSource, Settings, User, Verdict
from .base import (
    ClassRef,
    Format,
    FormatError,
    ImportItem,
    ItemError,
    read_classes_file,
)

# What a malformed source can raise while an item is loaded: reported per file, never a crash.
_BAD_INPUT = (FormatError, ProjectError, OSError, ValueError, KeyError, TypeError, AttributeError,
              IndexError)
PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
           "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3"]


class DestinationNotEmpty(FileExistsError, ValueError):
    """Export refused: the destination holds files (a ValueError too: a user error, one line)."""


@dataclass
class ImportReport:
    imported: int = 0
    skipped: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file, message)
    counts: dict[str, Any] = field(default_factory=dict)  # verdicts, classes, masks
    added_classes: list[str] = field(default_factory=list)
    stopped: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["errors"] = [{"file": f, "message": m} for f, m in self.errors]
        return d


@dataclass
class ExportReport:
    exported: int
    files: int
    dest: str
    stopped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Prepared:
    image: np.ndarray
    mask: np.ndarray | None
    label: Label


class _Classes:
    """The project's class list plus what this import would add (committed lazily)."""

    def __init__(self, project: Project, learn: bool, sidecar: list[DefectClass] | None) -> None:
        self.project = project
        self.learn = learn
        self.sidecar = sidecar
        self.classes = list(project.settings.classes)
        if learn and not self.classes and sidecar:
            self.classes = list(sidecar)  # keep the source's order, colours and hotkeys
        self.committed = len(project.settings.classes)
        self.dirty = self.classes != list(project.settings.classes)

    def resolve(self, ref: ClassRef) -> int:
        if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
            i = int(ref)
            if self.sidecar is not None and 1 <= i <= len(self.sidecar):
                return self.resolve(self.sidecar[i - 1].name)
            if 1 <= i <= len(self.classes):
                return i
            if i < 1 or i > 255:
                raise FormatError(f"class number {i} out of range 1..255")
            if not self.learn:
                raise FormatError(f"class number {i} but the project has {len(self.classes)} "
                                  "defect classes (allow adding classes to import it)")
            while len(self.classes) < i:
                self._add(f"class {len(self.classes) + 1}")
            return i
        name = str(ref).strip()
        if not name:
            raise FormatError("empty defect class name")
        for i, c in enumerate(self.classes, start=1):
            if c.name.lower() == name.lower():
                return i
        if not self.learn:
            known = ", ".join(c.name for c in self.classes) or "none"
            raise FormatError(f"unknown defect class {name!r} (project classes: {known}; "
                              "allow adding classes to import it)")
        self._add(name)
        return len(self.classes)

    def _add(self, name: str) -> None:
        if len(self.classes) >= 255:
            raise FormatError("a project holds at most 255 defect classes")
        n = len(self.classes)
        self.classes.append(DefectClass(name, PALETTE[n % len(PALETTE)], str(n + 1) if n < 9 else ""))
        self.dirty = True

    def snapshot(self) -> tuple[list[DefectClass], bool]:
        return list(self.classes), self.dirty

    def restore(self, state: tuple[list[DefectClass], bool]) -> None:
        self.classes, self.dirty = list(state[0]), state[1]

    def commit(self, user: User) -> list[str]:
        """Write added classes to the project; returns their names."""
        if not self.dirty:
            return []
        s = Settings.from_dict(self.project.settings.to_dict())
        added = [c.name for c in self.classes[len(s.classes):]]
        s.classes = list(self.classes)
        self.project.update_settings(s, user)
        self.dirty = False
        return added


def _prepare(item: ImportItem, classes: _Classes, user: User) -> _Prepared:
    """Load and check one item completely; raises FormatError with a clear message."""
    state = classes.snapshot()
    try:
        image = item.load_image()
        h, w = image.shape[:2]
        mask = None
        per_class = np.zeros(256, np.int64)  # pixels per project class
        if item.load_mask is not None:
            raw, refs = item.load_mask((h, w))
            if raw.shape != (h, w):
                raise FormatError(f"mask is {raw.shape[1]}x{raw.shape[0]} but the image is {w}x{h}")
            raw = np.asarray(raw, np.uint8)
            per_value = np.bincount(raw.ravel(), minlength=256)
            lut = np.zeros(256, np.uint8)
            for value in np.flatnonzero(per_value[1:]).tolist():
                if value + 1 not in refs:
                    raise FormatError(f"mask value {value + 1} names no class")
                lut[value + 1] = classes.resolve(refs[value + 1])
            identity = all(lut[v] == v for v in np.flatnonzero(per_value).tolist())
            mask = raw if identity else lut[raw]
            per_class = np.bincount(lut, weights=per_value, minlength=256)
        painted = bool(per_class[1:].any())
        verdict = item.verdict
        if verdict is None:
            verdict = Verdict.NG if painted else Verdict.OK
        cls = 0
        if item.defect_class is not None and item.defect_class != "":
            if verdict != Verdict.NG:
                raise FormatError(f"defect class {item.defect_class!r} given for a {verdict.name} part "
                                  "(a defect class only goes with NG)")
            cls = classes.resolve(item.defect_class)
        elif item.defect_class is None and verdict == Verdict.NG and painted:
            cls = int(np.argmax(per_class[1:])) + 1  # ties: the lowest class number
        return _Prepared(image, mask, Label(verdict, cls, user, time.time()))
    except BaseException:
        classes.restore(state)
        raise


def import_into(project: Project, src: str | Path, fmt: str, *, strict: bool = False,
                user: User = SYSTEM_USER, add_classes: bool | None = None,
                progress: Callable[[int, int], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> ImportReport:
    """Import the images (labels, masks, classes) found at `src` in format `fmt` into `project`."""
    from . import get_format
    f: Format = get_format(fmt)
    src = Path(src)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    if project.readonly:
        raise ProjectError(f"{project.path.name} is open read-only")
    report = ImportReport(counts={"verdicts": {v.name: 0 for v in Verdict}, "classes": {}, "masks": 0})
    try:
        sidecar = read_classes_file(src if src.is_dir() else src.parent)
    except FormatError as exc:
        report.errors.append((str(src.name), str(exc)))
        sidecar = None
    entries = list(f.read(src))
    learn = add_classes if add_classes is not None else not project.settings.classes
    classes = _Classes(project, learn, sidecar)
    items: list[ImportItem] = []
    for e in entries:
        if isinstance(e, ItemError):
            report.errors.append((e.file, e.message))
        else:
            items.append(e)
    report.skipped = len(entries) - len(items)
    seen = {str(Path(p.meta["path"])) for p in project.parts() if "path" in p.meta}
    total = len(items) * (2 if strict else 1)

    def duplicate(item: ImportItem, batch: set[str]) -> str | None:
        key = str(item.path.resolve())
        if key in seen:
            return "duplicate: this image is already in the project"
        if key in batch:
            return "duplicate: the same image appears twice in the source"
        batch.add(key)
        return None

    if strict:
        batch: set[str] = set()
        for k, item in enumerate(items):
            if should_stop and should_stop():
                report.stopped = True
                break
            msg = duplicate(item, batch)
            try:
                if msg is None:
                    _prepare(item, classes, user)
            except _BAD_INPUT as exc:
                msg = str(exc)
            if msg:
                report.errors.append((item.file, msg))
            if progress:
                progress(k + 1, total)
        if report.errors or report.stopped:
            report.skipped = len(entries)
            return report
        classes = _Classes(project, learn, sidecar)  # the real pass learns them again, in order

    batch = set()
    for k, item in enumerate(items):
        if should_stop and should_stop():
            report.stopped = True
            report.skipped += len(items) - k
            break
        msg = duplicate(item, batch)
        prepared = None
        try:
            if msg is None:
                prepared = _prepare(item, classes, user)
        except _BAD_INPUT as exc:
            msg = str(exc)
        if prepared is not None:
            try:
                report.added_classes += classes.commit(user)
                project.add_part([prepared.image], name=item.part_name, source=PartSource.IMPORT,
                                 masks=[prepared.mask], label=prepared.label,
                                 meta={"file": item.file, "path": str(item.path.resolve()),
                                       "format": f.name}, user=user)
                seen.add(str(item.path.resolve()))
                _count(report, project, prepared)
            except ProjectError as exc:
                msg = str(exc)
        if msg:
            report.errors.append((item.file, msg))
            report.skipped += 1
        if progress:
            progress(k + 1 + (len(items) if strict else 0), total)
    return report


def _count(report: ImportReport, project: Project, p: _Prepared) -> None:
    report.imported += 1
    report.counts["verdicts"][p.label.verdict.name] += 1
    if p.label.defect_class:
        name = project.settings.classes[p.label.defect_class - 1].name
        report.counts["classes"][name] = report.counts["classes"].get(name, 0) + 1
    if p.mask is not None:
        report.counts["masks"] += 1


def export_project(project: Project, dest: str | Path, fmt: str, *,
                   progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> ExportReport:
    """Write every part of `project` to `dest` in format `fmt` (never over existing files)."""
    from . import get_format
    from .base import ExportJob
    f: Format = get_format(fmt)
    dest = Path(dest)
    if f.main_file and dest.suffix.lower() == Path(f.main_file).suffix.lower():
        folder, main = dest.parent, dest.name
    else:
        folder, main = dest, f.main_file
    # Exports write many files (images/, masks/, ...): only into a fresh folder, so nothing
    # already there can be overwritten.
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DestinationNotEmpty(f"{folder} is not an empty folder; export into a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    job = ExportJob(project, folder, progress, should_stop, main_file=main or "")
    f.write(project, folder, job)
    return ExportReport(job.exported, job.files, str(dest), job.stopped)
