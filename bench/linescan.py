"""Line-scan pipeline benchmark: prints ONE JSON line.

- processing_lines_per_s: correction + assembly + splitting alone, on recorded raw lines;
- sustained_lines_per_s: the highest detector rate (1250, 2500, 5000, ...) that the threaded
  pipeline (acquisition + correction + assembly + splitting) follows with no dropped line, fed
  by a replay of recorded raw lines so the simulator's noise generator is not what is measured;
- at the real rate (1250 lines/s, the simulator over demo wool strips) for --seconds (10): lines,
  dropped lines, products cut vs ground truth, and the CPU share of the whole process.

Usage: .venv/bin/python bench/linescan.py [--seconds 10] [--sustain-seconds 1.5]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from hardware.linescan import (
    DEFAULT_RATE,
    DetectorSimulator,
    LineScanPipeline,
    ProductSplitter,
    StripAssembler,
    StripReplay,
    calibrate_detector,
)
from hardware.linescan.calibration import capture_lines
from hardware.linescan.scene import WoolBelt


def _recorded(lines: int = 12000):
    det = DetectorSimulator(WoolBelt(seed=0), rate=None)
    det.open()
    cal = calibrate_detector(det, lines=256)
    return cal, capture_lines(det.read, lines)


def processing_only(cal, raw) -> dict:
    """Correction + assembly + splitting alone, one thread, on lines already in memory."""
    asm, sp = StripAssembler(cal), ProductSplitter(level=cal.level)
    numbers = np.arange(len(raw))
    t0 = time.perf_counter()
    for i in range(0, len(raw), 64):  # blocks as the acquisition delivers them
        first, lines = asm.push(numbers[i:i + 64], raw[i:i + 64])
        sp.feed(first, lines)
    return {"processing_lines_per_s": round(len(raw) / (time.perf_counter() - t0))}


def sustained(cal, raw, step_s: float) -> dict:
    """Highest detector rate (doubling from 1250) the full threaded pipeline follows for `step_s`
    seconds with no dropped line, no ring overrun and no backlog."""
    best, tried = 0.0, []
    rate = DEFAULT_RATE
    while rate <= 160_000:
        replay = StripReplay(raw, rate=rate, loop=True)
        replay.open()
        pipe = LineScanPipeline(replay, cal, capacity=1 << 16)
        t0 = time.perf_counter()
        pipe.run_for(step_s)
        wall = time.perf_counter() - t0
        s = pipe.stats
        kept_up = s.dropped == 0 and s.overrun == 0 and s.lines >= 0.95 * rate * wall
        tried.append({"rate": rate, "lines": s.lines, "dropped": s.dropped, "kept_up": kept_up})
        if not kept_up:
            break
        best = rate
        rate *= 2
    return {"sustained_lines_per_s": best, "sustained_x_required": round(best / DEFAULT_RATE, 1),
            "sustained_ladder": tried}


def realtime(seconds: float) -> dict:
    belt = WoolBelt(seed=1)
    det = DetectorSimulator(belt, rate=DEFAULT_RATE, seed=1)
    det.open()
    cal = calibrate_detector(det, lines=256)
    pipe = LineScanPipeline(det, cal)
    t0, c0 = time.perf_counter(), time.process_time()
    products = pipe.run_for(seconds)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    s = pipe.stats
    last = det.scene_line(pipe.assembler.next_line)
    truth = [(t.start, t.end) for t in belt.products(0, last) if t.end + 16 < last]
    found = [(det.scene_line(p.start_line), det.scene_line(p.end_line)) for p in products]
    offsets = [min((max(abs(f[0] - a), abs(f[1] - b)) for f in found), default=10**9) for a, b in truth]
    return {"rate_lines_per_s": DEFAULT_RATE, "seconds": round(wall, 2), "lines": s.lines,
            "lines_expected": round(wall * DEFAULT_RATE), "dropped_lines": s.dropped, "overrun_lines": s.overrun,
            "products_truth": len(truth), "products_found": len(found),
            "max_boundary_error_lines": max(offsets) if offsets else None,
            "cpu_share_of_one_core": round(cpu / wall, 3), "cpu_share_of_machine": round(cpu / wall / (os.cpu_count() or 1), 3),
            "processing_thread_busy_share": round(s.busy_s / wall, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sustain-seconds", type=float, default=1.5, help="per rate step")
    args = ap.parse_args()
    out = {"bench": "linescan", "required_lines_per_s": DEFAULT_RATE}
    cal, raw = _recorded()
    out.update(processing_only(cal, raw))
    out.update(sustained(cal, raw, args.sustain_seconds))
    out.update(realtime(args.seconds))
    out["ok"] = out["dropped_lines"] == 0 and out["sustained_lines_per_s"] >= DEFAULT_RATE
    print(json.dumps(out))


if __name__ == "__main__":
    main()
