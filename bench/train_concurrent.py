"""Two `okng train` runs at once on one machine (training.core_share): prints ONE JSON line.

Each run is the CLI as a user starts it (`okng train COPY --task classes --epochs 2`, no thread
count), on its own copy of a neu_det class project (the runs write nothing to each other's
file). First one run alone, then two started together. Without the fair share each process
started as many OpenMP threads as there are cores and the two waited on each other's threads.

    .venv/bin/python bench/train_concurrent.py [--per-class 80] [--epochs 2]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def start(project: Path, epochs: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "app.cli", "train", str(project), "--task", "classes", "--epochs", str(epochs),
           "--json"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def finish(proc: subprocess.Popen, t0: float) -> dict:
    out = json.loads(proc.communicate()[0].strip().splitlines()[-1])
    hist = out.get("history") or []
    return {"wall_s": round(time.monotonic() - t0, 1), "train_s": round(float(out.get("seconds", 0)), 1),
            "epoch_s": [round(float(h.get("seconds", 0)), 1) for h in hist]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=80)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/okng-bench-concurrent"))
    args = ap.parse_args()
    from bench.train_classes import prepare
    trainval, _, info = prepare(types.SimpleNamespace(workdir=args.workdir, data="neu_det", per_class=args.per_class,
                                                      box_masks=False, parts=0))
    copies = [args.workdir / f"run{i}.okng" for i in range(2)]
    for c in copies:
        shutil.copy(trainval, c)
    t0 = time.monotonic()
    alone = finish(start(copies[0], args.epochs), t0)
    t0 = time.monotonic()
    procs = [start(c, args.epochs) for c in copies]
    both = [finish(p, t0) for p in procs]
    print(json.dumps({"bench": "train_concurrent", "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(), "parts": info["train_val_parts"],
                      "epochs": args.epochs, "alone": alone, "two_at_once": both,
                      "slowdown_each": round(max(b["train_s"] for b in both) / max(alone["train_s"], 1e-9), 2),
                      "two_at_once_vs_one_after_the_other": round(max(b["wall_s"] for b in both)
                                                                  / max(2 * alone["wall_s"], 1e-9), 2),
                      "load_1min": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
