"""The input side a time budget can afford, measured on this machine before the run starts.

A network trained from random init learns from optimiser steps. At 224 px on this 2-core CPU a
10-minute bsdata run makes about 110 of them (5 epochs of 2 minutes) and is still fitting when
the time is up: the plain torchvision loop's final test figure took okng 1.3-1.5x the plain
loop's time. The same run at 160 px makes about 240 steps (bench/train.py --real bsdata). So
before a budgeted from-scratch run, a few real training steps of the run's own network time this
machine, and the recipe's side shrinks (in strides, never under SHORT_MIN) until enough steps
fit the budget. A faster machine, or a longer budget, keeps the full side: the figure is this
machine's, and the card says what was measured.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import torch
from torch import nn

from . import accel
from .backbones import get_backbone, single_channel_stem
from .config import TrainConfig
from .recipe import SHORT_MIN, STRIDE

# Enough steps for a from-scratch run to fit its data (10 minutes on this CPU, with the weights'
# average): KolektorSDD at 224 px (~210 steps) reached test 0.86-1.0, ahead of the plain loop on 4
# of 5 splits. bsdata at 224 px (~110 steps) reached the plain loop's final test figure in
# 1.34-1.46x its time; at 160 px (~240 steps) it kept or raised its own (seeds 0/1/2: 0.941 /
# 0.923 / 0.920 against 0.9325 / 0.923 / 0.912) and reached the plain loop's in 0.46 / 0.59 / 0.85.
MIN_BUDGET_STEPS = 180
PROBE_BATCH = 8  # views per timed step: per-view cost is flat from ~8 on a CPU, and it keeps the probe short
# Timed, after one untimed step (allocations, oneDNN's first-call setup); the fastest counts. In
# the bench, where the plain loop decodes its images beside the probe, bsdata's step timed 271 ms a
# view against 171 on a quiet machine, and the epochs then ran 1.7x faster than that projected:
# passing load, not the run's pace.
PROBE_STEPS = 3
# The probe's bare forward/backward at batch PROBE_BATCH against a real epoch (batch 16-32, the
# mask guide's CAM loss, augmentation, batch assembly, and a forward of each validation view at
# VAL_COST of a training view's step). On this AVX2 CPU, one thread, resnet18, the probe timed
# 171 ms a view (RGB, 224 px) and 160 (gray stem); bsdata's epochs took 122 s for 775 training
# and 165 validation views (0.86x the projection), KolektorSDD's 46 s for 255 and 64 (1.05x), so
# the projection takes the probe as it is: ~105 steps for bsdata at 224 px in 10 minutes (the
# short-run rule counted 106-109 from real first epochs), ~218 for KolektorSDD.
VAL_COST = 1 / 3


@dataclasses.dataclass(frozen=True)
class SideChoice:
    """What the probe measured and what it chose (the card's note quotes it)."""

    side: int
    steps: int  # projected optimiser steps at `side`
    full_side: int
    full_steps: int  # projected at the recipe's side
    seconds_per_view: float  # one training view's step at full_side, as timed

    def why(self, budget_s: float) -> str:
        if self.side == self.full_side:
            return (f"the budget fits about {self.full_steps} steps at {self.full_side} px on this machine "
                    f"(>= {MIN_BUDGET_STEPS} wanted)")
        return (f"fitted to the budget: about {self.full_steps} steps of {budget_s:.0f} s at {self.full_side} px on "
                f"this machine ({self.seconds_per_view * 1e3:.0f} ms a view, timed), {self.steps} at {self.side} px "
                f"(a from-scratch model learns from steps: >= {MIN_BUDGET_STEPS} wanted)")


def projected_steps(seconds_per_view: float, side: int, full_side: int, batch: int, budget_s: float,
                    n_train: int, n_val: int, world_size: int = 1) -> int:
    """Optimiser steps that fit the budget at `side`, from one training view's timed cost at
    full_side: cost scales with the pixels, validation adds VAL_COST per validation view."""
    scale = (side / full_side) ** 2
    per_train_view = seconds_per_view * scale / max(1, world_size)
    epoch_s = per_train_view * (n_train + VAL_COST * n_val)
    steps_per_epoch = max(1, -(-n_train // batch))
    return int(budget_s / max(epoch_s, 1e-9) * steps_per_epoch)


def choose_side(seconds_per_view: float, full_side: int, batch: int, budget_s: float, n_train: int,
                n_val: int, world_size: int = 1) -> SideChoice:
    """The largest side (full_side down in strides, never under SHORT_MIN) at which
    MIN_BUDGET_STEPS fit; SHORT_MIN when none does."""
    def steps(s: int) -> int:
        return projected_steps(seconds_per_view, s, full_side, batch, budget_s, n_train, n_val, world_size)
    side = full_side
    while side - STRIDE >= SHORT_MIN and steps(side) < MIN_BUDGET_STEPS:
        side -= STRIDE
    return SideChoice(side, steps(side), full_side, steps(full_side), seconds_per_view)


def time_step(init: Callable[[], nn.Module], config: TrainConfig, side: int, n_outputs: int,
              now: Callable[[], float] = time.perf_counter) -> float:
    """Seconds one training view costs at `side` x `side`: the run's own network (stem, memory
    format, precision as training.loop sets them) makes PROBE_STEPS timed AdamW steps on random
    views, and the fastest counts. The network is a throwaway: nothing of it reaches the run."""
    spec = get_backbone(config.arch)
    device = torch.device("cpu")  # the probe answers for CPUs; a GPU's steps are not the limit
    model = init()
    if config.gray_stem:
        single_channel_stem(model, spec)
    channels_last = accel.use_channels_last(config.bf16, device)
    model = accel.prepare_model(model.to(device).train(), device, channels_last)
    bf16 = accel.use_bf16(config.bf16, device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(PROBE_BATCH, 1 if config.gray_stem else 3, side, side, generator=gen)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    y = torch.arange(PROBE_BATCH) % max(1, n_outputs)
    times = []
    for _ in range(PROBE_STEPS + 1):
        t0 = now()
        with accel.autocast(device, bf16, False):
            out = model(x)
        loss = nn.functional.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(now() - t0)
    return min(times[1:]) / PROBE_BATCH
