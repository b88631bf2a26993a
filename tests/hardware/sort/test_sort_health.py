"""Fail-safe signals: the heartbeat follows pipeline health, READY follows the PLC heartbeat."""
from __future__ import annotations

import time
from pathlib import Path

from sortkit import brightness_classifier, wait_for, write_folder

from hardware.plc.registers import PcStatus, PlcVerdict
from hardware.sort import SortConfig, SortEngine
from hardware.sort.engine import WARM_TIMED
from hardware.sources import make_source


class StallingClassifier:
    """Hangs for `stall` seconds on one part (a stuck driver), decides the others."""

    def __init__(self, stall: float, on_call: int) -> None:
        self.inner, self.stall, self.on_call, self.calls = brightness_classifier(), stall, on_call, 0

    def predict_views(self, images, cameras):
        self.calls += 1
        if self.calls == self.on_call:
            time.sleep(self.stall)
        return self.inner.predict_views(images, cameras)


def _ready(engine, peer):
    wait_for(lambda: engine.snapshot()["plc"].get("resyncs", 0) >= 1, what="resync")
    wait_for(lambda: peer.status() & int(PcStatus.READY), what="READY")


def test_a_stalled_pipeline_stops_the_heartbeat_until_it_recovers(tmp_path: Path, project, peer):
    folder = write_folder(tmp_path / "run", 2, {})
    source = make_source(f"folder:{folder}")
    source.open()
    clf = StallingClassifier(stall=1.5, on_call=2 + WARM_TIMED)  # the warm-up's calls come first
    engine = SortEngine(project, clf, source, SortConfig(plc_port=peer.port, poll_period=0.002, log_parts=False))
    engine.start(parts=2)
    _ready(engine, peer)
    peer.trigger(1, 1)
    time.sleep(0.45)  # inside the 1.5 s stall, past the 300 ms health limit
    hb0 = peer.pc_block()[0]
    time.sleep(0.6)  # a live heartbeat would have ticked ~6 times
    assert peer.pc_block()[0] == hb0, "PC_HEARTBEAT must not tick while inference hangs"
    assert not peer.status() & int(PcStatus.READY)
    wait_for(lambda: peer.result()[0] == 1, what="the stalled part's answer")
    hb1 = peer.pc_block()[0]
    wait_for(lambda: peer.pc_block()[0] != hb1, what="the heartbeat to resume")
    wait_for(lambda: peer.status() & int(PcStatus.READY), what="READY again")
    peer.trigger(2, 2)
    wait_for(lambda: peer.result()[0] == 2, what="answer 2")
    assert peer.result()[2] == int(PlcVerdict.OK)
    engine.join(10)


def test_repeated_capture_failures_clear_cameras_ok_and_stop_the_heartbeat(project, peer):
    source = make_source("sim", resolution=(128, 96), fail_every=1)  # every capture times out
    source.open()
    engine = SortEngine(project, brightness_classifier(), source,
                        SortConfig(plc_port=peer.port, poll_period=0.002, max_failures=3))
    engine.start()
    _ready(engine, peer)
    for seq in (1, 2, 3):
        peer.trigger(seq, seq)
        wait_for(lambda seq=seq: peer.result()[0] == seq, what=f"answer {seq}")
        assert peer.result()[2] == int(PlcVerdict.ERROR)
    wait_for(lambda: not peer.status() & int(PcStatus.CAMERAS_OK | PcStatus.READY), what="CAMERAS_OK/READY cleared")
    hb = peer.pc_block()[0]
    time.sleep(0.5)
    assert peer.pc_block()[0] == hb, "a pipeline that keeps failing must not look alive"
    s = engine.stop()
    assert s.capture_errors == 3 and s.errors == 3


def test_ready_follows_the_plc_heartbeat(project, peer):
    folder_source = make_source("sim", resolution=(128, 96))
    folder_source.open()
    engine = SortEngine(project, brightness_classifier(), folder_source,
                        SortConfig(plc_port=peer.port, poll_period=0.002, log_parts=False))
    engine.start()
    _ready(engine, peer)
    peer.freeze_heartbeat(True)  # the PLC's scan stopped
    wait_for(lambda: not peer.status() & int(PcStatus.READY), what="READY cleared after 500 ms")
    assert peer.status() & int(PcStatus.SORT_MODE_ON)  # still sorting; just not READY
    peer.freeze_heartbeat(False)
    wait_for(lambda: peer.status() & int(PcStatus.READY), what="READY back")
    engine.stop()
