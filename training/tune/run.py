"""`okng tune`: Bayesian search of training settings with Optuna, then the best trial's model.

``tune(spec, progress, should_stop)`` is the long job (the CLI and the Tune panel run it; no Qt).
Each trial draws settings from the space (training.tune.space) with Optuna's TPE sampler and
trains them with the loop's own ``fit_split`` on the same train / validation split ``okng train``
uses; the objective is the validation figure the loop picks its epoch by (balanced accuracy, or
macro F1 for class models). The test parts are never looked at while searching. Every epoch's
validation figure is reported to the trial, and Optuna's median pruner stops a trial that trails
the median of earlier trials at the same epoch. Trials register nothing.

When the study holds ``trials`` finished trials (complete or pruned; or the timeout passed),
the best trial's settings train the final model with ``training.loop.train`` (test figures,
registry), and its card's ``extra["tune"]`` names the study, its id and the trial.

Stopping (Cancel, Ctrl+C) fails the running trial and queues its settings again, so the next
run of the same command resumes the study where it stood; a killed process is caught by the
study's heartbeats (training.tune.study).
"""
from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeling.progress import Progress, ProgressFn, StopFn

from ..card import EpochMetrics
from ..errors import TrainingError
from .space import Param, config_values, parse_space, suggest
from .study import (
    TrialRow,
    counts,
    default_storage,
    default_study_name,
    importances,
    open_storage,
    open_study,
    redact,
    trial_rows,
)

DEFAULT_TRIAL_EPOCHS = 10  # a trial with neither epochs nor a budget given
# Decoded snapshots held across trials, one per input size drawn: the default space has three
# sizes, and views are kept in their native dtype (bsdata at 128 px: ~110 MB each).
SNAPSHOTS_KEPT = 4
# Machine-local settings: a study shared by several machines must not differ in them.
_LOCAL = ("num_threads", "device")


@dataclass(frozen=True)
class TuneSpec:
    """One search: the project, the fixed training values (task, arch, epochs or budget_s per
    trial, seed, ... as `okng train` takes them), and the study."""

    project_path: str
    values: dict[str, Any] = field(default_factory=dict)
    trials: int = 12
    timeout_s: float | None = None  # no new trial starts after this (the running one finishes)
    space: dict[str, Any] = field(default_factory=dict)  # a --space file's ranges over the defaults
    storage: str | None = None  # Optuna RDB URL; None: SQLite next to the project
    study: str | None = None  # None: PROJECT-TASK
    final: bool = True  # train and register the best trial's model (False: a helper machine)
    heartbeat_s: int = 10
    grace_s: int = 60  # a trial silent this long was killed: failed and queued again
    startup_trials: int = 3  # random draws before TPE, trials before the pruner judges
    warmup_epochs: int = 1  # epochs a trial always gets before it may be pruned


@dataclass(frozen=True)
class TuneState:
    """Payload of the Progress sent after each trial (stage "trial"): the table and the plots."""

    trials: list[TrialRow]
    importances: dict[str, float]
    metric: str


@dataclass
class TuneResult:
    study: str
    study_id: int | None
    storage: str  # redacted
    metric: str
    trials: list[TrialRow] = field(default_factory=list)
    best: TrialRow | None = None
    importances: dict[str, float] = field(default_factory=dict)
    model_id: str | None = None
    cancelled: bool = False
    seconds: float = 0.0
    final_metrics: dict[str, Any] = field(default_factory=dict)
    default_values: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("trials", "best")}
        d["trials"] = [t.to_dict() for t in self.trials]
        d["best"] = self.best.to_dict() if self.best else None
        d["counts"] = counts(self.trials)
        return d


class _Stopped(Exception):
    """A stop request during a trial (not a pruning)."""


def metric_name(task: str) -> str:
    return "val_balanced_accuracy" if task == "verdict" else "val_macro_f1"


def _epoch_value(task: str, row: EpochMetrics) -> float:
    if task != "verdict" and row.val_macro_f1 is not None:
        return float(row.val_macro_f1)
    return float(row.val_balanced_accuracy)


def _final_value(task: str, rep: dict[str, Any]) -> float:
    return float(rep["balanced_accuracy"] if task == "verdict" else rep["macro_f1"])


class _Snapshots:
    """Decoded snapshots by input size and fit: trials drawing the same reuse one (reading and
    resizing every view costs more than a short trial). The fit is the trial's: an input_square
    draw stretches (resize) whatever the study's default fit."""

    def __init__(self, path: str, task: str, group_by: str | None) -> None:
        self.path, self.task, self.group_by = path, task, group_by
        self._kept: OrderedDict[tuple[tuple[int, int], str], Any] = OrderedDict()

    def get(self, size: tuple[int, int], fit: str, progress: ProgressFn | None, should_stop: StopFn | None) -> Any:
        from ..snapshot import load_snapshot
        key = (size, fit)
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key]
        snap = load_snapshot(self.path, size, fit, progress, should_stop, task=self.task, group_by=self.group_by)
        if snap is None:
            raise _Stopped()
        self._kept[key] = snap
        while len(self._kept) > SNAPSHOTS_KEPT:
            self._kept.popitem(last=False)
        return snap


def _settings(default: Any, space: dict[str, Param]) -> dict[str, Any]:
    cfg = {k: v for k, v in default.to_dict().items() if k not in _LOCAL}
    return {"config": cfg, "space": {k: p.to_dict() for k, p in space.items()}}


def _recipe_square(default: Any) -> int | None:
    """The side of the recipe's stretched square input, None when it is not one."""
    size = default.input_size
    return size[0] if default.fit == "resize" and size and size[0] == size[1] else None


def with_recipe_square(space: dict[str, Param], default: Any) -> dict[str, Param]:
    """The space with the recipe's own square among input_square's choices (a small project's
    recipe picks a side under 128 px), so the seeded first trial can be exactly the recipe."""
    sq, side = space.get("input_square"), _recipe_square(default)
    if sq is None or sq.choices is None or side is None or side in sq.choices:
        return space
    return {**space, "input_square": dataclasses.replace(sq, choices=tuple(sorted({*sq.choices, side})))}


def _seed_trial(study: Any, default: Any, space: dict[str, Param]) -> None:
    """A new study's first trial is the recipe's own settings (those the space can express), so
    the search starts from what `okng train` would do and its best is never a step back on
    validation; the rest of that trial is drawn."""
    first = {"lr": default.lr, "weight_decay": default.weight_decay, "freeze": default.freeze,
             "head_dropout": 0.0, "head_hidden": 0}
    side = _recipe_square(default)
    if side is not None:
        first["input_square"] = side  # 224 on most projects
    keep = {}
    for k, v in first.items():
        p = space.get(k)
        if p is None or p.fixed():
            continue
        if (p.choices is not None and v in p.choices) or \
                (p.choices is None and p.low is not None and p.high is not None and p.low <= v <= p.high):
            keep[k] = v
    study.enqueue_trial(keep, user_attrs={"okng_seed": "the recipe's settings"})


def tune(spec: TuneSpec, progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> TuneResult:
    """Run (or resume) the study up to spec.trials finished trials, then train the best trial's
    model into the project (see the module's docstring)."""
    import optuna
    import torch

    from ..backbones import get_backbone
    from ..loop import Cancelled, fit_split
    from ..recipe import project_views, resolve
    from ..session import make_config
    from ..splits import draw_split
    from ..start import initializer as _initializer
    from ..start import task_outputs

    t0 = time.monotonic()
    if spec.trials < 1:
        raise TrainingError("a study needs at least 1 trial")
    path = str(spec.project_path)
    values = {**spec.values, "folds": 0}
    task = str(values.get("task") or "verdict")
    if task == "segment":
        raise TrainingError("okng tune searches classifier settings: use --task verdict, classes or multilabel")
    base = make_config(values)
    if base.epochs is None and base.budget_s is None:
        base = dataclasses.replace(base, epochs=DEFAULT_TRIAL_EPOCHS)
    if base.num_threads:
        torch.set_num_threads(base.num_threads)
    backbone = get_backbone(base.arch)
    warnings: list[str] = []
    n_out = task_outputs(path, task)
    _, pretrained, _ = _initializer(backbone, base, Path(path), warnings, n_out)
    views = project_views(path)
    # The default configuration: what `okng train` runs with these values (the recipe resolved);
    # a trial changes only what it draws (recipe "manual": the loop takes its values as they are).
    resolved, _ = resolve(base, pretrained, views, [])
    default = dataclasses.replace(resolved, recipe="manual")
    shapes, _gray = views()
    space = with_recipe_square(parse_space(spec.space, pretrained), default)
    url = spec.storage or default_storage(path)
    name = spec.study or default_study_name(path, task)
    storage = open_storage(url, spec.heartbeat_s, spec.grace_s)
    study = open_study(storage, name, default.seed, spec.startup_trials, spec.warmup_epochs, _settings(default, space))
    if not study.trials:
        _seed_trial(study, default, space)
    metric = metric_name(task)
    result = TuneResult(name, storage.get_study_id_from_name(name), redact(url), metric, warnings=warnings,
                        default_values={k: v for k, v in default.to_dict().items() if k not in _LOCAL})
    snaps = _Snapshots(path, task, default.group_by)
    stopped = (lambda: bool(should_stop())) if should_stop is not None else (lambda: False)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

    def config_of(params: dict[str, Any]) -> Any:
        return dataclasses.replace(default, **config_values(params, shapes)).validate()

    def objective(trial: Any) -> float:
        try:
            return run_trial(trial)
        except _Stopped:
            trial.set_user_attr("okng_stopped", True)
            raise

    def run_trial(trial: Any) -> float:
        cfg = config_of(suggest(trial, space))
        snap = snaps.get(cfg.input_hw(backbone.input_size), cfg.fit, progress, should_stop)
        # The split `okng train` would use with these values (a split field, a warm start's parent):
        # trials validated on other parts than the final model would rank settings on other data.
        split = draw_split(path, cfg, [p.part_id for p in snap.parts], snap.part_targets(), snap.part_groups())
        trial.set_user_attr("split", {"train": len(split.train), "val": len(split.val), "test": len(split.test),
                                      "split_field": cfg.split_field})
        init, _, _ = _initializer(backbone, cfg, Path(path), [], n_out)
        pruned = [False]
        label = f"trial {trial.number} ({len(study.get_trials(deepcopy=False, states=finished)) + 1}/{spec.trials}): "

        def relay(p: Progress) -> None:
            if p.stage == "eval" and isinstance(p.payload, EpochMetrics):
                trial.report(_epoch_value(task, p.payload), p.payload.epoch)
                pruned[0] = pruned[0] or trial.should_prune()
            if progress is not None:
                progress(p)

        try:
            _, rep, _, best_epoch, _ = fit_split(snap, split.train, split.val, cfg, init, relay,
                                                 lambda: pruned[0] or stopped(), label=label)
        except Cancelled:
            if pruned[0]:
                raise optuna.TrialPruned() from None
            raise _Stopped() from None
        trial.set_user_attr("best_epoch", int(best_epoch))
        return _final_value(task, rep)

    def after_trial(study: Any, _trial: Any) -> None:
        if progress is not None:
            rows = trial_rows(study)
            done = sum(1 for r in rows if r.state in ("COMPLETE", "PRUNED"))
            last = rows[-1]
            msg = f"trial {last.number} {last.state.lower()}" + (f": {last.value:.4f}" if last.value is not None else "")
            progress(Progress("trial", min(done, spec.trials), spec.trials, msg,
                              TuneState(rows, importances(study), metric)))

    done = len(study.get_trials(deepcopy=False, states=finished))
    try:
        if done < spec.trials and not stopped():
            study.optimize(objective, n_trials=spec.trials - done, timeout=spec.timeout_s, catch=(TrainingError,),
                           callbacks=[optuna.study.MaxTrialsCallback(spec.trials, states=finished), after_trial],
                           gc_after_trial=True)
    except _Stopped:
        result.cancelled = True
        # The stopped trial's settings come first when the study is resumed.
        last = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("okng_stopped")]
        if last:
            study.enqueue_trial(last[-1].params, user_attrs={"okng_retry_of": last[-1].number})
    result.trials = trial_rows(study)
    result.importances = importances(study)
    complete = [t for t in result.trials if t.state == "COMPLETE" and t.value is not None]
    if complete:
        result.best = max(complete, key=lambda r: (r.value, -r.number))
    if result.cancelled or not spec.final or result.best is None or stopped():
        result.cancelled = result.cancelled or stopped()
        result.seconds = time.monotonic() - t0
        return result
    _final_model(spec, study, result, config_of(_full_params(space, result.best.params)), progress, should_stop)
    result.seconds = time.monotonic() - t0
    return result


def _full_params(space: dict[str, Param], drawn: dict[str, Any]) -> dict[str, Any]:
    """A trial's settings: what it drew and the space's fixed values (Optuna records only the former)."""
    return {**{k: p.value for k, p in space.items() if p.fixed()}, **drawn}


def _final_model(spec: TuneSpec, study: Any, result: TuneResult, cfg: Any, progress: ProgressFn | None,
                 should_stop: StopFn | None) -> None:
    """Train and register the best trial's settings (once per best trial: a finished study run
    again reuses its model)."""
    from labeling.store import Project

    from ..loop import train
    best = result.best
    assert best is not None
    done = study.user_attrs.get("okng_final") or {}
    if done.get("trial") == best.number and done.get("model_id") in {m["id"] for m in Project.open(
            spec.project_path, readonly=True).models()}:
        result.model_id = done["model_id"]
        return
    extra = {"tune": {"study": result.study, "study_id": result.study_id, "storage": result.storage,
                      "trial": best.number, "value": best.value, "metric": result.metric, "params": best.params,
                      "trials": counts(result.trials)}}
    if progress is not None:
        progress(Progress("final", 0, 1, f"training the best trial's settings (trial {best.number})"))
    res = train(spec.project_path, cfg, progress, should_stop, extra=extra)
    if res.cancelled or res.model_id is None:
        result.cancelled = True
        return
    result.model_id = res.model_id
    result.final_metrics = {k: v for k, v in res.metrics.items() if k in ("val", "test", "split")}
    result.warnings.extend(res.warnings)
    study.set_user_attr("okng_final", {"trial": best.number, "model_id": res.model_id})
