"""Live sort view: refused as an inspector; as a supervisor it sorts against the PLC simulator,
the counters move, sorted parts land in the project, and Stop clears SORT_MODE_ON and READY."""
from __future__ import annotations

import pytest

from app.models.parts_model import PartsModel
from app.views.sort_view import SortView
from hardware.plc.client import PlcClient
from hardware.plc.registers import PcStatus
from hardware.plc.simulator import PlcSimulator
from labeling.types import Role


@pytest.fixture
def ctx(demo_context):
    return demo_context("sort.h5", 8)


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
    # sorted parts are in the project for review (reloaded on the store-writer thread)
    qtbot.waitUntil(lambda: len(ctx.project) > parts_before, timeout=10000)
    qtbot.waitUntil(lambda: listed.rowCount() == len(ctx.project), timeout=5000)  # and in the part list
    assert not view.is_on() and view.start_btn.isEnabled()
    _panel_shows_one_part(view, ctx.project)
    # the run's own capacity figures stay on the panel: what a supervisor reads before going live
    assert summary["forward_ms"] > 0 and summary["capacity"]["text"]
    assert view.capacity_label.text() == "Last run: " + summary["capacity"]["text"]


def _panel_shows_one_part(view: SortView, project) -> None:
    """Verdict, views and per-view P(NG) on the panel are those of ONE sorted part: the part the
    run logged under the shown trigger sequence has exactly these views, verdict and scores."""
    import numpy as np

    from labeling.images import thumbnail
    shown = view.indicator.part
    assert shown and view.indicator.verdict == shown["verdict"]
    logged = [p for p in project.parts() if p.meta.get("trig_seq") == shown["trig_seq"]]
    assert len(logged) == 1, f"no single logged part for seq {shown['trig_seq']}"
    part = logged[0]
    assert part.meta["verdict"] == shown["verdict"]
    assert np.allclose(part.meta["scores"], shown["scores"], atol=1e-3)
    views = project.read_views(part.id)
    assert len(view.indicator.images) == len(views) == len(shown["scores"])
    for im, pane in zip(views, view.indicator.images):
        assert np.array_equal(thumbnail(im, 240), pane)
    for k, pane in enumerate(view.indicator.views[:len(views)]):
        assert f"P(NG) {shown['scores'][k]:.2f}" in pane.title.text()


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


def test_the_part_shown_names_its_defect_class(ctx, qtbot):
    import numpy as np
    view = SortView(ctx)
    qtbot.addWidget(view)
    rec = {"trig_seq": 3, "part_id": 1003, "verdict": "NG", "confidence": 0.91, "defect_class": 2,
           "scores": [0.2, 0.91], "total_ms": 12.0}
    view._show_part({"part": rec, "views": [np.zeros((8, 8), np.uint8)] * 2, "cameras": ["cam0", "cam1"]}, False)
    assert view.indicator.detail.text().startswith("DEFECT_CLASS 2 (no coating) · seq 3")


def test_the_tiles_show_outage_misses_and_modbus_exceptions(ctx, qtbot):
    """The snapshot's missed_in_outages and modbus_exceptions reach their own tiles (amber once
    above zero), drawn by the view's poll like every other counter."""
    view = SortView(ctx)
    qtbot.addWidget(view)
    assert "missed in outages" in view.tiles.KEYS and "Modbus exceptions" in view.tiles.KEYS
    snap = {"triggers": 12, "verdicts": {"OK": 7, "NG": 2, "ERROR": 3}, "missed": 3, "missed_in_outages": 2,
            "modbus_exceptions": 4, "plc": {"modbus_exceptions": 4}, "shadow": True,
            "latency_ms": {"p50": 20.0, "p99": 31.0}, "parts_per_s": 4.9}
    view.run = {"shadow": True}  # a run is on: poll draws
    view.last_snapshot = snap
    view.poll()
    qtbot.waitUntil(lambda: view.tiles.value("missed in outages") == "2", timeout=5000)
    assert view.tiles.value("Modbus exceptions") == "4" and view.tiles.value("missed") == "3"
    assert view.tiles.values["Modbus exceptions"].property("warn") is True
    view.run = None
    view.tiles.show_snapshot({**snap, "missed_in_outages": 0, "modbus_exceptions": 0})
    assert view.tiles.value("missed in outages") == "0"
    assert view.tiles.values["missed in outages"].property("warn") is False


def test_a_model_too_slow_for_the_line_is_shown_in_red(ctx, qtbot):
    """The snapshot's capacity (hardware.sort.capacity) reaches its label with its level's colour,
    drawn by the view's poll."""
    from hardware.sort.capacity import Capacity
    view = SortView(ctx)
    qtbot.addWidget(view)
    over = Capacity(260.0, 5.0, "measured p50").to_dict()
    view.run = {"shadow": True}
    view.last_snapshot = {"triggers": 5, "verdicts": {"OK": 5}, "capacity": over, "plc": {}}
    view.poll()
    qtbot.waitUntil(lambda: view.capacity_label.text() == over["text"], timeout=5000)
    assert view.capacity_label.text().startswith("⚠ Cannot keep up")
    assert view.capacity_label.property("level") == "over" and "#ff4d4d" in view.capacity_label.styleSheet()
