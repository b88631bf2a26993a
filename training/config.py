"""Typed training configuration (no torch import: the CLI and the UI build these cheaply)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import TrainingError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "warmup-cosine", "step", "none")
RECIPES = ("auto", "scratch", "manual")
SAMPLERS = (None, "balanced")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class AugmentConfig:
    """Training-time augmentations (never applied to validation/test). 0 / False = off."""

    hflip: float = 0.5  # probability
    vflip: float = 0.0
    rotate: float = 0.0  # max degrees, uniform in [-rotate, rotate]
    crop: float = 0.0  # random crop keeping at least (1 - crop) of each side, resized back
    brightness: float = 0.0  # +- fraction
    contrast: float = 0.0  # +- fraction
    hue: float = 0.0  # +- degrees of hue (colour views only)
    saturation: float = 0.0  # +- fraction
    value: float = 0.0  # +- fraction (HSV V)
    noise: float = 0.0  # Gaussian noise std (in [0, 1] pixel units)
    clahe: float = 0.0  # probability of CLAHE (corrosion and X-ray studies)
    shift: float = 0.0  # random translation up to this fraction of each side (reflect padded)

    def active(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name)]

    def flips_only(self) -> bool:
        """Only flips: frozen-stage features can be cached once per flip variant."""
        return set(self.active()) <= {"hflip", "vflip"}

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(hflip=0.0)

    @classmethod
    def preset(cls, name: str) -> AugmentConfig:
        """Named presets: none, default (h-flips), flips (h+v), light, strong."""
        presets = {
            "none": cls.none(),
            "default": cls(),
            "flips": cls(hflip=0.5, vflip=0.5),
            "light": cls(hflip=0.5, vflip=0.5, rotate=10, crop=0.1, brightness=0.15, contrast=0.15),
            "strong": cls(hflip=0.5, vflip=0.5, rotate=20, crop=0.15, brightness=0.15, contrast=0.2,
                          hue=10, saturation=0.2, value=0.15, noise=0.02, clahe=0.3),
        }
        if name not in presets:
            raise TrainingError(f"unknown augmentation preset {name!r} (known: {', '.join(presets)})")
        return presets[name]


@dataclass
class TrainConfig:
    """Everything a training run depends on; stored with the model."""

    arch: str = "resnet18"
    task: str = "verdict"  # training/tasks.py: verdict | classes | multilabel
    # auto: last-block with ImageNet weights, every layer without (training.recipe); head |
    # last-block | none | scratch as asked.
    freeze: str = "auto"
    epochs: int | None = None  # None: 10 for fine-tuning, the time budget for a scratch run
    budget_s: float | None = None  # wall-clock seconds of training (the schedule follows time)
    recipe: str = "auto"  # auto | scratch | manual (training.recipe: what "auto" picks)
    batch_size: int = 32
    frozen_batch_size: int = 128  # batches over cached frozen features are cheap: larger
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    class_weights: str | list[float] | None = "balanced"  # "balanced", one weight per output, or None
    patience: int = 5  # early stopping on validation balanced accuracy; 0 = off
    seed: int = 0
    input_size: int | tuple[int, int] | None = None  # None = the backbone's default
    fit: str = "letterbox"
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # horizontal flips: cacheable
    # A budgeted run whose first epoch shows it will make fewer optimiser steps than this in its
    # budget keeps only the flips from epoch 2 (training.recipe sets it; 0: never).
    short_run_steps: int = 0
    cache_features: bool = True  # cache frozen-stage outputs when the augmentations allow it
    folds: int = 0  # k-fold cross-validation (0/1 = a single stratified split)
    val_fraction: float = 0.15  # of the parts: picks the best epoch and the threshold
    test_fraction: float = 0.15  # held out from every choice: the headline figures (0 = none)
    group_by: str | None = None  # part field (e.g. "item"): parts sharing its value stay together
    split_field: str | None = None  # part field naming each part's set (train / val / test): a fixed split
    target_ng_recall: float | None = None  # pick the threshold reaching this NG recall on validation
    device: str = "auto"
    warm_start: str | None = None  # model id of this project to start from
    num_threads: int | None = None  # torch threads (None = leave as is)
    encoder: str | None = None  # self-supervised encoder of this project to start from ("latest" or id)
    sampler: str | None = None  # "balanced": draw OK and NG views 50/50 each epoch
    gray_stem: bool | None = None  # one-channel stem (None: when every view is gray, scratch recipe)
    bf16: bool | None = None  # CPU fast paths: channels_last, + bf16 autocast where native (None: recipe)
    amp: bool = True  # CUDA: float16 autocast with a GradScaler (training.accel); no effect on a CPU
    # The classifier head (training.backbones.Head): 0 / 0 is torchvision's one Linear, as before.
    head_dropout: float = 0.0
    head_hidden: int = 0
    # Mask-guided training (training.mask_guide): the weight of the defect-mask loss beside the
    # task's loss (None: its default wherever the project's masks allow; 0: off).
    mask_weight: float | None = None
    # Validate and deliver the moving average of the weights over about this many epochs of
    # steps (training.ema; 0: the weights as they are; None: 1 in the from-scratch recipe, else 0).
    ema_epochs: float | None = None

    def validate(self) -> TrainConfig:
        """Clear errors for bad values (the CLI and the UI show them as they are)."""
        from .backbones import BACKBONES, FREEZE_POLICIES
        from .tasks import TASKS
        if self.task not in TASKS:
            raise TrainingError(f"unknown task {self.task!r} (known: {', '.join(TASKS)})")
        if self.arch not in BACKBONES:
            raise TrainingError(f"unknown architecture {self.arch!r} (known: {', '.join(BACKBONES)})")
        if self.freeze not in FREEZE_POLICIES + ("auto",):
            raise TrainingError(f"unknown freeze policy {self.freeze!r} (expected {', '.join(FREEZE_POLICIES)})")
        if self.optimizer not in OPTIMIZERS:
            raise TrainingError(f"unknown optimizer {self.optimizer!r} (expected {', '.join(OPTIMIZERS)})")
        if self.schedule not in SCHEDULES:
            raise TrainingError(f"unknown schedule {self.schedule!r} (expected {', '.join(SCHEDULES)})")
        if self.device not in DEVICES:
            raise TrainingError(f"unknown device {self.device!r} (expected {', '.join(DEVICES)})")
        if (self.epochs is not None and self.epochs < 1) or self.batch_size < 1 or self.frozen_batch_size < 1:
            raise TrainingError("epochs and batch sizes must be at least 1")
        if self.budget_s is not None and not self.budget_s > 0:
            raise TrainingError(f"time budget must be positive, got {self.budget_s} s")
        if self.recipe not in RECIPES:
            raise TrainingError(f"unknown recipe {self.recipe!r} (expected {', '.join(RECIPES)})")
        if self.sampler not in SAMPLERS:
            raise TrainingError(f"unknown sampler {self.sampler!r} (expected balanced or none)")
        if self.split_field and self.warm_start:
            raise TrainingError("a warm start keeps its parent's split: give a split field or a warm start, not both")
        if self.encoder and self.warm_start:
            raise TrainingError("start from an encoder or warm-start from a model, not both")
        if self.mask_weight is not None and not 0.0 <= self.mask_weight <= 100.0:
            raise TrainingError(f"mask weight must be in [0, 100], got {self.mask_weight}")
        if self.ema_epochs is not None and not 0.0 <= self.ema_epochs <= 100.0:
            raise TrainingError(f"EMA window must be in [0, 100] epochs, got {self.ema_epochs}")
        if not self.lr > 0:
            raise TrainingError(f"learning rate must be positive, got {self.lr}")
        if not 0.0 < self.val_fraction < 0.9:
            raise TrainingError(f"val_fraction must be in (0, 0.9), got {self.val_fraction}")
        if not 0.0 <= self.test_fraction < 0.9 or self.val_fraction + self.test_fraction >= 0.9:
            raise TrainingError(f"test_fraction must be in [0, 0.9) and leave >= 10 % of the parts for "
                                f"training, got val {self.val_fraction} + test {self.test_fraction}")
        if self.folds < 0 or self.folds == 1 or self.folds > 50:
            raise TrainingError(f"folds must be 0 (single split) or 2..50, got {self.folds}")
        if self.target_ng_recall is not None and not 0.0 < self.target_ng_recall <= 1.0:
            raise TrainingError(f"target NG recall must be in (0, 1], got {self.target_ng_recall}")
        if isinstance(self.class_weights, str) and self.class_weights != "balanced":
            raise TrainingError("class_weights must be 'balanced', a list (one weight per output) or None")
        self.head()
        size = self.input_hw(224)
        if min(size) < 16 or max(size) > 2048:
            raise TrainingError(f"input size {size} out of range 16..2048")
        return self

    def head(self) -> Any:
        """The classifier head (training.backbones.Head, validated; imported here: torch)."""
        from .backbones import Head
        return Head(float(self.head_dropout), int(self.head_hidden)).validate()

    def input_hw(self, default: int | tuple[int, int]) -> tuple[int, int]:
        s = self.input_size if self.input_size is not None else default
        if isinstance(s, int):
            return (s, s)
        return (int(s[0]), int(s[1]))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(d["input_size"], tuple):
            d["input_size"] = list(d["input_size"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TrainingError(f"unknown training options: {', '.join(sorted(unknown))}")
        d = dict(d)
        if isinstance(d.get("augment"), dict):
            d["augment"] = AugmentConfig(**d["augment"])
        if isinstance(d.get("input_size"), list):
            d["input_size"] = tuple(d["input_size"])
        return cls(**d)
