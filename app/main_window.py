"""MainWindow: assembles the mode views, the menus and the status bar. No logic of its own.

Views come from the VIEWS registry: (tab title, class); each is built as Cls(ctx, parent). They
are plain imports: a missing module is a broken install and must fail loudly. A view that raises
while it is built becomes a placeholder tab that says why, so the window still opens.
"""
from __future__ import annotations

import logging
import traceback
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QCloseEvent
from PyQt6.QtWidgets import QLabel, QMainWindow, QMessageBox, QTabWidget, QWidget

from .actions import ProjectActions
from .status_bar import StatusBar
from .views.capture_view import CaptureView
from .views.explain_view import ExplainView
from .views.label_view import LabelView
from .views.sort_view import SortView
from .views.train_view import TrainView

log = logging.getLogger(__name__)

VIEWS: list[tuple[str, type[QWidget]]] = [
    ("Capture", CaptureView),
    ("Label", LabelView),
    ("Train", TrainView),
    ("Explain", ExplainView),
    ("Live sort", SortView),
]


def placeholder(text: str) -> QWidget:
    w = QLabel(text)
    w.setObjectName("placeholder")
    w.setAlignment(Qt.AlignmentFlag.AlignCenter)
    w.setWordWrap(True)
    return w


class MainWindow(QMainWindow):
    def __init__(self, ctx: Any) -> None:
        super().__init__()
        self.ctx = ctx
        self.setWindowTitle("okng inspection workstation")
        self.resize(1600, 980)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.views: dict[str, QWidget] = {}
        for title, cls in VIEWS:
            view = self._build(title, cls)
            self.views[title] = view
            self.tabs.addTab(view, title)
        self.setCentralWidget(self.tabs)
        self.actions_ = ProjectActions(ctx, self)
        self.actions_.menu(self.menuBar())
        self.status = StatusBar(ctx, self)
        self.setStatusBar(self.status)
        self.status.user_clicked.connect(self.actions_.switch_role)
        ctx.refused.connect(self._refused)
        ctx.project_changed.connect(self._title)
        self._title(ctx.project)

    def _build(self, title: str, cls: type[QWidget]) -> QWidget:
        try:
            return cls(self.ctx, self)  # type: ignore[call-arg]
        except Exception as exc:  # noqa: BLE001 - one broken view must not stop the window
            log.warning("view %s failed:\n%s", title, traceback.format_exc())
            return placeholder(f"{title} could not start:\n{type(exc).__name__}: {exc}")

    def show_view(self, title: str) -> QWidget:
        self.tabs.setCurrentWidget(self.views[title])
        return self.views[title]

    def _title(self, project: Any) -> None:
        name = f" — {project.settings.name} ({project.path})" if project is not None else ""
        self.setWindowTitle(f"okng inspection workstation{name}")

    def _refused(self, msg: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "Not allowed for this role", msg,
                          QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()  # not exec(): never blocks the event loop (the rig keeps running)

    def closeEvent(self, ev: QCloseEvent) -> None:
        for view in self.views.values():
            close = getattr(view, "shutdown", None)
            if callable(close):
                try:
                    close()
                except Exception:  # noqa: BLE001 - keep closing the others
                    log.warning("shutdown of %s failed:\n%s", view, traceback.format_exc())
        self.ctx.shutdown()
        super().closeEvent(ev)
