"""Batches for training and evaluation: live (augmented pixels) or cached frozen-stage features.

With frozen leading stages and only flip augmentations, the frozen trunk's output for every view
and flip variant is computed ONCE; each epoch then runs only the trainable tail. This is where
most of okng's speed on a 2-core CPU comes from (the bolt study's fine-tuning freezes blocks 1-4).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .backbones import BackboneSpec, FrozenTrunk, tail_forward
from .config import AugmentConfig
from .data import to_float_rgb, to_tensor
from .snapshot import Snapshot
from .transforms import augment, flip_variant, flip_variants, sample_flip_variant

CACHE_BUDGET_BYTES = 6 * 1024 ** 3


def view_tensor(snap: Snapshot, i: int, mean: Sequence[float], std: Sequence[float],
                aug: AugmentConfig | None = None, rng: np.random.Generator | None = None,
                variant: int = 0) -> torch.Tensor:
    """One view of the snapshot as a normalised input (augmented when aug and rng are given)."""
    v = snap.views[i]
    x = to_float_rgb(v.content, v.white)
    if aug is not None and rng is not None:
        x = augment(x, aug, rng, v.gray)
    elif variant:
        x = flip_variant(x, variant)
    return to_tensor(x, v.geometry, mean, std)


def batches(indices: Sequence[int], size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Shuffled (when rng) batches; a trailing batch of 1 joins the previous one (BatchNorm)."""
    idx = np.asarray(indices, dtype=np.int64)
    if rng is not None:
        idx = idx[rng.permutation(len(idx))]
    out = [idx[i:i + size] for i in range(0, len(idx), size)]
    if len(out) > 1 and len(out[-1]) == 1:
        out[-2] = np.concatenate([out[-2], out.pop()])
    return out


class FeatureCache:
    """Frozen-trunk outputs per (view, flip variant), float16 on CPU / the GPU's memory."""

    def __init__(self, trunk: FrozenTrunk, snap: Snapshot, train_views: Sequence[int], aug: AugmentConfig,
                 mean: Sequence[float], std: Sequence[float], device: torch.device, batch_size: int,
                 progress: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> None:
        self.aug = aug
        self.variants = flip_variants(aug)
        train_set = set(int(i) for i in train_views)
        jobs = [(i, 0) for i in range(len(snap.views))]
        jobs += [(i, v) for v in self.variants[1:] for i in sorted(train_set)]
        self.row: dict[tuple[int, int], int] = {}
        self.cancelled = False
        feats: list[torch.Tensor] = []
        trunk.eval()
        dtype = torch.float16
        done = 0
        for chunk in [jobs[i:i + batch_size] for i in range(0, len(jobs), batch_size)]:
            if should_stop is not None and should_stop():
                self.cancelled = True
                return
            x = torch.stack([view_tensor(snap, i, mean, std, variant=v) for i, v in chunk]).to(device)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                f = trunk(x)
            feats.append(f.to(dtype).contiguous())
            for i, v in chunk:
                self.row[(i, v)] = len(self.row)
            done += len(chunk)
            if progress is not None:
                progress(done, len(jobs))
        self.feats = torch.cat(feats) if feats else torch.empty(0)

    @staticmethod
    def estimate_bytes(trunk: FrozenTrunk, input_size: tuple[int, int], n_rows: int, device: torch.device) -> int:
        """Memory the cache would take (float16), from one forward of a blank input."""
        with torch.inference_mode():
            shape = trunk.eval()(torch.zeros((1, 3, *input_size), device=device)).shape[1:]
        return int(np.prod(tuple(shape))) * 2 * n_rows

    def get(self, idx: np.ndarray, rng: np.random.Generator | None) -> torch.Tensor:
        """Features of a batch; training draws each sample's flip variant like augment() would."""
        rows = [self.row[(int(i), sample_flip_variant(self.aug, rng) if rng is not None else 0)] for i in idx]
        return self.feats[torch.as_tensor(rows)].float()


class Forward:
    """How a batch of view indices becomes logits: full model on pixels, or tail on features."""

    def __init__(self, model: nn.Module, spec: BackboneSpec, snap: Snapshot, mean: Sequence[float],
                 std: Sequence[float], device: torch.device, cache: FeatureCache | None, start_group: int) -> None:
        self.model, self.spec, self.snap = model, spec, snap
        self.mean, self.std, self.device = mean, std, device
        self.cache, self.start = cache, start_group

    def __call__(self, idx: np.ndarray, aug: AugmentConfig | None, rng: np.random.Generator | None) -> torch.Tensor:
        if self.cache is not None:
            f = self.cache.get(idx, rng if aug is not None else None).to(self.device)
            return tail_forward(self.model, self.spec, self.start, f)
        x = torch.stack([view_tensor(self.snap, int(i), self.mean, self.std, aug, rng) for i in idx]).to(self.device)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)
