"""The search space of `okng tune`: which training settings a trial draws, and over what ranges.

A space is a dict name -> Param. The defaults follow the corrosion study (learning rate, dropout
and dense units of the head) plus what decides a from-scratch run on a small CPU: weight decay,
the freeze policy, augmentation strength and input size. A ``--space`` file (JSON or YAML) holds
the same names and replaces the ranges it names; a plain value fixes a setting (not searched).

    lr: {low: 1.0e-4, high: 1.0e-2, log: true}
    head_hidden: {choices: [0, 128, 256]}
    input_square: 160         # fixed

Input size: from scratch the space searches ``input_square`` (views stretched into a square, as
`okng train`'s from-scratch recipe does: KolektorSDD at aspect-kept 320x128 never left validation
0.47-0.68, at 224x224 stretched it reached 0.94); with pretrained features ``input_short`` (the
short side, aspect kept). A space file naming one of them replaces the other.

No optuna import here: a trial is anything with suggest_float / suggest_int / suggest_categorical.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import AugmentConfig
from ..errors import TrainingError
from ..recipe import input_size_for, square_size_for

# Strength 1: what an augmentation slider's far end means. Flips are always on (free for parts
# that have no up or left); the rest scale with the strength.
AUGMENT_AT_1 = AugmentConfig(hflip=0.5, vflip=0.5, rotate=20.0, crop=0.15, brightness=0.3, contrast=0.3,
                             shift=0.1, noise=0.02)
_FLIPS = ("hflip", "vflip")


@dataclass(frozen=True)
class Param:
    """One searched setting: a float/int range (log scale or not) or a list of choices; or a
    fixed ``value``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None
    value: Any = None

    def fixed(self) -> bool:
        return self.choices is None and self.low is None

    def suggest(self, trial: Any, name: str) -> Any:
        if self.fixed():
            return self.value
        if self.choices is not None:
            return trial.suggest_categorical(name, list(self.choices))
        if self.integer:
            return trial.suggest_int(name, int(self.low or 0), int(self.high or 0), log=self.log)
        return trial.suggest_float(name, float(self.low or 0.0), float(self.high or 0.0), log=self.log)

    def to_dict(self) -> Any:
        if self.fixed():
            return self.value
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log, **({"integer": True} if self.integer else {})}


PARAMS = ("lr", "weight_decay", "freeze", "head_dropout", "head_hidden", "augment_strength", "input_short",
          "input_square")
_SIZES = ("input_short", "input_square")  # one of them per space


def default_space(pretrained: bool) -> dict[str, Param]:
    """Without pretrained features every layer trains (a frozen random layer learns nothing), so
    the freeze policy is searched only when there is something to freeze."""
    return {
        "lr": Param(1e-4, 1e-2, log=True),
        "weight_decay": Param(1e-6, 1e-1, log=True),
        "freeze": Param(choices=("head", "last-block", "none")) if pretrained else Param(value="none"),
        "head_dropout": Param(0.0, 0.5),
        "head_hidden": Param(choices=(0, 128, 256, 512)),
        "augment_strength": Param(0.0, 1.0),
        **({"input_short": Param(choices=(160, 192, 224))} if pretrained else
           {"input_square": Param(choices=(128, 160, 224))}),
    }


def _param(name: str, raw: Any) -> Param:
    if not isinstance(raw, dict):
        return Param(value=raw)
    unknown = set(raw) - {"low", "high", "log", "choices", "int", "integer"}
    if unknown:
        raise TrainingError(f"search space {name}: unknown keys {', '.join(sorted(unknown))} "
                            "(expected low/high/log/int or choices)")
    if "choices" in raw:
        choices = tuple(raw["choices"])
        if not choices:
            raise TrainingError(f"search space {name}: empty choices")
        return Param(choices=choices)
    try:
        low, high = float(raw["low"]), float(raw["high"])
    except (KeyError, TypeError, ValueError):
        raise TrainingError(f"search space {name}: a range needs numbers low and high") from None
    if not low <= high or (raw.get("log") and low <= 0):
        raise TrainingError(f"search space {name}: need low <= high (and low > 0 on a log scale)")
    integer = bool(raw.get("int", raw.get("integer", name in ("head_hidden", "input_short"))))
    return Param(low, high, bool(raw.get("log", False)), integer)


def parse_space(raw: dict[str, Any], pretrained: bool) -> dict[str, Param]:
    """The default space with a --space file's entries put over it (unknown names are an error)."""
    unknown = set(raw) - set(PARAMS)
    if unknown:
        raise TrainingError(f"search space: unknown settings {', '.join(sorted(unknown))} "
                            f"(known: {', '.join(PARAMS)})")
    space = default_space(pretrained)
    if any(size in raw for size in _SIZES):  # a file naming one input size rule replaces the other
        for size in _SIZES:
            space.pop(size, None)
    space.update({k: _param(k, v) for k, v in raw.items()})
    return space


def read_space_file(path: str | Path) -> dict[str, Any]:
    """A --space file: JSON, or YAML (by its suffix .yaml / .yml)."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # a parse error of either format (json, yaml), said in one line
        raise TrainingError(f"{p.name}: not a readable search space ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if not isinstance(data, dict):
        raise TrainingError(f"{p.name}: a search space is a mapping of setting -> range")
    return data


def augment_at(strength: float) -> AugmentConfig:
    """Flips always; rotation, crop, shift, brightness/contrast and noise scaled by the strength."""
    s = min(1.0, max(0.0, float(strength)))
    scaled = {f.name: (getattr(AUGMENT_AT_1, f.name) if f.name in _FLIPS else getattr(AUGMENT_AT_1, f.name) * s)
              for f in dataclasses.fields(AugmentConfig)}
    return AugmentConfig(**scaled)


def suggest(trial: Any, space: dict[str, Param]) -> dict[str, Any]:
    """The trial's draw: {name: value} for every setting of the space (fixed ones included)."""
    return {name: space[name].suggest(trial, name) for name in PARAMS if name in space}


def config_values(params: dict[str, Any], shapes: list[tuple[int, int]]) -> dict[str, Any]:
    """TrainConfig fields of a draw: the strength becomes an AugmentConfig, the short side an
    (h, w) input from the views' median shape (aspect kept, never upscaled: training.recipe), the
    square side a stretched (side, side) input (fit resize, never above the median short side)."""
    out: dict[str, Any] = {}
    for k in ("lr", "weight_decay", "freeze", "head_dropout"):
        if params.get(k) is not None:
            out[k] = params[k]
    if params.get("head_hidden") is not None:
        out["head_hidden"] = int(params["head_hidden"])
    if params.get("augment_strength") is not None:
        out["augment"] = augment_at(params["augment_strength"])
    if params.get("input_short") is not None:
        out["input_size"] = input_size_for(shapes, int(params["input_short"]))
    if params.get("input_square") is not None:
        out["input_size"], out["fit"] = square_size_for(shapes, int(params["input_square"])), "resize"
    return out
