"""Scratch vs self-supervised start at equal total minutes (issue 11): prints ONE JSON line.

On kolektorsdd (by-item 70/15/15 split of bench/recipe_scratch.py), two runs of the same
recipe share one wall-clock total T:
  scratch   : T seconds of supervised training from random init;
  ssl       : T*frac seconds of training.pretrain's --method (simclr or mim) on the train+val
              images (labels unused; the test images are held out of pretraining too), then
              T*(1-frac) seconds of the same supervised recipe starting from that encoder.
With --amortised the pretraining is not counted: the ssl arm trains T seconds from the encoder
(a plant pretrains once, overnight, and retrains many times from it); T*frac is then only the
pretraining time. Both pick their best epoch on validation and report TEST balanced accuracy. The arms run
concurrently with one thread each (fair on a shared, noisy CPU).

    nice -n 15 .venv/bin/python bench/pretrain.py --total 600 [--method mim] [--split-seed N] [--frac 0.5] [-- RECIPE ARGS]

Recipe arguments after `--` go to bench/recipe_scratch.py for both runs (default: its defaults
with --bf16 --channels-last, --gray for a grayscale set, and views stretched into the square okng
train's from-scratch rule picks for the train+val views, as `okng pretrain` and `okng train` do).
Pretraining runs with okng pretrain's defaults (96 px crops, batch 64); the record says whether
its loss fell below the no-learning reference (training.pretrain.METHODS[...].check).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import recipe_scratch as rs
from training.pretrain import PretrainSpec, pretrain_images


def _gray(data: str, rows: list[dict[str, str]]) -> bool:
    """Whether the set's images are grayscale (one channel, or three equal ones): first 20 images."""
    import cv2
    for r in rows[:20]:
        img = cv2.imread(str(rs.DATA / data / r["image"]), cv2.IMREAD_UNCHANGED)
        if img.ndim == 3 and img.shape[2] >= 3 and not (np.array_equal(img[..., 0], img[..., 1])
                                                        and np.array_equal(img[..., 1], img[..., 2])):
            return False
    return True


def main() -> None:
    argv = sys.argv[1:]
    recipe = argv[argv.index("--") + 1:] if "--" in argv else None
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="kolektorsdd")
    p.add_argument("--total", type=float, default=600.0, help="seconds per arm")
    p.add_argument("--frac", type=float, default=0.5, help="share of the total spent pretraining")
    p.add_argument("--method", default=PretrainSpec.method, help="training.pretrain.METHODS name")
    p.add_argument("--split-seed", type=int, default=0, help="which by-item split (recipe_scratch's --split-seed)")
    p.add_argument("--crop", type=int, default=PretrainSpec.crop)
    p.add_argument("--batch-size", type=int, default=PretrainSpec.batch_size)
    p.add_argument("--skip-scratch", action="store_true")
    p.add_argument("--amortised", action="store_true",
                   help="pretraining time not counted: the ssl arm's supervised run gets the whole total")
    a = p.parse_args(argv)
    if recipe is None:
        # okng train's own size rule over the rows it would train on (train+val): 224x224 on both sets
        from training.recipe import square_size_for
        rows0 = rs.read_rows(a.data)
        split0 = rs.split_groups(rows0, a.data, a.split_seed)
        side = square_size_for([(int(r["height"]), int(r["width"])) for r, s in zip(rows0, split0) if s != "test"])[0]
        recipe = ["--short", "0", "--square", str(side), "--bf16", "--channels-last", *(["--gray"] if _gray(a.data, rows0) else [])]
    base = ["--data", a.data, "--split-seed", str(a.split_seed), *recipe]
    # Both arms run at the same time, one thread each: on a shared CPU whose load changes by the
    # minute, only concurrent arms see the same machine, so equal wall time is equal compute.
    torch.set_num_threads(1)
    scratch_proc = None if a.skip_scratch else subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("recipe_scratch.py")), *base, "--budget", str(a.total),
         "--tag", "scratch", "--threads", "1"], stdout=subprocess.PIPE, text=True)

    # Pretraining images: the exact arrays the supervised run sees, minus the test split.
    args = rs.parse(base)
    rows = rs.read_rows(a.data)
    split = np.array(rs.split_groups(rows, a.data, args.split_seed))
    hw = rs.size_for(rows, args.short) if args.short else (args.square, args.square)
    x = rs.load_images(a.data, rows, hw, args.gray)
    images = [x[i] for i in np.flatnonzero(split != "test")]
    t0 = time.monotonic()
    state, res = pretrain_images(images, PretrainSpec(project="", method=a.method, budget_s=a.total * a.frac,
                                                      crop=a.crop, batch_size=a.batch_size))
    pre_s = time.monotonic() - t0
    enc = Path("/tmp/okng_bench_encoder.pt")
    torch.save(state, enc)
    ssl = rs.run(rs.parse([*base, "--budget", str(a.total if a.amortised else a.total - pre_s), "--init", str(enc), "--tag", a.method,
                           "--threads", "1"]))
    scratch = None
    if scratch_proc is not None:
        out_text, _ = scratch_proc.communicate()
        scratch = json.loads(out_text.strip().splitlines()[-1])
    keep = ("epochs", "s_per_epoch", "best_epoch", "val_bal_acc", "test_bal_acc", "test_recall_ok",
            "test_recall_ng", "val_history")
    out = {"bench": "pretrain", "data": a.data, "split_seed": a.split_seed, "total_s": a.total,
           "amortised": a.amortised, "recipe": recipe, "hw": list(hw),
           "pretrain": {"method": a.method, "s": round(pre_s, 1), "images": len(images), "steps": res.steps,
                        "loss_first": res.losses[0] if res.losses else None,
                        "loss_last": float(np.mean(res.losses[-10:])) if res.losses else None,
                        "chance_loss": res.chance_loss, "learned": res.learned, "note": res.note,
                        "crop": a.crop, "batch_size": a.batch_size},
           "ssl": {k: ssl[k] for k in keep},
           "scratch": {k: scratch[k] for k in keep} if scratch else None}
    if scratch:
        out["test_bal_acc_gain"] = round(ssl["test_bal_acc"] - scratch["test_bal_acc"], 3)
        out["val_bal_acc_gain"] = round(ssl["val_bal_acc"] - scratch["val_bal_acc"], 3)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
