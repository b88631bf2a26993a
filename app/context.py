"""AppContext: the shared state of the window (open project, user, station, rig), no logic.

Views receive the context at construction (``Cls(ctx, parent)``), read ``ctx.project`` /
``ctx.user`` and listen to its signals. Store events come from the store-writer thread; the
context re-emits them as Qt signals, which reach GUI-thread slots queued, so views never touch
widgets from another thread.

The window's Project is shared safely: only the store-writer thread (ctx.writer) mutates it
(writes, and `reload_project` after another process wrote); the GUI thread reads its caches;
Worker threads and child processes open their own handle from ``project.path``
(`own_handle`) and never call reload() on this one.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PyQt6.QtCore import QObject, pyqtSignal

from labeling.store import Project, ProjectError
from labeling.types import Role, User

from .station import ROLE_TITLES, StationSettings
from .writer import StoreWriter

if TYPE_CHECKING:
    from .rig import Rig

_MODEL_OPS = {"model_saved", "active_model"}
_PART_OPS = {"part_added", "label", "review", "mask", "prediction", "delete"}


class AppContext(QObject):
    """Shared state of the main window; signals tell views what changed."""

    project_changed = pyqtSignal(object)  # Project | None
    user_changed = pyqtSignal(object)  # User
    models_changed = pyqtSignal()
    parts_changed = pyqtSignal()
    # Another process wrote parts or predictions (a sort run, pre-labeling) and the project was
    # reloaded: lists rebuild their rows (store events only cover this process's own changes).
    parts_reloaded = pyqtSignal()
    status = pyqtSignal(str)  # a short message for the status bar
    refused = pyqtSignal(str)  # a role check failed: the message to show
    part_event = pyqtSignal(object)  # the store event dict (op, part, ...), in the GUI thread
    settings_changed = pyqtSignal()  # project settings (classes, ROIs) changed
    rig_changed = pyqtSignal()  # rig started/stopped or its health changed
    # Store listeners run in whatever thread wrote; this private signal moves them to ours.
    _event_relay = pyqtSignal(object)
    _reloaded = pyqtSignal(object, bool)  # (project, full) reloaded by the writer thread

    def __init__(self, station: StationSettings | None = None) -> None:
        super().__init__()
        self.station = station or StationSettings.load()
        self.project: Project | None = None
        self.rig: Rig | None = None
        self.writer = StoreWriter()  # every store write of the window, in order, off the GUI thread
        self.writer.failed.connect(lambda m: self.status.emit(f"Not saved: {m}"))
        self._event_relay.connect(self._on_store_event)
        self._reloaded.connect(self._on_reloaded)

    def _relay(self, event: dict[str, Any]) -> None:
        """Store listener: runs in the writing thread; the signal queues it to the GUI thread."""
        self._event_relay.emit(event)

    @property
    def user(self) -> User:
        return self.station.user

    # ------------------------------------------------------------------ project
    def open_project(self, path: str | Path) -> None:
        """Open a project file and make it current (raises ProjectError with a clear message).

        Blocking: for tests and the stand-alone views; the window opens through
        ProjectActions.open_path, which opens the file in a Worker."""
        proj = Project.open(Path(path))
        self.set_project(proj)

    def reload_project(self, full: bool = False) -> None:
        """Re-read the project after another process wrote it (a sort run, pre-labeling, an
        import), on the store-writer thread, in order with the window's own writes. Then, in the
        GUI thread: parts_reloaded and models_changed, or with full=True project_changed (all
        views rebuild, as after opening)."""
        proj = self.project
        if proj is None:
            return

        def job() -> None:
            proj.reload()
            self._reloaded.emit(proj, full)
        self.writer.submit(f"reload {proj.path.name}", job, key=("reload", id(proj), full))

    def _on_reloaded(self, proj: Project, full: bool) -> None:
        if proj is not self.project:
            return  # another project was opened meanwhile
        if full:
            self.set_project(proj)
            return
        self.parts_reloaded.emit()
        self.parts_changed.emit()
        self.models_changed.emit()

    def set_project(self, proj: Project | None) -> None:
        if self.project is not None:
            self.project.remove_listener(self._relay)
        self.project = proj
        if proj is not None:
            proj.add_listener(self._relay)
            self.station.add_recent(proj.path)
            self._save_station()
            self.status.emit(f"Opened {proj.path.name}: {len(proj)} parts")
        self.project_changed.emit(proj)
        self.parts_changed.emit()
        self.models_changed.emit()

    def close_project(self) -> None:
        self.set_project(None)

    def _on_store_event(self, event: dict[str, Any]) -> None:
        op = event.get("op")
        if op in _PART_OPS:
            self.part_event.emit(event)
            self.parts_changed.emit()
        if op in _MODEL_OPS:
            self.models_changed.emit()
        if op == "settings":
            self.settings_changed.emit()

    # ------------------------------------------------------------------ user and role
    def switch_role(self, role: Role, pin: str = "", name: str | None = None) -> User:
        """Change role after the PIN check (PermissionError on a wrong PIN)."""
        user = self.station.switch_role(role, pin, name)
        self._save_station()
        self.user_changed.emit(user)
        self.status.emit(f"Now {user.name} ({ROLE_TITLES[user.role]})")
        return user

    def require_role(self, *roles: Role) -> bool:
        """True if the current role is one of roles; else False and a clear message (refused)."""
        if self.user.role in roles:
            return True
        need = " or ".join(ROLE_TITLES[Role(r)] for r in roles)
        msg = (f"This needs the {need} role; you are {ROLE_TITLES[self.user.role].lower()}. "
               f"Switch role with the user button in the status bar (or Ctrl+U).")
        self.refused.emit(msg)
        self.status.emit(msg)
        return False

    def _save_station(self) -> None:
        try:
            self.station.save()
        except OSError as exc:
            self.status.emit(f"Could not save station settings: {exc}")

    def shutdown(self) -> None:
        """Finish pending writes and stop the rig (the window is closing)."""
        if self.rig is not None:
            self.rig.stop()
        self.writer.stop()

    # ------------------------------------------------------------------ rig
    def set_rig(self, rig: Rig | None) -> None:
        if self.rig is not None and self.rig is not rig:
            self.rig.stop()
        self.rig = rig
        self.rig_changed.emit()


def own_handle(project: Project | str | Path, readonly: bool = True) -> Project:
    """A Project handle of this thread's own (for Worker threads): never the window's object."""
    return Project.open(project.path if isinstance(project, Project) else Path(project), readonly=readonly)


__all__ = ["AppContext", "ProjectError", "own_handle"]
