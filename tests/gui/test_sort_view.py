"""Live sort view: refused as an inspector; as a supervisor it sorts against the PLC simulator,
the counters move, sorted parts land in the project, and Stop clears SORT_MODE_ON and READY."""
from __future__ import annotations

import pytest

from app.context import AppContext
from app.models.parts_model import PartsModel
from app.views.sort_view import SortView
from hardware.plc.client import PlcClient
from hardware.plc.registers import PcStatus
from hardware.plc.simulator import PlcSimulator
from labeling.demo import make_demo_project
from labeling.types import Role


@pytest.fixture
def ctx(tmp_path, qtbot):
    project = make_demo_project(tmp_path / "sort.h5", "bolts", parts=8, size=(64, 48))
    c = AppContext()
    c.set_project(project)
    yield c
    c.shutdown()


@pytest.fixture
def plc():
    sim = PlcSimulator(host="127.0.0.1", port=0, rate=6.0)
    sim.start()
    yield sim
    sim.stop()


def _pc_status(sim: PlcSimulator) -> PcStatus:
    """PC_STATUS as a PLC reads it: one Modbus FC3 read over TCP."""
    with PlcClient("127.0.0.1", sim.port) as client:
        assert client.ensure_connected()
        return PcStatus(client.read_pc_block().status)


def test_inspector_is_refused(ctx, qtbot):
    view = SortView(ctx)
    qtbot.addWidget(view)
    with qtbot.waitSignal(ctx.refused, timeout=2000) as sig:
        assert view.start() is False
    assert "Supervisor" in sig.args[0]
    assert not view.is_on() and view._busy is None


def test_supervisor_sorts_live_and_stop_clears_status(ctx, plc, qtbot):
    ctx.switch_role(Role.SUPERVISOR, "4321")
    parts_before = len(ctx.project)
    listed = PartsModel(ctx)  # what the Label view's part list shows
    assert listed.rowCount() == parts_before
    view = SortView(ctx)
    qtbot.addWidget(view)
    view.plc_override = ("127.0.0.1", plc.port)
    view.source_spec = "sim:160x120"
    view.shadow.setChecked(False)  # live: the engine drives the gate
    with qtbot.waitSignal(view.started, timeout=60000):
        assert view.start() is True
    qtbot.waitUntil(lambda: view.last_snapshot.get("answered", 0) >= 3, timeout=30000)
    qtbot.waitUntil(lambda: int(view.tiles.value("triggers")) >= 3, timeout=5000)  # drawn by the timer
    both = PcStatus.SORT_MODE_ON | PcStatus.READY
    # READY follows the engine's health (a stalled loop drops it): wait to see both bits.
    qtbot.waitUntil(lambda: _pc_status(plc) & both == both, timeout=10000)
    qtbot.waitUntil(lambda: view.indicator.verdict in ("OK", "NG", "ERROR"), timeout=5000)
    qtbot.waitUntil(lambda: any(p.has_image() for p in view.indicator.views), timeout=5000)
    assert "UNTRAINED" in view.model_label.text()  # no active model: said clearly
    with qtbot.waitSignal(view.stopped, timeout=30000) as sig:
        view.stop()
    summary = sig.args[0]
    assert "error" not in summary and summary["triggers"] >= 3 and summary["answered"] >= 3
    status = _pc_status(plc)
    assert not status & PcStatus.SORT_MODE_ON and not status & PcStatus.READY
    assert len(ctx.project) > parts_before  # sorted parts are in the project for review
    assert listed.rowCount() == len(ctx.project)  # and in the part list, without reopening
    assert not view.is_on() and view.start_btn.isEnabled()


def test_shadow_mode_never_actuates_and_closing_stops(ctx, plc, qtbot):
    ctx.switch_role(Role.SUPERVISOR, "4321")
    view = SortView(ctx)
    qtbot.addWidget(view)
    view.plc_override = ("127.0.0.1", plc.port)
    view.source_spec = "sim:160x120"
    assert view.shadow.isChecked()  # shadow is the first, default option
    with qtbot.waitSignal(view.started, timeout=60000):
        view.start()
    qtbot.waitUntil(lambda: view.last_snapshot.get("triggers", 0) >= 2, timeout=30000)
    assert not _pc_status(plc) & PcStatus.SORT_MODE_ON
    assert plc.pc_block().result.verdict == 0  # decided and logged, never answered
    worker = view._busy
    view.shutdown()  # what closing the window does: waits for the sort process to end
    assert not worker.is_running() and not view.is_on()
    assert not _pc_status(plc) & (PcStatus.SORT_MODE_ON | PcStatus.READY)
