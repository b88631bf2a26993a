"""Real threads at real line rates: no dropped lines, drops detected when they happen, and the
products cut from the strip are the generator's products."""
from __future__ import annotations

import time

import numpy as np

from hardware.linescan import (
    Acquisition,
    DetectorSimulator,
    LineScanPipeline,
    StripReplay,
    calibrate_detector,
    load_strip,
    save_strip,
)
from hardware.linescan.calibration import capture_lines
from hardware.sources import make_source

TOL = 3  # lines


def _match(products, det, belt, lines_seen):
    """Pair each complete ground-truth product with a split product; return the worst offset."""
    found = [(det.scene_line(p.start_line), det.scene_line(p.end_line)) for p in products]
    last = det.scene_line(lines_seen)
    truth = [(t.start, t.end) for t in belt.products(0, last) if t.end + 16 < last]
    assert truth, "run too short to hold a whole product"
    worst = 0
    for a, b in truth:
        near = [f for f in found if abs(f[0] - a) <= TOL and abs(f[1] - b) <= TOL]
        assert len(near) == 1, f"product {a}-{b} not split correctly: {found}"
        worst = max(worst, abs(near[0][0] - a), abs(near[0][1] - b))
    assert len([f for f in found if f[1] + 16 < last]) == len(truth)  # nothing spurious
    return worst


def test_default_rate_no_dropped_lines_and_products_match_truth(belt_factory):
    belt = belt_factory(0)
    det = DetectorSimulator(belt)  # 1250 lines/s, the line's real speed
    det.open()
    cal = calibrate_detector(det, lines=64)
    pipe = LineScanPipeline(det, cal)
    before, lost_before = det._next, det.lost
    products = pipe.run_for(1.6)
    s = pipe.stats
    assert s.dropped == 0 and s.overrun == 0 and s.filled == 0 and det.lost == lost_before
    assert s.lines == det._next - before > 1000  # every line the detector sent went into the strip
    assert pipe.acquisition.stats.received == s.lines
    assert _match(products, det, belt, pipe.assembler.next_line) <= TOL


def test_high_rate_with_drops_detected_and_bridged(belt_factory):
    belt = belt_factory(1, strips=3)
    det = DetectorSimulator(belt, rate=5000, seed=1, fifo_lines=512)
    det.open()
    cal = calibrate_detector(det, lines=64)
    lost_before = det.lost  # (a busy machine may drop calibration lines: not this run's business)
    pipe = LineScanPipeline(det, cal)
    pipe.acquisition.start()
    products = pipe.run_for(0.5)
    with det._lock:  # the reader is stalled (as by a long GC pause): the FIFO overflows
        time.sleep(0.25)
    products += pipe.run_for(0.8)
    pipe.acquisition.stop()
    while pipe.acquisition.available:
        products += pipe.step(timeout=0)
    s = pipe.stats
    lost = det.lost - lost_before
    assert lost >= 1250 - 512 and s.dropped == lost  # every lost line counted, none invented
    assert s.filled == lost == sum(n for _, n in pipe.assembler.gaps)  # and bridged
    assert s.lines == pipe.acquisition.stats.received + s.dropped
    # products away from gaps are still cut where the generator put them
    gaps = [(det.scene_line(a) - 20, det.scene_line(a + n) + 20) for a, n in pipe.assembler.gaps]
    last = det.scene_line(pipe.assembler.next_line)
    found = [(det.scene_line(p.start_line), det.scene_line(p.end_line)) for p in products]
    truth = [(t.start, t.end) for t in belt.products(0, last)
             if t.end + 16 < last and all(t.end < g0 or t.start > g1 for g0, g1 in gaps)]
    assert truth
    for a, b in truth:
        assert any(abs(f[0] - a) <= TOL and abs(f[1] - b) <= TOL for f in found), (a, b, gaps, found)


def test_ring_overrun_when_the_consumer_falls_a_ring_behind(belt_factory):
    det = DetectorSimulator(belt_factory(0), rate=None)
    acq = Acquisition(det, capacity=2048)
    acq.start()
    deadline = time.monotonic() + 10
    while acq.stats.received < 3 * 2048 and time.monotonic() < deadline:
        time.sleep(0.01)
    acq.stop()
    numbers, _lines = acq.read()
    assert acq.stats.overrun >= 2048 and len(numbers) <= 2048
    assert np.all(np.diff(numbers) == 1)  # what is returned is consistent, newest lines
    assert numbers[-1] == acq.stats.received - 1


def test_recorded_strip_replay_in_every_format(belt_factory, tmp_path):
    belt = belt_factory(0)
    det = DetectorSimulator(belt, rate=None, seed=4)
    det.open()
    cal = calibrate_detector(det, lines=64)
    raw = capture_lines(det.read, 2600)
    for ext in (".npy", ".h5", ".png"):
        path = save_strip(tmp_path / f"strip{ext}", raw)
        np.testing.assert_array_equal(load_strip(path), raw)
    replay = StripReplay(tmp_path / "strip.png", rate=20000, loop=False)
    replay.open()
    pipe = LineScanPipeline(replay, cal)
    products = pipe.run_for(0.4)
    assert pipe.stats.dropped == 0 and pipe.stats.lines == 2600
    truth = [(t.start, t.end) for t in belt.products(0, 2600) if t.end < 2590]
    found = [(p.start_line, p.end_line) for p in products]
    for a, b in truth:
        assert any(abs(f[0] - a) <= TOL and abs(f[1] - b) <= TOL for f in found), (truth, found)
    # the same recording as an image source, with the saved calibration
    src = make_source(f"xray:{tmp_path / 'strip.h5'}", calibration=str(cal.save(tmp_path / "cal.npz")),
                      rate=5000)
    src.open()
    try:
        cap = src.capture(timeout=5.0)
    finally:
        src.close()
    assert (cap.truth["start_line"], cap.truth["end_line"]) in found


def test_xray_source_gives_parts_with_truth():
    src = make_source("xray", rate=6000, seed=0)
    src.open()
    try:
        caps = [src.capture(timeout=5.0) for _ in range(2)]
        info = src.info()
    finally:
        src.close()
    assert info.kind == "line-scan" and info.details["dropped"] == 0 and len(info.details["dead_pixels"]) == 4
    for k, cap in enumerate(caps):
        img = cap.views[0]
        assert cap.index == k and img.dtype == np.uint16 and img.shape[1] == 640
        t = cap.truth
        assert t["verdict"] in ("OK", "NG")
        assert abs(t["scene_end"] - t["scene_start"] - len(img)) <= 2 * TOL
