"""The class editor: add, rename, recolour, set the hotkey of, merge and retire defect classes.

A class's 1-based position in Settings.classes is its value in every mask and label, so no
operation here ever moves a class: a merged or retired class keeps its slot, marked retired
(it takes no new labels, old labels keep their meaning). Every change is one settings event in
the audit trail carrying what was done (`change`) and by whom; a merge also writes a new label
event per relabelled part and a mask event per repainted view, so the history shows each part's
label before and after.

A merge relabels and repaints first and retires the merged class last: stopped or killed half
way, it leaves both classes usable, and running it again finishes the job.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from .progress import Progress, ProgressFn, StopFn, never_stop, no_progress
from .store import Project, ProjectError
from .types import SYSTEM_USER, DefectClass, Settings, User, class_color

MAX_CLASSES = 255  # masks are uint8 class indices
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class ClassInfo:
    """One row of `okng classes PROJECT list`: the class and how much of the project uses it."""

    index: int  # 1-based: the mask value
    name: str
    color: str
    hotkey: str
    retired: bool
    parts: int  # parts whose current label holds the class
    main: int  # parts whose main (first) class it is


@dataclass(frozen=True)
class MergeResult:
    source: str
    into: str
    labels: int  # parts relabelled
    masks: int  # views repainted
    stopped: bool = False


def class_table(project: Project) -> list[ClassInfo]:
    parts = [p for p in project.parts() if p.label is not None]
    return [ClassInfo(i, c.name, c.color, c.hotkey, c.retired,
                      sum(1 for p in parts if i in p.label.classes),  # type: ignore[union-attr]
                      sum(1 for p in parts if p.label.defect_class == i))  # type: ignore[union-attr]
            for i, c in enumerate(project.settings.classes, start=1)]


def _index(settings: Settings, ref: int | str) -> int:
    if isinstance(ref, int) or str(ref).strip().isdigit():
        i = int(ref)
        if not 1 <= i <= len(settings.classes):
            raise ProjectError(f"no defect class {i} (the project has {len(settings.classes)})")
        return i
    try:
        return settings.class_index(str(ref))
    except KeyError as exc:
        raise ProjectError(exc.args[0]) from None


def _copy(settings: Settings) -> Settings:
    return Settings.from_dict(settings.to_dict())


def _check_name(settings: Settings, name: str, skip: int = 0) -> str:
    name = name.strip()
    if not name:
        raise ProjectError("a defect class needs a name")
    if name.isdigit():
        raise ProjectError(f"class name {name!r}: a number would be read as a class index")
    for i, c in enumerate(settings.classes, start=1):
        if i != skip and c.name.lower() == name.lower():
            raise ProjectError(f"there is already a defect class {c.name!r}")
    return name


def _check_color(color: str) -> str:
    if not _COLOR.match(color.strip()):
        raise ProjectError(f"colour {color!r}: expected #rrggbb")
    return color.strip().lower()


def _check_hotkey(settings: Settings, key: str, skip: int = 0) -> str:
    """One key, not taken by another class in use ("" = none). Retired classes free their key."""
    key = key.strip()
    if len(key) > 1:
        raise ProjectError(f"hotkey {key!r}: one key (the Label view uses 1-9)")
    if key:
        for i, c in enumerate(settings.classes, start=1):
            if i != skip and not c.retired and c.hotkey == key:
                raise ProjectError(f"hotkey {key!r} is already {c.name!r}'s")
    return key


def _save(project: Project, settings: Settings, user: User, **change: object) -> None:
    project.update_settings(settings, user, change={"what": "classes", **change})


def add_class(project: Project, name: str, color: str = "", hotkey: str | None = None,
              user: User = SYSTEM_USER) -> DefectClass:
    """A new class at the end (its mask value is the new count). hotkey None: the next free digit."""
    s = _copy(project.settings)
    if len(s.classes) >= MAX_CLASSES:
        raise ProjectError(f"a project holds at most {MAX_CLASSES} defect classes (uint8 masks)")
    name = _check_name(s, name)
    color = _check_color(color) if color else class_color(len(s.classes))
    if hotkey is None:
        taken = {c.hotkey for c in s.classes if not c.retired}
        hotkey = next((k for k in "123456789" if k not in taken), "")
    cls = DefectClass(name, color, _check_hotkey(s, hotkey))
    s.classes.append(cls)
    _save(project, s, user, action="add", index=len(s.classes), name=name)
    return cls


def _edit(project: Project, ref: int | str, user: User, action: str, **fields: object) -> DefectClass:
    s = _copy(project.settings)
    i = _index(s, ref)
    old = s.classes[i - 1]
    new = replace(old, **fields)  # type: ignore[arg-type]
    s.classes[i - 1] = new
    _save(project, s, user, action=action, index=i, name=old.name,
          before={k: getattr(old, k) for k in fields}, after=dict(fields))
    return new


def rename_class(project: Project, ref: int | str, name: str, user: User = SYSTEM_USER) -> DefectClass:
    i = _index(project.settings, ref)
    return _edit(project, i, user, "rename", name=_check_name(project.settings, name, skip=i))


def recolor_class(project: Project, ref: int | str, color: str, user: User = SYSTEM_USER) -> DefectClass:
    return _edit(project, ref, user, "recolor", color=_check_color(color))


def set_hotkey(project: Project, ref: int | str, key: str, user: User = SYSTEM_USER) -> DefectClass:
    i = _index(project.settings, ref)
    return _edit(project, i, user, "hotkey", hotkey=_check_hotkey(project.settings, key, skip=i))


def retire_class(project: Project, ref: int | str, user: User = SYSTEM_USER) -> DefectClass:
    """No new labels of this class; labels and masks that hold it stay as they are."""
    return _edit(project, ref, user, "retire", retired=True, hotkey="")


def restore_class(project: Project, ref: int | str, user: User = SYSTEM_USER) -> DefectClass:
    return _edit(project, ref, user, "restore", retired=False)


def merge_classes(project: Project, source: int | str, into: int | str, user: User = SYSTEM_USER,
                  progress: ProgressFn = no_progress, should_stop: StopFn = never_stop) -> MergeResult:
    """Every label and mask pixel of `source` becomes `into`; then `source` is retired."""
    s = project.settings
    a, b = _index(s, source), _index(s, into)
    if a == b:
        raise ProjectError("a class cannot be merged into itself")
    if s.classes[b - 1].retired:
        raise ProjectError(f"cannot merge into the retired class {s.classes[b - 1].name!r}")
    a_name, b_name = s.classes[a - 1].name, s.classes[b - 1].name
    parts = project.parts()
    labels = masks = 0
    note = f"class {a_name!r} merged into {b_name!r}"
    for k, part in enumerate(parts):
        if should_stop():
            return MergeResult(a_name, b_name, labels, masks, stopped=True)
        lab = part.label
        if lab is not None and a in lab.classes:
            classes = [b if c == a else c for c in lab.classes]
            # Classes only go with NG, so the verdict stays NG; the comment says why it changed.
            project.set_label(part.id, lab.verdict, classes, user, f"{lab.comment} [{note}]".strip())
            labels += 1
        for v in part.views:
            if not v.has_mask:
                continue
            m = project.read_mask(part.id, v.index)
            if m is not None and (m == a).any():
                project.set_mask(part.id, v.index, np.where(m == a, np.uint8(b), m).astype(np.uint8), user)
                masks += 1
        progress(Progress("merge", k + 1, len(parts), f"{part.name}: {labels} labels, {masks} masks"))
    s2 = _copy(project.settings)
    s2.classes[a - 1] = replace(s2.classes[a - 1], retired=True, hotkey="")
    _save(project, s2, user, action="merge", index=a, name=a_name, into=b_name, labels=labels, masks=masks)
    return MergeResult(a_name, b_name, labels, masks)

