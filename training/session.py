"""The training session: what the Train view and `okng train` both run.

``make_config(values)`` is the ONE way a TrainConfig is built from plain form values (the GUI's
form, the CLI's arguments, the demo's quick model), so a setting means the same thing wherever
it is chosen. ``run_session(spec, progress, should_stop)`` trains (it is what a child process
runs: this module imports no Qt); ``preview`` renders augmented samples for the form.

Form values are TrainConfig fields plus two conveniences:
- ``augment``: a preset name ("none", "default", "flips", "light", "strong"), a list of toggle
  names (AUG_TOGGLES: what the form's check boxes are), or an AugmentConfig;
- ``lr`` None or absent: the optimizer's default (OPTIMIZER_LR).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeling.progress import ProgressFn, StopFn

from .config import AugmentConfig, TrainConfig
from .errors import TrainingError
from .recipe import SCRATCH_AUGMENT, planned_scratch_recipe

# A toggle of the form -> the AugmentConfig fields it sets. Strengths are the `light` and
# `strong` presets' (the form's rotation was 15 degrees, the CLI's `light` 10: one value now).
_LIGHT, _STRONG = AugmentConfig.preset("light"), AugmentConfig.preset("strong")
AUG_TOGGLES: dict[str, dict[str, float]] = {
    "hflip": {"hflip": 0.5}, "vflip": {"vflip": 0.5}, "rotate": {"rotate": _LIGHT.rotate},
    "crop": {"crop": _LIGHT.crop}, "shift": {"shift": 0.06},
    "brightness_contrast": {"brightness": _LIGHT.brightness, "contrast": _LIGHT.contrast},
    "hsv": {"hue": _STRONG.hue, "saturation": _STRONG.saturation, "value": _STRONG.value},
    "noise": {"noise": _STRONG.noise}, "clahe": {"clahe": _STRONG.clahe},
}
OPTIMIZER_LR = {"adam": 1e-3, "adamw": 2e-3, "sgd": 1e-2}
QUICK = {"arch": "mobilenet_v3_small", "freeze": "none", "epochs": 3, "batch_size": 16, "input_size": 128,
         "patience": 0, "seed": 0, "num_threads": 1,
         "recipe": "manual"}  # the demo's few-seconds model (live sort --demo)


def augment_from(value: Any) -> AugmentConfig:
    """A preset name, a list of toggle names or an AugmentConfig -> AugmentConfig."""
    if isinstance(value, AugmentConfig):
        return value
    if isinstance(value, str):
        return AugmentConfig.preset(value)
    if isinstance(value, dict):
        return AugmentConfig(**value)
    aug: dict[str, float] = {}
    for name in value:
        if name not in AUG_TOGGLES:
            raise TrainingError(f"unknown augmentation {name!r} (known: {', '.join(AUG_TOGGLES)})")
        aug.update(AUG_TOGGLES[name])
    return dataclasses.replace(AugmentConfig.none(), **aug)


def make_config(values: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of plain form values (validated; unknown names are an error)."""
    kw = dict(values)
    if "augment" in kw:
        kw["augment"] = augment_from(kw["augment"])
    if kw.get("lr") is None:
        kw["lr"] = OPTIMIZER_LR.get(kw.get("optimizer", "adam"), OPTIMIZER_LR["adam"])
    if kw.get("folds", 0) <= 1:
        kw["folds"] = 0  # one stratified split
    if isinstance(kw.get("input_size"), list):
        kw["input_size"] = tuple(kw["input_size"])
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(kw) - names
    if unknown:
        raise TrainingError(f"unknown training options: {', '.join(sorted(unknown))}")
    return TrainConfig(**kw).validate()


@dataclass(frozen=True)
class TrainSpec:
    """One training run: which project, with which form values (plain data: it is pickled to
    the child process)."""

    project_path: str
    values: dict[str, Any] = field(default_factory=dict)


def _train_classifier(project_path: str, values: dict[str, Any], progress: ProgressFn | None,
                      should_stop: StopFn | None, task: str = "verdict") -> Any:
    """A classifier of training/tasks.py (verdict, classes, multilabel): the loop, its task in the config."""
    from .loop import train
    return train(project_path, make_config({**values, "task": task}), progress=progress, should_stop=should_stop)


def _train_verdict(project_path: str, values: dict[str, Any], progress: ProgressFn | None,
                   should_stop: StopFn | None) -> Any:
    return _train_classifier(project_path, values, progress, should_stop)


def _train_segment(project_path: str, values: dict[str, Any], progress: ProgressFn | None,
                   should_stop: StopFn | None) -> Any:
    from .segment.config import SegConfig
    from .segment.train import train
    return train(project_path, SegConfig.from_values(values), progress=progress, should_stop=should_stop)


# The model card's task -> how a run of it trains (form values in, TrainResult out). A new
# task is one entry here.
# The classifier tasks (training/tasks.py: verdict, classes, multilabel) share the loop.
TRAINERS: dict[str, Any] = {"verdict": _train_verdict,
                            "classes": functools.partial(_train_classifier, task="classes"),
                            "multilabel": functools.partial(_train_classifier, task="multilabel"),
                            "segment": _train_segment}
DATA_PARALLEL = ("verdict", "classes", "multilabel")  # the loop of training/loop.py (training.distributed)


def run_session(spec: TrainSpec, progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> Any:
    """Build the config and train the task of the values ("task", default "verdict"); returns
    training.loop.TrainResult (with the stored card)."""
    values = dict(spec.values)
    task = values.pop("task", None) or "verdict"
    if task not in TRAINERS:
        raise TrainingError(f"unknown task {task!r} (known: {', '.join(TRAINERS)})")
    if task not in DATA_PARALLEL:
        from .distributed import env_world
        if env_world()[1] > 1:
            raise TrainingError(f"data-parallel training (torchrun, --nproc) covers the tasks "
                                f"{', '.join(DATA_PARALLEL)}; train {task} with one process")
    return TRAINERS[task](spec.project_path, values, progress, should_stop)


def quick_train(project_path: str | Path, progress: ProgressFn | None = None,
                should_stop: StopFn | None = None, **overrides: Any) -> Any:
    """The demo's small model, a few seconds of training (run_session with QUICK values)."""
    return run_session(TrainSpec(str(project_path), {**QUICK, **overrides}), progress, should_stop)


def preview(project: Any, values: dict[str, Any], n: int = 6, progress: ProgressFn | None = None,
            should_stop: StopFn | None = None) -> list[Any]:
    """n augmented samples of the first labelled part (any part when none is labelled), as the
    training pipeline makes them; [] for a project without parts."""
    from .preview import preview_augmentations
    parts = [p for p in project.parts() if p.views and p.label is not None] or \
        [p for p in project.parts() if p.views]
    if not parts:
        return []
    config = make_config(values)
    if planned_scratch_recipe(values):  # what the run will do: the recipe's augmentation replaces the form's
        config.augment = SCRATCH_AUGMENT
    return preview_augmentations(project, parts[0].id, config, n)

