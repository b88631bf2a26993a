"""PlcLink accounting under faults, against real Modbus servers on 127.0.0.1 (ports injected).

READY only while the sort loop's own link polls; parts that went by during an outage counted
missed; `connected` follows the socket and the last exchange; exception responses counted.
"""
from __future__ import annotations

import time

import pytest
from sortkit import free_port, wait_for

from hardware.plc.registers import PcStatus
from hardware.sort.config import SortConfig
from hardware.sort.link import PlcLink

WANTED = PcStatus.MODEL_LOADED | PcStatus.CAMERAS_OK | PcStatus.SORT_MODE_ON


@pytest.fixture
def sim():
    from hardware.plc.simulator import PlcSimulator
    s = PlcSimulator(port=0, rate=0.0)
    s.start()
    yield s
    s.stop()


def _poll_until(link: PlcLink, pred, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        link.poll()
        if pred():
            return
        time.sleep(0.01)
    raise AssertionError("timed out polling")


def test_ready_waits_for_the_sort_loops_own_link(sim):
    link = PlcLink(SortConfig(plc_port=sim.port, plc_timeout=0.3), health=lambda: True)
    link.open(WANTED)
    try:
        _poll_until(link, lambda: bool(sim.pc_block().status & PcStatus.READY))
        sim.stop_server()
        _poll_until(link, lambda: not link.connected)
        sim.start_server()
        hb = link.heartbeat
        assert hb is not None
        # The heartbeat's own connection comes back and sees the PLC alive; the sort loop has
        # not polled since (it would still be in its backoff): READY must stay off.
        wait_for(lambda: hb.plc_alive and hb.written_status is not None, what="heartbeat back")
        time.sleep(0.3)
        st = sim.pc_block().status
        assert not st & PcStatus.READY and st & PcStatus.SORT_MODE_ON, st
        assert not link.polling
        # Once the loop polls on its own connection again, READY comes back.
        _poll_until(link, lambda: bool(sim.pc_block().status & PcStatus.READY))
        assert link.connected and link.info()["reconnects"] == 1
    finally:
        link.close()
    assert not sim.pc_block().status & PcStatus.READY


def test_parts_that_went_by_during_an_outage_are_counted_missed(sim):
    link = PlcLink(SortConfig(plc_port=sim.port, heartbeat=False), health=lambda: True)
    link.open(WANTED)
    try:
        _poll_until(link, lambda: link.tracker.last_seq is not None)
        sim.trigger()
        _poll_until(link, lambda: link.tracker.triggers == 1)
        sim.stop_server()
        _poll_until(link, lambda: not link.connected)
        for _ in range(3):
            sim.trigger()
        sim.start_server()
        _poll_until(link, lambda: link.info()["reconnects"] == 1)
        # three parts reached the station unseen: missed, and never answered (stale)
        assert link.take_missed_in_outages() == 3
        assert link.take_missed_in_outages() == 0
        assert link.info()["missed_in_outages"] == 3
        sim.trigger()
        _poll_until(link, lambda: link.tracker.triggers == 2)
    finally:
        link.close()


class _Flaky:
    """A pyModbusTCP PLC whose holding-register reads can be refused or cut short."""

    def __init__(self) -> None:
        from pyModbusTCP.constants import EXP_SLAVE_DEVICE_BUSY
        from pyModbusTCP.server import DataBank, DataHandler, ModbusServer

        outer = self
        self.mode = "ok"

        class Handler(DataHandler):
            def read_h_regs(self, address, count, srv_info):
                if outer.mode == "busy":
                    return DataHandler.Return(exp_code=EXP_SLAVE_DEVICE_BUSY)
                if outer.mode == "slow":
                    time.sleep(1.0)
                if outer.mode == "short":
                    count = 2
                return super().read_h_regs(address, count, srv_info)

            def write_h_regs(self, address, words_l, srv_info):
                if outer.mode == "slow_write":
                    time.sleep(1.0)  # the request is applied, the answer comes too late
                return super().write_h_regs(address, words_l, srv_info)

        self.port = free_port()
        self.bank = DataBank()
        self.server = ModbusServer(host="127.0.0.1", port=self.port, no_block=True,
                                   data_hdl=Handler(self.bank))
        self.server.start()

    def close(self) -> None:
        self.server.stop()


def test_connected_follows_the_last_exchange_and_exceptions_are_counted():
    plc = _Flaky()
    link = PlcLink(SortConfig(plc_port=plc.port, heartbeat=False), health=lambda: True)
    try:
        link.open(WANTED)
        _poll_until(link, lambda: link.connected)
        plc.mode = "busy"
        for _ in range(3):
            link.poll()
        info = link.info()
        assert not info["connected"] and info["modbus_exceptions"] == 3, info
        assert info["modbus_exceptions_by_code"] == {"6": 3}
        plc.mode = "ok"
        link.poll()
        info = link.info()
        # the socket never went away: answers flow again and the link says so
        assert info["connected"] and info["recoveries"] == 1 and info["reconnects"] == 0, info
    finally:
        link.close()
        plc.close()


def test_a_garbled_short_answer_drops_the_socket_and_the_link_comes_back():
    """A reply shorter than its byte count: pymodbus cannot frame it, the socket is dropped."""
    plc = _Flaky()
    link = PlcLink(SortConfig(plc_port=plc.port, heartbeat=False), health=lambda: True)
    try:
        link.open(WANTED)
        _poll_until(link, lambda: link.connected)
        plc.mode = "short"
        _poll_until(link, lambda: link.info()["disconnects"] == 1)
        assert not link.connected
        plc.mode = "ok"
        _poll_until(link, lambda: link.connected)
        assert link.info()["reconnects"] == 1
    finally:
        link.close()
        plc.close()


def test_a_slow_plc_drops_the_link_and_its_triggers_count_missed():
    """Replies 1 s late (beyond the request timeout): the link is down (not polling, so the
    heartbeat would clear READY) until the loop resyncs, and the parts that came meanwhile are
    counted missed, never answered."""
    from hardware.plc.registers import DEFAULT_MAP
    plc = _Flaky()
    regs = DEFAULT_MAP
    link = PlcLink(SortConfig(plc_port=plc.port, heartbeat=False, plc_timeout=0.3), health=lambda: True)
    try:
        link.open(WANTED)
        _poll_until(link, lambda: link.connected and link.tracker.last_seq == 0)
        _poll_until(link, lambda: bool(plc.bank.get_holding_registers(regs.pc(7), 1)[0] & PcStatus.READY))
        plc.mode = "slow"
        link.poll()
        assert not link.connected and not link.polling
        plc.bank.set_holding_registers(regs.plc_base + 1, [4, 0, 77])  # 4 parts went by
        plc.mode = "ok"
        _poll_until(link, lambda: link.info()["reconnects"] == 1)
        assert link.take_missed_in_outages() == 4 and link.tracker.triggers == 0
    finally:
        link.close()
        plc.close()


def test_a_timed_out_result_write_that_landed_is_counted_answered():
    """The PLC took the write but answered after the timeout: read back after the reconnect."""
    from hardware.plc.registers import PcResult, PlcVerdict
    plc = _Flaky()
    link = PlcLink(SortConfig(plc_port=plc.port, heartbeat=False, plc_timeout=0.3), health=lambda: True)
    try:
        link.open(WANTED)
        _poll_until(link, lambda: link.connected)
        plc.mode = "slow_write"
        assert not link.write(PcResult(7, 1234, PlcVerdict.OK, 0.9))
        plc.mode = "ok"
        wait_for(lambda: plc.bank.get_holding_registers(11, 1)[0] == 7, what="the late write to land")
        _poll_until(link, lambda: link.info()["reconnects"] == 1)
        assert link.take_landed() == 1 and link.info()["in_doubt_landed"] == 1
        # a write that never reached the PLC is not counted
        plc.server.stop()
        assert not link.write(PcResult(8, 1235, PlcVerdict.OK, 0.9))
        plc.server.start()
        _poll_until(link, lambda: link.info()["reconnects"] == 2)
        assert link.take_landed() == 0
    finally:
        link.close()
        plc.close()
