"""From-scratch training recipe prototype (issue 11 A): prints ONE JSON line per run.

A plain torch loop over a real defect set read straight from its labels.csv (no okng store), so
each knob of the recipe can be switched alone and measured: freeze policy, input size rule, a
single-channel stem, LR schedule, optimizer, batch size, augmentations, class balance,
channels_last, bf16 autocast, torch.compile. Training runs for a wall-clock budget (the LR
schedule follows elapsed time, not an epoch count), the best epoch is picked on validation
balanced accuracy, and TEST balanced accuracy of that checkpoint is reported.

Split: stratified by group, 70/15/15 (kolektorsdd: the `item` column; bsdata: the recording
capture, the first two fields of the file name), never by image.

    nice -n 15 .venv/bin/python bench/recipe_scratch.py --data kolektorsdd --budget 600 --gray --bf16 --channels-last
    nice -n 15 .venv/bin/python bench/recipe_scratch.py --data bsdata --freeze last-block

Decoded, resized images are cached under /tmp (never in the repo): the decode is not part of a
run's budget, as okng's own decode cache would hold them too.
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
if not DATA.exists():  # a worktree under /work/wt: the data sits next to /work/main
    DATA = Path("/work/shared/data")


# ---------------------------------------------------------------- data

def _group(data: str, row: dict[str, str]) -> str:
    if row.get("item"):
        return row["item"]
    # bsdata has no part id; its first two name fields (series, timestamp) name one capture
    # (1,096 groups for 1,104 images), so this is a stratified split by capture.
    return "_".join(Path(row["image"]).name.split("_")[:2])


def read_rows(data: str) -> list[dict[str, str]]:
    with open(DATA / data / "labels.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["label"] in ("OK", "NG")]


def split_groups(rows: list[dict[str, str]], data: str, seed: int,
                 fractions: tuple[float, float] = (0.70, 0.15)) -> list[str]:
    """'train'/'val'/'test' per row: groups ranked by NG share, dealt round-robin so each split
    gets its share of NG-heavy and NG-free groups (a stratified group split)."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(_group(data, r), []).append(i)
    rng = np.random.default_rng(seed)
    names = list(groups)
    rng.shuffle(names)
    ng_share = {g: np.mean([rows[i]["label"] == "NG" for i in groups[g]]) for g in names}
    names.sort(key=lambda g: ng_share[g])
    out = [""] * len(rows)
    # Deal in blocks of 20: 14 train, 3 val, 3 test, in a shuffled order inside each block.
    n_tr, n_va = round(20 * fractions[0]), round(20 * fractions[1])
    pattern = ["train"] * n_tr + ["val"] * n_va + ["test"] * (20 - n_tr - n_va)
    for b in range(0, len(names), 20):
        block = names[b:b + 20]
        pat = list(pattern)
        rng.shuffle(pat)
        # A short last block still must give val and test something.
        if len(block) < 20:
            k = len(block)
            nv, nt = max(1, round(k * fractions[1])), max(1, round(k * (1 - sum(fractions))))
            pat = ["val"] * nv + ["test"] * nt + ["train"] * (k - nv - nt)
            rng.shuffle(pat)
        for g, s in zip(block, pat):
            for i in groups[g]:
                out[i] = s
    return out


def size_for(rows: list[dict[str, str]], short: int) -> tuple[int, int]:
    """(H, W): the median image scaled so its short side is `short`, keeping the aspect, never
    upscaled; both sides rounded to a multiple of 32 (the backbone's stride)."""
    w = float(np.median([int(r["width"]) for r in rows]))
    h = float(np.median([int(r["height"]) for r in rows]))
    s = min(1.0, short / min(w, h))
    return max(32, round(h * s / 32) * 32), max(32, round(w * s / 32) * 32)


def load_images(data: str, rows: list[dict[str, str]], hw: tuple[int, int], gray: bool) -> np.ndarray:
    cache = Path(f"/tmp/okng_recipe_{data}_{hw[0]}x{hw[1]}_{'g' if gray else 'c'}.npy")
    if cache.exists():
        return np.load(cache)
    out = []
    for r in rows:
        img = cv2.imread(str(DATA / data / r["image"]), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
        img = cv2.resize(img, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
        if gray:
            img = img[..., None]
        else:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        out.append(img.transpose(2, 0, 1))
    arr = np.stack(out)
    np.save(cache, arr)
    return arr


def augment(x: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    """Batch augmentations on float tensors (N, C, H, W), all per-sample."""
    if kind == "none":
        return x
    n = x.shape[0]
    flip_h = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip_h[:, None, None, None], x.flip(3), x)
    flip_v = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip_v[:, None, None, None], x.flip(2), x)
    if kind == "flips":
        return x
    # light: + brightness/contrast jitter and a small random shift (reflect padded)
    b = (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.4
    c = 1.0 + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.4
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * c + mean + b
    h, w = x.shape[2:]
    p = max(2, min(h, w) // 16)
    xp = nn.functional.pad(x, (p, p, p, p), mode="reflect")
    dy, dx = torch.randint(0, 2 * p + 1, (2,), generator=gen).tolist()
    return xp[:, :, dy:dy + h, dx:dx + w]


# ---------------------------------------------------------------- model

def build_model(arch: str, in_ch: int, num_classes: int = 2) -> nn.Module:
    from training.backbones import get_backbone, single_channel_stem
    spec = get_backbone(arch)
    model = spec.build(num_classes)
    if in_ch == 1:
        single_channel_stem(model, spec)
    return model


def set_freeze(model: nn.Module, arch: str, policy: str) -> None:
    from training.backbones import apply_freeze, get_backbone
    apply_freeze(model, get_backbone(arch), policy)


def lr_at(frac: float, sched: str, warmup: float = 0.1) -> float:
    """LR multiplier at a fraction of the budget elapsed."""
    if sched == "const":
        return 1.0
    if frac < warmup:
        return 0.1 + 0.9 * frac / warmup
    t = min(1.0, (frac - warmup) / (1 - warmup))
    if sched == "cosine":
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t))
    if sched == "linear":
        return max(0.02, 1 - t)
    raise ValueError(sched)


def balanced_accuracy(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    rec_ok = float(np.mean(p[y == 0] == 0)) if (y == 0).any() else float("nan")
    rec_ng = float(np.mean(p[y == 1] == 1)) if (y == 1).any() else float("nan")
    return (rec_ok + rec_ng) / 2, rec_ok, rec_ng


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, args: argparse.Namespace, bs: int = 32) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(x), bs):
        xb = to_input(x[i:i + bs], args)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            out.append(torch.softmax(model(xb).float(), 1)[:, 1])
    return torch.cat(out).numpy()


def to_input(x: np.ndarray, args: argparse.Namespace) -> torch.Tensor:
    t = torch.from_numpy(x).float().div_(255.0).sub_(0.5).div_(0.25)
    if args.channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    return t


def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rows = read_rows(args.data)
    split = np.array(split_groups(rows, args.data, args.split_seed))
    hw = size_for(rows, args.short) if args.short else (args.square, args.square)
    x = load_images(args.data, rows, hw, args.gray)
    y = np.array([1 if r["label"] == "NG" else 0 for r in rows])
    tr, va, te = (split == "train"), (split == "val"), (split == "test")
    xtr, ytr = x[tr], y[tr]

    model = build_model(args.arch, x.shape[1])
    if args.init:
        from training.backbones import load_encoder_state
        load_encoder_state(model, torch.load(args.init, weights_only=True))
    set_freeze(model, args.arch, args.freeze)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    if args.opt == "adamw":
        opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.wd)
    else:
        opt = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=args.wd, nesterov=True)
    n_ng, n_ok = int(ytr.sum()), int(len(ytr) - ytr.sum())
    weight = torch.tensor([1.0, n_ok / max(1, n_ng)]) if args.balance == "loss" else None
    loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=args.smooth)
    fwd = torch.compile(model) if args.compile else model
    gen = torch.Generator().manual_seed(args.seed)
    if args.balance == "sampler":
        w = np.where(ytr == 1, 0.5 / max(1, n_ng), 0.5 / max(1, n_ok))
        sampler_w = torch.tensor(w, dtype=torch.double)

    # --cpu-clock: the budget counts this process's CPU seconds, so a run at nice 19 on a loaded
    # machine gets the compute a quiet machine would give in that many seconds (one thread).
    clock = time.process_time if args.cpu_clock else time.monotonic
    best = (-1.0, math.inf)
    best_state, best_epoch, epochs, epoch_times = None, -1, 0, []
    history = []
    t0 = clock()
    while True:
        te0 = clock()
        model.train()
        if args.freeze != "none":
            from training.backbones import get_backbone, set_train_mode
            set_train_mode(model, get_backbone(args.arch), args.freeze)
        if args.balance == "sampler":
            order = torch.multinomial(sampler_w, len(ytr), replacement=True, generator=gen).numpy()
        else:
            order = torch.randperm(len(ytr), generator=gen).numpy()
        stop = False
        for i in range(0, len(order) - args.bs + 1 if len(order) >= args.bs else 1, args.bs):
            frac = (clock() - t0) / args.budget
            if frac >= 1.0:
                stop = True
                break
            for g in opt.param_groups:
                g["lr"] = args.lr * lr_at(frac, args.sched)
            idx = order[i:i + args.bs]
            xb = augment(to_input(xtr[idx], args), args.aug, gen)
            if args.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yb = torch.from_numpy(ytr[idx])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                loss = loss_fn(fwd(xb).float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if stop and epochs > 0 and (clock() - te0) < 0.5 * np.mean(epoch_times):
            break  # a stub of an epoch: not worth an evaluation
        epochs += 1
        epoch_times.append(clock() - te0)
        pv = predict(model, x[va], args)
        ba, _, _ = balanced_accuracy(y[va], (pv >= 0.5).astype(int))
        vloss = float(np.mean(-np.log(np.clip(np.where(y[va] == 1, pv, 1 - pv), 1e-6, 1))))
        history.append(round(ba, 3))
        if best_state is None or (ba, -vloss) > (best[0], -best[1]):
            best, best_epoch = (ba, vloss), epochs
            best_state = copy.deepcopy(model.state_dict())
        if stop or clock() - t0 >= args.budget:
            break
    wall = clock() - t0
    model.load_state_dict(best_state)
    pt = predict(model, x[te], args)
    tba, rok, rng_ = balanced_accuracy(y[te], (pt >= 0.5).astype(int))
    return {"bench": "recipe_scratch", "data": args.data, "tag": args.tag, "arch": args.arch,
            "freeze": args.freeze, "hw": list(hw), "gray": args.gray, "opt": args.opt, "lr": args.lr,
            "sched": args.sched, "bs": args.bs, "aug": args.aug, "balance": args.balance,
            "channels_last": args.channels_last, "bf16": args.bf16, "compile": args.compile,
            "init": bool(args.init), "budget_s": args.budget, "seed": args.seed, "split_seed": args.split_seed,
            "n": {"train": int(tr.sum()), "val": int(va.sum()), "test": int(te.sum()),
                  "test_ng": int(y[te].sum()), "val_ng": int(y[va].sum())},
            "epochs": epochs, "s_per_epoch": round(float(np.mean(epoch_times)), 1), "wall_s": round(wall, 1),
            "best_epoch": best_epoch, "val_bal_acc": round(best[0], 3), "val_history": history,
            "test_bal_acc": round(tba, 3), "test_recall_ok": round(rok, 3), "test_recall_ng": round(rng_, 3)}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="kolektorsdd")
    p.add_argument("--tag", default="")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--freeze", default="none", choices=("none", "last-block", "head"))
    p.add_argument("--short", type=int, default=128, help="short side in px, aspect kept (0: square)")
    p.add_argument("--square", type=int, default=224)
    p.add_argument("--gray", action="store_true", help="single-channel input and stem")
    p.add_argument("--opt", default="adamw", choices=("adamw", "sgd"))
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--wd", type=float, default=0.05)
    p.add_argument("--sched", default="cosine", choices=("const", "cosine", "linear"))
    p.add_argument("--bs", type=int, default=32)
    p.add_argument("--aug", default="light", choices=("none", "flips", "light"))
    p.add_argument("--balance", default="sampler", choices=("none", "sampler", "loss"))
    p.add_argument("--smooth", type=float, default=0.0)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--init", default="", help="encoder state (.pt) from training.pretrain to start from")
    p.add_argument("--budget", type=float, default=600.0, help="training seconds")
    p.add_argument("--cpu-clock", action="store_true", help="budget in CPU seconds of this process (for "
                   "comparisons on a loaded machine; use with --threads 1)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OKNG_THREADS", "2")))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split-seed", type=int, default=0)
    return p.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(run(parse())), flush=True)
