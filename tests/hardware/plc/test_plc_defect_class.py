"""DEFECT_CLASS over real Modbus TCP: the built-in simulator counts NG rejects per class, and a
third-party server (pyModbusTCP) playing the PLC receives the class the PC wrote."""
from __future__ import annotations

import pytest
from plc_helpers import free_port, wait_for

from hardware.plc.client import PlcClient
from hardware.plc.registers import DEFAULT_MAP, DEFECT_CLASS, VERDICT, PcResult, PlcVerdict


def test_simulator_counts_rejects_per_defect_class(sim_factory, pc_loop_factory):
    classes = {1: 0, 2: 3, 3: 1, 4: 3, 5: 0, 6: 2}  # seq -> DEFECT_CLASS written (0: OK part)
    sim = sim_factory(rate=0, travel_s=0.2, watchdog_s=3.0)

    def decide(t):
        c = classes[t.seq]
        return t.result(PlcVerdict.NG, 0.9, defect_class=c) if c else t.result(PlcVerdict.OK, 0.9)

    from hardware.plc.heartbeat import Heartbeat
    from hardware.plc.registers import PcStatus
    hb = Heartbeat("127.0.0.1", sim.port, sim.regmap)
    hb.set_status(PcStatus.READY | PcStatus.MODEL_LOADED | PcStatus.CAMERAS_OK | PcStatus.SORT_MODE_ON)
    hb.start()
    loop = pc_loop_factory(sim.port, regmap=sim.regmap, decide=decide)
    try:
        assert wait_for(lambda: loop.synced and not sim.counters()["alarm"])
        for seq in sorted(classes):
            assert sim.trigger()[0] == seq
            assert wait_for(lambda n=seq: len(loop.written) >= n)
        assert wait_for(lambda: len(sim.history()) == len(classes))
    finally:
        hb.stop()
    assert {h["seq"]: h["defect_class"] for h in sim.history()} == classes
    c = sim.counters()
    assert c["rejected_by_class"] == {"1": 1, "2": 1, "3": 2}
    assert c["passed"] == 2 and c["rejected"] == 4


def test_defect_class_reaches_a_third_party_plc():
    server_mod = pytest.importorskip("pyModbusTCP.server")
    bank = server_mod.DataBank()
    server = None
    for _ in range(5):
        port = free_port()
        server = server_mod.ModbusServer(host="127.0.0.1", port=port, no_block=True, data_bank=bank)
        try:
            server.start()
            break
        except server_mod.ModbusServer.NetworkError:
            server = None
    assert server is not None, "could not start the pyModbusTCP server"
    try:
        with PlcClient("127.0.0.1", port) as client:
            client.write_result(PcResult(7, 0x00012345, PlcVerdict.NG, 0.87, defect_class=4))
        regs = bank.get_holding_registers(DEFAULT_MAP.pc(VERDICT), 3)
        assert regs == [int(PlcVerdict.NG), 870, 4]
        assert bank.get_holding_registers(DEFAULT_MAP.pc(DEFECT_CLASS), 1) == [4]
    finally:
        server.stop()
