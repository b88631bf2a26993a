"""Training benchmark on bsdata (real ball-screw pitting photos): prints ONE JSON line.

1. okng's default training vs a plain hand-written torchvision loop, same tiles, same input size,
   same split, same wall-clock budget: time for okng to reach the plain loop's final validation
   balanced accuracy, and the ratio to the plain loop's own time to it (target <= 0.5).
2. Default `okng train` (TrainConfig()) wall time on a 600-part project (target <= 600 s).

Defects are tiny (median 0.28 % of a frame), so parts are 224 px tiles cut at native resolution:
an NG tile is centred on a pitting region of an NG image, an OK tile is cut from an OK image.

    .venv/bin/python bench/train.py [--parts 300] [--budget 240] [--big-parts 600] [--skip-big] [--plain-only]
    .venv/bin/python bench/train.py --task classes --data neu_det|bolts --budget 180   (bench/train_classes.py)
    nice -n 15 .venv/bin/python bench/train.py --real kolektorsdd --budget 600   (issue 11: see train_real.py)
    nice -n 19 .venv/bin/python bench/train.py --nproc 2 [--parts 160] [--ddp-epochs 4]   (issue 16: train_ddp.py)

Both sides start from the same weights: ImageNet when a local file exists (training.weights),
random init otherwise (this machine has none; the JSON says which).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from _common import TILE, add_tiles

BSDATA = ROOT.parent / "shared" / "data" / "bsdata"


def build_tile_project(path: Path, n_parts: int, seed: int = 0) -> Path:
    """A project of n_parts 224 px tiles (half NG centred on pitting, half OK) from bsdata."""
    from labeling.store import Project
    from labeling.types import Settings
    with open(BSDATA / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(seed)
    ng = [r for r in rows if r["label"] == "NG"]
    ok = [r for r in rows if r["label"] == "OK"]
    rng.shuffle(ng)
    rng.shuffle(ok)
    if path.exists():
        path.unlink()
    proj = Project.create(path, Settings(name="bsdata-tiles", cameras=["cam0"]))
    half = n_parts // 2
    order = [("NG", r) for r in ng[:half]] + [("OK", r) for r in (ok * 4)[:n_parts - half]]
    rng.shuffle(order)
    add_tiles(proj, BSDATA, order, rng)
    return path


PLAIN_LR = 1e-3  # Adam, as okng's default (TrainConfig().lr); within the usual 1e-4..1e-3
PLAIN_BATCH = 32
TRAINABLE = ("layer4", "fc")  # last-block: stem + layers 1-3 frozen, layer4 + head trained


def plain_loop(path: Path, budget_s: float, seed: int = 0) -> dict:
    """What a competent user would write from the torchvision references, no okng tricks.

    resnet18, last-block freeze (same policy as okng's default), Adam, balanced class weights,
    per-sample horizontal flips (okng's default augmentation), every batch through the whole
    network (no feature caching), constant lr. The frozen layers' BatchNorm stays in eval mode:
    left in train mode (the first version of this loop) it normalised with batch statistics in
    training while its running averages, starting at 0/1 and moved 10 % a step over only 8 steps
    an epoch, were far from them at validation, so model.eval() predicted OK for every tile and
    balanced accuracy stayed at 0.50 although the training loss fell.
    """
    import torch
    import torchvision

    from labeling.store import Project
    from labeling.types import Verdict
    from training.snapshot import stratified_split
    from training.weights import find_pretrained
    t0 = time.monotonic()
    torch.manual_seed(seed)
    proj = Project.open(path, readonly=True)
    parts = [p for p in proj.parts() if p.verdict in (Verdict.OK, Verdict.NG) and p.views]
    x = np.stack([proj.read_image(p.id, 0) for p in parts])
    y = np.array([int(p.verdict == Verdict.NG) for p in parts])
    tr, va = stratified_split(y, 0.2, seed)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def tensors(idx: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x[idx]).permute(0, 3, 1, 2).float() / 255
        return (t - mean) / std

    model = torchvision.models.resnet18(num_classes=2)
    state, _ = find_pretrained("resnet18")  # the same local ImageNet file okng would use, if any
    if state is not None:
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False)
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(TRAINABLE)
    frozen = [m for n, m in model.named_modules()
              if isinstance(m, torch.nn.BatchNorm2d) and not n.startswith(TRAINABLE)]
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=PLAIN_LR, weight_decay=1e-4)
    counts = np.bincount(y[tr], minlength=2)
    crit = torch.nn.CrossEntropyLoss(weight=torch.tensor(len(tr) / (2 * np.maximum(counts, 1)), dtype=torch.float32))
    rng = np.random.default_rng(seed)
    curve, losses = [], []
    while time.monotonic() - t0 < budget_s:
        model.train()
        for m in frozen:
            m.eval()
        perm = tr[rng.permutation(len(tr))]
        total = 0.0
        for i in range(0, len(perm), PLAIN_BATCH):
            b = perm[i:i + PLAIN_BATCH]
            xb = tensors(b)
            flip = torch.from_numpy(rng.random(len(b)) < 0.5).view(-1, 1, 1, 1)
            xb = torch.where(flip, xb.flip(3), xb)
            loss = crit(model(xb), torch.from_numpy(y[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(b)
        losses.append(total / len(perm))
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(tensors(va[i:i + 64])).argmax(1) for i in range(0, len(va), 64)]).numpy()
        rec = [float(np.mean(pred[y[va] == c] == c)) for c in (0, 1)]
        curve.append((time.monotonic() - t0, float(np.mean(rec))))
        _note({"plain_epoch": len(curve), "t": round(curve[-1][0], 1), "loss": round(losses[-1], 4),
               "val_balanced_accuracy": round(curve[-1][1], 4), "val_predicted_ng": int(pred.sum())})
    final = curve[-1][1]
    reach = next(t for t, a in curve if a >= final)
    return {"final_balanced_accuracy": final, "time_to_final_s": round(reach, 1),
            "best_balanced_accuracy": max(a for _, a in curve), "epochs": len(curve),
            "total_s": round(time.monotonic() - t0, 1), "pretrained": state is not None,
            "seconds_per_epoch": _epoch_seconds(curve), "train_loss": [round(v, 4) for v in losses],
            "val_part_ids": sorted(int(parts[int(i)].id) for i in va),
            "settings": {"lr": PLAIN_LR, "optimizer": "adam", "weight_decay": 1e-4, "batch": PLAIN_BATCH,
                         "augment": "hflip 0.5 per sample", "schedule": "none", "class_weights": "balanced",
                         "frozen_bn": "eval", "trainable": list(TRAINABLE), "feature_cache": False, "seed": seed},
            "curve": [[round(t, 1), round(a, 4)] for t, a in curve]}


def okng_run(path: Path, budget_s: float, target: float | None) -> dict:
    """okng's default training (TrainConfig()), stopped at the same wall-clock budget."""
    from training.config import TrainConfig
    from training.loop import train
    t0 = time.monotonic()
    curve = []

    def progress(p) -> None:
        if p.stage == "eval":  # payload: training.card.EpochMetrics
            e = p.payload
            curve.append((time.monotonic() - t0, float(e.val_balanced_accuracy)))
            _note({"okng_epoch": e.epoch, "t": round(curve[-1][0], 1), "loss": round(e.loss, 4),
                   "val_balanced_accuracy": round(curve[-1][1], 4)})

    cfg = TrainConfig(budget_s=budget_s)  # the default, given the same minutes (`okng train --budget`)
    res = train(path, cfg, progress, lambda: time.monotonic() - t0 > budget_s + 120)
    reach = next((t for t, a in curve if target is not None and a >= target), None)
    out = {"time_to_plain_final_s": None if reach is None else round(reach, 1),
           "final_balanced_accuracy": curve[-1][1] if curve else None,
           "best_balanced_accuracy": max((a for _, a in curve), default=None),
           "epochs": len(curve), "total_s": round(time.monotonic() - t0, 1),
           "seconds_per_epoch": _epoch_seconds(curve), "cancelled_at_budget": res.cancelled,
           "pretrained": res.pretrained,
           "settings": {k: cfg.to_dict()[k] for k in ("arch", "freeze", "epochs", "batch_size", "frozen_batch_size",
                                                       "lr", "optimizer", "weight_decay", "schedule", "class_weights",
                                                       "patience", "seed", "cache_features", "augment")},
           "curve": [[round(t, 1), round(a, 4)] for t, a in curve]}
    if not res.cancelled:
        out["stored_model_val_balanced_accuracy"] = res.metrics["val"]["balanced_accuracy"]
        out["val_part_ids"] = sorted(int(i) for i in res.metrics["split"]["val_part_ids"])
    return out


def default_train_time(path: Path, limit_s: float) -> dict:
    """Default TrainConfig() on the big project; stopped (and said so) after limit_s."""
    from training.config import TrainConfig
    from training.loop import train
    t0 = time.monotonic()
    epochs = []

    def progress(p) -> None:
        if p.stage == "eval":
            epochs.append(round(time.monotonic() - t0, 1))
            _note({"default_train_epoch_done_s": epochs[-1], "epoch": p.payload.epoch})

    res = train(path, TrainConfig(), progress, lambda: time.monotonic() - t0 > limit_s)
    out = {"seconds": round(time.monotonic() - t0, 1), "finished": not res.cancelled, "epoch_times_s": epochs}
    if not res.cancelled:
        out.update(model_id=res.model_id, epochs=len(res.history),
                   val_balanced_accuracy=res.metrics["val"]["balanced_accuracy"],
                   val_roc_auc=res.metrics["val"]["roc_auc"])
    return out


def _epoch_seconds(curve: list) -> dict:
    """First epoch (also pays for reading the data, and okng's feature cache) and the steady-state
    median of the gaps between later evaluations."""
    t = [0.0] + [c[0] for c in curve]
    d = np.diff(t)
    return {"first": round(float(d[0]), 1) if len(d) else None,
            "steady_median": round(float(np.median(d[1:])), 1) if len(d) > 1 else None}


def _note(obj: dict) -> None:
    """Partial results on stderr, so a run cut short still says something."""
    print(json.dumps(obj), file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parts", type=int, default=300)
    ap.add_argument("--budget", type=float, default=240.0)
    ap.add_argument("--big-parts", type=int, default=600)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--plain-only", action="store_true", help="only the plain loop (check that it learns)")
    ap.add_argument("--big-limit", type=float, default=1500.0, help="stop the 600-part run after this")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/okng-bench-train"))
    ap.add_argument("--task", choices=("verdict", "classes"), default="verdict",
                    help="classes: a class model on neu_det or the bolt demo (bench/train_classes.py)")
    ap.add_argument("--data", choices=("neu_det", "bolts"), default="neu_det", help="--task classes: data set")
    ap.add_argument("--per-class", type=int, default=100, help="--task classes on neu_det: images per class")
    ap.add_argument("--box-masks", action="store_true",
                    help="--task classes on neu_det: each part's annotated boxes as its defect mask (mask guide A/B)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--real", default=None, help="bsdata or kolektorsdd: okng's default `okng train --budget` "
                    "vs a plain loop, same minutes, test split by group (bench/train_real.py)")
    ap.add_argument("--arm", default="both", choices=("both", "okng", "plain"))
    ap.add_argument("--okng-config", type=json.loads, default=None, metavar="JSON",
                    help="--arm okng: TrainConfig values over okng's defaults, e.g. '{\"mask_weight\": 0}' (A/B runs)")
    ap.add_argument("--seeds", default="0", help="--real: comma list; each seed draws a new group split and "
                    "both arms' initialisation, run one after the other (mean, spread and wins in one record)")
    ap.add_argument("--nproc", type=int, default=1,
                    help="N > 1: `okng train` alone vs `okng train --nproc N` (bench/train_ddp.py)")
    ap.add_argument("--ddp-epochs", type=int, default=4, help="--nproc: epochs of both runs")
    args = ap.parse_args()
    if args.nproc > 1:
        from train_ddp import run as run_ddp
        if args.parts == 300:
            args.parts = 160  # a short budget: both runs together take minutes on 2 cores
        print(json.dumps(run_ddp(args)), flush=True)
        return
    if args.task == "classes" or args.real:
        if args.task == "classes":
            from bench.train_classes import run
            if args.parts == 300:
                args.parts = 160  # the bolt demo's default size here
            out = run(args)
            out["load_1min"] = os.getloadavg()[0]
        else:
            from train_real import run_arm, run_seeds
            seeds = [int(t) for t in args.seeds.split(",") if t.strip()]
            out = (run_seeds(args.real, args.budget, seeds) if args.arm == "both"
                   else run_arm(args.real, args.arm, args.budget, seeds[0], args.okng_config))
        print(json.dumps(out), flush=True)
        return
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    args.workdir.mkdir(parents=True, exist_ok=True)
    out: dict = {"bench": "train", "dataset": "bsdata 224px native-resolution tiles", "threads": torch.get_num_threads(),
                 "arch": "resnet18", "freeze": "last-block", "input": TILE,
                 "settings": {"parts": args.parts, "budget_s": args.budget, "val_fraction": 0.2, "seed": 0,
                              "skip_big": args.skip_big, "plain_only": args.plain_only}}
    small = build_tile_project(args.workdir / "tiles.okng", args.parts)
    out["parts"] = args.parts
    plain = plain_loop(small, args.budget)
    plain_val = plain.pop("val_part_ids")
    out["plain"] = plain
    _note({"plain": plain})
    if not args.plain_only:
        ok = okng_run(small, args.budget, plain["final_balanced_accuracy"])
        ok_val = ok.pop("val_part_ids", None)
        out["okng"] = ok
        out["same_val_parts"] = None if ok_val is None else ok_val == plain_val
        t_ok = ok["time_to_plain_final_s"]
        out["plain_final_balanced_accuracy"] = plain["final_balanced_accuracy"]
        out["plain_time_to_final_s"] = plain["time_to_final_s"]
        out["okng_time_to_plain_final_s"] = t_ok
        out["ratio"] = None if t_ok is None else round(t_ok / plain["time_to_final_s"], 3)
        out["ratio_target"] = 0.5
        a, b = ok["seconds_per_epoch"]["steady_median"], plain["seconds_per_epoch"]["steady_median"]
        out["epoch_time_ratio"] = None if a is None or b is None else round(a / b, 3)
        _note({"okng": ok, "ratio": out["ratio"]})
    if not args.skip_big and not args.plain_only:
        big = build_tile_project(args.workdir / "big.okng", args.big_parts, seed=1)
        out["default_train_600"] = dict(default_train_time(big, args.big_limit), parts=args.big_parts, target_s=600)
    out["load_1min"] = os.getloadavg()[0]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
