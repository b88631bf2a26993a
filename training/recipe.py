"""The from-scratch recipe and the time budget: what okng does when it has no ImageNet weights.

Issue 11 measured (bench/recipe_scratch.py, bsdata and kolektorsdd on a 2-core CPU) that a
network trained from random init must train every layer, at an input size taken from the data
(upscaling a 100 px crop to 224 px costs 3x the compute and adds nothing), with AdamW, a warm-up
then a cosine fall of the LR over the *time* the user gives, light photometric augmentation and
class-balanced sampling. ImageNet fine-tuning keeps its own (manual) settings: they were tuned
for it. `resolve(config, pretrained, ...)` turns an "auto" config into the one a run uses, so
the card stores exactly what trained.

No torch import: the CLI and the Train view resolve and explain configs cheaply.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .config import AugmentConfig, TrainConfig

# The input size is picked from the data (issue 11). Aspect-kept sizes from a pixel budget
# (bsdata 128x288, KolektorSDD 544x224) were the first rule; with both arms of bench/train.py on
# the same train/validation rows (`--split-field`), KolektorSDD at 544x224 never left validation
# 0.45-0.57 in 10 minutes (test 0.49), nor at 320x128 (0.47-0.68 in 5 minutes), while the same
# recipe on the view STRETCHED to 224x224 reached validation 0.82 in 54 s and 0.94 in 135 s, and
# the plain torchvision loop (224x224 stretched) 0.99 test. Stretching keeps the short side's
# detail (the width of a crack across a 500 px commutator) and squeezes the long axis, so the
# defect fills more of the network's last feature map. So the scratch recipe trains on a SQUARE
# of SQUARE_SIDE px with fit "resize" (the card's fit: inference, Grad-CAM and live sort stretch
# the same way), less for a project so large that one pass would exceed EPOCH_PIXELS (never
# under SHORT_MIN), never above the views' own short side (no upscaling). input_size_for (aspect
# kept) stays for `okng pretrain --short` and the tuner's "input_short" search with pretrained
# features; from scratch the tuner searches "input_square" (training.tune.space).
SQUARE_SIDE = 224
SHORT_MIN = 128
SHORT_CAP = 384  # aspect-kept sizes (input_size_for): an epoch at 384x960 is ~9x a 128 px one
EPOCH_PIXELS = 60e6  # bsdata's 1,104 views keep 224 px; 2,000 views would get 160
ASPECT_EPOCH_PIXELS = 45e6  # input_size_for's budget (pretraining crops), as measured before
STRIDE = 32  # every backbone's output stride: sides are multiples of it
WARMUP, LR_FLOOR = 0.1, 0.02
SCRATCH_AUGMENT = AugmentConfig(hflip=0.5, vflip=0.5, brightness=0.2, contrast=0.2, shift=0.06)
# The optimiser and sampling of bench/recipe_scratch's best run (0.928 test bal. acc., bsdata, 10 min).
SCRATCH_VALUES = {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.05, "schedule": "warmup-cosine",
                  "class_weights": None, "sampler": "balanced", "patience": 0}
# The run validates and delivers the average of about its last epoch's weights (training.ema).
SCRATCH_EMA_EPOCHS = 1.0
RECIPE_BATCH = 32  # the batch size SCRATCH_VALUES' lr was measured with
# Under this many optimiser steps (epochs x batches, known when --epochs is given without a
# budget) a run is "short": the model has not fit its data yet, so the photometric and shift
# augmentations only slow it down (a 6-epoch run on 40 tiny parts kept two of four classes near
# chance with them, 0.98 macro F1 without; tests/training/test_train_tasks.py).
# Under a time budget the steps are unknown ahead: the run counts them after its first epoch
# (short_steps). bsdata on this 2-core CPU (10 minutes, 224 px, batch 32) makes ~250 steps:
# with flips only from epoch 2 its training loss fell to 0.12-0.14 (0.27 with the photometric
# and shift augmentations), validation rose 0.90-0.94 -> 0.94-0.96 and test 0.907 -> 0.918 and
# 0.908 -> 0.915 (bench/train.py --real bsdata, seeds 1 and 2). KolektorSDD (~400 steps) keeps them.
SHORT_RUN_STEPS = 300
SHORT_AUGMENT = AugmentConfig(hflip=0.5, vflip=0.5)
# The batch is picked from the number of training views too: a from-scratch network learns from
# optimiser steps, and the pixel budget gives a small set as many epochs as a large one, so at a
# fixed batch of 32 it got a fraction of the steps. KolektorSDD (~270 training views) had 8 steps
# an epoch, 64 in 10 minutes, and never left validation 0.50-0.58; at batch 16 (17 steps an
# epoch) the same run reached validation 0.71 in epoch 2 and 1.0 in epoch 3. Batch 8 stayed at
# 0.50 over its first 3 epochs (BatchNorm statistics over 8 views are noisy), hence the floor.
STEPS_PER_EPOCH = 16  # as training.loop keeps over cached features
BATCH_MIN, BATCH_MAX = 16, 32
DEFAULT_BUDGET_S = 600.0  # a from-scratch run with neither --budget nor --epochs: 10 minutes
FINE_TUNE_EPOCHS = 10  # an ImageNet fine-tuning run with neither: the epochs it was tuned with
NO_BF16 = ("mobilenet",)  # measured 2x slower under bf16 autocast on this CPU


def short_side_for(n_views: int, aspect: float) -> int:
    """The short side (px) a run can afford: one pass over n_views of this aspect (long/short)
    within ASPECT_EPOCH_PIXELS, between SHORT_MIN and SHORT_CAP (the caller never upscales past the view)."""
    s = math.sqrt(ASPECT_EPOCH_PIXELS / max(1, n_views) / max(1.0, aspect))
    return int(min(SHORT_CAP, max(SHORT_MIN, s)))


def input_size_for(shapes: Iterable[Sequence[int]], short: int | None = None) -> tuple[int, int]:
    """(h, w) from the views' (ROI) sizes: the median view scaled so its short side is `short`
    (None: short_side_for the number of views), aspect kept, never upscaled, both sides a multiple
    of the backbone stride (>= one stride)."""
    hs, ws = [], []
    for s in shapes:
        hs.append(int(s[0]))
        ws.append(int(s[1]))
    if not hs:
        return (short or SHORT_MIN, short or SHORT_MIN)
    h, w = sorted(hs)[len(hs) // 2], sorted(ws)[len(ws) // 2]
    if short is None:
        short = short_side_for(len(hs), max(h, w) / max(1, min(h, w)))
    # A view smaller than `short` keeps its size; a larger one is scaled so its short side is
    # `short` rounded down to the stride (so the size steps in strides, not with every view
    # added). Both sides are then rounded down: a multiple of the stride never upscales (a 48 px
    # view gives 32, not 64).
    k = 1.0 if short >= min(h, w) else max(STRIDE, short // STRIDE * STRIDE) / min(h, w)
    return max(STRIDE, int(h * k) // STRIDE * STRIDE), max(STRIDE, int(w * k) // STRIDE * STRIDE)


def square_size_for(shapes: Sequence[Sequence[int]], side: int | None = None) -> tuple[int, int]:
    """The (side, side) input for views stretched into a square: `side` when given (a tuner's
    draw), else the scratch recipe's SQUARE_SIDE, less where one pass over the views would exceed
    EPOCH_PIXELS (never under SHORT_MIN); never above the median view's short side; a multiple of
    the stride."""
    shorts = sorted(min(int(s[0]), int(s[1])) for s in shapes)
    if not shorts:
        return _square(side or SQUARE_SIDE)
    if side is None:
        side = min(SQUARE_SIDE, max(SHORT_MIN, int(math.sqrt(EPOCH_PIXELS / len(shorts)))))
    return _square(min(side, shorts[len(shorts) // 2]))


def _square(side: int) -> tuple[int, int]:
    side = max(STRIDE, side // STRIDE * STRIDE)
    return (side, side)


def batch_size_for(n_train_views: int, asked: int = BATCH_MAX) -> int:
    """The scratch recipe's batch: STEPS_PER_EPOCH steps an epoch where the training views allow,
    between BATCH_MIN and BATCH_MAX (bsdata's ~770 training views keep 32), never above the batch
    asked for (a smaller one the user chose stays)."""
    return int(min(asked, BATCH_MAX, max(BATCH_MIN, n_train_views // STEPS_PER_EPOCH)))


def lr_factor(frac: float, warmup: float = WARMUP, floor: float = LR_FLOOR) -> float:
    """LR multiplier at a fraction of the run: linear warm-up from 10 %, then cosine down to `floor`."""
    if frac < warmup:
        return 0.1 + 0.9 * frac / warmup
    t = min(1.0, (frac - warmup) / (1 - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


@dataclass
class RunClock:
    """How far a run is: the larger of elapsed/budget and epochs done/epochs (either may be off).

    The LR schedule reads `fraction`; the loop stops when `done`. `now` is injectable so tests
    check the budget logic by counting epochs, never by timing."""

    budget_s: float | None
    epochs: int | None
    now: Callable[[], float] = time.monotonic
    t0: float = 0.0
    held: float | None = None  # a data-parallel run: rank 0's elapsed seconds, agreed on each step

    def start(self) -> RunClock:
        self.t0 = self.now()
        self.held = None
        return self

    def hold(self, elapsed: float) -> None:
        """Read `elapsed` until the next hold (training.distributed: every rank the same time)."""
        self.held = elapsed

    def elapsed(self) -> float:
        return self.held if self.held is not None else self.own_elapsed()

    def own_elapsed(self) -> float:
        """This process's own seconds since start (what rank 0 tells the others)."""
        return self.now() - self.t0

    def fraction(self, epoch_progress: float) -> float:
        """epoch_progress: epochs finished plus the share of the current one."""
        f = epoch_progress / self.epochs if self.epochs else 0.0
        if self.budget_s:
            f = max(f, self.elapsed() / self.budget_s)
        return min(1.0, f)

    def out_of_time(self) -> bool:
        return bool(self.budget_s) and self.elapsed() >= float(self.budget_s or 0)

    def more_epochs(self, done: int) -> bool:
        """Another epoch starts: epochs left (when counted) and time left (when budgeted)."""
        return (self.epochs is None or done < self.epochs) and not self.out_of_time()


def short_steps(steps_done: int, elapsed_s: float, budget_s: float | None, limit: int,
                marks: Sequence[float] = ()) -> int | None:
    """The optimiser steps a budgeted run will make, projected from its first epoch (validation
    included), when fewer than `limit` (a short run); None otherwise.

    `marks` are the clock's readings after each of that epoch's steps. Their median gap is the
    pace once the one-off costs are paid: on an H100 the first epoch of a bsdata run took 17 s
    (CUDA context, cudnn autotuning, first decodes) and each later one 3 s, so the epoch alone
    projected 88 steps for a 60 s budget where the run made 475. On this CPU both figures agree."""
    if not limit or not budget_s or elapsed_s <= 0 or steps_done <= 0:
        return None
    per_step = elapsed_s / steps_done
    gaps = [b - a for a, b in itertools.pairwise(marks)]
    if len(gaps) >= 2 and marks[-1] > 0 and statistics.median(gaps) > 0:
        # validation's share of the epoch as measured, on top of the steady training pace
        per_step = min(per_step, statistics.median(gaps) * elapsed_s / marks[-1])
    steps = steps_done + int(max(budget_s - elapsed_s, 0.0) / per_step)
    return steps if steps < limit else None


def flips_of(augment: AugmentConfig) -> AugmentConfig:
    """A short run's augmentation: the config's flips, nothing else."""
    return AugmentConfig(hflip=augment.hflip, vflip=augment.vflip)


def short_note(steps: int, limit: int, elapsed_s: float) -> str:
    """The card's sentence when a budgeted run dropped to flips after its first epoch."""
    return (f"short run: the first epoch took {elapsed_s:.0f} s, so about {steps} steps fit the budget "
            f"(< {limit}): flips only from epoch 2, the model is still fitting")


def use_scratch_recipe(config: TrainConfig, pretrained: bool) -> bool:
    """auto: the scratch recipe when the network starts without ImageNet features and every
    layer trains (a frozen policy the user asked for is honoured with their own settings)."""
    if config.recipe == "scratch":
        return True
    if config.recipe == "manual" or config.warm_start:
        return False
    return not pretrained and config.freeze in ("none", "scratch")


def resolve_freeze(config: TrainConfig, pretrained: bool, warnings: list[str]) -> str:
    """'auto' -> last-block with ImageNet weights, every layer otherwise; a frozen policy asked
    for without weights is kept but said loudly (its frozen layers are random noise)."""
    if config.freeze == "auto":
        return "last-block" if pretrained else "none"
    if config.freeze in ("head", "last-block") and not pretrained:
        warnings.append(frozen_message(config.freeze, config.arch))
    return config.freeze


def frozen_message(freeze: str, arch: str) -> str:
    return (f"freeze policy {freeze!r} without pretrained weights for {arch}: the frozen layers keep their "
            "random initialisation and only the rest learns; choose freeze auto or none to train every layer")


def planned_scratch_recipe(values: dict[str, Any]) -> bool:
    """Before a run (the Train view's form): will the scratch recipe set its optimiser, LR and
    augmentation? resolve()'s own decision (resolve_freeze, use_scratch_recipe), with
    "pretrained" read as frozen_warning reads it: a local weights file for the backbone. A
    segment run has its own loop: no."""
    if values.get("task") == "segment":
        return False
    config = TrainConfig(arch=str(values.get("arch") or "resnet18"), freeze=values.get("freeze") or "auto",
                         recipe=values.get("recipe") or "auto", warm_start=values.get("warm_start"))
    # an encoder start is no ImageNet start; "scratch" never loads weights
    pretrained = config.freeze != "scratch" and not values.get("encoder") and _local_weights(config.arch)
    config = dataclasses.replace(config, freeze=resolve_freeze(config, pretrained, []))
    return use_scratch_recipe(config, pretrained)


def planned_length(values: dict[str, Any]) -> tuple[float | None, int | None]:
    """Before a classifier run: the (time budget in s, epochs) it will train for. The form's own
    where it gives either; where it gives neither, resolve()'s default for the start the run
    will have: DEFAULT_BUDGET_S from scratch, FINE_TUNE_EPOCHS fine-tuning ImageNet weights."""
    budget, epochs = values.get("budget_s") or None, values.get("epochs") or None
    if budget or epochs:
        return budget, epochs
    return (DEFAULT_BUDGET_S, None) if planned_scratch_recipe(values) else (None, FINE_TUNE_EPOCHS)


def _local_weights(arch: str) -> bool:
    """A weights file for `arch` where training.weights looks (not opened: a check before a run)."""
    from .weights import candidate_paths
    return any(p.is_file() for p in candidate_paths(arch))


def frozen_warning(values: dict[str, Any]) -> str:
    """Before a run (CLI, Train view): the warning for a frozen policy asked for without ImageNet
    weights, "" when there is none to give (looks for local weight files only)."""
    freeze, arch = values.get("freeze"), str(values.get("arch") or "resnet18")
    if freeze not in ("head", "last-block") or values.get("warm_start") or values.get("encoder"):
        return ""
    if _local_weights(arch):
        return ""
    return frozen_message(freeze, arch)


def input_size_why(shapes: Sequence[Sequence[int]], size: Sequence[int]) -> str:
    """The card's sentence on why this input size (issue 11's rule, with its numbers)."""
    n = len(shapes)
    return (f"views stretched to {size[0]}x{size[1]} px (fit resize), never upscaled: the short side keeps its "
            f"detail and the long axis is squeezed, so a small defect fills more of the last feature map "
            f"(KolektorSDD learnt at 224x224, not at 544x224 aspect kept); {SQUARE_SIDE} px unless one pass over "
            f"{n} views would exceed {EPOCH_PIXELS / 1e6:.0f} M input pixels or a time budget buys too few steps of "
            f"it on this machine (then down to {SHORT_MIN} px)")


Views = Callable[[], tuple[list[tuple[int, int]], bool]]


def project_views(project_path: Any, labelled_only: bool = True) -> Views:
    """Lazily: the (h, w) of every labelled view (every view: labelled_only False) after its
    camera's ROI, and whether every one is grayscale (from the store's index: no pixel is decoded)."""
    def read() -> tuple[list[tuple[int, int]], bool]:
        from labeling.store import Project
        from labeling.types import Verdict

        from .data import full_roi
        project = Project.open(project_path, readonly=True)
        rois = dict(project.settings.rois)
        shapes, gray = [], True
        for p in project.parts():
            if labelled_only and p.verdict not in (Verdict.OK, Verdict.NG):
                continue
            for v in p.views:
                r = full_roi(v.shape[:2], rois.get(v.camera))
                shapes.append((r.h, r.w))
                gray = gray and (len(v.shape) == 2 or v.shape[2] == 1)
        return shapes, gray and bool(shapes)
    return read


def once(views: Views) -> Views:
    """`views`, read at the first call only (the store's index is read once per run)."""
    seen: list[tuple[list[tuple[int, int]], bool]] = []

    def read() -> tuple[list[tuple[int, int]], bool]:
        if not seen:
            seen.append(views())
        return seen[0]
    return read


def training_views(n_views: int, cfg: TrainConfig) -> int:
    """About how many of n_views train (before the split is drawn: the fractions' share)."""
    return int(n_views * (1.0 - cfg.val_fraction - cfg.test_fraction))


def planned_steps(cfg: TrainConfig, n_views: int) -> int | None:
    """Optimiser steps of a run counted in epochs (None under a time budget: unknown ahead)."""
    if cfg.epochs is None or cfg.budget_s is not None:
        return None
    train_views = n_views * max(0.1, 1.0 - cfg.val_fraction - cfg.test_fraction)
    return cfg.epochs * max(1, math.ceil(train_views / cfg.batch_size))


def resolve(config: TrainConfig, pretrained: bool, views: Views,
            warnings: list[str]) -> tuple[TrainConfig, dict]:
    """The config a run uses and the card's note on why (extra["recipe"])."""
    freeze = resolve_freeze(config, pretrained, warnings)
    cfg = dataclasses.replace(config, freeze=freeze)
    note: dict = {"name": "manual", "freeze": freeze}
    if freeze != config.freeze:
        note["freeze_why"] = ("ImageNet weights: fine-tune the last block" if pretrained else
                              "no pretrained weights: every layer trains (frozen random layers learn nothing)")
    if not use_scratch_recipe(cfg, pretrained):
        if cfg.budget_s is None and cfg.epochs is None:
            cfg.epochs = FINE_TUNE_EPOCHS
        return cfg, note
    # The recipe's optimiser, schedule and augmentation replace the form's (tuned for ImageNet
    # fine-tuning); recipe "manual" keeps the form's values.
    cfg = dataclasses.replace(cfg, augment=SCRATCH_AUGMENT, **SCRATCH_VALUES)
    if cfg.batch_size != RECIPE_BATCH:
        # Square-root scaling for Adam-type optimisers (Malladi et al. 2022): smaller batches are
        # noisier steps, and 2e-3 at batch 8 underfit the tiny class sets that 1e-3 learnt.
        cfg.lr = SCRATCH_VALUES["lr"] * math.sqrt(cfg.batch_size / RECIPE_BATCH)
        note["lr_why"] = f"{SCRATCH_VALUES['lr']:g} at batch {RECIPE_BATCH}, square-root scaled to batch {cfg.batch_size}"
    read_views = once(views)
    # After the LR's scaling to the batch asked for: the batch the recipe picks here keeps the LR
    # it was measured with (KolektorSDD: 2e-3 at batch 16).
    n_train = training_views(len(read_views()[0]), cfg)
    cfg.batch_size = batch_size_for(n_train, cfg.batch_size)
    note["batch_why"] = (f"{cfg.batch_size} views a step: about {n_train} training views give "
                         f"{max(1, n_train // cfg.batch_size)} steps an epoch (the recipe wants "
                         f"{STEPS_PER_EPOCH}, batch {BATCH_MIN}-{BATCH_MAX})")
    steps = None if cfg.epochs is None or cfg.budget_s is not None else planned_steps(cfg, len(read_views()[0]))
    if steps is not None and steps < SHORT_RUN_STEPS:
        cfg.augment = SHORT_AUGMENT
        note["augment_why"] = f"short run ({steps} steps < {SHORT_RUN_STEPS}): flips only, the model is still fitting"
    elif steps is None:
        cfg.short_run_steps = SHORT_RUN_STEPS  # counted after the first epoch (training.loop)
    if cfg.input_size is None or cfg.gray_stem is None:
        shapes, gray = read_views()
        if cfg.input_size is None:
            cfg.input_size = square_size_for(shapes)
            cfg.fit = "resize"
            note["input_size_why"] = input_size_why(shapes, cfg.input_size)
        if cfg.gray_stem is None:
            cfg.gray_stem = gray
    if cfg.bf16 is None:
        cfg.bf16 = not cfg.arch.startswith(NO_BF16)
    if cfg.ema_epochs is None:
        cfg.ema_epochs = SCRATCH_EMA_EPOCHS
    if cfg.ema_epochs:
        note["ema_why"] = (f"the average of the last ~{cfg.ema_epochs:g} epoch(s) of weights is validated and "
                           "delivered (EMA: steadier than the last step's weights in a short run)")
    if cfg.budget_s is None and cfg.epochs is None:
        cfg.budget_s = DEFAULT_BUDGET_S
    note.update(name="scratch", why="no ImageNet features: the measured from-scratch recipe "
                "(every layer, AdamW, warm-up + cosine over the run, balanced sampling, a batch that gives "
                "enough steps an epoch)")  # the weights' average has its own line (ema_why): it can be off
    return cfg, note
