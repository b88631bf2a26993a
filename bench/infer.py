"""Inference latency per backbone: a batch of 4 views at the backbone's default input size.

Prints ONE JSON line: per arch, the median forward latency of a (4, 3, S, S) batch and of the
full `LoadedModel.predict_views` path on four 640x480 RGB views (crop/letterbox/normalise +
one batched forward). This table picks the default live-sort model (the bolt study's line
answers within 0.9 s per part).

    .venv/bin/python bench/infer.py [--reps 5] [--arch resnet18 --arch vgg16 ...] [--device cuda]

On CUDA the figures include the host->device copy and the copy of the logits back (what live
sort pays per part); the first forwards (cudnn autotuning) are left out by the warm-up.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def random_model(spec):
    """The network with random weights, built without the slow default init."""
    import torch
    meta = spec.build_meta(2)
    g = torch.Generator().manual_seed(0)
    state = {}
    for k, v in meta.state_dict().items():
        if k.endswith("running_var"):
            state[k] = torch.ones(v.shape)
        elif k.endswith("num_batches_tracked"):
            state[k] = torch.zeros(v.shape, dtype=v.dtype)
        else:
            state[k] = torch.randn(v.shape, generator=g) * 0.02
    return spec.build_for_state(2, state).eval()


def main() -> None:
    import torch

    from training.backbones import BACKBONES
    from training.card import ModelCard
    from training.data import IMAGENET_MEAN, IMAGENET_STD
    from training.inference import LoadedModel
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--arch", action="append")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    device = torch.device(args.device)
    views = [np.random.default_rng(i).integers(0, 255, (480, 640, 3), dtype=np.uint8) for i in range(4)]
    table = {}
    for name in args.arch or list(BACKBONES):
        spec = BACKBONES[name]
        model = random_model(spec)
        size = spec.input_size
        card = ModelCard(f"bench-{name}", name, input_size=tuple(size), mean=IMAGENET_MEAN, std=IMAGENET_STD)
        loaded = LoadedModel(model, card, device)
        x = torch.randn(4, 3, *size)
        for _ in range(3 if device.type == "cuda" else 1):  # warm-up (cudnn picks its kernels)
            loaded.logits(x)
        fwd, full = [], []
        for _ in range(args.reps):
            t = time.perf_counter()
            loaded.logits(x)
            fwd.append(time.perf_counter() - t)
            t = time.perf_counter()
            loaded.predict_views(views, ["cam0", "cam1", "cam2", "cam3"])
            full.append(time.perf_counter() - t)
        # min is the figure on a quiet machine; median shows what other load does to it.
        table[name] = {"input": size[0], "forward_ms": round(1000 * statistics.median(fwd), 1),
                       "forward_min_ms": round(1000 * min(fwd), 1),
                       "predict_views_ms": round(1000 * statistics.median(full), 1),
                       "predict_views_min_ms": round(1000 * min(full), 1),
                       "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2)}
        print(f"{name}: {table[name]}", file=sys.stderr, flush=True)
    fastest = min(table, key=lambda k: table[k]["predict_views_min_ms"])
    print(json.dumps({"bench": "infer", "batch": 4, "threads": torch.get_num_threads(),
                      "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
                      "load_1min": os.getloadavg()[0], "per_arch": table, "fastest": fastest}), flush=True)


if __name__ == "__main__":
    main()
