"""Pruning benchmark on bsdata: FLOPs, params, CPU forward latency and TEST balanced accuracy of
a trained model before and after `okng prune` (3 rounds x 30 % L1 by default). ONE JSON line.

Parts are 224 px tiles of bsdata's ball-screw photos (bench/train.py's tiles: NG centred on
pitting, OK from OK images). The project holds tiles of bsdata's "train" NG images (and 80 % of
its OK images, which have no split); the test set is a second project of tiles of its "test" NG
images and the other 20 % of OK images, never seen by training, fine-tuning or
model selection (each model's threshold is its own, picked on the validation split).
Latency: the parent and the pruned model timed alternately in this one process (paired runs,
batch of 4 views = live sort's four cameras), because the machine is shared.

Targets (issue 15): pruned >= 2x fewer FLOPs, >= 1.5x faster CPU forward, <= 1 point lower test
balanced accuracy than its parent.

    nice -n 15 .venv/bin/python bench/prune.py [--arch resnet18] [--parts 300] [--test-parts 200]
        [--epochs 8] [--rounds 3] [--rate 0.3] [--ft-epochs 2] [--method l1] [--threads 2]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from _common import add_tiles

BSDATA = ROOT.parent / "shared" / "data" / "bsdata"


def tiles(path: Path, n_parts: int, split: str, seed: int) -> Path:
    """bench/train.py's tile project, from the images of one bsdata split only."""

    from labeling.store import Project
    from labeling.types import Settings
    with open(BSDATA / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(seed)
    ng = [r for r in rows if r["label"] == "NG" and r["split"] == split]
    # OK images have no split in bsdata: a fixed 80/20 cut of them, disjoint between the two
    ok_all = sorted((r for r in rows if r["label"] == "OK"), key=lambda r: r["image"])
    cut = np.random.default_rng(12345).permutation(len(ok_all))
    n_train = int(0.8 * len(ok_all))
    ok = [ok_all[int(i)] for i in (cut[:n_train] if split == "train" else cut[n_train:])]
    rng.shuffle(ng)
    rng.shuffle(ok)
    proj = Project.create(path, Settings(name=f"bsdata-{split}-tiles", cameras=["cam0"]))
    half = n_parts // 2
    order = [("NG", r) for r in (ng * 4)[:half]] + [("OK", r) for r in (ok * 4)[:n_parts - half]]
    rng.shuffle(order)
    add_tiles(proj, BSDATA, order, rng)
    return path


def test_balanced_accuracy(project_path: Path, model_id: str, test_path: Path) -> float:
    from labeling.store import Project
    from labeling.types import Verdict
    from training.inference import load_model
    from training.metrics import binary_report
    m = load_model(project_path, model_id, "cpu")
    test = Project.open(test_path, readonly=True)
    y, s = [], []
    for p in test.parts():
        views = test.read_views(p.id)
        s.append(max(m.ng_scores(m.prepare_batch(views, ["cam0"] * len(views))[0])))
        y.append(int(p.verdict == Verdict.NG))
    return float(binary_report(np.array(y), np.array(s), m.threshold, ["OK", "NG"])["balanced_accuracy"])


def paired_latency(a, b, size: int, reps: int) -> tuple[float, float]:
    import torch
    x = torch.zeros((4, 3, size, size))
    ta, tb = [], []
    with torch.inference_mode():
        a(x)
        b(x)
        for _ in range(reps):
            for net, out in ((a, ta), (b, tb)):
                t0 = time.perf_counter()
                net(x)
                out.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ta)), float(np.median(tb))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--parts", type=int, default=300)
    ap.add_argument("--test-parts", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=0.3)
    ap.add_argument("--ft-epochs", type=int, default=2)
    ap.add_argument("--method", default="l1", choices=("l1", "asfp"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()

    import torch

    from training.config import TrainConfig
    from training.inference import load_model
    from training.loop import train
    from training.prune import PruneSpec, prune
    from training.pruning import count
    from training.weights import find_pretrained
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        path, test_path = Path(tmp) / "train.okng", Path(tmp) / "test.okng"
        tiles(path, args.parts, "train", 0)
        tiles(test_path, args.test_parts, "test", 1)
        pretrained = find_pretrained(args.arch)[0] is not None
        t0 = time.monotonic()
        res = train(path, TrainConfig(arch=args.arch, freeze="none" if pretrained else "scratch",
                                      epochs=args.epochs, num_threads=args.threads))
        train_s = time.monotonic() - t0
        t0 = time.monotonic()
        out = prune(PruneSpec(str(path), res.model_id, args.rounds, args.rate, method=args.method,
                              fine_tune_epochs=args.ft_epochs, num_threads=args.threads))
        prune_s = time.monotonic() - t0
        ids = [res.model_id, *out.model_ids]
        rows = []
        parent = load_model(path, res.model_id, "cpu")
        size = parent.input_size[0]
        for mid in ids:
            m = load_model(path, mid, "cpu")
            macs, params = count(m.model, m.input_size)
            lat_parent, lat = paired_latency(parent.model, m.model, size, args.reps)
            rows.append({"id": mid, "flops": macs, "params": params, "latency_ms": round(lat, 2),
                         "parent_latency_ms_same_run": round(lat_parent, 2),
                         "val_balanced_accuracy": round(float(m.card.val.get("balanced_accuracy")), 4),
                         "test_balanced_accuracy": round(test_balanced_accuracy(path, mid, test_path), 4)})
    first, last = rows[0], rows[-1]
    flops_x = first["flops"] / last["flops"]
    speed_x = last["parent_latency_ms_same_run"] / last["latency_ms"]
    drop = (first["test_balanced_accuracy"] - last["test_balanced_accuracy"]) * 100
    print(json.dumps({
        "bench": "prune", "arch": args.arch, "method": args.method, "rounds": args.rounds, "rate": args.rate,
        "fine_tune_epochs": args.ft_epochs, "train_epochs": args.epochs, "pretrained": pretrained,
        "parts": args.parts, "test_parts": args.test_parts, "threads": args.threads,
        "train_s": round(train_s, 1), "prune_s": round(prune_s, 1), "lineage": rows,
        "flops_x": round(flops_x, 2), "params_x": round(first["params"] / last["params"], 2),
        "forward_speedup_x": round(speed_x, 2), "test_bal_acc_drop_points": round(drop, 2),
        "targets": {"flops_ge_2x": flops_x >= 2, "forward_ge_1.5x": speed_x >= 1.5, "drop_le_1pt": drop <= 1.0},
        "loadavg_start": [round(v, 2) for v in load0], "loadavg_end": [round(v, 2) for v in os.getloadavg()],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
