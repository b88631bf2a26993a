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

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labeling.progress import Progress, ProgressFn, StopFn
from labeling.store import Project
from labeling.types import LabelCheck, Verdict

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

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "folds": self.folds, "parts": self.parts, "recorded": self.recorded,
                "run": self.run, "seconds": round(self.seconds, 2), "stopped": self.stopped,
                "issues": [r.__dict__ for r in self.issues]}


def out_of_fold_probabilities(spec: LabelCheckSpec, progress: ProgressFn | None = None,
                              should_stop: StopFn | None = None) -> tuple[Any, np.ndarray, np.ndarray] | None:
    """(snapshot, part labels (n,) or (n, K) multilabel, out-of-fold probabilities (n, outputs));
    None when stopped."""
    from .backbones import get_backbone
    from .loop import Cancelled, fit_split
    from .recipe import project_views, resolve
    from .session import make_config
    from .snapshot import load_snapshot, stratified_kfold
    from .start import initializer, task_outputs
    config = make_config({**spec.values, "folds": 0})
    if spec.folds < 2:
        raise TrainingError("a label check needs --folds 2 or more")
    backbone = get_backbone(config.arch)
    warnings: list[str] = []
    # As the loop's train(): the starting weights decide the recipe (freeze auto, epochs or budget,
    # input size), which the snapshot's input size follows.
    init, pretrained, _ = initializer(backbone, config, spec.project_path, warnings,  # type: ignore[arg-type]
                                      task_outputs(spec.project_path, config.task))
    config, _note = resolve(config, pretrained, project_views(spec.project_path), warnings)
    snap = load_snapshot(spec.project_path, config.input_hw(backbone.input_size), config.fit, progress,
                         should_stop, task=config.task)
    if snap is None:
        return None
    labels = snap.part_labels(range(len(snap.parts))) if snap.task == "multilabel" else snap.part_targets()
    probs = np.full((len(snap.parts), len(snap.output_names)), np.nan)
    folds = stratified_kfold(snap.part_targets(), spec.folds, config.seed)  # by (main) class
    try:
        for k, (tr, va) in enumerate(folds):
            _, rep, _, _, _ = fit_split(snap, tr, va, config, init, progress, should_stop,
                                     label=f"label check fold {k + 1}/{len(folds)}: ")
            if "_part_class_max" in rep:
                probs[va] = rep["_part_class_max"]
            elif "_part_probs" in rep:
                probs[va] = rep["_part_probs"]
            else:  # a verdict model: P(NG) per part
                s = np.asarray(rep["_part_scores"], dtype=np.float64)
                probs[va] = np.stack([1.0 - s, s], axis=1)
    except Cancelled:
        return None
    return snap, labels, probs


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
    out = out_of_fold_probabilities(spec, progress, should_stop)
    if out is None:
        return LabelCheckResult(task, spec.folds, 0, [], False, run, time.monotonic() - t0, stopped=True)
    snap, labels, probs = out
    project = Project.open(spec.project_path, readonly=not spec.record)
    find = _multilabel_findings if snap.task == "multilabel" else _class_findings
    rows, findings = find(snap, project, labels, probs, run, time.time())
    if spec.record:
        from labeling.types import Role, User
        project.set_label_checks(findings, run=run, user=User(spec.user, Role.SUPERVISOR))
    if progress is not None:
        progress(Progress("label-check", 1, 1, f"{len(rows)} likely label errors in {len(snap.parts)} parts"))
    return LabelCheckResult(snap.task, spec.folds, len(snap.parts), rows, spec.record, run, time.monotonic() - t0)
