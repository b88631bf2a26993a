"""Training benchmark on bsdata (real ball-screw pitting photos): prints ONE JSON line.

1. okng's default training vs a plain hand-written torchvision loop, same tiles, same input size,
   same split, same wall-clock budget: time for okng to reach the plain loop's final validation
   balanced accuracy, and the ratio to the plain loop's own time to it (target <= 0.5).
2. Default `okng train` (TrainConfig()) wall time on a 600-part project (target <= 600 s).

Defects are tiny (median 0.28 % of a frame), so parts are 224 px tiles cut at native resolution:
an NG tile is centred on a pitting region of an NG image, an OK tile is cut from an OK image.

    .venv/bin/python bench/train.py [--parts 300] [--budget 240] [--big-parts 600] [--skip-big]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BSDATA = ROOT.parent / "shared" / "data" / "bsdata"
TILE = 224


def build_tile_project(path: Path, n_parts: int, seed: int = 0) -> Path:
    """A project of n_parts 224 px tiles (half NG centred on pitting, half OK) from bsdata."""
    from labeling.store import Project
    from labeling.types import Label, PartSource, Settings, Verdict
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
    for verdict, r in order:
        img = cv2.cvtColor(cv2.imread(str(BSDATA / r["image"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        if verdict == "NG":
            m = cv2.imread(str(BSDATA / r["mask"]), cv2.IMREAD_GRAYSCALE)
            ys, xs = np.nonzero(m)
            k = int(rng.integers(0, len(ys)))
            cy, cx = int(ys[k]), int(xs[k])
        else:
            cy, cx = int(rng.integers(TILE // 2, h - TILE // 2)), int(rng.integers(TILE // 2, w - TILE // 2))
        y0 = int(np.clip(cy - TILE // 2, 0, h - TILE))
        x0 = int(np.clip(cx - TILE // 2, 0, w - TILE))
        tile = np.ascontiguousarray(img[y0:y0 + TILE, x0:x0 + TILE])
        proj.add_part([tile], cameras=["cam0"], name=Path(r["image"]).stem, source=PartSource.IMPORT,
                      label=Label(Verdict.parse(verdict)))
    return path


def plain_loop(path: Path, budget_s: float, seed: int = 0) -> dict:
    """What a user would write by hand: torchvision resnet18, layers 1-3 frozen, Adam, flips."""
    import torch
    import torchvision

    from labeling.store import Project
    from labeling.types import Verdict
    from training.snapshot import stratified_split
    t0 = time.monotonic()
    torch.manual_seed(seed)
    proj = Project.open(path, readonly=True)
    parts = [p for p in proj.parts() if p.verdict in (Verdict.OK, Verdict.NG)]
    x = np.stack([proj.read_image(p.id, 0) for p in parts])
    y = np.array([int(p.verdict == Verdict.NG) for p in parts])
    tr, va = stratified_split(y, 0.2, 0)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def tensors(idx: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x[idx]).permute(0, 3, 1, 2).float() / 255
        return (t - mean) / std

    model = torchvision.models.resnet18(num_classes=2)
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(("layer4", "fc"))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=1e-4)
    counts = np.bincount(y[tr])
    crit = torch.nn.CrossEntropyLoss(weight=torch.tensor(len(tr) / (2 * counts), dtype=torch.float32))
    rng = np.random.default_rng(seed)
    curve = []
    while time.monotonic() - t0 < budget_s:
        model.train()
        perm = tr[rng.permutation(len(tr))]
        for i in range(0, len(perm), 32):
            b = perm[i:i + 32]
            xb = tensors(b)
            if rng.random() < 0.5:
                xb = xb.flip(3)
            if rng.random() < 0.5:
                xb = xb.flip(2)
            loss = crit(model(xb), torch.from_numpy(y[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(tensors(va[i:i + 64])).argmax(1) for i in range(0, len(va), 64)]).numpy()
        rec = [float(np.mean(pred[y[va] == c] == c)) for c in (0, 1)]
        curve.append((time.monotonic() - t0, float(np.mean(rec))))
    final = curve[-1][1]
    reach = next(t for t, a in curve if a >= final)
    return {"final_balanced_accuracy": final, "time_to_final_s": reach, "epochs": len(curve),
            "total_s": time.monotonic() - t0, "curve": [[round(t, 1), round(a, 4)] for t, a in curve]}


def okng_run(path: Path, budget_s: float, target: float | None) -> dict:
    """okng's default training (TrainConfig()), stopped at the same wall-clock budget."""
    from training.config import TrainConfig
    from training.loop import train
    t0 = time.monotonic()
    curve = []

    def progress(p) -> None:
        if p.phase == "eval" and p.metrics:
            curve.append((time.monotonic() - t0, float(p.metrics["val_balanced_accuracy"])))

    res = train(path, TrainConfig(), progress, lambda: time.monotonic() - t0 > budget_s)
    reach = next((t for t, a in curve if target is not None and a >= target), None)
    return {"time_to_plain_final_s": reach, "best_balanced_accuracy": max((a for _, a in curve), default=None),
            "epochs": len(curve), "curve": [[round(t, 1), round(a, 4)] for t, a in curve],
            "cancelled_at_budget": res.cancelled}


def default_train_time(path: Path, limit_s: float) -> dict:
    """Default TrainConfig() on the big project; stopped (and said so) after limit_s."""
    from training.config import TrainConfig
    from training.loop import train
    t0 = time.monotonic()
    epochs = []

    def progress(p) -> None:
        if p.phase == "eval":
            epochs.append(round(time.monotonic() - t0, 1))
            _note({"default_train_epoch_done_s": epochs[-1], "epoch": p.epoch})

    res = train(path, TrainConfig(), progress, lambda: time.monotonic() - t0 > limit_s)
    out = {"seconds": round(time.monotonic() - t0, 1), "finished": not res.cancelled, "epoch_times_s": epochs}
    if not res.cancelled:
        out.update(model_id=res.model_id, epochs=len(res.history),
                   val_balanced_accuracy=res.metrics["val"]["balanced_accuracy"],
                   val_roc_auc=res.metrics["val"]["roc_auc"])
    return out


def _epoch_ratio(ok_curve: list, plain_curve: list) -> float | None:
    """Steady-state seconds per epoch, okng / plain (medians of the gaps between evaluations)."""
    def gap(c: list) -> float | None:
        t = [0.0] + [p[0] for p in c]
        d = np.diff(t)[1:]  # the first epoch also pays for reading the data
        return float(np.median(d)) if len(d) else None
    a, b = gap(ok_curve), gap(plain_curve)
    return None if a is None or b is None else round(a / b, 3)


def _note(obj: dict) -> None:
    """Partial results on stderr, so a run cut short still says something."""
    print(json.dumps(obj), file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parts", type=int, default=300)
    ap.add_argument("--budget", type=float, default=240.0)
    ap.add_argument("--big-parts", type=int, default=600)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--big-limit", type=float, default=1500.0, help="stop the 600-part run after this")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/okng-bench-train"))
    args = ap.parse_args()
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    args.workdir.mkdir(parents=True, exist_ok=True)
    out: dict = {"bench": "train", "dataset": "bsdata 224px native-resolution tiles", "threads": torch.get_num_threads(),
                 "arch": "resnet18", "freeze": "last-block", "input": TILE}
    small = build_tile_project(args.workdir / "tiles.okng", args.parts)
    out["parts"] = args.parts
    plain = plain_loop(small, args.budget)
    out["plain"] = plain
    _note({"plain": plain})
    ok = okng_run(small, args.budget, plain["final_balanced_accuracy"])
    out["okng"] = ok
    t_ok = ok["time_to_plain_final_s"]
    out["ratio"] = None if t_ok is None else round(t_ok / plain["time_to_final_s"], 3)
    out["ratio_target"] = 0.5
    out["epoch_time_ratio"] = _epoch_ratio(ok["curve"], plain["curve"])
    _note({"okng": ok, "ratio": out["ratio"]})
    if not args.skip_big:
        big = build_tile_project(args.workdir / "big.okng", args.big_parts, seed=1)
        out["default_train_600"] = dict(default_train_time(big, args.big_limit), parts=args.big_parts, target_s=600)
    out["load_1min"] = os.getloadavg()[0]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
