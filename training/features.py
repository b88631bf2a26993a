"""Batches for training and evaluation: live (augmented pixels) or cached frozen-stage features.

With frozen leading stages and only flip augmentations, the frozen trunk's output for every view
and flip variant is computed ONCE; each epoch then runs only the trainable tail. This is where
most of okng's speed on a 2-core CPU comes from (the bolt study's fine-tuning freezes blocks 1-4).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .accel import to_device
from .backbones import BackboneSpec, FrozenTrunk, tail_forward
from .config import AugmentConfig
from .data import to_float_rgb, to_tensor
from .snapshot import Snapshot
from .transforms import augment, augment_with_mask, flip_variant, flip_variants, sample_flip_variant

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


def view_tensor_and_mask(snap: Snapshot, i: int, mean: Sequence[float], std: Sequence[float],
                         aug: AugmentConfig | None, rng: np.random.Generator | None) -> tuple[torch.Tensor, np.ndarray]:
    """view_tensor() and the view's defect coverage (float32 over the whole input, 0 in the
    letterbox padding), moved by the same augmentation."""
    v = snap.views[i]
    x = to_float_rgb(v.content, v.white)
    m = np.zeros(x.shape[:2], np.float32) if v.mask is None else v.mask.astype(np.float32) * np.float32(1 / 255)
    if aug is not None and rng is not None:
        if v.mask is None:
            x = augment(x, aug, rng, v.gray)  # the same draws; a blank mask stays blank
        else:
            x, m = augment_with_mask(x, m, aug, rng, v.gray)
    g = v.geometry
    (top, left), (ch, cw) = g.pad, g.content_size
    full = np.zeros(g.input_size, np.float32)
    full[top:top + ch, left:left + cw] = m[:ch, :cw]
    return to_tensor(x, g, mean, std), full


def batches(indices: Sequence[int], size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Shuffled (when rng) batches; a trailing batch of 1 joins the previous one (BatchNorm)."""
    idx = np.asarray(indices, dtype=np.int64)
    if rng is not None:
        idx = idx[rng.permutation(len(idx))]
    out = [idx[i:i + size] for i in range(0, len(idx), size)]
    if len(out) > 1 and len(out[-1]) == 1:
        last = out.pop()  # popped first: `out[-2] = ...out.pop()` would overwrite the batch before
        out[-1] = np.concatenate([out[-1], last])
    return out


class FeatureCache:
    """Frozen-trunk outputs per (view, flip variant), computed on first use and kept (float16).

    Lazy on purpose: epoch 1 costs what a plain epoch costs (one trunk pass per sample drawn),
    and later epochs only pay for flip variants not drawn before, so time-to-first-result never
    waits for a full precomputation of every variant.
    """

    def __init__(self, trunk: FrozenTrunk, snap: Snapshot, max_rows: int, aug: AugmentConfig,
                 mean: Sequence[float], std: Sequence[float], device: torch.device, batch_size: int) -> None:
        self.trunk, self.snap, self.aug = trunk.eval(), snap, aug
        self.mean, self.std, self.device, self.batch_size = mean, std, device, batch_size
        with torch.inference_mode():
            shape = tuple(self.trunk(torch.zeros((1, 3, *snap.input_size), device=device)).shape[1:])
        # torch.empty touches no pages until rows are written: memory grows with what is cached.
        self.feats = torch.empty((max_rows, *shape), dtype=torch.float16, device=device)
        self.row: dict[tuple[int, int], int] = {}
        self.computed = 0

    @staticmethod
    def estimate_bytes(trunk: FrozenTrunk, input_size: tuple[int, int], n_rows: int, device: torch.device) -> int:
        """Memory the cache would take when full (float16), from one forward of a blank input."""
        with torch.inference_mode():
            shape = trunk.eval()(torch.zeros((1, 3, *input_size), device=device)).shape[1:]
        return int(np.prod(tuple(shape))) * 2 * n_rows

    def _fill(self, keys: list[tuple[int, int]]) -> None:
        for s in range(0, len(keys), self.batch_size):
            chunk = keys[s:s + self.batch_size]
            x = to_device([view_tensor(self.snap, i, self.mean, self.std, variant=v) for i, v in chunk],
                          self.device, self.device.type == "cuda")
            with torch.no_grad():
                f = self.trunk(x)
                start = len(self.row)
                self.feats[start:start + len(chunk)] = f.to(torch.float16)
            for k, key in enumerate(chunk):
                self.row[key] = start + k
            self.computed += len(chunk)

    def _rows(self, keys: list[tuple[int, int]]) -> torch.Tensor:
        missing = list(dict.fromkeys(k for k in keys if k not in self.row))
        if missing:
            self._fill(missing)
        return self.feats[torch.as_tensor([self.row[k] for k in keys])].float()

    def get(self, idx: np.ndarray, rng: np.random.Generator | None) -> torch.Tensor:
        """Features of a batch; training draws each sample's flip variant like augment() would."""
        return self._rows([(int(i), sample_flip_variant(self.aug, rng) if rng is not None else 0) for i in idx])

    def get_any(self, idx: np.ndarray) -> torch.Tensor:
        """Any already-cached variant of each view (BatchNorm refresh: no extra trunk passes)."""
        keys = []
        for i in idx:
            i = int(i)
            keys.append(next(((i, v) for v in flip_variants(self.aug) if (i, v) in self.row), (i, 0)))
        return self._rows(keys)


class Net(nn.Module):
    """What a step runs: the whole model on pixels, or its tail from stage `start` on cached
    features. One module, so that DistributedDataParallel can wrap it (training.distributed)."""

    def __init__(self, model: nn.Module, spec: BackboneSpec, start: int) -> None:
        super().__init__()
        self.model, self.spec, self.start = model, spec, start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tail_forward(self.model, self.spec, self.start, x) if self.start else self.model(x)


class Forward:
    """How a batch of view indices becomes logits: full model on pixels, or tail on features.

    ``step_net`` runs the training steps: ``net`` itself, or DistributedDataParallel around it
    in a data-parallel run (evaluation and BatchNorm refreshes use ``net``: no collectives)."""

    def __init__(self, model: nn.Module, spec: BackboneSpec, snap: Snapshot, mean: Sequence[float],
                 std: Sequence[float], device: torch.device, cache: FeatureCache | None, start_group: int,
                 channels_last: bool = False) -> None:
        self.model, self.spec, self.snap = model, spec, snap
        self.mean, self.std, self.device = mean, std, device
        self.cache, self.start = cache, start_group
        # Pixels in the model's memory format: always on CUDA, on a CPU when the run asks (accel)
        self.channels_last = channels_last or device.type == "cuda"
        self.net: nn.Module = Net(model, spec, start_group if cache is not None else 0)
        self.step_net: nn.Module = self.net

    def __call__(self, idx: np.ndarray, aug: AugmentConfig | None, rng: np.random.Generator | None,
                 any_variant: bool = False, train: bool = False) -> torch.Tensor:
        net = self.step_net if train else self.net
        if self.cache is not None:
            f = self.cache.get_any(idx) if any_variant else self.cache.get(idx, rng if aug is not None else None)
            return net(f)
        x = to_device([view_tensor(self.snap, int(i), self.mean, self.std, aug, rng) for i in idx], self.device,
                      self.channels_last)
        return net(x)

    def guided(self, idx: np.ndarray, aug: AugmentConfig | None, rng: np.random.Generator | None,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A training step on pixels with the views' masks: (logits, (n, 1, h, w) defect coverage,
        (n,) whether each view's mask is known). Never over cached features (a mask guide needs
        the whole network to learn where the defect is)."""
        pairs = [view_tensor_and_mask(self.snap, int(i), self.mean, self.std, aug, rng) for i in idx]
        x = to_device([t for t, _ in pairs], self.device, self.channels_last)
        masks = torch.from_numpy(np.stack([m for _, m in pairs])[:, None]).to(self.device)
        known = torch.as_tensor([self.snap.views[int(i)].mask_known for i in idx], device=self.device)
        return self.step_net(x), masks, known
