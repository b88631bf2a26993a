"""Start one main widget alone for a look: ``python -m app.views.label_view PROJECT.h5``."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any


def run_standalone(view_cls: type, argv: Sequence[str] | None = None, title: str | None = None,
                   start_rig: bool = False) -> int:
    """Open PROJECT (optional), build view_cls(ctx, None) in a window and run the event loop.

    start_rig: also start the simulated rig and PLC simulator (views that show live data).
    """
    from PyQt6.QtWidgets import QApplication

    from app.context import AppContext
    from app.theme import apply_theme

    parser = argparse.ArgumentParser(description=f"Show {view_cls.__name__} alone")
    parser.add_argument("project", nargs="?", help="project file (.h5)")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme(app)
    ctx = AppContext()
    if args.project:
        ctx.open_project(args.project)
    view: Any = view_cls(ctx, None)
    view.setWindowTitle(title or f"okng · {view_cls.__name__}")
    view.resize(1500, 900)
    view.show()
    if start_rig:
        from app.main import sync_rig
        sync_rig(ctx)
    code = app.exec()
    ctx.shutdown()
    return code
