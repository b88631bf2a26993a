"""okng's segmentation training vs a plain segmentation-models-pytorch loop, equal wall-clock.

Per data set (bsdata: pitting on ball-screw photos; kolektorsdd: thin cracks on 500x1250 images,
split by `item`): a subset is written into a temporary project (masks resized to the image where
the set's differ by a few rows), parts are split into train / test (bsdata by its `split` column,
kolektorsdd by item; bsdata's OK rows have no split: a seeded 30 % of them), and both arms start from the SAME initial weights (one seeded network,
copied) and train for the same wall-clock budget:
- okng: training.segment.loop.fit (BCE + dice, AdamW with a cosine LR over the time budget,
  flips/turns of image and mask, best epoch by validation dice on 15 % of the training parts);
- plain: smp.Unet + smp.losses.DiceLoss, Adam 1e-3, no augmentation, last epoch.
Reported: pooled dice per class on the test parts (threshold 0.5, no area rule: the networks
are compared, not the post-processing), and time-to-equal-dice = the training seconds okng
needed to reach the plain loop's final test dice / the budget (null: not reached).
On a machine shared with other jobs, --clock cpu makes the budget the process's CPU seconds (equal
compute for both arms whatever the load). One JSON line.
Usage: .venv/bin/python bench/segment.py [--budget S] [--clock wall|cpu] [--sets a,b]
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from labeling.store import Project
from labeling.types import DefectClass, Label, Settings, Verdict
from training.segment import models
from training.segment.config import SegConfig
from training.segment.data import load_seg_snapshot, make_batch
from training.segment.loop import batches, fit, predict_probs
from training.segment.metrics import SegScores
from training.segment.postprocess import learn_rules
from training.snapshot import stratified_split

DATA = ROOT.parent.parent / "shared" / "data"
# name -> (input (h, w), NG parts, OK parts, group column, test rule, defect class). Inputs keep
# the views' aspect (bsdata 1130x460, kolektorsdd 500x~1260) at about a quarter of their side:
# the pits and cracks stay a few pixels wide (MASK_COVERAGE keeps thin ones in the target).
SETS = {
    "bsdata": ((128, 320), 56, 24, "split", "split", "pitting"),
    "kolektorsdd": ((320, 128), 52, 40, "item", None, "crack"),
}


def build_project(data: Path, name: str, path: Path, n_ng: int, n_ok: int, defect: str, seed: int = 0) -> tuple[Path, dict[int, str]]:
    with open(data / name / "labels.csv", newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(seed)
    ng = [r for r in rows if r["label"] == "NG" and r["mask"]]
    ok = [r for r in rows if r["label"] == "OK"]
    if any(r.get("split") for r in ng):  # the set's own test split: keep its share among the NG parts picked
        test = [r for r in ng if r["split"] == "test"]
        train = [r for r in ng if r["split"] != "test"]
        n_test = min(len(test), round(n_ng * 0.3))
        ng = [test[i] for i in rng.permutation(len(test))[:n_test]] + \
             [train[i] for i in rng.permutation(len(train))[:n_ng - n_test]]
    else:
        ng = [ng[i] for i in rng.permutation(len(ng))[:n_ng]]
    pick = ng + [ok[i] for i in rng.permutation(len(ok))[:n_ok]]
    proj = Project.create(path, Settings(name=name, cameras=["cam0"], classes=[DefectClass(defect)]))
    rows_of: dict[int, dict] = {}
    for r in pick:
        img = cv2.imread(str(data / name / r["image"]), cv2.IMREAD_GRAYSCALE)
        mask = None
        if r["mask"]:
            m = cv2.imread(str(data / name / r["mask"]), cv2.IMREAD_GRAYSCALE)
            mask = (cv2.resize(m, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST) > 0).astype(np.uint8)
        label = Label(Verdict.NG) if r["label"] == "NG" else Label(Verdict.OK)
        pid = proj.add_part([img], masks=[mask] if mask is not None else None, label=label, name=Path(r["image"]).stem)
        rows_of[int(pid)] = r
    return path, rows_of


def split_test(snap, rows_of: dict[int, dict], group: str, test_rule: str | None,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Part positions (train, test): by the set's own split column, else ~25 % of the groups."""
    if test_rule is not None:  # the set's split column; its OK rows have none: a seeded ~30 % of them
        rng = np.random.default_rng(seed)
        test = np.array([i for i, p in enumerate(snap.parts) if rows_of[p.part_id][test_rule] == "test"
                         or (not rows_of[p.part_id][test_rule] and rng.random() < 0.3)])
    else:
        groups = sorted({rows_of[p.part_id][group] for p in snap.parts})
        rng = np.random.default_rng(seed)
        held = set(rng.permutation(groups)[: max(1, len(groups) // 4)])
        test = np.array([i for i, p in enumerate(snap.parts) if rows_of[p.part_id][group] in held])
    train = np.array(sorted(set(range(len(snap.parts))) - set(test.tolist())))
    return train, np.sort(test)


def test_dice(model, snap, test_p) -> dict[str, float]:
    probs, _ = predict_probs(model, snap, snap.view_indices(test_p), torch.device("cpu"), 8)
    s = SegScores(snap.classes)
    for p, v in zip(probs, snap.view_indices(test_p)):
        s.add(p >= 0.5, snap.views[v].mask)
    rep = s.report()
    return {k: round(v["dice"], 4) for k, v in rep["seg_per_class"].items()}


def plain_loop(model, snap, train_p, budget: float, batch_size: int, clock=time.monotonic) -> tuple[torch.nn.Module, int]:
    import segmentation_models_pytorch as smp
    loss_fn = smp.losses.DiceLoss(mode="multilabel", from_logits=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    views = np.array(snap.view_indices(train_p))
    rng = np.random.default_rng(0)
    t0, epochs = clock(), 0
    while epochs == 0 or clock() - t0 < budget:  # whole epochs, as okng's loop does
        model.train()
        for b in batches(len(views), batch_size, rng):
            if len(b) < 2:
                continue
            x, m = make_batch(snap, views[b])
            loss = loss_fn(model(x), m)
            opt.zero_grad()
            loss.backward()
            opt.step()
        epochs += 1
    return model.eval(), epochs, clock() - t0


def run_set(name: str, tmp: Path, budget: float, batch_size: int, clock=time.monotonic) -> dict:
    size, n_ng, n_ok, group, rule, defect = SETS[name]
    path, rows_of = build_project(DATA, name, tmp / f"{name}.okng", n_ng, n_ok, defect)
    snap = load_seg_snapshot(path, size)
    train_p, test_p = split_test(snap, rows_of, group, rule)
    torch.manual_seed(0)
    init = models.build("unet", "resnet18", len(snap.classes))  # the same start for both arms
    # okng: its loop, best epoch by validation dice on part of the training parts
    sub = snap.part_targets()[train_p]
    fit_i, val_i = stratified_split(sub, 0.15, 0)
    cfg = SegConfig(encoder="resnet18", epochs=1000, batch_size=batch_size, input_size=size, lr=1e-3,
                    time_budget_s=budget).validate()
    rules = learn_rules([snap.views[v].mask for v in snap.view_indices(train_p[fit_i])], snap.classes)
    marks: list[tuple[float, dict]] = []
    t0 = clock()
    okng_model = copy.deepcopy(init)
    eval_s = [0.0]

    def on_progress(p) -> None:  # keep each epoch's weights to score on the test parts afterwards
        if p.stage == "eval":
            t = clock()
            marks.append((t - t0 - eval_s[0], copy.deepcopy(okng_model.state_dict())))
            eval_s[0] += clock() - t
    okng_model, hist, best = fit(okng_model, snap, train_p[fit_i], train_p[val_i], cfg, rules, torch.device("cpu"),
                                 on_progress, None, clock_start=t0, clock=clock)
    okng_s = clock() - t0
    okng_dice = test_dice(okng_model, snap, test_p)
    plain_model, plain_epochs, plain_s = plain_loop(copy.deepcopy(init), snap, train_p, budget, batch_size, clock)
    plain_dice = test_dice(plain_model, snap, test_p)
    target = float(np.mean(list(plain_dice.values())))
    reach = None
    probe = copy.deepcopy(init)
    for t, state in marks:
        probe.load_state_dict(state)
        if float(np.mean(list(test_dice(probe, snap, test_p).values()))) >= target:
            reach = t
            break
    return {"parts": len(snap.parts), "train_parts": len(train_p), "test_parts": len(test_p),
            "input": list(size), "budget_s": budget, "okng_epochs": len(hist), "okng_best_epoch": best,
            "okng_seconds": round(okng_s, 1), "plain_epochs": plain_epochs, "plain_seconds": round(plain_s, 1),
            "okng_test_dice": okng_dice, "plain_test_dice": plain_dice,
            "time_to_equal_dice_ratio": None if reach is None else round(reach / budget, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=180.0, help="training seconds per arm")
    ap.add_argument("--sets", default="bsdata,kolektorsdd")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="what the budget counts: wall-clock seconds, or this process's CPU seconds (all "
                         "threads; the fair measure on a machine shared with other jobs)")
    a = ap.parse_args()
    clock = time.monotonic if a.clock == "wall" else time.process_time
    torch.set_num_threads(a.threads)
    out = {"bench": "segment", "encoder": "resnet18 (from scratch: no ImageNet file here)",
           "threads": a.threads, "clock": a.clock, "load_before": os.getloadavg()[0], "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.sets.split(","):
            out["sets"][name] = run_set(name, Path(tmp), a.budget, a.batch_size, clock)
    out["load_after"] = os.getloadavg()[0]  # 1-minute load: the machine is shared, say how busy
    print(json.dumps(out))


if __name__ == "__main__":
    main()
