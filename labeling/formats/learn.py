"""The project's defect classes and cameras plus what an import would add (committed lazily).

Nothing is written to the project's settings until the first part that needs it goes in, so an
import that fails (or a dry run) leaves the settings as they were. An empty project takes the
source's own order, colours, hotkeys, kind, cameras and ROIs from its sidecar (okng_classes.json):
that is how a project round-trips through every format.
"""
from __future__ import annotations

import numpy as np

from ..store import Project
from ..types import DefectClass, Settings, User, class_color
from .base import ClassRef, FormatError, Sidecar


class Learner:
    """Classes and cameras as the project has them, plus what this import adds."""

    def __init__(self, project: Project, learn: bool, sidecar: Sidecar) -> None:
        self.project = project
        self.learn = learn
        self.sidecar = sidecar.classes
        s = project.settings
        self.classes = list(s.classes)
        if learn and not self.classes and sidecar.classes:
            self.classes = list(sidecar.classes)  # keep the source's order, colours and hotkeys
        empty = len(project) == 0
        self.cameras = list(sidecar.cameras) if empty and sidecar.cameras else list(s.cameras)
        self.kind = sidecar.kind if empty and sidecar.kind else s.kind
        self.rois = dict(s.rois)
        for cam, roi in sidecar.rois.items():
            if cam in self.cameras and cam not in self.rois:
                self.rois[cam] = roi  # a ROI the project lacks; the project's own ones win
        self.dirty = self._changed()

    def _changed(self) -> bool:
        s = self.project.settings
        return (self.classes, self.cameras, self.rois, self.kind) != (
            list(s.classes), list(s.cameras), dict(s.rois), s.kind)

    # ------------------------------------------------------------- classes
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
        self.classes.append(DefectClass(name, class_color(n), str(n + 1) if n < 9 else ""))
        self.dirty = True

    # ------------------------------------------------------------- cameras
    def camera(self, name: str | None) -> str:
        """A view's camera name (the first camera when the source names none); new ones are added."""
        if not name:
            return self.cameras[0] if self.cameras else "cam0"
        if name not in self.cameras:
            self.cameras.append(name)
            self.dirty = True
        return name

    def order(self, cameras: list[str]) -> list[int]:
        """Indices that sort a part's views into the project's camera order."""
        return sorted(range(len(cameras)), key=lambda i: self.cameras.index(cameras[i]))

    # ------------------------------------------------------------- state
    def snapshot(self) -> tuple[list[DefectClass], list[str], bool]:
        return list(self.classes), list(self.cameras), self.dirty

    def restore(self, state: tuple[list[DefectClass], list[str], bool]) -> None:
        self.classes, self.cameras, self.dirty = list(state[0]), list(state[1]), state[2]

    def commit(self, user: User) -> tuple[list[str], list[str]]:
        """Write added classes, cameras and ROIs to the project; returns the new class and camera names."""
        if not self.dirty:
            return [], []
        s = Settings.from_dict(self.project.settings.to_dict())
        added = [c.name for c in self.classes[len(s.classes):]]
        cams = [c for c in self.cameras if c not in s.cameras]
        s.classes, s.cameras, s.rois, s.kind = list(self.classes), list(self.cameras), dict(self.rois), self.kind
        self.project.update_settings(s, user)
        self.dirty = False
        return added, cams
