"""The segmentation run's typed config (the CLI's and the Train view's values for task "segment")."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import TrainingError
from .models import DECODERS, get_encoder


@dataclass
class SegConfig:
    encoder: str = "resnet18"
    decoder: str = "unet"
    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-3
    input_size: tuple[int, int] = (256, 256)  # (h, w); both multiples of 32 (the encoder's stride)
    val_fraction: float = 0.2
    test_fraction: float = 0.15  # held out from every choice (training.splits, as classifiers): the headline
    group_by: str | None = None  # part field (e.g. "item"): parts sharing its value stay on one side
    seed: int = 0
    augment: bool = True  # flips / quarter turns of image and mask together
    pretrained: bool = True  # False: encoder from scratch even when ImageNet weights exist
    warm_start: str | None = None  # a segment model of the project to continue from
    patience: int = 0  # epochs without a better validation dice before stopping (0: never)
    time_budget_s: float | None = None  # stop starting epochs after this many seconds (benchmarks)
    device: str = "auto"
    num_threads: int | None = None

    def validate(self) -> SegConfig:
        get_encoder(self.encoder)
        if self.decoder not in DECODERS:
            raise TrainingError(f"unknown decoder {self.decoder!r} (known: {', '.join(DECODERS)})")
        h, w = (int(v) for v in self.input_size)
        if h % 32 or w % 32 or h < 32 or w < 32:
            raise TrainingError(f"segmentation input {h}x{w}: both sides must be multiples of 32")
        self.input_size = (h, w)
        if self.epochs < 1 or self.batch_size < 1:
            raise TrainingError("epochs and batch size must be at least 1")
        if not 0.0 < self.val_fraction < 1.0:
            raise TrainingError("val_fraction must be between 0 and 1")
        if not 0.0 <= self.test_fraction < 0.9 or self.val_fraction + self.test_fraction >= 0.9:
            raise TrainingError(f"test_fraction must be in [0, 0.9) and leave >= 10 % of the parts for "
                                f"training, got val {self.val_fraction} + test {self.test_fraction}")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> SegConfig:
        """Plain form values -> config (an int input size means a square input; unknown names are an error)."""
        kw = {k: v for k, v in values.items() if v is not None}
        if isinstance(kw.get("input_size"), int):
            kw["input_size"] = (kw["input_size"], kw["input_size"])
        if "input_size" in kw:
            kw["input_size"] = tuple(kw["input_size"])
        names = {f.name for f in fields(cls)}
        unknown = set(kw) - names
        if unknown:
            raise TrainingError(f"unknown segmentation options: {', '.join(sorted(unknown))}")
        return cls(**kw).validate()
