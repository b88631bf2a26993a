"""ViewStrip: thumbnails of all views of a part; clicking one enlarges it in the canvas."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PyQt6.QtCore import QSize, Qt, pyqtSignal
from PyQt6.QtGui import QIcon
from PyQt6.QtWidgets import QButtonGroup, QHBoxLayout, QToolButton, QWidget

from .qimage import to_pixmap


class ViewStrip(QWidget):
    view_clicked = pyqtSignal(int)

    def __init__(self, parent: Any = None, size: int = 112) -> None:
        super().__init__(parent)
        self.size = size
        self.lay = QHBoxLayout(self)
        self.lay.setContentsMargins(0, 0, 0, 0)
        self.lay.addStretch(1)
        self.group = QButtonGroup(self)
        self.group.idClicked.connect(self.view_clicked.emit)

    def set_views(self, thumbs: Sequence[np.ndarray], names: Sequence[str]) -> None:
        """thumbs: small images (already downscaled off the GUI thread)."""
        for b in list(self.group.buttons()):
            self.group.removeButton(b)
            b.deleteLater()
        for i, (img, name) in enumerate(zip(thumbs, names)):
            b = QToolButton()
            b.setCheckable(True)
            b.setIcon(QIcon(to_pixmap(img)))
            b.setIconSize(QSize(self.size, self.size * 3 // 4))
            b.setText(f"{i + 1}: {name}")
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setToolTip(f"View {i + 1} ({name}); Tab cycles views")
            self.group.addButton(b, i)
            self.lay.insertWidget(i, b)
        self.setVisible(len(thumbs) > 1)

    def show_current(self, index: int) -> None:
        b = self.group.button(index)
        if b is not None:
            b.setChecked(True)
