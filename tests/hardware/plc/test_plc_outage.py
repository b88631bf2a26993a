"""Lost connection: the server goes away mid-run and comes back on the same port."""
from __future__ import annotations

import time

from plc_helpers import free_port, wait_for

from hardware.errors import PlcError
from hardware.plc.client import PlcClient
from hardware.plc.heartbeat import Heartbeat
from hardware.plc.registers import PcStatus


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_backoff_doubles_and_is_capped_at_2s():
    """Against a port nobody listens on: attempts at 0.1, 0.2, 0.4 ... s apart, never > 2 s."""
    clock = FakeClock()
    client = PlcClient("127.0.0.1", free_port(), clock=clock)
    step = 1 / 64                          # exact in binary: no drift in the fake clock
    gaps, last = [], None
    for _ in range(int(40 / step)):        # 40 s of fake time
        before = client.attempts
        assert not client.ensure_connected()
        if client.attempts > before:
            if last is not None:
                gaps.append(clock.t - last)
            last = clock.t
        clock.t += step
    expected = [0.1, 0.2, 0.4, 0.8, 1.6] + [2.0] * (len(gaps) - 5)
    assert len(gaps) > 20
    assert all(e <= g < e + step for g, e in zip(gaps, expected)), gaps
    try:
        client.read_plc_block()
    except PlcError as exc:
        assert "connect" in str(exc)
    else:
        raise AssertionError("read without a PLC must raise PlcError")


def _run_pc(sim, pc_loop_factory):
    hb = Heartbeat("127.0.0.1", sim.port, sim.regmap)
    hb.set_status(PcStatus.READY | PcStatus.SORT_MODE_ON)
    hb.start()
    loop = pc_loop_factory(sim.port)
    assert wait_for(lambda: loop.synced and not sim.counters()["alarm"])
    return hb, loop


def test_outage_same_plc_reconnects_and_answers_nothing_stale(sim_factory, pc_loop_factory):
    """The network drops while the PLC's conveyor keeps running (same simulator instance)."""
    sim = sim_factory(rate=0, travel_s=0.3)
    hb, loop = _run_pc(sim, pc_loop_factory)
    try:
        sim.set_rate(10)
        assert wait_for(lambda: sim.counters()["passed"] >= 3)
        sim.stop_server()                                       # cable pulled
        seq_at_outage = sim.plc_block().trig_seq
        assert wait_for(lambda: loop.errors > 0 and sim.counters()["rejected_by_watchdog"] >= 2)
        triggers_during = sim.counters()["triggers"]
        sim.start_server()                                      # cable back, same port
        t_back = time.monotonic()
        assert wait_for(lambda: len(loop.connects_at) >= 2, timeout=15), "no reconnect"
        reconnect_s = loop.connects_at[1] - t_back
        passed = sim.counters()["passed"]
        assert wait_for(lambda: sim.counters()["passed"] >= passed + 3)
    finally:
        sim.set_rate(0)
        hb.stop()
    c = sim.counters()
    assert c["triggers"] > triggers_during > 0
    # Nothing stale: every answer after the reconnect is for a trigger seen after it.
    resync = loop.resync_seq[1]
    assert resync >= seq_at_outage
    later = [r for r in loop.written if r.result_seq > seq_at_outage]
    assert later and all(r.result_seq > resync for r in later)
    assert c["unmatched"] == 0 and c["answered_late"] == 0
    # the only echoes the PLC could not match are skipped parts (PART_ID unknown to the PC)
    assert c["mismatched"] == sum(t.skipped for t in loop.seen)
    assert c["watchdog_trips"] >= 1 and c["alarm"] == 0
    print(f"reconnected {reconnect_s:.2f} s after the server came back")


def test_outage_new_server_on_same_port(sim_factory, pc_loop_factory):
    """The PLC is replaced (a fresh simulator on the same port, counters and TRIG_SEQ reset)."""
    first = sim_factory(rate=0, travel_s=0.2)
    port = first.port
    hb, loop = _run_pc(first, pc_loop_factory)
    try:
        first.set_rate(10)
        assert wait_for(lambda: first.counters()["passed"] >= 3)
        first.stop()
        old_seq = first.plc_block().trig_seq
        assert wait_for(lambda: loop.errors > 0)
        second = sim_factory(port=port, rate=0, travel_s=0.2, part_id_start=50000)
        assert wait_for(lambda: len(loop.connects_at) >= 2 and not second.counters()["alarm"],
                        timeout=15)
        second.set_rate(10)
        assert wait_for(lambda: second.counters()["passed"] >= 4)
    finally:
        hb.stop()
    c = second.counters()
    assert c["unmatched"] == 0 and c["answered_late"] == 0
    assert first.counters()["mismatched"] + c["mismatched"] == sum(t.skipped for t in loop.seen)
    new_answers = [r for r in loop.written if r.part_id >= 50000]
    assert len(new_answers) >= 4
    # the old PLC's last sequence was never answered again on the new one
    assert old_seq > 0 and loop.resync_seq[1] == 0
