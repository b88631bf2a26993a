"""Import and export driver shared by all formats: validation, classes, parts, store writes.

Nothing reaches the store before a part is fully checked (every view decodes, each mask has its
image's size, every class resolves, no duplicate), and each part goes in with one add_part call,
so a bad file can never leave half a part behind. New defect classes and cameras are written to
the settings only right before the first part that needs them. Views that name the same part
(a part column, a JSON attribute, the PART__CAMERA file-name rule) become one multi-view part.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..progress import Progress, ProgressFn, StopFn
from ..store import Project, ProjectError
from ..types import SYSTEM_USER, Label, PartSource, User, Verdict
from .base import (
    CLASSES_FILE,
    Format,
    FormatError,
    ImportItem,
    ItemError,
    Sidecar,
    read_sidecar,
    view_name,
)
from .learn import Learner
from .report import ExportReport, ImportReport
from .safety import ImportLimits, check_path, describe, importing, one_line, path_key, printable

# What a malformed source can raise while an item is loaded: reported per file, never a crash.
# RecursionError and MemoryError are not Exceptions of a kind a parser "means", but one hostile
# file must still only cost that file.
_BAD_INPUT = (Exception, RecursionError, MemoryError)
CLASS_ON_OK = "defect class on an OK/unlabeled row: imported as it says, the value kept as field 'defect_class'"
RESIZED = "mask resized to its image (--resize-masks)"

__all__ = ["DestinationNotEmpty", "ExportReport", "ImportReport", "export_project", "import_into"]


class DestinationNotEmpty(FileExistsError, ValueError):
    """Export refused: the destination holds files (a ValueError too: a user error, one line)."""


@dataclass
class _View:
    image: np.ndarray
    mask: np.ndarray | None
    per_class: np.ndarray  # pixels per project class (256)


@dataclass
class _Prepared:
    images: list[np.ndarray]
    masks: list[np.ndarray | None]
    cameras: list[str]
    label: Label
    notes: list[tuple[str, str]]  # (warning, file)
    hashes: list[str]  # per view: content hash of the pixels (duplicate key)


def pixel_hash(img: np.ndarray) -> str:
    """Content key of a view: the same picture is a duplicate whatever file, link or copy holds it.

    SHA-1 because it is the fastest hashlib digest here (about twice blake2b's speed: ~2 ms for a
    1.5 MB view against ~6 ms to decode it); nobody crafts collisions in their own image folder."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"{img.dtype.str}{img.shape}".encode())
    h.update(np.ascontiguousarray(img).data)
    return h.hexdigest()


def _size_error(raw: np.ndarray, h: int, w: int) -> FormatError:
    hint = " (resize it, or import with --resize-masks)"
    if raw.shape == (w, h):
        hint = (" (it fits the image turned 90 degrees: masks must match the image as shown upright, "
                "EXIF orientation applied)")
    return FormatError(f"mask is {raw.shape[1]}x{raw.shape[0]} but the image is {w}x{h}{hint}")


def _prepare_view(item: ImportItem, learner: Learner, resize: bool, notes: list[tuple[str, str]]) -> _View:
    image = item.load_image()
    h, w = image.shape[:2]
    mask = None
    per_class = np.zeros(256, np.int64)
    if item.load_mask is not None:
        md = item.load_mask((h, w))
        raw = np.asarray(md.values)
        if md.note:
            notes.append((md.note, item.file))
        if raw.shape != (h, w):
            if not resize or raw.ndim != 2:
                raise _size_error(raw, h, w)
            raw = cv2.resize(np.asarray(raw, np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
            notes.append((RESIZED, item.file))
        raw = np.asarray(raw, np.uint8)
        per_value = np.bincount(raw.ravel(), minlength=256)
        lut = np.zeros(256, np.uint8)
        for value in np.flatnonzero(per_value[1:]).tolist():
            if value + 1 not in md.classes:
                raise FormatError(f"mask value {value + 1} names no class")
            lut[value + 1] = learner.resolve(md.classes[value + 1])
        identity = all(lut[v] == v for v in np.flatnonzero(per_value).tolist())
        mask = raw if identity else lut[raw]
        per_class = np.bincount(lut, weights=per_value, minlength=256)
    return _View(image, mask, per_class)


def _one(values: list, what: str) -> object:
    """The value the views agree on (None when none gives one)."""
    given = [v for v in values if v is not None]
    if any(v != given[0] for v in given[1:]):
        raise FormatError(f"the views of this part disagree on the {what} ({', '.join(map(str, given))})")
    return given[0] if given else None


def _prepare(items: list[ImportItem], learner: Learner, user: User, resize: bool) -> _Prepared:
    """Load and check one part (all its views) completely; raises FormatError with a clear message."""
    state = learner.snapshot()
    notes: list[tuple[str, str]] = []
    try:
        cams = [learner.camera(it.camera) for it in items]
        if len(set(cams)) < len(cams):
            raise FormatError(f"two views of part {items[0].part_name!r} on the same camera")
        order = learner.order(cams) if len(items) > 1 else [0]
        items, cams = [items[i] for i in order], [cams[i] for i in order]
        views = []
        for it in items:
            try:
                views.append(_prepare_view(it, learner, resize, notes))
            except _BAD_INPUT as exc:
                msg = one_line(it.file, describe(exc))
                raise FormatError(f"{it.file}: {msg}" if len(items) > 1 else msg) from None
        per_class = np.sum([v.per_class for v in views], axis=0)
        painted = bool(per_class[1:].any())
        verdict = _one([it.verdict for it in items], "verdict")
        if verdict is None:
            verdict = Verdict.NG if painted else Verdict.OK
        ref = _one([it.defect_class for it in items], "defect class")
        classes: list[int] = []
        if ref is not None and ref != "":
            if verdict != Verdict.NG:
                notes.append((CLASS_ON_OK, items[0].file))
            else:
                classes = [learner.resolve(ref)]  # type: ignore[arg-type]
        elif ref is None and verdict == Verdict.NG and painted:
            # Every painted class (a Severstal sheet may hold several), the one covering most
            # pixels first; ties: the lowest class number (stable sort).
            classes = [int(c) + 1 for c in np.argsort(-per_class[1:], kind="stable") if per_class[c + 1]]
        return _Prepared([v.image for v in views], [v.mask for v in views], cams,
                         Label(verdict, user=user, time=time.time(), classes=tuple(classes)), notes,
                         [pixel_hash(v.image) for v in views])
    except BaseException:
        learner.restore(state)
        raise


def _group(items: list[ImportItem], cameras: list[str]) -> list[list[ImportItem]]:
    """Items in parts, in source order: an explicit part key, else the PART__CAMERA rule."""
    groups: dict[object, list[ImportItem]] = {}
    for k, it in enumerate(items):
        if it.part is None:
            pc = view_name(Path(it.file).stem, cameras)
            if pc is not None:
                it.part, it.camera = pc[0], it.camera or pc[1]
        key = ("part", it.part) if it.part is not None else ("item", k)
        groups.setdefault(key, []).append(it)
    return list(groups.values())


def import_into(project: Project, src: str | Path, fmt: str, *, strict: bool = False,
                user: User = SYSTEM_USER, add_classes: bool | None = None, resize_masks: bool = False,
                dry_run: bool = False, limits: ImportLimits | None = None,
                progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> ImportReport:
    """Import the images (labels, masks, classes, parts, cameras) found at `src` in format `fmt`.

    strict: import nothing if any file has an error. resize_masks: scale masks of another size
    to their image (nearest) instead of rejecting them. dry_run: check everything, write nothing;
    the report says what would be imported. limits: sizes, polygon points, files outside the
    source folder (safety.ImportLimits; defaults are safe).

    Nothing a source holds can raise out of here: every problem is one line about one file in
    report.errors, and report.imported is exactly the number of parts added to the project."""
    from . import get_format
    f: Format = get_format(fmt)
    src = Path(src)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    if project.readonly and not dry_run:
        raise ProjectError(f"{project.path.name} is open read-only")
    report = ImportReport(counts={"verdicts": {v.name: 0 for v in Verdict}, "classes": {}, "masks": 0,
                                  "views": 0, "cameras": {}}, dry_run=dry_run)
    with importing(limits or ImportLimits(), src):
        try:
            _run(project, src, f, report, strict=strict, user=user, add_classes=add_classes,
                 resize=resize_masks, dry_run=dry_run, progress=progress, should_stop=should_stop)
        except _BAD_INPUT as exc:  # a bug here must still leave a report that tells the truth
            report.errors.append((src.name, f"import stopped: {describe(exc)}"))
    report.errors = [(printable(file), one_line(file, msg)) for file, msg in report.errors]
    return report


def _entries(f: Format, src: Path) -> Iterator[ImportItem | ItemError]:
    """The format's items; a reader that fails part-way costs the rest of that source, with a line."""
    it = iter(f.read(src))
    n = 0
    while True:
        try:
            entry = next(it)
        except StopIteration:
            return
        except _BAD_INPUT as exc:
            yield ItemError(src.name, describe(exc) if not n else f"cannot read the rest of the source ({describe(exc)})")
            return
        n += 1
        yield entry


def _run(project: Project, src: Path, f: Format, report: ImportReport, *, strict: bool, user: User,
         add_classes: bool | None, resize: bool, dry_run: bool, progress: ProgressFn | None,
         should_stop: StopFn | None) -> None:
    try:
        sidecar = read_sidecar(src if src.is_dir() else src.parent)
    except _BAD_INPUT as exc:
        report.errors.append((CLASSES_FILE, describe(exc)))
        sidecar = Sidecar()
    entries = list(_entries(f, src))
    learn = add_classes if add_classes is not None else not project.settings.classes
    items: list[ImportItem] = []
    for e in entries:
        if isinstance(e, ItemError):
            report.errors.append((e.file, e.message))
        else:
            items.append(e)
    report.skipped = len(entries) - len(items)
    groups = _group(items, [*Learner(project, learn, sidecar).cameras, *project.settings.cameras])
    seen: set[str] = set()  # paths and pixel hashes of the parts already in the project
    for p in project.parts():
        seen.update(str(x) for x in [*(p.meta.get("paths") or [p.meta.get("path")]), *(p.meta.get("hashes") or [])]
                    if x)
    total = len(groups) * (2 if strict else 1)

    def duplicate(group: list[ImportItem], keys: list[str], batch: dict[str, str],
                  within: bool = True) -> tuple[str, str] | None:
        """within: the same key twice inside the group counts too (files: yes; pixels: no, the
        views of one part may look alike)."""
        for it, key in zip(group, keys):
            if key in seen:
                return it.file, "duplicate: this image is already in the project"
            other = batch.get(key) or next((o.file for o, k in zip(group, keys)
                                            if within and k == key and o is not it), None)
            if other is not None:
                same = "the same image" if other == it.file else f"the same image as {other}"
                return it.file, f"duplicate: {same} appears twice in the source"
        return None

    def attempt(group: list[ImportItem], learner: Learner, batch: dict[str, str]) -> _Prepared | tuple[str, str]:
        current = group[0]
        try:
            for it in group:
                current = it
                check_path(it.path)  # inside the source (or allowed), no loop, no NUL byte
            current = group[0]
            dup = duplicate(group, [path_key(it.path) for it in group], batch)
            if dup is not None:
                return dup
            state = learner.snapshot()
            prepared = _prepare(group, learner, user, resize)
            dup = duplicate(group, prepared.hashes, batch, within=False)
            if dup is not None:
                learner.restore(state)  # no class or camera comes in with a part that does not
                return dup
        except _BAD_INPUT as exc:
            return current.file, describe(exc)
        for it, key in zip(group, prepared.hashes):
            batch[path_key(it.path)] = batch[key] = it.file
        return prepared

    if strict:
        learner, batch = Learner(project, learn, sidecar), {}
        for k, group in enumerate(groups):
            if should_stop and should_stop():
                report.stopped = True
                break
            out = attempt(group, learner, batch)
            if isinstance(out, tuple):
                report.errors.append(out)
            if progress:
                progress(Progress("check", k + 1, total, group[0].file))
        if report.errors or report.stopped:
            report.skipped = len(entries)
            return

    learner, batch = Learner(project, learn, sidecar), {}  # the real pass learns them again, in order
    for k, group in enumerate(groups):
        if should_stop and should_stop():
            report.stopped = True
            report.skipped += sum(len(g) for g in groups[k:])
            break
        out = attempt(group, learner, batch)
        if isinstance(out, _Prepared):
            before = len(project)
            try:
                if not dry_run:
                    new_classes, new_cams = learner.commit(user)
                    report.added_classes += new_classes
                    report.added_cameras += new_cams
                    _add(project, f.name, group, out, user)
                _count(report, learner, group, out)
            except _BAD_INPUT as exc:
                if not dry_run and len(project) > before:  # it went in after all: count it as it is
                    _count(report, learner, group, out)
                else:
                    out = (group[0].file, describe(exc))
        if isinstance(out, tuple):
            report.errors.append(out)
            report.skipped += len(group)
        if progress:
            progress(Progress("import", k + 1 + (len(groups) if strict else 0), total, group[0].file))
    if dry_run:
        s = project.settings
        report.added_classes = [c.name for c in learner.classes[len(s.classes):]]
        report.added_cameras = [c for c in learner.cameras if c not in s.cameras]


def _add(project: Project, fmt: str, group: list[ImportItem], p: _Prepared, user: User) -> None:
    first = group[0]
    meta: dict[str, object] = {"file": first.file, "path": path_key(first.path), "format": fmt,
                               "hashes": list(p.hashes)}
    if len(group) > 1:
        meta["files"] = [it.file for it in group]
        meta["paths"] = [path_key(it.path) for it in group]
    fields: dict[str, str] = {}
    for it in group:
        for k, v in it.fields.items():
            fields.setdefault(k, v)
    ref = next((it.defect_class for it in group if it.defect_class not in (None, "")), None)
    if ref is not None and p.label.verdict != Verdict.NG:
        fields.setdefault("defect_class", str(ref))
    if fields:
        meta["fields"] = fields
    project.add_part(p.images, cameras=p.cameras, name=first.part_name, source=PartSource.IMPORT,
                     masks=p.masks, label=p.label, meta=meta, user=user)


def _count(report: ImportReport, learner: Learner, group: list[ImportItem], p: _Prepared) -> None:
    report.imported += 1
    report.counts["views"] += len(p.images)
    report.counts["verdicts"][p.label.verdict.name] += 1
    for c in p.label.classes:  # a multi-class part counts in each of its classes
        name = learner.classes[c - 1].name
        report.counts["classes"][name] = report.counts["classes"].get(name, 0) + 1
    report.counts["masks"] += sum(m is not None for m in p.masks)
    for cam in p.cameras:
        report.counts["cameras"][cam] = report.counts["cameras"].get(cam, 0) + 1
    for what, file in p.notes:
        report.warn(what, file)


def export_project(project: Project, dest: str | Path, fmt: str, *,
                   progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None) -> ExportReport:
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
