"""Tiles against whole views on a set of large views with tiny defects (issue 11): ONE JSON line.

bsdata's pits cover 0.01-0.07 % of a 1130x460 view: a pixel or two after the 224x224 stretch
okng's default trains on. Issue 11 asks that large views keep their detail "through ROI crops or
tiles"; this measures whether tiles would lift the end point before any of it is built into okng.

--mode tiles: views at a short side of --short px (aspect kept, 224x544 on bsdata: 2.5x the
horizontal detail of the stretch). Training samples --tile px crops: an NG view's crop holds a
pixel of its defect mask (so an NG label never sits on a clean crop), an OK view's crop is drawn
anywhere. Inference runs the whole view through the network once (it is fully convolutional):
the head is applied to every tile-sized window of the last feature map (stride 32 px) and the
view's P(NG) is its worst window's, as if every tile had been classified.
--mode whole: the same recipe on the whole view stretched to --square px (okng's default input).

Both modes use recipe_scratch's split, optimizer, schedule, augmentation and budget clock, so two
runs side by side (one thread each, --cpu-clock) differ only in what the network sees. Reported:
test balanced accuracy at P(NG) >= 0.5 and at the threshold chosen on validation (the worst-window
score of an OK view is a maximum over ~100 windows, so 0.5 need not be its operating point); the
epoch is chosen by validation balanced accuracy at each epoch's own validation threshold.

    nice -n 10 .venv/bin/python bench/tiles_scratch.py --mode tiles --budget 600 --threads 1 --cpu-clock
    nice -n 10 .venv/bin/python bench/tiles_scratch.py --mode whole --budget 600 --threads 1 --cpu-clock
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import recipe_scratch as rs


def load_masks(data: str, rows: list[dict[str, str]], hw: tuple[int, int]) -> np.ndarray:
    """(N, H, W) bool: each row's defect mask at the views' size (any pixel of an anti-aliased
    edge counts), all False for rows without one."""
    cache = Path(f"/tmp/okng_tiles_{data}_{hw[0]}x{hw[1]}_masks.npy")
    if cache.exists():
        return np.load(cache)
    out = np.zeros((len(rows), *hw), bool)
    for i, r in enumerate(rows):
        if r.get("mask"):
            m = cv2.imread(str(rs.DATA / data / r["mask"]), cv2.IMREAD_GRAYSCALE)
            out[i] = cv2.resize(m, (hw[1], hw[0]), interpolation=cv2.INTER_AREA) > 0
    np.save(cache, out)
    return out


def crop_corners(masks: np.ndarray, y: np.ndarray, idx: np.ndarray, tile: int,
                 rng: np.random.Generator) -> list[tuple[int, int]]:
    """Top-left corner of one training crop per view: over a random defect pixel for NG views
    (placed at a random spot inside the crop), anywhere for OK views."""
    h, w = masks.shape[1:]
    out = []
    for i in idx:
        if y[i] == 1 and masks[i].any():
            ys, xs = np.nonzero(masks[i])
            k = rng.integers(len(ys))
            cy, cx = int(ys[k]), int(xs[k])
            top = int(np.clip(cy - rng.integers(tile // 8, tile - tile // 8), 0, h - tile))
            left = int(np.clip(cx - rng.integers(tile // 8, tile - tile // 8), 0, w - tile))
        else:
            top, left = int(rng.integers(0, h - tile + 1)), int(rng.integers(0, w - tile + 1))
        out.append((top, left))
    return out


def window_scores(model: nn.Module, xb: torch.Tensor, tile: int) -> torch.Tensor:
    """P(NG) of each view's worst tile-sized window: the trunk's feature map, averaged over
    windows of tile/32 cells (what the pooled head saw in training), the head on each window."""
    trunk = nn.Sequential(*list(model.children())[:-2])  # resnet: all but avgpool and fc
    feats = trunk(xb)
    k = max(1, tile // 32)
    pooled = nn.functional.avg_pool2d(feats, k, stride=1)
    logits = torch.einsum("nchw,kc->nkhw", pooled, model.fc.weight) + model.fc.bias[None, :, None, None]
    p_ng = torch.softmax(logits, 1)[:, 1]
    return p_ng.flatten(1).max(1).values


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, args: argparse.Namespace, bs: int = 16) -> np.ndarray:
    if args.mode == "whole":
        return rs.predict(model, x, args)
    model.eval()
    return torch.cat([window_scores(model, rs.to_input(x[i:i + bs], args), args.tile)
                      for i in range(0, len(x), bs)]).numpy()


def best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The validation threshold with the highest balanced accuracy (ties: the middle one)."""
    cands = np.unique(np.concatenate([p, [0.5]]))
    scores = [rs.balanced_accuracy(y, (p >= t).astype(int))[0] for t in cands]
    top = np.flatnonzero(np.isclose(scores, max(scores)))
    return float(cands[top[len(top) // 2]])


def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rows = rs.read_rows(args.data)
    split = np.array(rs.split_groups(rows, args.data, args.split_seed))
    hw = rs.size_for(rows, args.short) if args.mode == "tiles" else (args.square, args.square)
    x = rs.load_images(args.data, rows, hw, False)
    y = np.array([1 if r["label"] == "NG" else 0 for r in rows])
    masks = load_masks(args.data, rows, hw) if args.mode == "tiles" else None
    tr, va, te = (np.flatnonzero(split == s) for s in ("train", "val", "test"))
    model = rs.build_model(args.arch, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    n_ng = int(y[tr].sum())
    sampler_w = torch.tensor(np.where(y[tr] == 1, 0.5 / max(1, n_ng), 0.5 / max(1, len(tr) - n_ng)), dtype=torch.double)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    clock = time.process_time if args.cpu_clock else time.monotonic
    best, best_state, history, epoch_times = (-1.0, math.inf), None, [], []
    t0 = clock()
    stop = False
    while not stop:
        te0 = clock()
        model.train()
        order = tr[torch.multinomial(sampler_w, len(tr), replacement=True, generator=gen).numpy()]
        for i in range(0, len(order) - args.bs + 1, args.bs):
            frac = (clock() - t0) / args.budget
            if frac >= 1.0:
                stop = True
                break
            for g in opt.param_groups:
                g["lr"] = args.lr * rs.lr_at(frac, "cosine")
            idx = order[i:i + args.bs]
            if args.mode == "tiles":
                xs = np.stack([x[j, :, t:t + args.tile, l:l + args.tile]
                               for j, (t, l) in zip(idx, crop_corners(masks, y, idx, args.tile, rng))])
            else:
                xs = x[idx]
            xb = rs.augment(rs.to_input(xs, args), args.aug, gen)
            loss = loss_fn(model(xb), torch.from_numpy(y[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if stop and epoch_times and clock() - te0 < 0.5 * np.mean(epoch_times):
            break
        epoch_times.append(clock() - te0)
        pv = predict(model, x[va], args)
        # The epoch is chosen at its own validation threshold: a worst-window score has no
        # calibrated 0.5 (it is a maximum over ~100 windows), so both modes are chosen alike.
        thr_e = best_threshold(y[va], pv)
        ba = rs.balanced_accuracy(y[va], (pv >= thr_e).astype(int))[0]
        ba_half = rs.balanced_accuracy(y[va], (pv >= 0.5).astype(int))[0]
        vloss = float(np.mean(-np.log(np.clip(np.where(y[va] == 1, pv, 1 - pv), 1e-6, 1))))
        history.append([round(clock() - t0, 1), round(ba, 3), round(ba_half, 3)])
        print(json.dumps({"epoch": len(history), "t": history[-1][0], "val": history[-1][1], "val_at_0.5": history[-1][2],
                          "threshold": round(thr_e, 3)}), file=sys.stderr, flush=True)
        if best_state is None or (ba, -vloss) > (best[0], -best[1]):
            best, best_state, thr = (ba, vloss), copy.deepcopy(model.state_dict()), thr_e
    model.load_state_dict(best_state)
    pt = predict(model, x[te], args)
    at_half = rs.balanced_accuracy(y[te], (pt >= 0.5).astype(int))
    at_thr = rs.balanced_accuracy(y[te], (pt >= thr).astype(int))
    return {"bench": "tiles_scratch", "data": args.data, "mode": args.mode, "hw": list(hw),
            "tile": args.tile if args.mode == "tiles" else None, "budget_s": args.budget, "cpu_clock": args.cpu_clock,
            "seed": args.seed, "split_seed": args.split_seed,
            "n": {"train": len(tr), "val": len(va), "test": len(te), "test_ng": int(y[te].sum())},
            "epochs": len(history), "s_per_epoch": round(float(np.mean(epoch_times)), 1),
            "val_best": round(best[0], 3), "val_curve": history,  # [s, at its threshold, at 0.5]
            "test_bal_acc": round(at_half[0], 3), "test_recall_ng": round(at_half[2], 3),
            "val_threshold": round(thr, 3), "test_bal_acc_val_threshold": round(at_thr[0], 3),
            "test_recall_ng_val_threshold": round(at_thr[2], 3)}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="bsdata")
    p.add_argument("--mode", default="tiles", choices=("tiles", "whole"))
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--short", type=int, default=224, help="tiles: the views' short side, aspect kept")
    p.add_argument("--tile", type=int, default=128)
    p.add_argument("--square", type=int, default=224, help="whole: the stretched input's side")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--wd", type=float, default=0.05)
    p.add_argument("--bs", type=int, default=32)
    p.add_argument("--aug", default="flips", choices=("none", "flips", "light"))
    p.add_argument("--budget", type=float, default=600.0)
    p.add_argument("--cpu-clock", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split-seed", type=int, default=0)
    args = p.parse_args(argv)
    args.bf16, args.channels_last = False, False  # recipe_scratch's predict/to_input read them
    return args


if __name__ == "__main__":
    print(json.dumps(run(parse())), flush=True)
