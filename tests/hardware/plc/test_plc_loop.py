"""PlcClient against the built-in PlcSimulator over real Modbus TCP on 127.0.0.1."""
from __future__ import annotations

import threading

import pytest
from plc_helpers import wait_for

from hardware.errors import PlcError
from hardware.plc.client import PlcClient
from hardware.plc.heartbeat import Heartbeat
from hardware.plc.registers import (
    PcResult,
    PcStatus,
    PlcStatus,
    PlcVerdict,
    RegisterMap,
)


def _pc_side(sim, pc_loop_factory, health=lambda: True, **loop_kw):
    """Heartbeat + answer loop, both synced before the conveyor starts."""
    hb = Heartbeat("127.0.0.1", sim.port, sim.regmap, health=health)
    hb.set_status(PcStatus.READY | PcStatus.MODEL_LOADED | PcStatus.CAMERAS_OK | PcStatus.SORT_MODE_ON)
    hb.start()
    loop = pc_loop_factory(sim.port, regmap=sim.regmap, **loop_kw)
    assert wait_for(lambda: loop.synced and not sim.counters()["alarm"]), "PC side never came up"
    return hb, loop


@pytest.mark.parametrize("regmap", [RegisterMap(),
                                    RegisterMap(plc_base=100, pc_base=40, unit_id=7, word_order="little")],
                         ids=["default", "moved-little-unit7"])
def test_every_trigger_answered_and_passed(sim_factory, pc_loop_factory, regmap):
    # A generous watchdog: this test is about matching, not about a starved CI machine.
    sim = sim_factory(rate=0, travel_s=0.3, regmap=regmap, part_id_start=0x0001FFFE, watchdog_s=3.0)
    hb, loop = _pc_side(sim, pc_loop_factory)
    try:
        for n in range(1, 13):           # one part at a time: no poll can miss a sequence
            sim.trigger()
            assert wait_for(lambda n=n: len(loop.written) >= n), sim.counters()
        assert wait_for(lambda: len(sim.history()) == 12), sim.counters()
    finally:
        hb.stop()
    c = sim.counters()
    assert c["triggers"] == 12 and c["passed"] == 12 and c["answered"] == 12
    assert c["rejected"] == c["missed"] == c["unmatched"] == c["mismatched"] == c["partial_writes"] == 0
    # Each answer echoed the right sequence and the right part id (crossing a u32 word boundary).
    hist = sim.history()
    assert [h["part_id"] for h in hist] == list(range(0x0001FFFE, 0x0001FFFE + 12))
    assert [(r.result_seq, r.part_id) for r in loop.written] == [(h["seq"], h["part_id"]) for h in hist]
    assert all(h["verdict"] == "OK" for h in hist)
    # stop() cleared READY and SORT_MODE_ON first
    assert wait_for(lambda: not sim.pc_block().status & (PcStatus.READY | PcStatus.SORT_MODE_ON))
    assert sim.pc_block().status & PcStatus.MODEL_LOADED


def test_positive_release_over_modbus(sim_factory, pc_loop_factory):
    """Only an accepted OK with matching RESULT_SEQ and PART_ID_ECHO passes."""
    plan = {1: "ok", 2: "ng", 3: "error", 4: "silent", 5: "wrong-id", 6: "wrong-seq", 7: "ok"}

    def decide(t):
        kind = plan[t.seq]
        if kind == "ng":
            return t.result(PlcVerdict.NG, 0.9, defect_class=2)
        if kind == "error":
            return t.error_result()
        if kind == "wrong-id":
            return PcResult(t.seq, (t.part_id + 1) & 0xFFFFFFFF, PlcVerdict.OK, 0.9)
        if kind == "silent":
            return None
        if kind == "wrong-seq":
            return PcResult((t.seq + 100) & 0xFFFF, t.part_id, PlcVerdict.OK, 0.9)
        return t.result(PlcVerdict.OK, 0.9)

    sim = sim_factory(rate=0, travel_s=0.2, watchdog_s=3.0)
    hb, loop = _pc_side(sim, pc_loop_factory, decide=decide)
    try:
        for seq in sorted(plan):
            assert sim.trigger()[0] == seq
            assert wait_for(lambda n=seq: len(loop.seen) >= n)
        assert wait_for(lambda: len(sim.history()) == len(plan))
    finally:
        hb.stop()
    out = {h["seq"]: (h["outcome"], h["reason"]) for h in sim.history()}
    assert out == {1: ("passed", "ok"), 2: ("rejected", "ng"), 3: ("rejected", "error"),
                   4: ("rejected", "no answer"), 5: ("rejected", "no answer"),
                   6: ("rejected", "no answer"), 7: ("passed", "ok")}
    c = sim.counters()
    assert c["mismatched"] == 1 and c["unmatched"] == 1 and c["passed"] == 2


def test_skipped_sequences_answered_error(sim_factory):
    """TRIG_SEQ moved by 3 between two polls: the two skipped parts are answered ERROR."""
    sim = sim_factory(rate=0, travel_s=5.0)
    from hardware.plc.client import TriggerTracker
    tracker = TriggerTracker()
    with PlcClient("127.0.0.1", sim.port) as client:
        tracker.resync(client.read_plc_block())
        parts = [sim.trigger() for _ in range(3)]
        triggers = tracker.observe(client.read_plc_block())
        for t in triggers:
            client.write_result(t.error_result() if t.skipped else t.result(PlcVerdict.OK, 0.9))
        assert [(t.seq, t.skipped) for t in triggers] == [(1, True), (2, True), (3, False)]
        assert triggers[-1].part_id == parts[-1][1]
        assert tracker.missed == 2
        back = client.read_pc_block().result
        assert (back.result_seq, back.part_id, back.verdict) == (3, parts[-1][1], PlcVerdict.OK)
    c = sim.counters()
    # skipped parts: the PC cannot know their PART_ID, so the PLC cannot match them -> rejected
    assert c["result_writes"] == 3 and c["answered"] == 1 and c["mismatched"] == 2


def test_unhealthy_pipeline_stops_heartbeat_and_watchdog_rejects(sim_factory, pc_loop_factory):
    healthy = threading.Event()
    healthy.set()
    sim = sim_factory(rate=0, travel_s=0.4)
    hb, _loop = _pc_side(sim, pc_loop_factory, health=healthy.is_set)
    try:
        sim.set_rate(10)
        assert wait_for(lambda: sim.counters()["passed"] >= 3)
        assert wait_for(lambda: hb.written_status & PcStatus.READY)
        healthy.clear()                               # capture or inference stalled
        assert wait_for(lambda: not hb.healthy)
        ticks = hb.ticks
        assert wait_for(lambda: sim.counters()["rejected_by_watchdog"] >= 3)
        assert hb.ticks == ticks                      # no heartbeat while unhealthy
        assert wait_for(lambda: not sim.pc_block().status & PcStatus.READY)
        assert sim.counters()["alarm"] == 1
        healthy.set()
        passed = sim.counters()["passed"]
        assert wait_for(lambda: sim.counters()["passed"] >= passed + 3)
        assert wait_for(lambda: sim.pc_block().status & PcStatus.READY)
    finally:
        sim.set_rate(0)
        hb.stop()
    c = sim.counters()
    assert c["watchdog_trips"] >= 1 and c["alarm"] == 0
    # The loop kept answering OK throughout: the watchdog rejected answered parts anyway.
    assert any(h["reason"] == "watchdog" and h["verdict"] == "OK" for h in sim.history())


def test_plc_heartbeat_stall_clears_ready(sim_factory):
    sim = sim_factory(rate=0)
    hb = Heartbeat("127.0.0.1", sim.port)
    hb.set_status(PcStatus.READY | PcStatus.SORT_MODE_ON)
    hb.start()
    try:
        assert wait_for(lambda: hb.plc_alive and sim.pc_block().status & PcStatus.READY)
        sim.heartbeat_frozen = True
        assert wait_for(lambda: not hb.plc_alive)
        assert wait_for(lambda: sim.pc_block().status == PcStatus.SORT_MODE_ON)
        sim.heartbeat_frozen = False
        assert wait_for(lambda: hb.plc_alive and sim.pc_block().status & PcStatus.READY)
    finally:
        hb.stop()


def test_one_writer_per_register_and_partial_writes(sim_factory):
    sim = sim_factory(rate=0)
    with PlcClient("127.0.0.1", sim.port) as client:
        with pytest.raises(PlcError, match="refused"):          # the PLC block is the PLC's
            client._call("poke", client._mb.write_register, 1, 99)
        assert client.connected                                  # a refusal is not an outage
        client._call("half result", client._mb.write_registers, 11, [1, 0])
        block = client.read_plc_block()
        assert block.trig_seq == 0 and block.status & PlcStatus.GATE_READY
    assert sim.counters()["partial_writes"] == 1


def test_wrong_unit_id_is_refused(sim_factory):
    sim = sim_factory(rate=0, regmap=RegisterMap(unit_id=5))
    with PlcClient("127.0.0.1", sim.port, RegisterMap(unit_id=6)) as client, pytest.raises(PlcError):
        client.read_plc_block()


def test_client_is_one_per_thread(sim_factory):
    sim = sim_factory(rate=0)
    client = PlcClient("127.0.0.1", sim.port)
    client.read_plc_block()
    box = {}
    th = threading.Thread(target=lambda: box.setdefault("err", _catch(client.read_plc_block)))
    th.start()
    th.join(5)
    client.close()
    assert isinstance(box["err"], PlcError) and "one client per thread" in str(box["err"])


def _catch(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        return exc
    return None


def test_port_in_use_is_a_clear_error(sim_factory):
    from hardware.errors import HardwareError
    from hardware.plc.simulator import PlcSimulator
    sim = sim_factory(rate=0)
    other = PlcSimulator(port=sim.port, rate=0)
    with pytest.raises(HardwareError, match="cannot listen"):
        other.start()
    assert not other.running
    with pytest.raises(HardwareError, match="not running"):
        other.trigger()
