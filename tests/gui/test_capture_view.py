"""Capture view against the simulated rigs: camera tiles + ROI on a tile; the X-ray waterfall."""
from __future__ import annotations

import pytest

from app.context import AppContext
from app.rig import LineRing, Rig
from app.views.capture_view import CaptureView
from labeling.store import Project
from labeling.types import BOLT_CLASSES, ROI, XRAY_CLASSES, ProjectKind, Role, Settings

pytest.importorskip("hardware.sources.sim")


def _view(qtbot, tmp_path, kind, source="sim", source_options=None):
    s = Settings(name="cap", kind=kind, classes=list(XRAY_CLASSES if kind == ProjectKind.LINE_SCAN else BOLT_CLASSES),
                 cameras=["xray"] if kind == ProjectKind.LINE_SCAN else ["cam0", "cam1", "cam2", "cam3"])
    Project.create(tmp_path / "cap.h5", s)
    ctx = AppContext()
    ctx.open_project(tmp_path / "cap.h5")
    view = CaptureView(ctx)
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    # the rig's frames reach the view through the event loop: none before the test waits
    assert list(view.tiles) == ["cam0", "cam1", "cam2", "cam3"]  # before any source
    options = {"resolution": (160, 120)} if source == "sim" and source_options is None else source_options
    rig = Rig(kind=kind.value, source=source, plc="", source_options=options, fps=10)
    rig.changed.connect(ctx.rig_changed.emit)
    ctx.set_rig(rig)
    rig.start()
    return ctx, view


def test_tiles_show_frames_capture_and_roi(qtbot, tmp_path):
    ctx, view = _view(qtbot, tmp_path, ProjectKind.MULTI_CAMERA)
    try:
        qtbot.waitUntil(lambda: view.tiles["cam3"].shape == (120, 160), timeout=20000)
        assert ctx.rig.cameras_text() == ("4/4 cameras (sim)", True)
        view.tiles["cam1"].enabled.setChecked(False)  # a camera switched off is not stored
        assert view.capture()
        # ROI: inspectors may not edit; a lab expert draws it on the tile
        view.edit_rois.setChecked(True)
        assert not view.edit_rois.isChecked()
        ctx.switch_role(Role.LAB_EXPERT, "1234")
        view.edit_rois.setChecked(True)
        tile = view.tiles["cam2"]
        tile.roi.setPos((10, 20))
        tile.roi.setSize((50, 40))  # each finished change saves the ROI
        assert ctx.writer.flush(10)
        qtbot.waitUntil(lambda: "cam2" in ctx.project.settings.rois, timeout=5000)
        proj = Project.open(ctx.project.path)
        assert proj.settings.rois["cam2"] == ROI(10, 20, 50, 40)
        part = proj.parts()[0]
        assert [v.camera for v in part.views] == ["cam0", "cam2", "cam3"]
        assert part.source.value == "capture" and part.views[0].shape[:2] == (120, 160)
        assert ctx.station.cameras["cam1"]["enabled"] is False
    finally:
        ctx.shutdown()


def test_waterfall_fills_and_products_become_parts(qtbot, tmp_path):
    ctx, view = _view(qtbot, tmp_path, ProjectKind.LINE_SCAN)
    try:
        assert view.stack.currentWidget() is view.waterfall
        view.every_product.setChecked(True)
        qtbot.waitUntil(lambda: view.waterfall.redraws > 3 and ctx.rig.ring.total > 1000, timeout=30000)
        qtbot.waitUntil(lambda: view.count >= 1, timeout=30000)  # a product was cut and stored
        assert ctx.writer.flush(10)
        part = Project.open(ctx.project.path).parts()[0]
        assert part.views[0].camera == "xray" and part.views[0].shape[1] == 640 and part.views[0].dtype == "uint16"
        assert ctx.rig.stats.get("dropped", 0) == 0
    finally:
        ctx.shutdown()


def test_line_ring_keeps_order_across_the_wrap():
    ring = LineRing(width=3, capacity=5)
    import numpy as np
    for i in range(7):
        ring.push(np.full((1, 3), i, np.float32))
    assert ring.snapshot()[:, 0].tolist() == [2, 3, 4, 5, 6] and ring.total == 7
    ring.push(np.arange(24, dtype=np.float32).reshape(8, 3))  # more than capacity at once
    assert ring.snapshot()[:, 0].tolist() == [9, 12, 15, 18, 21]


def test_the_tiles_follow_the_stations_cameras_and_capture_stores_them(qtbot, tmp_path):
    """A real station names its cameras (GenICam "Viky-0", a folder's sub-folders): the tiles are
    the source's cameras, each shows its frames, and a capture stores the part under those names."""
    import cv2
    import numpy as np
    folder = tmp_path / "line"
    for cam, level in (("left", 60), ("right", 120), ("top", 180)):
        (folder / cam).mkdir(parents=True)
        for k in range(3):
            cv2.imwrite(str(folder / cam / f"p{k}.png"), np.full((30, 40), level, np.uint8))
    ctx, view = _view(qtbot, tmp_path, ProjectKind.MULTI_CAMERA, source=f"folder:{folder}")
    rig = ctx.rig
    try:
        qtbot.waitUntil(lambda: list(view.tiles) == ["left", "right", "top"], timeout=20000)
        qtbot.waitUntil(lambda: all(t.shape == (30, 40) for t in view.tiles.values()), timeout=20000)
        assert view.capture()
        assert ctx.writer.flush(10)
        part = Project.open(tmp_path / "cap.h5").parts()[-1]
        assert [v.camera for v in part.views] == ["left", "right", "top"]
    finally:
        rig.stop()
        ctx.shutdown()
