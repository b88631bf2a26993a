"""Capture view: live tiles of the four cameras (or the X-ray waterfall), capture into the project.

Frames are grabbed by the rig's Workers (app/rig.py), never in a slot; this view only shows the
newest one. Capture (button, Space, or a PLC trigger when "on trigger" is ticked) stores the
frames on screen as a new part (source "capture") through the window's store writer; the part
then waits in the Label view's queue as unlabeled. ROIs are drawn on the tiles ("Edit ROIs")
and saved to the project per camera.

Run alone for a look: ``python -m app.views.capture_view PROJECT.h5`` (starts the sim rig).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.widgets.camera_tile import CameraTile
from app.widgets.keys import ViewKeys
from app.widgets.stagger import Stagger
from app.widgets.waterfall import Waterfall
from labeling.types import PartSource, ProjectKind, Role

CAMERAS = ["cam0", "cam1", "cam2", "cam3"]


class CaptureView(QWidget):
    captured = pyqtSignal(int)  # number of parts captured in this session

    def __init__(self, ctx: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.count = 0
        self._rig: Any = None
        self.capture_btn = QPushButton("Capture part  (Space)")
        self.capture_btn.setObjectName("captureButton")
        self.capture_btn.clicked.connect(self.capture)
        self.on_trigger = QCheckBox("Capture on PLC trigger")
        self.on_trigger.setToolTip("Store a part every time the PLC's TRIG_SEQ moves")
        self.every_product = QCheckBox("Store every product")
        self.every_product.setToolTip("Line scan: each product cut from the strip becomes a part")
        self.edit_rois = QPushButton("Edit ROIs")
        self.edit_rois.setCheckable(True)
        self.edit_rois.toggled.connect(self._edit_rois)
        self.clear_rois = QPushButton("Clear ROIs")
        self.clear_rois.clicked.connect(self._clear_rois)
        self.counter = QLabel("0 parts captured")
        self.counter.setObjectName("muted")
        bar = QHBoxLayout()
        for w in (self.capture_btn, self.on_trigger, self.every_product, self.edit_rois, self.clear_rois):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.counter)
        self.tiles: dict[str, CameraTile] = {}
        self.stagger = Stagger(self, gap_ms=25)
        grid_w = QWidget()
        self.grid = QGridLayout(grid_w)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.set_cameras(CAMERAS)
        self.waterfall = Waterfall()
        self.stack = QStackedWidget()
        self.stack.addWidget(grid_w)
        self.stack.addWidget(self.waterfall)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addLayout(bar)
        lay.addWidget(self.stack, 1)
        self.keys = ViewKeys(self, {(Qt.Key.Key_Space, ""): self.capture})
        ctx.project_changed.connect(self._project_changed)
        ctx.settings_changed.connect(self._show_rois)
        ctx.rig_changed.connect(self._bind_rig)
        self._project_changed(ctx.project)
        self._bind_rig()

    # ------------------------------------------------------------------ binding
    @property
    def line_scan(self) -> bool:
        p = self.ctx.project
        return p is not None and p.settings.kind == ProjectKind.LINE_SCAN

    def _project_changed(self, project: Any) -> None:
        self.stack.setCurrentIndex(1 if self.line_scan else 0)
        self.every_product.setVisible(self.line_scan)
        self.edit_rois.setVisible(not self.line_scan)
        self.clear_rois.setVisible(not self.line_scan)
        self._show_rois()
        self.capture_btn.setEnabled(project is not None)

    def _bind_rig(self) -> None:
        rig = self.ctx.rig
        if rig is self._rig:
            return
        if self._rig is not None:
            for sig, slot in ((self._rig.frame, self.show_capture), (self._rig.product, self._product),
                              (self._rig.triggered, self._triggered)):
                try:
                    sig.disconnect(slot)
                except TypeError:
                    pass
        self._rig = rig
        if rig is not None:
            rig.frame.connect(self.show_capture)
            rig.product.connect(self._product)
            rig.triggered.connect(self._triggered)
            self.waterfall.rig = rig
            self.waterfall.set_ring(rig.ring if rig.kind == ProjectKind.LINE_SCAN.value else None)
        else:
            self.waterfall.set_ring(None)
            for t in self.tiles.values():
                t.show_frame(None)

    def set_cameras(self, cameras: list[str]) -> None:
        """One tile per camera of the source, in its order (two columns up to four, then three).
        A station's real cameras are named by their source (GenICam: "Viky-0", a folder: its
        sub-folders): fixed cam0-cam3 tiles showed "no source" under a running 3-camera rig."""
        if list(cameras) == list(self.tiles):
            return
        self.stagger.clear()  # frames queued for the old tiles must not reach deleted widgets
        for t in self.tiles.values():
            self.grid.removeWidget(t)
            t.deleteLater()
        self.tiles = {cam: CameraTile(cam) for cam in cameras}
        cols = 2 if len(cameras) <= 4 else 3
        for i, t in enumerate(self.tiles.values()):
            self.grid.addWidget(t, i // cols, i % cols)
            t.roi_changed.connect(self._save_roi)
            t.settings_changed.connect(self._save_camera_settings)
            t.set_settings(self.ctx.station.cameras.get(t.camera, {}))
        self._show_rois()

    # ------------------------------------------------------------------ live
    def show_capture(self, cap: Any) -> None:
        """Show the newest frames (called for each preview Capture; cheap: setImage per tile)."""
        if list(cap.cameras) != list(self.tiles):
            self.set_cameras(list(cap.cameras))  # the station's source names its cameras
        if not self.isVisible():
            return
        # One tile per event-loop pass (Stagger): four tiles painted in one pass took ~20 ms at
        # 640x480, and the first frames after the view was shown 120-140 ms.
        for cam, img in zip(cap.cameras, cap.views):
            tile = self.tiles.get(cam)
            if tile is not None:
                self.stagger.add(cam, lambda tile=tile, img=img: tile.show_frame(img))

    def _product(self, img: np.ndarray) -> None:
        if self.every_product.isChecked():
            self.store([img], ["xray"], {"auto": True})

    def _triggered(self, seq: int, part_id: int) -> None:
        if self.on_trigger.isChecked():
            self.capture(meta={"trig_seq": seq, "plc_part_id": part_id})

    # ------------------------------------------------------------------ capture
    def capture(self, meta: dict[str, Any] | None = None) -> bool:
        """Store what is on screen as a new part; False (and a status message) if nothing is."""
        rig, project = self.ctx.rig, self.ctx.project
        if project is None:
            self.ctx.status.emit("Open a project first.")
            return False
        latest = rig.latest if rig is not None else None
        if latest is None:
            self.ctx.status.emit("Nothing to capture: no source is running (see the status bar).")
            return False
        extra = dict(meta or {})
        if isinstance(latest, np.ndarray):
            return self.store([latest], ["xray"], extra)
        keep = [(c, v) for c, v in zip(latest.cameras, latest.views)
                if c not in self.tiles or self.tiles[c].enabled.isChecked()]
        if not keep:
            self.ctx.status.emit("All cameras are switched off.")
            return False
        if latest.truth:
            extra["sim_truth"] = latest.truth
        return self.store([v for _, v in keep], [c for c, _ in keep], extra)

    def store(self, views: list[np.ndarray], cameras: list[str], meta: dict[str, Any]) -> bool:
        project = self.ctx.project
        if project is None:
            return False
        meta = dict(meta, captured_by=self.ctx.user.to_dict())
        self.ctx.writer.submit("capture", project.add_part, [np.ascontiguousarray(v) for v in views],
                               cameras=cameras, source=PartSource.CAPTURE, meta=meta)
        self.count += 1
        self.counter.setText(f"{self.count} parts captured → Label queue")
        self.captured.emit(self.count)
        return True

    # ------------------------------------------------------------------ ROIs and camera settings
    def _show_rois(self) -> None:
        p = self.ctx.project
        for cam, t in self.tiles.items():
            t.show_roi(p.settings.rois.get(cam) if p is not None else None)

    def _edit_rois(self, on: bool) -> None:
        if on and not self.ctx.require_role(Role.LAB_EXPERT, Role.SUPERVISOR):
            self.edit_rois.setChecked(False)
            return
        p = self.ctx.project
        for cam, t in self.tiles.items():
            t.edit_roi(on, p.settings.rois.get(cam) if p is not None else None)
        self.edit_rois.setText("Done editing ROIs" if on else "Edit ROIs")

    def _save_roi(self, camera: str, roi: Any) -> None:
        p = self.ctx.project
        if p is not None:
            self.ctx.writer.submit(f"ROI {camera}", p.set_roi, camera, roi, user=self.ctx.user,
                                   key=("roi", camera))

    def _clear_rois(self) -> None:
        p = self.ctx.project
        if p is None or not self.ctx.require_role(Role.LAB_EXPERT, Role.SUPERVISOR):
            return
        for cam in list(p.settings.rois):
            self.ctx.writer.submit(f"ROI {cam}", p.set_roi, cam, None, user=self.ctx.user)

    def _save_camera_settings(self, camera: str, values: dict[str, Any]) -> None:
        self.ctx.station.cameras[camera] = values
        self.ctx._save_station()


if __name__ == "__main__":  # pragma: no cover - a look at the view alone, with the sim rig
    import sys

    from app.widgets.standalone import run_standalone
    sys.exit(run_standalone(CaptureView, start_rig=True))
