"""Waterfall: the X-ray detector's lines scrolling by, redrawn ~30 times a second from a ring buffer.

The acquisition loop (app.rig.linescan_loop, in a Worker) writes every corrected line into a
LineRing; this widget only copies the ring's snapshot into an ImageItem on a 33 ms timer, and
only when new lines arrived, so the GUI never waits on the detector and no line is dropped here.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget


class Waterfall(QWidget):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.ring: Any = None
        self.rig: Any = None  # for the acquisition stats (dropped lines) shown under the image
        self.view = pg.GraphicsLayoutWidget()
        # time runs left to right (newest line at the right edge), across-belt pixels top to
        # bottom: a 640-pixel detector fills a wide screen without distortion
        self.vb = self.view.addViewBox(invertY=True, lockAspect=True, enableMenu=False)
        self.vb.disableAutoRange()  # set from the first lines (redraw): never over an empty image
        self.vb.setRange(xRange=(0, 2048), yRange=(0, 640), padding=0)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image)
        self.info = QLabel("no detector")
        self.info.setObjectName("muted")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.info)
        self.levels: tuple[float, float] | None = None
        self._seen = -1
        self.redraws = 0
        self.timer = QTimer(self)
        self.timer.setInterval(33)
        self.timer.timeout.connect(self.redraw)

    def set_ring(self, ring: Any) -> None:
        self.ring, self._seen, self.levels = ring, -1, None
        if ring is None:
            self.timer.stop()
            self.info.setText("no detector")
        else:
            self.timer.start()

    def redraw(self) -> None:
        ring = self.ring
        if ring is None or ring.total == self._seen:
            return
        self._seen = ring.total
        img = ring.snapshot().T
        if ring.total >= 256 and (self.levels is None or self.redraws % 30 == 0):
            # robust levels from the lines received so far, refreshed about once a second
            filled = img[:, -min(ring.total, img.shape[1]):]
            lo, hi = np.percentile(filled[::4, ::4], (1.0, 99.5))
            self.levels = (float(lo), float(max(hi, lo + 1)))
        self.image.setImage(img, autoLevels=False, levels=self.levels or (0.0, 65535.0))
        if self.redraws == 0:
            self.vb.autoRange(padding=0)
        self.redraws += 1
        stats = getattr(self.rig, "stats", None) or {}
        dropped = f" · {stats['dropped']} dropped" if "dropped" in stats else ""
        self.info.setText(f"{ring.total:,} lines received{dropped}")

    def showEvent(self, ev: Any) -> None:
        if self.ring is not None:
            self.timer.start()
        super().showEvent(ev)

    def hideEvent(self, ev: Any) -> None:
        self.timer.stop()  # nothing to draw for nobody
        super().hideEvent(ev)
