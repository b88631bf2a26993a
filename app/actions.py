"""File and station actions of the main window (new, open, recent, import, export, demo, PINs).

Every slow step (opening or creating a project, creating the demo, importing, exporting) runs
in a Worker (the long ones behind a progress dialog), on a Project handle of its own; errors show
as one clear message and never close the window.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QFileDialog, QMenu, QMessageBox, QWidget

from labeling.home import okng_home
from labeling.progress import ProgressFn
from labeling.store import Project
from labeling.types import ProjectKind, Role

from .widgets.progress import run_with_progress
from .widgets.project_dialogs import (
    NewProjectDialog,
    ReportDialog,
    TransferDialog,
    report_text,
)
from .widgets.role_dialog import PinDialog, RoleDialog
from .widgets.station_dialog import StationDialog
from .worker import Worker

DEMO_KINDS = {ProjectKind.MULTI_CAMERA: "bolts", ProjectKind.LINE_SCAN: "xray"}


def demo_path(kind: str = "bolts") -> Path:
    return okng_home() / f"demo-{kind}.h5"


def build_demo(path: Path, kind: str, parts: int, progress: ProgressFn | None = None,
               should_stop: Callable[[], bool] | None = None) -> Path:
    """Create the demo project (labeling.demo.build) at path; returns path."""
    from labeling.demo.build import make_demo_project
    size = (640, 480) if kind == "bolts" else (640, 1600)
    make_demo_project(path, kind=kind, parts=parts, size=size, overwrite=True, progress=progress,
                      should_stop=should_stop)
    return path


class ProjectActions:
    """Owns the File menu's actions; the window only adds the menu."""

    def __init__(self, ctx: Any, window: QWidget) -> None:
        self.ctx, self.window = ctx, window
        self.worker: Any = None
        self.opener: Worker | None = None  # the Worker opening or creating a project
        self.open_notice: QMessageBox | None = None  # what the last open (or write) repaired or replayed
        # How many of the current project's warnings were shown: a write repairing another
        # writer's torn append or replaying its journal adds one while the window has it open.
        self._said: tuple[int, int] = (0, 0)  # (id of the Project, warnings shown)
        ctx.writer.written.connect(self._written)
        self.recent_menu = QMenu("Open recent", window)
        self.recent_menu.aboutToShow.connect(self._fill_recent)

    def menu(self, bar: Any) -> None:
        m = bar.addMenu("&File")
        self._add(m, "&New project…", self.new_project, QKeySequence.StandardKey.New)
        self._add(m, "&Open project…", self.open_dialog, QKeySequence.StandardKey.Open)
        m.addMenu(self.recent_menu)
        m.addSeparator()
        self._add(m, "&Import…", self.import_dialog, "Ctrl+I")
        self._add(m, "&Export…", self.export_dialog, "Ctrl+E")
        m.addSeparator()
        self._add(m, "Create demo project (bolts)", lambda: self.make_demo("bolts"))
        self._add(m, "Create demo project (X-ray)", lambda: self.make_demo("xray"))
        m.addSeparator()
        self._add(m, "&Quit", self.window.close, QKeySequence.StandardKey.Quit)
        s = bar.addMenu("&Station")
        self._add(s, "Switch user / role…", self.switch_role, "Ctrl+U")
        self._add(s, "Role PINs…", self.edit_pins)
        self._add(s, "Cameras and PLC…", self.edit_station)

    def _add(self, menu: QMenu, text: str, fn: Callable[[], Any], key: Any = None) -> QAction:
        a = QAction(text, self.window)
        if key is not None:
            a.setShortcut(QKeySequence(key))
        a.triggered.connect(lambda _=False: fn())
        menu.addAction(a)
        return a

    def _error(self, msg: str) -> None:
        QMessageBox.warning(self.window, "okng", msg)

    # ------------------------------------------------------------------ projects
    def open_path(self, path: str | Path, on_done: Callable[[Project], None] | None = None) -> bool:
        """Open a project in a Worker (journal replay and index read never run in a slot), then
        make it current; False if there is no such file (said in a message box)."""
        path = Path(path)
        if not path.exists():
            self._error(f"{path}: no such project file")
            return False
        self._start(open_project_file, path, on_done=on_done)
        return True

    def _start(self, fn: Callable[..., Project], *args: Any, on_done: Callable[[Project], None] | None) -> None:
        def opened(proj: Project) -> None:
            self.ctx.set_project(proj)
            self._said = (id(proj), len(proj.warnings))
            if proj.warnings:
                self._opened_with_warnings(proj)
            if on_done is not None:
                on_done(proj)
        self.opener = Worker(fn, *args)
        self.opener.finished.connect(opened)
        self.opener.failed.connect(self._error)
        self.opener.start()

    def _opened_with_warnings(self, proj: Project) -> None:
        """What the open found and did (a torn log repaired, journal records replayed or skipped),
        said where the inspector looks, not only in the log: it can mean a part or a label that
        another process was writing when it died is not there. Not modal: the project is usable."""
        self._notice(proj, f"{proj.path.name} opened; the file needed attention:", proj.warnings)

    def _written(self, name: str) -> None:
        """After a write: what its transaction repaired or replayed first (another process killed
        while appending to the file this window keeps open), said as an open's notes are."""
        proj = self.ctx.project
        if proj is None:
            return
        pid, shown = self._said
        new = proj.warnings[shown if pid == id(proj) else 0:]
        self._said = (id(proj), len(proj.warnings))
        if new:
            self._notice(proj, f"Before saving ({name}), {proj.path.name} needed attention: another process "
                         "writing to it was stopped mid-write.", new)

    def _notice(self, proj: Project, head: str, warnings: list[str]) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "okng: project file notes",
                          head + "\n\n" + "\n\n".join(warnings)
                          + f"\n\nokng check {proj.path} verifies the whole file.", QMessageBox.StandardButton.Ok,
                          self.window)
        box.setModal(False)
        box.show()
        self.open_notice = box  # kept: a box without a reference would be collected at once

    def open_dialog(self) -> None:
        p, _ = QFileDialog.getOpenFileName(self.window, "Open project", str(okng_home()), "okng project (*.h5)")
        if p:
            self.open_path(p)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.ctx.station.existing_recent():
            self.recent_menu.addAction(str(p), lambda p=p: self.open_path(p))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def new_project(self) -> None:
        dlg = NewProjectDialog(self.window, okng_home())
        if not dlg.exec():
            return
        path, settings = dlg.settings()
        self._start(create_project_file, path, settings, on_done=None)

    def make_demo(self, kind: str = "bolts", on_done: Callable[[Path], None] | None = None) -> None:
        """Build the demo project in a Worker with a progress dialog, then open it."""
        path = demo_path(kind)

        def done(p: Path) -> None:
            self.open_path(p, on_done=(lambda _proj: on_done(p)) if on_done is not None else None)
        self.worker = run_with_progress(self.window, f"Creating the {kind} demo project", build_demo, path,
                                        kind, self.ctx.station.demo_parts, on_done=done, on_error=self._error)

    def import_dialog(self) -> None:
        if self.ctx.project is None:
            return self._error("Open or create a project first.")
        from labeling.formats import FORMATS, import_into
        dlg = TransferDialog(FORMATS, export=False, parent=self.window)
        if not dlg.exec():
            return
        fmt, src = dlg.values()
        self.worker = run_with_progress(
            self.window, f"Importing {src.name} ({fmt})", _on_own_handle(import_into, readonly=False),
            self.ctx.project.path, src, fmt,
            user=self.ctx.user, on_done=lambda r: self._report("Import finished", r), on_error=self._error)

    def export_dialog(self) -> None:
        if self.ctx.project is None:
            return self._error("Open a project first.")
        from labeling.formats import FORMATS, export_project
        dlg = TransferDialog(FORMATS, export=True, parent=self.window)
        if not dlg.exec():
            return
        fmt, dest = dlg.values()
        self.worker = run_with_progress(
            self.window, f"Exporting to {dest} ({fmt})", _on_own_handle(export_project), self.ctx.project.path,
            dest, fmt,
            on_done=lambda r: self._report("Export finished", r), on_error=self._error)

    def _report(self, title: str, report: Any) -> None:
        if self.ctx.project is not None:
            self.ctx.reload_project(full=True)  # parts were added through the Worker's own handle
        ReportDialog(title, report_text(report), self.window).open()

    # ------------------------------------------------------------------ station
    def switch_role(self) -> None:
        RoleDialog(self.ctx, self.window).exec()

    def edit_pins(self) -> None:
        if self.ctx.require_role(Role.SUPERVISOR):
            PinDialog(self.ctx, self.window).exec()

    def edit_station(self) -> StationDialog | None:
        """The cameras and PLC the window captures and sorts with (supervisor only): tested, then
        saved; the rig restarts with them while no live sort holds them."""
        if not self.ctx.require_role(Role.SUPERVISOR):
            return None
        dialog = StationDialog(self.ctx, self.window, on_saved=self._restart_rig, busy=self._sorting)
        dialog.open()  # not exec(): the rig and a live sort keep running meanwhile
        return dialog

    def _sorting(self) -> str | None:
        sort = getattr(self.window, "views", {}).get("Live sort")
        if sort is not None and getattr(sort, "is_on", lambda: False)():
            return "Live sort is on: stop it before changing the cameras or the PLC."
        return None

    def _restart_rig(self) -> None:
        if self.ctx.rig is None:
            return  # the window runs without a rig (okng gui --no-rig): nothing to restart
        from app.main import sync_rig
        sync_rig(self.ctx, force=True)


def open_project_file(path: Path, progress: Any = None, should_stop: Any = None) -> Project:
    return Project.open(path)


def create_project_file(path: Path, settings: Any, progress: Any = None, should_stop: Any = None) -> Project:
    return Project.create(path, settings)


def _on_own_handle(fn: Callable[..., Any], readonly: bool = True) -> Callable[..., Any]:
    """fn(project, ...) run by a Worker on a Project handle of its own, opened from the path:
    the window's Project is only ever changed by the store-writer thread."""
    def run(path: Path, *args: Any, **kw: Any) -> Any:
        return fn(Project.open(path, readonly=readonly), *args, **kw)
    run.__name__ = getattr(fn, "__name__", "run")
    return run

