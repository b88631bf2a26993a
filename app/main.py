"""The GUI entry point: build the QApplication and the MainWindow, open a project, start the rig.

First start (no project given, none in the recent list): a demo project is created in
$OKNG_HOME (through the Worker, with a progress dialog) and opened, and the simulated rig and
the built-in PLC simulator start, so a newcomer sees the whole loop at once.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labeling.types import ProjectKind


def sync_rig(ctx: Any, enabled: bool = True, force: bool = False) -> None:
    """Run the rig that fits the open project (cameras or X-ray); restart it when the kind changes,
    or always with `force` (the station's cameras or PLC were changed)."""
    from .rig import Rig
    if not enabled:
        return
    kind = ctx.project.settings.kind.value if ctx.project is not None else ProjectKind.MULTI_CAMERA.value
    if ctx.rig is not None and ctx.rig.kind == kind and not force:
        return
    rig = Rig(kind=kind, source=ctx.station.source, plc=ctx.station.plc)
    rig.changed.connect(ctx.rig_changed.emit)
    ctx.set_rig(rig)
    rig.start()


def build(project: str | Path | None = None, rig: bool = True, demo: bool | None = None) -> tuple[Any, Any, Any]:
    """(QApplication, AppContext, MainWindow), shown, with the project opened or the demo building."""
    from PyQt6.QtWidgets import QApplication

    from .context import AppContext
    from .heap import freeze_heap
    from .main_window import MainWindow
    from .theme import apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("okng")
    apply_theme(app)
    ctx = AppContext()
    win = MainWindow(ctx)
    ctx.project_changed.connect(lambda _p: sync_rig(ctx, rig))
    freeze_heap()  # the views and their preloaded modules: out of every later collection
    win.show()
    target = Path(project) if project else ctx.station.last_project
    if target is not None and not demo:
        if win.actions_.open_path(target):
            win.show_view("Label")
        sync_rig(ctx, rig)
    else:
        win.actions_.make_demo("bolts", on_done=lambda _p: win.show_view("Capture"))
        sync_rig(ctx, rig)
    return app, ctx, win


def run(project: str | Path | None = None, rig: bool = True, demo: bool = False) -> int:
    """Open the workstation and run until the window closes."""
    app, _ctx, win = build(project, rig=rig, demo=demo)
    rc = int(app.exec())
    if win.isVisible():  # the loop ended without a close event (app.quit()): shut down the same way
        win.close()
    # closeEvent has run each view's shutdown and ctx.shutdown(): writes flushed, rig and
    # engines stopped, SORT_MODE_ON/READY cleared. What is left of Qt is deleted here, in order,
    # before PyQt's atexit handler would do it mid-walk and segfault (see app.teardown).
    from .teardown import release_qt
    del win, _ctx, app
    release_qt()
    return rc


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    return run(args[0] if args else None)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
