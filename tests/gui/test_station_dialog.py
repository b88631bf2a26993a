"""Station → Cameras and PLC: tested in a Worker, saved by a supervisor, the rig restarted with them;
Live sort then sorts the station's cameras (not the simulator's) and borrows them from the preview."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PyQt6.QtWidgets import QMenuBar, QWidget

from app.actions import ProjectActions
from app.rig import Rig
from app.station import StationSettings
from app.views.sort_view import SortView
from labeling.types import Role


@pytest.fixture
def ctx(demo_context):
    return demo_context("station.h5", 4)


def _line(root: Path, cams: list[str], parts: int = 40) -> Path:
    """A recorded line: one folder per camera of the project, `parts` views each."""
    rng = np.random.default_rng(0)
    for cam in cams:
        (root / cam).mkdir(parents=True)
        for k in range(parts):
            cv2.imwrite(str(root / cam / f"part_{k:03d}.png"), rng.integers(0, 255, (48, 64, 3), np.uint8))
    return root


def _rig(ctx, qtbot, source: str) -> Rig:
    rig = Rig(source=source, plc="", fps=10)
    ctx.set_rig(rig)
    rig.start()
    qtbot.waitUntil(lambda: rig.frames >= 1, timeout=20000)
    return rig


def test_cameras_and_plc_are_tested_saved_and_the_rig_restarts_with_them(ctx, plc, qtbot, tmp_path):
    folder = _line(tmp_path / "line", ctx.project.settings.cameras)
    _rig(ctx, qtbot, "sim")
    window = QWidget()
    qtbot.addWidget(window)
    actions = ProjectActions(ctx, window)
    bar = QMenuBar(window)
    actions.menu(bar)  # Station → Cameras and PLC… is on the menu
    station = next(a.menu() for a in bar.actions() if a.text() == "&Station")
    assert "Cameras and PLC…" in [a.text() for a in station.actions()]
    assert actions.edit_station() is None  # an inspector may not change the line's hardware
    ctx.switch_role(Role.SUPERVISOR, "4321")
    dialog = actions.edit_station()
    qtbot.addWidget(dialog)
    assert dialog.source.text() == "sim" and dialog.plc.text() == "sim"
    dialog.source.setText(f"folder:{folder}")
    dialog.plc.setText(f"127.0.0.1:{plc.port}")
    dialog.test_source_btn.click()
    dialog.test_plc_btn.click()
    qtbot.waitUntil(lambda: len(dialog.results) == 2, timeout=20000)
    cams = ctx.project.settings.cameras
    assert dialog.results["source"]["ok"] and dialog.results["source"]["cameras"] == sorted(cams)
    assert dialog.source_result.text().startswith(f"{len(cams)} camera(s)")
    assert dialog.results["plc"]["ok"] and "PLC_HEARTBEAT is moving" in dialog.plc_result.text()
    dialog.save()
    stored = StationSettings.load()
    assert (stored.source, stored.plc) == (f"folder:{folder}", f"127.0.0.1:{plc.port}")
    # the rig runs on the new cameras now (the Capture view's preview and the status bar)
    qtbot.waitUntil(lambda: ctx.rig.source_spec == f"folder:{folder}" and ctx.rig.frames >= 1, timeout=20000)
    assert ctx.rig.cameras_text() == (f"{len(cams)}/{len(cams)} cameras (folder:{folder})", True)


def test_a_bad_source_says_why_in_the_dialog(ctx, qtbot, tmp_path):
    ctx.switch_role(Role.SUPERVISOR, "4321")
    window = QWidget()
    qtbot.addWidget(window)
    dialog = ProjectActions(ctx, window).edit_station()
    qtbot.addWidget(dialog)
    dialog.source.setText(f"folder:{tmp_path / 'nowhere'}")
    dialog.test_source_btn.click()
    qtbot.waitUntil(lambda: "source" in dialog.results, timeout=20000)
    assert not dialog.results["source"]["ok"]
    assert dialog.source_result.text().startswith(f"Could not open folder:{tmp_path / 'nowhere'}")
    assert "#ff4d4d" in dialog.source_result.styleSheet()
    dialog.reject()


def test_live_sort_sorts_the_stations_cameras_borrowed_from_the_preview(ctx, plc, qtbot, tmp_path):
    folder = _line(tmp_path / "line", ctx.project.settings.cameras)
    ctx.station.source = f"folder:{folder}"
    rig = _rig(ctx, qtbot, ctx.station.source)
    ctx.switch_role(Role.SUPERVISOR, "4321")
    view = SortView(ctx)
    qtbot.addWidget(view)
    view.plc_override = ("127.0.0.1", plc.port)
    assert view.sort_source() == f"folder:{folder}"
    with qtbot.waitSignal(view.started, timeout=60000):
        assert view.start() is True
    assert rig._preview is None  # the preview let go of the cameras for the sort process
    qtbot.waitUntil(lambda: view.last_snapshot.get("answered", 0) + view.last_snapshot.get("triggers", 0) >= 2,
                    timeout=30000)
    with qtbot.waitSignal(view.stopped, timeout=30000) as sig:
        view.stop()
    summary = sig.args[0]
    assert summary["source"]["name"] == f"folder:{folder}" and summary["triggers"] >= 1
    frames = rig.frames
    qtbot.waitUntil(lambda: rig._preview is not None and rig.frames > frames, timeout=20000)  # preview back


def test_an_xray_project_sorts_from_the_xray_detector(qtbot, tmp_path):
    """A line-scan project's Live sort takes the X-ray detector, not the station's camera
    simulator (which sorted bolt images for an X-ray model before)."""
    from app.context import AppContext
    from labeling.demo import make_demo_project
    ctx = AppContext()
    ctx.set_project(make_demo_project(tmp_path / "xray.h5", "xray", parts=2, seed=0))
    try:
        view = SortView(ctx)
        qtbot.addWidget(view)
        assert view.sort_source() == "xray"
        view.source_spec = "folder:/somewhere"  # an explicit choice still wins
        assert view.sort_source() == "folder:/somewhere"
    finally:
        ctx.shutdown()


def test_the_cameras_cannot_change_under_a_running_live_sort(ctx, qtbot, tmp_path):
    """A sort process holds the cameras and talks to the PLC: Save waits until it is stopped."""
    ctx.switch_role(Role.SUPERVISOR, "4321")
    window = QWidget()
    qtbot.addWidget(window)
    sort = SortView(ctx)
    qtbot.addWidget(sort)
    window.views = {"Live sort": sort}  # as MainWindow keeps its views
    sort.run = {"shadow": True}  # a run is on (what SortView._on_started sets)
    dialog = ProjectActions(ctx, window).edit_station()
    qtbot.addWidget(dialog)
    dialog.source.setText(f"folder:{tmp_path}")
    dialog.save()
    assert dialog.message.text() == "Live sort is on: stop it before changing the cameras or the PLC."
    assert StationSettings.load().source == "sim" and ctx.station.source == "sim"
    sort.run = None  # stopped: now it saves
    dialog.save()
    assert StationSettings.load().source == f"folder:{tmp_path}"


def test_the_simulated_plc_triggers_at_the_pace_of_the_rigs_line(qtbot):
    """Under the simulated X-ray detector the simulated PLC triggers 1 part/s (the products' pace);
    under the simulated cameras 5 parts/s."""
    from app.rig import LINE_SCAN_PARTS_PER_S
    for kind, rate in (("line-scan", LINE_SCAN_PARTS_PER_S), ("multi-camera", 5.0)):
        rig = Rig(kind=kind, source="", plc="sim")
        rig._start_plc()  # the PLC half of start(): no detector or cameras needed for this
        try:
            assert rig.plc_sim is not None and rig.plc_sim.rate == rate
        finally:
            rig.stop()
