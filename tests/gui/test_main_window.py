"""The whole window on first start: demo project built in a worker, sim rig + PLC simulator, status bar."""
from __future__ import annotations

import time

import pytest
from PyQt6.QtCore import Qt

from app.station import StationSettings
from labeling.store import Project
from labeling.types import PartSource, Role

pytest.importorskip("labeling.demo.build")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("okng-home-window")


@pytest.fixture(scope="module")
def window(qapp, home):
    """One window for the module (building every view once keeps the suite fast)."""
    import os
    old = os.environ.get("OKNG_HOME")
    os.environ["OKNG_HOME"] = str(home)
    st = StationSettings.load()
    st.demo_parts = 4  # small demo: the test is about the window, not the generator
    st.save()
    from app.main import build
    _app, ctx, win = build()
    deadline = time.monotonic() + 60
    while ctx.project is None and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.01)
    assert ctx.project is not None, "the demo project was not built within 60 s"
    yield ctx, win
    win.close()
    if old is not None:
        os.environ["OKNG_HOME"] = old


def test_first_start_builds_demo_and_shows_the_status(window, qtbot, home):
    ctx, win = window
    assert ctx.project.path.parent == home and len(ctx.project) == 4
    sb = win.status
    qtbot.waitUntil(lambda: "4/4 cameras" in sb.sources.text(), timeout=20000)
    qtbot.waitUntil(lambda: "PLC connected" in sb.plc.text(), timeout=20000)
    qtbot.waitUntil(lambda: ctx.rig.plc.get("heartbeats", 0) > 2, timeout=20000)
    sb.refresh()
    assert "♥" in sb.plc.text() and "model: none" in sb.model.text()
    assert "inspector" in sb.user.text().lower() and "demo-bolts" in sb.project.text()
    assert [win.tabs.tabText(i) for i in range(win.tabs.count())] == [
        "Capture", "Label", "Train", "Explain", "Live sort"]
    # the next start opens the same project (recent list)
    assert StationSettings.load(home / "station.json").last_project == ctx.project.path.resolve()


def test_capture_with_space_goes_to_the_label_queue(window, qtbot):
    ctx, win = window
    cap = win.show_view("Capture")
    qtbot.waitUntil(lambda: ctx.rig.latest is not None, timeout=20000)
    qtbot.keyClick(cap.capture_btn, Qt.Key.Key_Space)
    cap.capture_btn.click()
    assert ctx.writer.flush(10)
    proj = Project.open(ctx.project.path)
    captured = [p for p in proj.parts() if p.source == PartSource.CAPTURE]
    assert len(captured) == 2 and len(captured[0].views) == 4
    assert captured[0].meta["captured_by"]["name"] == ctx.user.name
    label = win.show_view("Label")
    qtbot.waitUntil(lambda: label.parts.model.rowCount() == 6, timeout=5000)  # store events arrive queued
    label.parts.set_filter("Unlabeled")
    assert set(label.parts.visible_ids()) == {p.id for p in captured}


def test_role_dialog_refuses_a_wrong_pin(window, qtbot):
    from app.widgets.role_dialog import RoleDialog
    ctx, win = window
    dlg = RoleDialog(ctx, win)
    qtbot.addWidget(dlg)
    dlg.role.setCurrentIndex(list(Role).index(Role.SUPERVISOR))
    dlg.pin.setText("1111")
    assert not dlg.try_accept() and "wrong PIN" in dlg.message.text()
    assert ctx.user.role == Role.INSPECTOR
    dlg.pin.setText("4321")
    dlg.name.setText("sam")
    assert dlg.try_accept()
    assert ctx.user.role == Role.SUPERVISOR and "sam" in win.status.user.text()
    assert ctx.require_role(Role.SUPERVISOR)
