"""AugmentPreview: augmented samples of a labelled part, made by the training pipeline itself.

The button asks for samples (``requested``); the view runs training.session.preview in a Worker
and hands the images back with ``show_images`` (or ``show_error``).
"""
from __future__ import annotations

import numpy as np
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QGridLayout, QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from app.widgets.qimage import to_pixmap

PREVIEW_N = 6


class AugmentPreview(QGroupBox):
    requested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Augmentation preview", parent)
        self.button = QPushButton("Preview augmentations")
        self.button.clicked.connect(self.requested.emit)
        self.grid = QGridLayout()  # 3 per row: the column stays narrow
        self.note = QLabel("Augmented samples of a labelled part appear here.")
        self.note.setObjectName("muted")
        self.note.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.button)
        lay.addLayout(self.grid)
        lay.addWidget(self.note)

    def busy(self) -> None:
        self.note.setText("Making augmented samples…")

    def show_error(self, message: str) -> None:
        self.note.setText(f"No preview: {message}")

    def show_images(self, images: list[np.ndarray]) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for i, img in enumerate(images):
            lab = QLabel()
            lab.setPixmap(to_pixmap(display_image(img), 100))
            self.grid.addWidget(lab, i // 3, i % 3)
        self.note.setText(f"{len(images)} augmented samples of one labelled part."
                          if images else "No labelled part to preview.")


def display_image(img: np.ndarray) -> np.ndarray:
    """A preview sample as an 8-bit image (CHW float tensors and [0,1] floats allowed)."""
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
        lo, hi = float(a.min()), float(a.max())
        a = ((a - lo) / (hi - lo + 1e-8) * 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return np.ascontiguousarray(a)
