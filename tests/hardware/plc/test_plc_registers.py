"""The register map and the pure rules: encode/decode, word order, sequences, watchdogs,
and the PLC's positive release logic (time injected, no network)."""
from __future__ import annotations

import pytest

from hardware.errors import HardwareError, PlcError
from hardware.plc.conveyor import Conveyor
from hardware.plc.handshake import TriggerTracker, Watchdog
from hardware.plc.registers import (
    PcResult,
    PcStatus,
    PlcBlock,
    PlcStatus,
    PlcVerdict,
    RegisterMap,
    seq_delta,
)


def test_error_hierarchy():
    assert issubclass(PlcError, HardwareError)


def test_u32_word_order():
    big, little = RegisterMap(), RegisterMap(word_order="little")
    assert big.encode_u32(0x12345678) == [0x1234, 0x5678]          # high word first
    assert little.encode_u32(0x12345678) == [0x5678, 0x1234]
    for m in (big, little):
        for v in (0, 1, 0xFFFF, 0x10000, 0xFFFFFFFF, 123456789):
            assert m.decode_u32(m.encode_u32(v)) == v
    assert big.decode_u32([0x5678, 0x1234]) != little.decode_u32([0x5678, 0x1234])
    with pytest.raises(ValueError):
        big.encode_u32(1 << 32)


def test_plc_block_roundtrip_and_layout():
    m = RegisterMap()
    block = PlcBlock(heartbeat=65535, trig_seq=7, part_id=0xABCD0123,
                     status=PlcStatus.AUTO | PlcStatus.GATE_READY)
    regs = m.encode_plc_block(block)
    assert regs == [65535, 7, 0xABCD, 0x0123, 3]      # offsets 0..4 of the contract
    assert m.decode_plc_block(regs) == block
    assert m.decode_plc_block([1, 2, 0, 3, 0xFFF8]).status == PlcStatus(0)   # undefined bits ignored
    with pytest.raises(PlcError):
        m.decode_plc_block([1, 2, 3])


def test_result_encoding_offsets_1_to_6():
    m = RegisterMap(word_order="little")
    r = PcResult(result_seq=42, part_id=0x00010002, verdict=PlcVerdict.NG, confidence=0.8765,
                 defect_class=3)
    regs = m.encode_result(r)
    # RESULT_SEQ, PART_ID_ECHO (low word first here), VERDICT, CONFIDENCE x1000, DEFECT_CLASS
    assert regs == [42, 0x0002, 0x0001, 2, 877, 3]
    back = m.decode_result(regs)
    assert (back.result_seq, back.part_id, back.verdict, back.defect_class) == (42, 0x00010002, PlcVerdict.NG, 3)
    assert back.confidence == pytest.approx(0.877)


@pytest.mark.parametrize("conf,reg", [(-0.5, 0), (0.0, 0), (0.4996, 500), (1.0, 1000), (7.0, 1000),
                                      (float("nan"), 0)])
def test_confidence_is_clamped(conf, reg):
    assert PcResult(1, 1, PlcVerdict.OK, conf).confidence_x1000 == reg


def test_result_validation():
    with pytest.raises(ValueError):
        PcResult(70000, 1, PlcVerdict.OK)
    with pytest.raises(ValueError):
        PcResult(1, -1, PlcVerdict.OK)
    with pytest.raises(ValueError):
        PcResult(1, 1, 9)
    assert PcResult(1, 1, 2).verdict is PlcVerdict.NG


def test_pc_block_decode_and_unknown_verdict():
    m = RegisterMap()
    blk = m.decode_pc_block([9, 5, 0, 77, 7, 999, 0, 0b1011])
    assert blk.heartbeat == 9 and blk.result.result_seq == 5 and blk.result.part_id == 77
    assert blk.result.verdict is PlcVerdict.ERROR      # a code outside 0..3 is not an OK
    assert blk.status == PcStatus.READY | PcStatus.MODEL_LOADED | PcStatus.SORT_MODE_ON


def test_register_map_settings():
    m = RegisterMap.from_dict({"plc_base": 100, "pc_base": 200, "unit_id": 3, "word_order": "little"})
    assert (m.plc(1), m.pc(7), m.unit_id) == (101, 207, 3)
    assert RegisterMap.from_dict(m.to_dict()) == m
    assert RegisterMap.from_dict(None) == RegisterMap()
    assert RegisterMap().register_span == 18
    for bad in ({"word_order": "middle"}, {"unit_id": 256}, {"plc_base": -1},
                {"plc_base": 0, "pc_base": 3}, {"pc_base": 65530}, {"bogus": 1}):
        with pytest.raises(PlcError):
            RegisterMap.from_dict(bad)


def test_seq_delta_wraps():
    assert seq_delta(5, 3) == 2
    assert seq_delta(0, 65535) == 1
    assert seq_delta(2, 65534) == 4
    assert seq_delta(7, 7) == 0


def test_tracker_first_block_is_reference_only():
    t = TriggerTracker()
    assert t.observe(PlcBlock(0, 10, 500)) == []       # part 10 was there before we looked
    assert t.observe(PlcBlock(1, 10, 500)) == []
    (trig,) = t.observe(PlcBlock(2, 11, 501))
    assert (trig.seq, trig.part_id, trig.skipped) == (11, 501, False)
    assert t.missed == 0 and t.triggers == 1


def test_tracker_skipped_sequences_across_wrap():
    t = TriggerTracker()
    t.observe(PlcBlock(0, 65534, 1))
    out = t.observe(PlcBlock(0, 2, 9))
    assert [(x.seq, x.skipped, x.part_id) for x in out] == [
        (65535, True, None), (0, True, None), (1, True, None), (2, False, 9)]
    assert t.missed == 3
    err = out[0].error_result()
    assert (err.result_seq, err.verdict, err.part_id) == (65535, PlcVerdict.ERROR, 0)


def test_tracker_resync_and_backwards_counter():
    t = TriggerTracker(max_skipped=4)
    t.observe(PlcBlock(0, 100, 1))
    assert t.observe(PlcBlock(0, 3, 2)) == []          # PLC restarted: counter went back
    assert t.last_seq == 3 and t.missed == 0
    out = t.observe(PlcBlock(0, 13, 3))                # 9 skipped, only the last 4 returned
    assert [x.seq for x in out] == [9, 10, 11, 12, 13] and t.missed == 9
    t.resync(PlcBlock(0, 20, 4))                       # after a reconnect: nothing stale
    assert t.observe(PlcBlock(0, 20, 4)) == []


def test_watchdog():
    w = Watchdog(0.5)
    w.feed(3, now=0.0)
    assert not w.alive(0.1)                            # a first sighting is not a tick
    w.feed(4, now=0.2)
    assert w.alive(0.6) and not w.alive(0.71)
    w.feed(4, now=0.8)                                 # unchanged value: still stalled
    assert not w.alive(0.8)
    w.reset()
    assert not w.alive(0.9)


def _alive_conveyor(travel=1.0) -> Conveyor:
    c = Conveyor(travel_s=travel, watchdog_s=0.5)
    c.on_pc_heartbeat(0, 0.0)
    c.on_pc_heartbeat(1, 0.01)
    return c


def test_positive_release_rules():
    c = _alive_conveyor()
    ok, ng, err, silent, wrong_id, late = (c.new_part(0.1 + i * 0.01) for i in range(6))
    hb = 1
    assert c.on_result(PcResult(ok.seq, ok.part_id, PlcVerdict.OK, 0.9), 0.2) == "accepted"
    assert c.on_result(PcResult(ng.seq, ng.part_id, PlcVerdict.NG), 0.2) == "accepted"
    assert c.on_result(PcResult(err.seq, err.part_id, PlcVerdict.ERROR), 0.2) == "accepted"
    assert c.on_result(PcResult(wrong_id.seq, wrong_id.part_id + 1, PlcVerdict.OK), 0.2) == "mismatched"
    assert c.on_result(PcResult(ok.seq, ok.part_id, PlcVerdict.NG), 0.3) == "conflicting"   # first wins
    assert c.on_result(PcResult(999, 1, PlcVerdict.OK), 0.3) == "unmatched"
    for t in (0.4, 0.6, 0.8, 1.0):
        hb += 1
        c.on_pc_heartbeat(hb, t)
    c.advance(1.2)
    out = {r["seq"]: (r["outcome"], r["reason"]) for r in c.history}
    assert out[ok.seq] == ("passed", "ok")
    assert out[ng.seq] == ("rejected", "ng")
    assert out[err.seq] == ("rejected", "error")
    assert out[silent.seq] == ("rejected", "no answer")
    assert out[wrong_id.seq] == ("rejected", "no answer")
    assert c.on_result(PcResult(late.seq, late.part_id, PlcVerdict.OK), 1.3) == "late"
    n = c.counters()
    assert (n["passed"], n["rejected"], n["missed"], n["errors"], n["ng"]) == (1, 5, 3, 1, 1)
    assert (n["mismatched"], n["unmatched"], n["conflicting"], n["answered_late"]) == (1, 1, 1, 1)


def test_watchdog_rejects_every_part_in_flight():
    c = _alive_conveyor(travel=2.0)
    a = c.new_part(0.1)
    c.on_result(PcResult(a.seq, a.part_id, PlcVerdict.OK), 0.15)
    c.on_pc_heartbeat(1, 0.6)                       # PC heartbeat stalled since 0.01
    assert c.alarm and c.counts["watchdog_trips"] == 1
    b = c.new_part(0.7)                              # arrives during the alarm: condemned too
    c.on_pc_heartbeat(2, 0.8)                        # PC is back
    assert not c.alarm
    d = c.new_part(0.9)
    c.on_result(PcResult(b.seq, b.part_id, PlcVerdict.OK), 0.9)
    c.on_result(PcResult(d.seq, d.part_id, PlcVerdict.OK), 0.95)
    for i, t in enumerate((1.2, 1.6, 2.0, 2.4, 2.8), start=3):
        c.on_pc_heartbeat(i, t)
    c.advance(3.0)
    out = {r["seq"]: (r["outcome"], r["reason"]) for r in c.history}
    assert out == {a.seq: ("rejected", "watchdog"), b.seq: ("rejected", "watchdog"),
                   d.seq: ("passed", "ok")}
    assert c.counts["rejected_by_watchdog"] == 2
