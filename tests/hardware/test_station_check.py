"""The Station dialog's checks (hardware.station_check): a real folder source opened and read, the
built-in PLC simulator and a third-party Modbus server read over TCP, and what each says on failure."""
from __future__ import annotations

import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

from hardware.plc.simulator import PlcSimulator
from hardware.sources import make_source
from hardware.station_check import check_plc, check_source, source_options


def _folder(root: Path, cams: tuple[str, ...] = ("cam0", "cam1"), parts: int = 2) -> Path:
    for cam in cams:
        (root / cam).mkdir(parents=True)
        for k in range(parts):
            cv2.imwrite(str(root / cam / f"part_{k:03d}.png"), np.full((30, 40), 90, np.uint8))
    return root


def test_a_folder_source_is_opened_read_and_described(tmp_path):
    res = check_source(f"folder:{_folder(tmp_path / 'line')}")
    assert res["ok"] and res["cameras"] == ["cam0", "cam1"]
    assert res["text"].startswith("2 camera(s) (cam0, cam1), views 40x30 px; one part grabbed in ")


def test_the_simulated_cameras_are_opened_at_the_windows_size():
    res = check_source("sim")
    assert res["ok"] and res["resolution"] == [640, 480] and "640x480" in res["text"]


def test_a_real_source_gets_no_simulator_options(tmp_path):
    """The window opened every source with the simulators' size: a folder refused it."""
    assert source_options("sim") == {"resolution": (640, 480), "seed": 0}
    assert source_options("folder:/x") == {} and source_options("genicam:/p.cti") == {}
    folder = _folder(tmp_path / "line")
    src = make_source(f"folder:{folder}", **source_options(f"folder:{folder}"))  # no "unknown option"
    src.open()
    src.close()


def test_bad_sources_are_one_clear_sentence(tmp_path):
    assert check_source("")["text"].startswith("No source given")
    res = check_source(f"folder:{tmp_path / 'missing'}")
    assert not res["ok"] and res["text"].startswith(f"Could not open folder:{tmp_path / 'missing'}: ")
    assert "unknown source 'webcam'" in check_source("webcam:0")["text"]


def test_the_plc_simulator_answers_with_a_moving_heartbeat():
    sim = PlcSimulator(host="127.0.0.1", port=0, rate=0.0)
    sim.start()
    try:
        res = check_plc(f"127.0.0.1:{sim.port}")
    finally:
        sim.stop()
    assert res["ok"], res
    assert res["text"].startswith(f"127.0.0.1:{sim.port}: PLC block read, TRIG_SEQ ") and "is moving" in res["text"]


def test_a_plc_whose_heartbeat_stands_still_is_called_out():
    """pyModbusTCP's server as a PLC whose program does not run: registers readable, heartbeat 0."""
    from pyModbusTCP.server import ModbusServer
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ModbusServer(host="127.0.0.1", port=port, no_block=True)
    server.start()
    try:
        res = check_plc(f"127.0.0.1:{port}")
    finally:
        server.stop()
    assert not res["ok"] and "PLC_HEARTBEAT did not move" in res["text"]


def test_no_plc_and_a_bad_address_say_so():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = check_plc(f"127.0.0.1:{port}")
    assert not res["ok"] and res["text"] == f"No Modbus TCP answer from 127.0.0.1:{port}."
    assert check_plc("sim")["ok"]
    assert check_plc("plc:notaport")["text"] == "PLC address: bad PLC address 'plc:notaport': expected HOST:PORT"


def test_a_genicam_producer_is_opened_through_harvesters():
    """The GenTL path a real GigE/USB3 Vision camera takes, with the genicam wheel's simulated producer."""
    from hardware.sources.genicam import bundled_producer
    cti = bundled_producer()
    if cti is None:
        pytest.skip("genicam wheel without its simulated producer viky.cti")
    res = check_source(f"genicam:{cti}")
    assert res["ok"], res
    assert res["cameras"] and all(c.startswith("Viky") for c in res["cameras"])
    assert res["text"].startswith(f"{len(res['cameras'])} camera(s) (Viky-0")
