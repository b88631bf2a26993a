"""1 vs N processes (issue 16): `okng train` alone and `okng train --nproc N`, same data, seed,
epochs and global batch, on bsdata tiles (bench/train.py's project). One JSON line: wall time of
each command (process start, torch import and rendezvous included: what a user waits for), the
seconds the run itself reports, epochs, and the held-out test figures of each stored model.

    nice -n 19 .venv/bin/python bench/train.py --nproc 2 [--parts 160] [--epochs 4]

On a 2-core CPU expect little speedup (two ranks of one thread each replace one run of two
threads, plus an all_reduce per step); the point is that the result is as good. Both runs use
the default recipe (no ImageNet file here: from scratch, every layer, BatchNorm per rank).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_okng(project: Path, epochs: int, nproc: int, seed: int = 0) -> dict:
    cmd = [sys.executable, "-m", "app.cli", "train", str(project), "--epochs", str(epochs), "--seed", str(seed),
           "--json"] + (["--nproc", str(nproc)] if nproc > 1 else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    proc = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        return {"nproc": nproc, "error": proc.stderr[-2000:], "wall_s": round(wall, 1)}
    out = json.loads(proc.stdout)
    test, val = out["metrics"].get("test", {}), out["metrics"]["val"]
    epoch_s = [h["seconds"] for h in out["history"]]
    return {"nproc": nproc, "wall_s": round(wall, 1), "run_s": out["seconds"], "world_size": out["world_size"],
            "global_batch": out["global_batch"], "epochs": len(epoch_s),
            "epoch_s_median": round(sorted(epoch_s)[len(epoch_s) // 2], 1) if epoch_s else None,
            "test_balanced_accuracy": test.get("balanced_accuracy"), "test_roc_auc": test.get("roc_auc"),
            "val_balanced_accuracy": val.get("balanced_accuracy"), "model_id": out["model_id"]}


def run(args) -> dict:
    from bench.train import build_tile_project
    args.workdir.mkdir(parents=True, exist_ok=True)
    project = build_tile_project(args.workdir / "ddp.okng", args.parts)
    out: dict = {"bench": "train_ddp", "dataset": "bsdata 224px tiles (bench/train.py)", "parts": args.parts,
                 "epochs": args.ddp_epochs, "cpus": os.cpu_count(), "load_1min_before": os.getloadavg()[0]}
    out["one"] = run_okng(project, args.ddp_epochs, 1)
    out["load_1min_between"] = os.getloadavg()[0]
    out["many"] = run_okng(project, args.ddp_epochs, args.nproc)
    out["load_1min_after"] = os.getloadavg()[0]
    one, many = out["one"], out["many"]
    if "error" not in one and "error" not in many:
        out["speedup_wall"] = round(one["wall_s"] / many["wall_s"], 2)
        out["speedup_epoch"] = round(one["epoch_s_median"] / many["epoch_s_median"], 2)
        a, b = one["test_balanced_accuracy"], many["test_balanced_accuracy"]
        out["test_balanced_accuracy_diff"] = None if a is None or b is None else round(b - a, 4)
    return out
