"""CameraTile: one camera's live image, its ROI drawn on it, and its settings row."""
from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from labeling.types import ROI

from .qimage import display_levels


class CameraTile(QWidget):
    roi_changed = pyqtSignal(str, object)  # camera, ROI | None
    settings_changed = pyqtSignal(str, dict)  # camera, {"enabled", "exposure_us", "gain_db"}

    def __init__(self, camera: str, parent: Any = None) -> None:
        super().__init__(parent)
        self.camera = camera
        self.title = QLabel(camera)
        self.title.setObjectName("tileTitle")
        self.view = pg.GraphicsLayoutWidget()
        self.vb = self.view.addViewBox(invertY=True, lockAspect=True, enableMenu=False)
        # The range is set from the first frame (show_frame), never automatically: auto-range
        # over an empty image and the "no source" label gave a degenerate, flickering range
        # that repainted each empty tile ~120 times a second (a 120-400 ms freeze when the
        # Capture view was first shown).
        self.vb.disableAutoRange()
        self.vb.setRange(xRange=(0, 640), yRange=(0, 480), padding=0)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image)
        self.no_source = pg.TextItem("no source", color="#8a93a0", anchor=(0.5, 0.5))
        self.no_source.setPos(320, 240)
        self.vb.addItem(self.no_source)
        self.roi: pg.RectROI | None = None
        self.shape: tuple[int, int] | None = None
        self.enabled = QCheckBox("on")
        self.enabled.setChecked(True)
        self.exposure = QSpinBox()
        self.exposure.setRange(10, 1_000_000)
        self.exposure.setSuffix(" µs")
        self.exposure.setValue(5000)
        self.gain = QSpinBox()
        self.gain.setRange(0, 48)
        self.gain.setSuffix(" dB")
        for w in (self.enabled,):
            w.toggled.connect(self._settings)
        for w in (self.exposure, self.gain):
            w.valueChanged.connect(self._settings)
        self.info = QLabel("")
        self.info.setObjectName("muted")
        row = QHBoxLayout()
        row.addWidget(self.title)
        row.addStretch(1)
        row.addWidget(self.info)
        settings = QHBoxLayout()
        settings.addWidget(self.enabled)
        settings.addWidget(QLabel("exposure"))
        settings.addWidget(self.exposure)
        settings.addWidget(QLabel("gain"))
        settings.addWidget(self.gain)
        settings.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(row)
        lay.addWidget(self.view, 1)
        lay.addLayout(settings)

    def set_settings(self, d: dict[str, Any]) -> None:
        for w, key, default in ((self.exposure, "exposure_us", 5000), (self.gain, "gain_db", 0)):
            w.blockSignals(True)
            w.setValue(int(d.get(key, default)))
            w.blockSignals(False)
        self.enabled.blockSignals(True)
        self.enabled.setChecked(bool(d.get("enabled", True)))
        self.enabled.blockSignals(False)

    def _settings(self, *_: Any) -> None:
        self.settings_changed.emit(self.camera, {"enabled": self.enabled.isChecked(),
                                                 "exposure_us": self.exposure.value(), "gain_db": self.gain.value()})

    def show_frame(self, img: np.ndarray | None) -> None:
        if img is None or not self.enabled.isChecked():
            self.no_source.setVisible(img is None)
            return
        first = self.shape != img.shape[:2]
        self.shape = img.shape[:2]
        self.image.setImage(img, autoLevels=False, levels=display_levels(img))
        self.no_source.setVisible(False)
        self.info.setText(f"{img.shape[1]}×{img.shape[0]}")
        if first:
            self.vb.autoRange(padding=0.01)

    # ------------------------------------------------------------------ ROI on the tile
    def edit_roi(self, on: bool, roi: ROI | None) -> None:
        """Show a draggable rectangle (the camera's ROI, or the full frame) while editing."""
        if self.roi is not None:
            self.vb.removeItem(self.roi)
            self.roi = None
        if not on or self.shape is None:
            return
        h, w = self.shape
        r = roi.clip(w, h) if roi is not None else ROI(w // 8, h // 8, w * 3 // 4, h * 3 // 4)
        self.roi = pg.RectROI((r.x, r.y), (r.w, r.h), pen=pg.mkPen("#00e5ff", width=2),
                              maxBounds=pg.QtCore.QRectF(0, 0, w, h), snapSize=1)
        self.roi.sigRegionChangeFinished.connect(self._roi_done)
        self.vb.addItem(self.roi)

    def show_roi(self, roi: ROI | None) -> None:
        """A thin outline of the saved ROI when not editing."""
        if getattr(self, "_outline", None) is not None:
            self.vb.removeItem(self._outline)
            self._outline = None
        if roi is None:
            return
        xs = [roi.x, roi.x + roi.w, roi.x + roi.w, roi.x, roi.x]
        ys = [roi.y, roi.y, roi.y + roi.h, roi.y + roi.h, roi.y]
        self._outline = pg.PlotCurveItem(xs, ys, pen=pg.mkPen("#00e5ff", width=1, style=pg.QtCore.Qt.PenStyle.DashLine))
        self.vb.addItem(self._outline)

    def current_roi(self) -> ROI | None:
        if self.roi is None:
            return None
        (x, y), (w, h) = self.roi.pos(), self.roi.size()
        return ROI(max(0, round(x)), max(0, round(y)), max(1, round(w)), max(1, round(h)))

    def _roi_done(self, *_: Any) -> None:
        self.roi_changed.emit(self.camera, self.current_roi())
