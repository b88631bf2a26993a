"""Line-scan pipeline benchmark: prints ONE JSON line.

- sustained_lines_per_s: acquisition + dark/flat correction + assembly + splitting, fed by a
  free-running replay of recorded raw lines (the detector is not the bottleneck), vs 1250 required;
- at the real rate (1250 lines/s, the simulator over demo wool strips) for --seconds (10): lines,
  dropped lines, products cut vs ground truth, and the CPU share of the whole process.

Usage: .venv/bin/python bench/linescan.py [--seconds 10] [--sustain-seconds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.linescan import (
    DEFAULT_RATE,
    DetectorSimulator,
    LineScanPipeline,
    StripReplay,
    calibrate_detector,
)
from hardware.linescan.calibration import capture_lines
from hardware.linescan.scene import WoolBelt


def sustained(seconds: float) -> dict:
    belt = WoolBelt(seed=0)
    det = DetectorSimulator(belt, rate=None)
    det.open()
    cal = calibrate_detector(det, lines=256)
    raw = capture_lines(det.read, 12000)
    replay = StripReplay(raw, rate=None, loop=True)
    replay.open()
    pipe = LineScanPipeline(replay, cal, capacity=1 << 16)
    t0, c0 = time.perf_counter(), time.process_time()
    products = pipe.run_for(seconds)
    wall = time.perf_counter() - t0
    s = pipe.stats
    return {"sustained_lines_per_s": round(s.lines / wall), "sustained_x_required": round(s.lines / wall / DEFAULT_RATE, 1),
            "sustained_products": len(products), "sustained_dropped": s.dropped, "sustained_overrun": s.overrun,
            "processing_us_per_line": round(1e6 * s.busy_s / max(1, s.lines), 2),
            "sustained_cpu_share": round((time.process_time() - c0) / wall, 2)}


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
    ap.add_argument("--sustain-seconds", type=float, default=3.0)
    args = ap.parse_args()
    out = {"bench": "linescan", "required_lines_per_s": DEFAULT_RATE}
    out.update(sustained(args.sustain_seconds))
    out.update(realtime(args.seconds))
    out["ok"] = out["dropped_lines"] == 0 and out["sustained_lines_per_s"] >= DEFAULT_RATE
    print(json.dumps(out))


if __name__ == "__main__":
    main()
