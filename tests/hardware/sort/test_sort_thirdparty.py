"""The sort engine against a third-party Modbus server (pyModbusTCP) played as the PLC by the test."""
from __future__ import annotations

from pathlib import Path

import cv2
from sortkit import brightness_classifier, wait_for, write_folder

from hardware.plc.registers import PcStatus, PlcVerdict
from hardware.sort import SortConfig, SortEngine
from hardware.sources import make_source
from labeling.types import PartSource

BRIGHT = {1: 2, 3: 0, 4: 3}  # part k -> the one bright (NG) view; others all dark (OK)


def _engine(project, source, peer, **kw) -> SortEngine:
    cfg = SortConfig(plc_host="127.0.0.1", plc_port=peer.port, poll_period=0.002, **kw)
    return SortEngine(project, brightness_classifier(), source, cfg)


def _wait_ready(engine, peer, sort_mode: bool = True) -> None:
    want = PcStatus.READY | (PcStatus.SORT_MODE_ON if sort_mode else PcStatus(0))
    wait_for(lambda: engine.snapshot()["plc"].get("resyncs", 0) >= 1, what="engine resync")
    wait_for(lambda: (peer.status() & int(want | PcStatus.SORT_MODE_ON)) == int(want), what="PC_STATUS ready")


def test_folder_replay_answers_every_trigger_with_expected_verdict(tmp_path: Path, project, peer):
    n = 6
    folder = write_folder(tmp_path / "run", n, BRIGHT)
    source = make_source(f"folder:{folder}")
    source.open()
    classifier = brightness_classifier()
    expected = []
    for k in range(n):  # the classifier's own decisions on the k-th files (the contract's rule)
        cap_views = [cv2.imread(str(folder / f"cam{c}" / f"part_{k:03d}.png"), 0) for c in range(4)]
        expected.append(classifier.predict_views(cap_views, ["cam0", "cam1", "cam2", "cam3"]))
    assert [int(d.verdict) for d in expected] == [2 if k in BRIGHT else 1 for k in range(n)]

    base = 65533  # the run crosses the u16 wrap of TRIG_SEQ
    peer.trigger(base, 999)
    engine = _engine(project, source, peer)
    engine.start(parts=n)
    _wait_ready(engine, peer)
    for k in range(n):
        seq, pid = (base + 1 + k) & 0xFFFF, 70000 + k  # PART_ID above 16 bits: both words matter
        peer.trigger(seq, pid)
        wait_for(lambda seq=seq: peer.result()[0] == seq, what=f"answer to seq {seq}")
        rseq, echo, verdict, conf, dclass = peer.result()
        assert rseq == seq
        assert echo == pid
        assert verdict == int(expected[k].verdict), f"part {k}"
        assert conf == round(expected[k].confidence * 1000)
        assert dclass == 0
    summary = engine.join(10)
    source.close()
    assert summary.triggers == n and summary.answered == n and summary.missed == 0
    assert summary.verdicts == {"OK": n - len(BRIGHT), "NG": len(BRIGHT), "ERROR": 0}
    assert summary.latency_ms["n"] == n and summary.latency_ms["p50"] > 0
    # stop clears SORT_MODE_ON and READY
    assert peer.status() & int(PcStatus.READY | PcStatus.SORT_MODE_ON) == 0
    # every part logged with its prediction and the trigger's identity
    project.reload()
    parts = [p for p in project.parts() if p.source == PartSource.SORT]
    assert len(parts) == n
    for k, part in enumerate(sorted(parts, key=lambda p: p.meta["part_id"])):
        assert part.meta["trig_seq"] == (base + 1 + k) & 0xFFFF
        assert part.meta["part_id"] == 70000 + k
        assert part.prediction is not None and int(part.prediction.verdict) == int(expected[k].verdict)
        assert part.meta["shadow"] is False and part.meta["answered"] is True
        assert set(part.meta["timings_ms"]) >= {"poll", "capture", "forward", "write", "total"}
        again = classifier.predict_views(project.read_views(part.id), [v.camera for v in part.views])
        assert int(again.verdict) == int(part.prediction.verdict)


def test_skipped_sequences_are_answered_error_and_counted_missed(tmp_path: Path, project, peer):
    folder = write_folder(tmp_path / "run", 4, {})
    source = make_source(f"folder:{folder}")
    source.open()
    peer.trigger(10, 1)
    engine = _engine(project, source, peer, log_parts=False)
    engine.start(parts=4)
    _wait_ready(engine, peer)
    peer.trigger(11, 2)
    wait_for(lambda: peer.result()[0] == 11, what="answer to 11")
    peer.trigger(14, 5)  # 12 and 13 were never seen by the PC
    wait_for(lambda: engine.snapshot()["triggers"] >= 4, what="three more triggers")
    summary = engine.join(10)
    assert summary.missed == 2 and summary.verdicts["ERROR"] == 2 and summary.verdicts["OK"] == 2
    # the skipped ones are answered after the newest (captured first); both got written, but
    # only the seen ones count as answered: a skipped part's ERROR echoes an unknown PART_ID
    assert summary.answered == 2 and summary.missed_written == 2
    assert summary.plc["missed"] == 2


def test_shadow_mode_answers_nothing_and_logs_every_trigger(tmp_path: Path, project, peer):
    n = 4
    folder = write_folder(tmp_path / "run", n, {2: 1})
    source = make_source(f"folder:{folder}")
    source.open()
    engine = _engine(project, source, peer, shadow=True)
    engine.start(parts=n)
    _wait_ready(engine, peer, sort_mode=False)
    seen_status = set()
    for k in range(n):
        peer.trigger(k + 1, 500 + k)
        wait_for(lambda k=k: engine.snapshot()["triggers"] >= k + 1, what=f"shadow trigger {k + 1}")
        seen_status.add(peer.status())
    summary = engine.join(10)
    assert summary.triggers == n and summary.answered == 0 and summary.shadow
    assert summary.verdicts == {"OK": n - 1, "NG": 1, "ERROR": 0}
    assert peer.result() == (0, 0, int(PlcVerdict.NONE), 0, 0)  # VERDICT stays 0
    assert all(not s & int(PcStatus.SORT_MODE_ON) for s in seen_status)
    project.reload()
    parts = sorted((p for p in project.parts() if p.source == PartSource.SORT), key=lambda p: p.meta["trig_seq"])
    assert [p.meta["part_id"] for p in parts] == [500 + k for k in range(n)]
    assert all(p.meta["shadow"] and not p.meta["answered"] for p in parts)
    assert [p.prediction.verdict.name for p in parts] == ["OK", "OK", "NG", "OK"]


def test_camera_timeout_and_corrupt_frame_give_error_for_that_part_only(project, peer):
    n = 8
    source = make_source("sim", resolution=(128, 96), fail_every=3, corrupt_every=5)
    source.open()
    engine = _engine(project, source, peer)
    engine.start(parts=n)
    _wait_ready(engine, peer)
    verdicts = []
    for k in range(n):
        peer.trigger(k + 1, k + 1)
        wait_for(lambda k=k: peer.result()[0] == k + 1, what=f"answer {k + 1}")
        verdicts.append(peer.result()[2])
    summary = engine.join(10)
    faulty = {k for k in range(n) if (k + 1) % 3 == 0 or (k + 1) % 5 == 0}
    for k, v in enumerate(verdicts):
        if k in faulty:
            assert v == int(PlcVerdict.ERROR), f"part {k} should be ERROR"
        else:
            assert v in (int(PlcVerdict.OK), int(PlcVerdict.NG)), f"part {k} should be decided"
    assert summary.capture_errors == len(faulty) and summary.errors == len(faulty)
    assert summary.missed == 0 and summary.answered == n
