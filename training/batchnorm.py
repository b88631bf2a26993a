"""PreciseBN for the training loop: exact BatchNorm running statistics after an epoch, where an
epoch is too short for BatchNorm's own moving averages to settle.

``needs_bn_refresh`` says after which epochs (training.loop asks after each one);
``refresh_batchnorm`` recomputes the statistics with one forward pass over the training views
(over cached features: the cheap tail only). In a data-parallel run each rank passes over its
shard and the ranks average (training.distributed)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from labeling.progress import StopFn

from .backbones import BackboneSpec, set_train_mode
from .distributed import Local
from .errors import Cancelled
from .features import Forward, batches

# Unsettled moving averages scored a 6-epoch run's first epochs at macro F1 0.07, a budgeted
# bolt-demo run's at val loss 32-112 (3 steps an epoch), so the first 300 steps were refreshed.
# With 10+ steps an epoch BatchNorm's own averages (momentum 0.1) keep under 35 % of the epoch
# before, and the refresh's forward pass over 256 views was a quarter of the time: on a CPU
# without bf16, 17 s of KolektorSDD's 62 s epochs (16 steps each); without it the same 10-minute
# run made 12 epochs instead of 9 and scored test 0.928 against 0.870 (validation 0.944 / 0.873).
BN_SETTLED_STEPS = 10


def needs_bn_refresh(cached: bool, steps_per_epoch: int, epochs_done: int) -> bool:
    """PreciseBN after this epoch: always over cached features (few large steps), else only
    while an epoch is too short for the moving averages to settle, in the first 300 steps."""
    return cached or (steps_per_epoch < BN_SETTLED_STEPS and steps_per_epoch * epochs_done < 300)


def refresh_batchnorm(model: nn.Module, spec: BackboneSpec, freeze: str, forward: Forward,
                      train_views: np.ndarray, batch_size: int, sync: Local, should_stop: StopFn | None,
                      limit: int | None = None) -> None:
    """Exact running statistics for the model's trainable BatchNorm layers, from the training
    views (<= `limit` of them, spread through the set; all when None). Raises Cancelled on a stop."""
    bns = trainable_batchnorms(model)
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over this pass
    set_train_mode(model, spec, freeze)
    every = -(-len(train_views) // limit) if limit else 1  # ceil: at most `limit` views
    chunks = batches(sync.shard(train_views[::every]), max(batch_size, 64), None)
    with torch.no_grad():
        for k in range(sync.count(len(chunks))):  # every rank as many passes (collectives inside)
            if should_stop is not None and should_stop():
                raise Cancelled()
            if k < len(chunks):
                forward(chunks[k], None, None, any_variant=True)
    sync.average_bn(bns, len(chunks))
    for m, mom in zip(bns, saved):
        m.momentum = mom


def trainable_batchnorms(model: nn.Module) -> Sequence[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers that learn (a frozen group's keep the statistics they came with)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and any(p.requires_grad for p in m.parameters())]
