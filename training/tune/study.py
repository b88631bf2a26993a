"""Where a study lives and how it is read: Optuna's RDB storage, the study name, trial rows.

The default storage is a SQLite file next to the project (``bolts.okng-tune.sqlite3`` beside
``bolts.okng``), not inside the HDF5 file: the project has one writer at a time (its lock), while
Optuna writes a trial's every epoch and heartbeat, possibly from several processes; a separate
SQLite file takes that traffic and keeps the project untouched until the final model is stored.
A shared URL (``postgresql://user:pw@host/db``) lets several machines work on one study.

Heartbeats make a study resumable after a crash or a kill: a running trial beats every
``heartbeat_s``; a trial silent for ``grace_s`` is marked FAIL by the next process that starts a
trial, and Optuna's RetryHeartbeatStaleTrialCallback queues its parameters again.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TrainingError

SUFFIX = ".okng-tune.sqlite3"


def default_storage(project_path: str | Path) -> str:
    p = Path(project_path).resolve()
    return f"sqlite:///{p.with_name(p.stem + SUFFIX)}"


def default_study_name(project_path: str | Path, task: str) -> str:
    """One study per project and task (a class model and a verdict model are different searches)."""
    return f"{Path(project_path).stem}-{task}"


def redact(url: str) -> str:
    """A storage URL fit for logs and cards: the password replaced."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str, heartbeat_s: int, grace_s: int) -> Any:
    import warnings

    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        # Heartbeat thread and trial thread write the same file: wait for the lock instead of failing.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 30}}
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # progress goes through Progress, not logging
    with warnings.catch_warnings():
        # Heartbeats are marked experimental since Optuna 2.8; they are what makes a killed run resumable.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # A few beats fit in the grace period whatever the two are set to.
        beat = max(1, min(int(heartbeat_s), int(grace_s) // 3))
        return RDBStorage(url, heartbeat_interval=beat, grace_period=max(2, int(grace_s)),
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2), **kwargs)


def open_study(storage: Any, name: str, seed: int, startup_trials: int, warmup_epochs: int,
               settings: dict[str, Any]) -> Any:
    """Create or load the study (TPE, median pruning). ``settings`` (the fixed training values and
    the space) are stored with a new study; a study made with other settings is refused, since
    its trials would not be comparable with the new ones."""
    import optuna
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    old = study.user_attrs.get("okng_settings")
    if old is None:
        study.set_user_attr("okng_settings", settings)
    elif old != settings:
        flat_old, flat_new = _flat(old), _flat(settings)
        diff = sorted(k for k in set(flat_old) | set(flat_new) if flat_old.get(k) != flat_new.get(k))
        raise TrainingError(f"study {name!r} was started with other settings ({', '.join(diff)}): resume it with "
                            "the same ones, or name a new study with --study")
    return study


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and prefix.count(".") < 1:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@dataclass(frozen=True)
class TrialRow:
    """One trial as the CLI and the Tune panel show it."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    value: float | None
    params: dict[str, Any] = field(default_factory=dict)
    epochs: int = 0  # epochs reported (a pruned trial stopped after these)
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def trial_rows(study: Any) -> list[TrialRow]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        secs = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete is not None and t.datetime_start is not None else None
        value = t.value if t.value is not None and math.isfinite(t.value) else None
        rows.append(TrialRow(t.number, t.state.name, value, dict(t.params), len(t.intermediate_values), secs))
    return rows


def counts(rows: list[TrialRow]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r.state] = out.get(r.state, 0) + 1
    return out


def importances(study: Any) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA); {} before two trials have completed (nothing to
    compare) or when every completed trial drew the same values."""
    import optuna
    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < 2:
        return {}
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}
