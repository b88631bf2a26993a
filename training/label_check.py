"""The out-of-fold label check as a session: K models, each part predicted by the one that never
saw it, then confident learning (label_issues.py) over those predictions.

`run_label_check(spec, progress, should_stop)` is what `okng label-issues` runs (and what a view
would run in a child process). Its findings are recorded in the project (Project.set_label_checks)
so the Label queue can filter and order "likely label errors"; a part relabelled after the check
drops out of that filter by itself. A multilabel check reads each part's per-class probability as
the largest over its views (a part holds a class when any view shows it) and flags the classes the
other folds read the other way (label_issues.find_multilabel_issues).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labeling.progress import Progress, ProgressFn, StopFn
from labeling.store import Project
from labeling.types import LabelCheck, Verdict

from .config import TrainConfig
from .errors import TrainingError
from .label_issues import find_label_issues, find_multilabel_issues


@dataclass(frozen=True)
class LabelCheckSpec:
    project_path: str
    values: dict[str, Any] = field(default_factory=dict)  # training form values (task, arch, epochs...)
    folds: int = 5
    record: bool = True  # write the findings into the project
    user: str = "label-check"


@dataclass
class LabelIssueRow:
    part_id: int
    name: str
    given: str  # "OK", "NG" or the class name (multilabel: the classes joined by " + ")
    suggested: str
    self_confidence: float
    margin: float
    disputed: list[str] = field(default_factory=list)  # multilabel: "+name" should hold it, "-name" should not


@dataclass
class LabelCheckResult:
    task: str
    folds: int
    parts: int
    issues: list[LabelIssueRow]
    recorded: bool
    run: str
    seconds: float
    stopped: bool = False
    warnings: list[str] = field(default_factory=list)  # what the folds' training said (e.g. from scratch)
    group_by: str | None = None  # the part field whose values stayed in one fold
    fold_parts: list[int] = field(default_factory=list)  # parts validated by each fold

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "folds": self.folds, "parts": self.parts, "recorded": self.recorded,
                "run": self.run, "seconds": round(self.seconds, 2), "stopped": self.stopped,
                "warnings": list(self.warnings), "group_by": self.group_by, "fold_parts": list(self.fold_parts),
                "issues": [r.__dict__ for r in self.issues]}


def fold_config(config: TrainConfig, folds: int) -> TrainConfig:
    """The config each fold trains with: a time budget (given, or the from-scratch recipe's
    default) is the whole check's, shared by the folds as cross-validation shares it
    (training.loop.cross_validate); epochs stay per fold."""
    if config.budget_s is None:
        return config
    return dataclasses.replace(config, budget_s=config.budget_s / folds)


def out_of_fold_probabilities(spec: LabelCheckSpec, progress: ProgressFn | None = None,
                              should_stop: StopFn | None = None, warnings: list[str] | None = None,
                              ) -> tuple[Any, np.ndarray, np.ndarray, list[int]] | None:
    """(snapshot, part labels (n,) or (n, K) multilabel, out-of-fold probabilities (n, outputs),
    parts per fold); None when stopped. `warnings` receives what the run says about itself (trained from scratch,
    a frozen policy without weights...), as `okng train` says it."""
    from .grouping import resolve as resolve_group_by
    from .loop import Cancelled, fit_split
    from .session import make_config
    from .splits import kfold
    from .start import prepare
    if spec.folds < 2:
        raise TrainingError("a label check needs --folds 2 or more")
    # Each fold's model is trained as `okng train` trains one (training.start.prepare: the same
    # starting weights, the same from-scratch recipe without them, the same grouping): a check
    # whose folds trained frozen random layers (the old default, freeze last-block offline)
    # judged labels with a model that had barely learnt.
    # group_by "auto" (the window's check): the parts' item field where they have one, as the CLI
    group_by, _ = resolve_group_by(spec.values.get("group_by"), spec.project_path)
    config = make_config({**spec.values, "group_by": group_by, "folds": 0, "val_fraction": 1.0 / spec.folds,
                          "test_fraction": 0.0})
    start = prepare(Path(spec.project_path), config, progress, should_stop, 1)
    if warnings is not None:
        warnings.extend(start.warnings)
    snap, init = start.snap, start.init
    if snap is None:
        return None
    assert init is not None
    config = fold_config(start.config, spec.folds)
    labels = snap.part_labels(range(len(snap.parts))) if snap.task == "multilabel" else snap.part_targets()
    probs = np.full((len(snap.parts), len(snap.output_names)), np.nan)
    # By (main) class, and pictures of one item in one fold: a sibling photo in the judging
    # model's training set would vouch for the label instead of the defect.
    folds = kfold(snap.part_targets(), spec.folds, config.seed, snap.part_groups())
    try:
        for k, (tr, held) in enumerate(folds):
            # The held-out fold's labels are on trial: they choose nothing. Its model is the last
            # epoch's (keep_last), trained on every other fold. Choosing the epoch on the held-out
            # fold leaks the labels under test into the model; choosing it on a share of the
            # training folds (measured on KolektorSDD with 15 flipped labels: 8 found, against 11)
            # trains on a fifth less and, on a small share, picked an undertrained epoch 2 of 5.
            _, rep, _, _, _ = fit_split(snap, tr, held, config, init, progress, should_stop,
                                        label=f"label check fold {k + 1}/{len(folds)}: ", keep_last=True)
            if "_part_class_max" in rep:
                probs[held] = rep["_part_class_max"]
            elif "_part_probs" in rep:
                probs[held] = rep["_part_probs"]
            else:  # a verdict model: P(NG) per part
                s = np.asarray(rep["_part_scores"], dtype=np.float64)
                probs[held] = np.stack([1.0 - s, s], axis=1)
    except Cancelled:
        return None
    return snap, labels, probs, [len(held) for _, held in folds]


Findings = tuple[list[LabelIssueRow], dict[int, LabelCheck]]


def _class_findings(snap: Any, project: Project, labels: np.ndarray, probs: np.ndarray, run: str,
                    now: float) -> Findings:
    """One label per part (verdict, classes): confident learning over the softmax."""
    names = snap.output_names
    rows, findings = [], {}
    for issue in find_label_issues(labels, probs):
        part = snap.parts[issue.index]
        rows.append(LabelIssueRow(part.part_id, project.part(part.part_id).name, names[issue.given],
                                  names[issue.suggested], round(issue.self_confidence, 4), round(issue.margin, 4)))
        ng = issue.suggested != 0
        cls = issue.suggested if snap.task == "classes" and ng else 0
        findings[part.part_id] = LabelCheck(Verdict.NG if ng else Verdict.OK, cls, issue.self_confidence, now, run)
    return rows, findings


def _multilabel_findings(snap: Any, project: Project, labels: np.ndarray, probs: np.ndarray, run: str,
                         now: float) -> Findings:
    """Several classes per part: confident learning one class at a time (one-vs-rest)."""
    names = snap.output_names

    def named(cs: tuple[int, ...]) -> str:
        return " + ".join(names[c] for c in cs) or "OK"
    rows, findings = [], {}
    for mi in find_multilabel_issues(labels, probs):
        part = snap.parts[mi.index]
        marks = [("+" if c not in mi.given else "-") + names[c] for c in mi.disputed]
        rows.append(LabelIssueRow(part.part_id, project.part(part.part_id).name, named(mi.given),
                                  named(mi.suggested), round(mi.self_confidence, 4), round(mi.margin, 4), marks))
        held = tuple(c + 1 for c in mi.suggested)  # the outputs are the classes; labels count from 1
        findings[part.part_id] = LabelCheck(Verdict.NG if held else Verdict.OK, held[0] if held else 0,
                                            mi.self_confidence, now, run, held)
    return rows, findings


def run_label_check(spec: LabelCheckSpec, progress: ProgressFn | None = None,
                    should_stop: StopFn | None = None) -> LabelCheckResult:
    t0 = time.monotonic()
    run = f"label-check-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    task = str(spec.values.get("task", "verdict"))
    warnings: list[str] = []
    out = out_of_fold_probabilities(spec, progress, should_stop, warnings)
    if out is None:
        return LabelCheckResult(task, spec.folds, 0, [], False, run, time.monotonic() - t0, stopped=True,
                                warnings=warnings)
    snap, labels, probs, fold_parts = out
    project = Project.open(spec.project_path, readonly=not spec.record)
    find = _multilabel_findings if snap.task == "multilabel" else _class_findings
    rows, findings = find(snap, project, labels, probs, run, time.time())
    if spec.record:
        from labeling.types import Role, User
        project.set_label_checks(findings, run=run, user=User(spec.user, Role.SUPERVISOR))
    if progress is not None:
        progress(Progress("label-check", 1, 1, f"{len(rows)} likely label errors in {len(snap.parts)} parts"))
    return LabelCheckResult(snap.task, spec.folds, len(snap.parts), rows, spec.record, run, time.monotonic() - t0,
                            warnings=warnings, group_by=snap.group_by, fold_parts=fold_parts)
