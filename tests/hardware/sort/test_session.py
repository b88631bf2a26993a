"""hardware.sort.session.run_session: the live-sort run a UI drives (started, snapshots with
thumbnails, summary), stopped by its caller or by the watched window process disappearing,
against the built-in PLC simulator on 127.0.0.1 and a real demo project."""
from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from sortkit import wait_for

from hardware.plc.client import PlcClient
from hardware.plc.registers import PcStatus
from hardware.plc.simulator import PlcSimulator
from hardware.sort.session import SessionSpec, run_session
from hardware.sort.summary import SortStarted
from labeling.demo import make_demo_project
from labeling.store import Project


@pytest.fixture
def project_path(tmp_path):
    make_demo_project(tmp_path / "session.h5", "bolts", parts=4, size=(64, 48))
    return tmp_path / "session.h5"


@pytest.fixture
def plc():
    sim = PlcSimulator(host="127.0.0.1", port=0, rate=8.0)
    sim.start()
    yield sim
    sim.stop()


def _status(sim: PlcSimulator) -> PcStatus:
    with PlcClient("127.0.0.1", sim.port) as client:
        assert client.ensure_connected()
        return PcStatus(client.read_pc_block().status)


def _run_in_thread(spec: SessionSpec, halt: threading.Event) -> tuple[threading.Thread, list, dict]:
    reports: list = []
    out: dict = {}

    def body() -> None:
        try:
            out["summary"] = run_session(spec, reports.append, halt.is_set)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            out["error"] = exc

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, reports, out


def test_session_reports_and_stops_cleanly(project_path, plc):
    before = len(Project.open(project_path, readonly=True))
    spec = SessionSpec(str(project_path), ("127.0.0.1", plc.port), "sim:160x120", shadow=False,
                       threads=1, period=0.05, views_period=0.1, thumb_px=40)
    halt = threading.Event()
    t, reports, out = _run_in_thread(spec, halt)
    wait_for(lambda: any(r.stage == "sort" and r.payload.snapshot["answered"] >= 3 for r in reports) or "error" in out,
             60, "three answered parts")
    assert "error" not in out, out.get("error")
    assert reports[0].stage == "started" and isinstance(reports[0].payload, SortStarted)
    started = reports[0].payload
    assert started.info["trained"] is False and started.plc == ["127.0.0.1", plc.port]
    views = [r.payload.part for r in reports if r.stage == "sort" and r.payload.part is not None]
    assert views, "no thumbnails reported"
    assert views[-1]["cameras"] and len(views[-1]["views"]) == len(views[-1]["cameras"])
    assert max(views[-1]["views"][0].shape[:2]) == 40  # 160x120 scaled to 40 on the longer side
    # one part: its record (verdict, per-view scores) comes with its own views
    assert len(views[-1]["part"]["scores"]) == len(views[-1]["views"]) and views[-1]["part"]["verdict"]
    both = PcStatus.SORT_MODE_ON | PcStatus.READY
    wait_for(lambda: _status(plc) & both == both, 10, "SORT_MODE_ON and READY")
    halt.set()
    t.join(60)
    assert not t.is_alive() and "error" not in out
    summary = out["summary"]
    assert summary["answered"] >= 3 and summary["triggers"] >= summary["answered"]
    assert not _status(plc) & both  # cleared on stop
    assert len(Project.open(project_path, readonly=True)) > before  # sorted parts logged


def test_session_stops_when_the_window_process_is_gone(project_path, plc):
    window = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    spec = SessionSpec(str(project_path), ("127.0.0.1", plc.port), "sim:160x120", shadow=False,
                       threads=1, period=0.05, parent_pid=window.pid)
    halt = threading.Event()
    t, reports, out = _run_in_thread(spec, halt)
    try:
        wait_for(lambda: any(r.stage == "sort" and r.payload.snapshot["answered"] >= 1 for r in reports) or "error" in out,
                 60, "an answered part")
        assert "error" not in out, out.get("error")
        assert _status(plc) & PcStatus.SORT_MODE_ON
    finally:
        window.kill()
        window.wait(10)
    t.join(30)  # nobody sets halt: the run must notice by itself
    assert not t.is_alive()
    assert out["summary"]["stop_reason"] == "the workstation window is gone"
    assert not _status(plc) & (PcStatus.SORT_MODE_ON | PcStatus.READY)
