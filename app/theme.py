"""The dark theme: resources/theme.qss plus a matching palette and pyqtgraph defaults."""
from __future__ import annotations

from importlib import resources

from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication

OK_COLOR, NG_COLOR = "#2ecc71", "#ff4d4d"


def stylesheet() -> str:
    return resources.files("resources").joinpath("theme.qss").read_text("utf-8")


def apply_theme(app: QApplication) -> None:
    """Fusion style + dark palette + qss; idempotent."""
    import pyqtgraph as pg

    app.setStyle("Fusion")
    pal = QPalette()
    for role, color in ((QPalette.ColorRole.Window, "#1d2127"), (QPalette.ColorRole.WindowText, "#e6e9ee"),
                        (QPalette.ColorRole.Base, "#15181d"), (QPalette.ColorRole.AlternateBase, "#1a1e24"),
                        (QPalette.ColorRole.Text, "#e6e9ee"), (QPalette.ColorRole.Button, "#2b313a"),
                        (QPalette.ColorRole.ButtonText, "#e6e9ee"), (QPalette.ColorRole.Highlight, "#1f4f7a"),
                        (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.ToolTipBase, "#2a2f37"),
                        (QPalette.ColorRole.ToolTipText, "#e6e9ee")):
        pal.setColor(role, QColor(color))
    app.setPalette(pal)
    app.setStyleSheet(stylesheet())
    pg.setConfigOptions(background="#15181d", foreground="#c9d1dc", antialias=True)
