"""Engine details: inference failures, Grad-CAM off the critical path, settings, snapshots."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sortkit import brightness_classifier, wait_for, write_folder

from hardware.plc.registers import PlcVerdict
from hardware.sort import SortConfig, SortEngine, parse_host_port
from hardware.sort.engine import WARM_TIMED
from hardware.sources import make_source
from labeling.types import PartSource

WARM_CALLS = 1 + WARM_TIMED  # one untimed warm-up forward, then the timed ones


class FlakyClassifier:
    """Fails on the second part (e.g. a CUDA/driver error), decides the others."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0
        self.model_id = "flaky"

    def predict_views(self, images, cameras):
        self.calls += 1
        if self.calls == WARM_CALLS + 2:  # the warm-up's calls first
            raise RuntimeError("simulated inference failure")
        return self.inner.predict_views(images, cameras)


def _run_parts(engine, peer, n: int, first_seq: int = 1) -> list[tuple]:
    engine.start(parts=n)
    wait_for(lambda: engine.snapshot()["plc"].get("resyncs", 0) >= 1, what="resync")
    answers = []
    for k in range(n):
        seq = first_seq + k
        peer.trigger(seq, 100 + k)
        wait_for(lambda seq=seq: peer.result()[0] == seq, what=f"answer {seq}")
        answers.append(peer.result())
    engine.join(10)
    return answers


def test_inference_failure_answers_error_for_that_part_only(tmp_path: Path, project, peer):
    folder = write_folder(tmp_path / "run", 4, {0: 1, 3: 2})
    source = make_source(f"folder:{folder}")
    source.open()
    engine = SortEngine(project, FlakyClassifier(brightness_classifier()), source,
                        SortConfig(plc_port=peer.port, poll_period=0.002))
    answers = _run_parts(engine, peer, 4)
    assert [a[2] for a in answers] == [PlcVerdict.NG, PlcVerdict.ERROR, PlcVerdict.OK, PlcVerdict.NG]
    assert [a[1] for a in answers] == [100, 101, 102, 103]
    s = engine.summary()
    assert s.inference_errors == 1 and s.errors == 1 and s.missed == 0
    assert "inference" in engine.snapshot()["last"]["error"] or s.verdicts["ERROR"] == 1
    project.reload()
    logged = sorted((p for p in project.parts() if p.source == PartSource.SORT), key=lambda p: p.meta["part_id"])
    assert [p.meta["verdict"] for p in logged] == ["NG", "ERROR", "OK", "NG"]
    assert "simulated inference failure" in logged[1].meta["error"] and logged[1].prediction is None


def test_gradcam_for_ng_parts_only_off_the_critical_path(tmp_path: Path, project, peer):
    folder = write_folder(tmp_path / "run", 3, {1: 0})
    source = make_source(f"folder:{folder}")
    source.open()
    engine = SortEngine(project, brightness_classifier(), source,
                        SortConfig(plc_port=peer.port, poll_period=0.002, gradcam_ng=True))
    answers = _run_parts(engine, peer, 3)
    assert [a[2] for a in answers] == [PlcVerdict.OK, PlcVerdict.NG, PlcVerdict.OK]
    project.reload()
    logged = sorted((p for p in project.parts() if p.source == PartSource.SORT), key=lambda p: p.meta["part_id"])
    # the one heatmap convention (training/explain/heatmaps.py): key "heatmaps", full-image frame
    cams = [p.prediction.extra.get("heatmaps") for p in logged]
    assert cams[0] is None and cams[2] is None
    assert isinstance(cams[1], list) and len(cams[1]) == 4, logged[1].prediction.extra
    assert all(np.asarray(m).shape == (24, 32) and 0 <= np.min(m) <= np.max(m) <= 255 for m in cams[1])
    assert "gradcam" not in logged[1].prediction.extra
    assert engine.summary().log["gradcams"] == 1


def test_snapshot_reports_counters_rate_and_latency(tmp_path: Path, project, peer):
    folder = write_folder(tmp_path / "run", 3, {})
    source = make_source(f"folder:{folder}")
    source.open()
    engine = SortEngine(project, brightness_classifier(), source,
                        SortConfig(plc_port=peer.port, poll_period=0.002, log_parts=False))
    _run_parts(engine, peer, 3)
    snap = engine.snapshot()
    assert snap["triggers"] == 3 and snap["verdicts"]["OK"] == 3
    assert snap["last"]["part_id"] == 102 and snap["last"]["verdict"] == "OK"
    assert set(snap["latency_ms"]) >= {"p50", "p95", "p99"}
    assert snap["log"] == {}  # logging off: nothing stored
    project.reload()
    assert not project.parts()


def test_settings_are_checked():
    assert parse_host_port("10.0.0.5:1502") == ("10.0.0.5", 1502)
    assert parse_host_port("plc.local") == ("plc.local", 502)
    for bad in ("", ":502", "host:abc", "host:70000"):
        with pytest.raises(ValueError):
            parse_host_port(bad)
    with pytest.raises(ValueError):
        SortConfig(poll_period=0)
    with pytest.raises(ValueError):
        SortEngine(None, brightness_classifier(), make_source("sim"), SortConfig()).run(parts=0)


def test_without_heartbeat_thread_the_engine_writes_pc_status_itself(tmp_path: Path, project, peer):
    from hardware.plc.registers import PcStatus
    folder = write_folder(tmp_path / "run", 2, {})
    source = make_source(f"folder:{folder}")
    source.open()
    engine = SortEngine(project, brightness_classifier(), source,
                        SortConfig(plc_port=peer.port, poll_period=0.002, heartbeat=False, log_parts=False))
    engine.start()
    on = int(PcStatus.READY | PcStatus.SORT_MODE_ON | PcStatus.MODEL_LOADED | PcStatus.CAMERAS_OK)
    wait_for(lambda: peer.status() == on, what="status written by the engine's client")
    engine.stop()
    assert peer.status() & int(PcStatus.READY | PcStatus.SORT_MODE_ON) == 0
    assert peer.pc_block()[0] == 0  # no heartbeat thread: PC_HEARTBEAT never ticked
