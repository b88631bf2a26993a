"""Model tasks, a registry by name: what a model's outputs mean and how a part's label becomes
its target, its loss, its decision and its metrics.

* ``verdict``    two softmax outputs (OK, NG): today's models.
* ``classes``    softmax over OK + the project's defect classes (bolts: 5 outputs); the output
                 index is the project's 1-based class number, so it is DEFECT_CLASS as it is.
* ``multilabel`` one sigmoid per defect class (a part may hold several); OK = no class at or
                 above its threshold; per-class thresholds are chosen on validation.

Every task decides a part through the one rule of inference.decide: a per-view P(NG), NG when
the worst view reaches the threshold, the defect class from that deciding view. For a class
model P(NG) = 1 - P(OK); for a multilabel model it is the largest rescaled class probability
(task_metrics.rescale: each class's threshold maps to 0.5), so positive release, the PLC contract and the
confidence figure stay what they are for verdict models.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from labeling.types import Label, Verdict

from .inference import PartDecision, decide
from .metrics import binary_report
from .task_metrics import multiclass_report, multilabel_report, rescale

MAX_POS_WEIGHT = 50.0  # a class with 2 positives in 1,000 parts must not swamp the others


def inverse_frequency(counts: np.ndarray) -> np.ndarray:
    """Weights n / (classes present x count): each present class weighs the same in the loss;
    an absent class (neu_det has no OK part) gets 0."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    w = np.zeros_like(counts)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w


@dataclass(frozen=True)
class Task:
    """Base of the tasks (one subclass per entry of TASKS)."""

    name: str = ""
    description: str = ""

    def output_names(self, classes: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def target(self, label: Label | None, n_classes: int) -> Any:
        """The training target of a part with this label; None: the part cannot train this task
        (unlabeled, or NG without a class for a class task)."""
        raise NotImplementedError

    def class_weights(self, targets: Sequence[Any], n_outputs: int) -> np.ndarray:
        raise NotImplementedError

    def loss(self, weights: np.ndarray | None = None) -> nn.Module:
        raise NotImplementedError

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=1)

    def view_scores(self, probs: np.ndarray, thresholds: Sequence[float] = ()) -> tuple[np.ndarray, np.ndarray | None]:
        """(P(NG) per view, per-view defect-class scores or None) from (views, outputs) probabilities."""
        raise NotImplementedError

    def decide(self, probs: np.ndarray, threshold: float = 0.5, thresholds: Sequence[float] = (),
               geometries: list[Any] | None = None) -> PartDecision:
        """One part from its views' probabilities (views x outputs)."""
        ng, cls = self.view_scores(np.atleast_2d(probs), thresholds)
        return decide(ng, threshold, geometries, class_probs=cls)

    def fit_thresholds(self, targets: Sequence[Any], probs: np.ndarray) -> list[float]:
        """Per-output thresholds chosen on validation (only multilabel has them)."""
        return []

    def report(self, targets: Sequence[Any], probs: np.ndarray, names: Sequence[str],
               threshold: float = 0.5, thresholds: Sequence[float] = ()) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class VerdictTask(Task):
    def output_names(self, classes: Sequence[str]) -> list[str]:
        return ["OK", "NG"]

    def target(self, label: Label | None, n_classes: int) -> int | None:
        if label is None or label.verdict == Verdict.UNLABELED:
            return None
        return int(label.verdict == Verdict.NG)

    def class_weights(self, targets: Sequence[Any], n_outputs: int) -> np.ndarray:
        return inverse_frequency(np.bincount(np.asarray(targets, dtype=np.int64), minlength=n_outputs))

    def loss(self, weights: np.ndarray | None = None) -> nn.Module:
        return nn.CrossEntropyLoss(weight=None if weights is None else torch.as_tensor(weights, dtype=torch.float32))

    def view_scores(self, probs: np.ndarray, thresholds: Sequence[float] = ()) -> tuple[np.ndarray, None]:
        return probs[:, 1], None

    def report(self, targets: Sequence[Any], probs: np.ndarray, names: Sequence[str],
               threshold: float = 0.5, thresholds: Sequence[float] = ()) -> dict[str, Any]:
        return {"task_kind": "verdict", **binary_report(targets, np.asarray(probs)[:, 1], threshold)}


@dataclass(frozen=True)
class ClassesTask(VerdictTask):
    def output_names(self, classes: Sequence[str]) -> list[str]:
        return ["OK", *classes]

    def target(self, label: Label | None, n_classes: int) -> int | None:
        if label is None or label.verdict == Verdict.UNLABELED:
            return None
        if label.verdict == Verdict.OK:
            return 0
        return label.defect_class if 0 < label.defect_class <= n_classes else None

    def view_scores(self, probs: np.ndarray, thresholds: Sequence[float] = ()) -> tuple[np.ndarray, np.ndarray]:
        return 1.0 - probs[:, 0], probs[:, 1:]

    def report(self, targets: Sequence[Any], probs: np.ndarray, names: Sequence[str],
               threshold: float = 0.5, thresholds: Sequence[float] = ()) -> dict[str, Any]:
        return {**multiclass_report(targets, probs, names, ok_index=0, threshold=threshold), "task_kind": "classes"}


@dataclass(frozen=True)
class MultilabelTask(Task):
    def output_names(self, classes: Sequence[str]) -> list[str]:
        return list(classes)

    def target(self, label: Label | None, n_classes: int) -> np.ndarray | None:
        if label is None or label.verdict == Verdict.UNLABELED:
            return None
        y = np.zeros(n_classes, np.float32)
        if label.verdict == Verdict.NG:
            held = [c for c in label.classes if 0 < c <= n_classes]
            if not held:
                return None
            y[[c - 1 for c in held]] = 1.0
        return y

    def class_weights(self, targets: Sequence[Any], n_outputs: int) -> np.ndarray:
        """pos_weight per class: negatives / positives (capped), so a rare class is not ignored."""
        y = np.asarray(targets, dtype=np.float64).reshape(-1, n_outputs)
        pos = y.sum(axis=0)
        return np.where(pos > 0, np.minimum((len(y) - pos) / np.maximum(pos, 1), MAX_POS_WEIGHT), 1.0)

    def loss(self, weights: np.ndarray | None = None) -> nn.Module:
        return nn.BCEWithLogitsLoss(pos_weight=None if weights is None else torch.as_tensor(weights, dtype=torch.float32))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)

    def view_scores(self, probs: np.ndarray, thresholds: Sequence[float] = ()) -> tuple[np.ndarray, np.ndarray]:
        t = list(thresholds) or [0.5] * probs.shape[1]
        r = rescale(probs, t)
        return r.max(axis=1), r

    def fit_thresholds(self, targets: Sequence[Any], probs: np.ndarray) -> list[float]:
        """Per class, the threshold with the best F1 on these (validation) parts; 0.5 for a class
        without a positive. Ties go to the higher threshold (fewer false rejects)."""
        y = np.asarray(targets, dtype=np.int64)
        p = np.asarray(probs, dtype=np.float64)
        out = []
        for k in range(p.shape[1]):
            pos = y[:, k] == 1
            if not pos.any():
                out.append(0.5)
                continue
            best, best_f1 = 0.5, -1.0
            for t in np.unique(p[pos, k])[::-1]:
                pred = p[:, k] >= t
                tp = float((pred & pos).sum())
                f1 = 2 * tp / (pred.sum() + pos.sum())
                if f1 > best_f1 + 1e-12:
                    best, best_f1 = float(t), f1
            out.append(float(np.clip(best, 0.01, 0.99)))
        return out

    def report(self, targets: Sequence[Any], probs: np.ndarray, names: Sequence[str],
               threshold: float = 0.5, thresholds: Sequence[float] = ()) -> dict[str, Any]:
        return multilabel_report(np.asarray(targets), probs, names, list(thresholds) or None)


# Registry by name: `okng train --task NAME` and the model card's `task`.
TASKS: dict[str, Task] = {
    "verdict": VerdictTask("verdict", "OK / NG (two outputs)"),
    "classes": ClassesTask("classes", "OK or one defect class per part (softmax over OK + classes)"),
    "multilabel": MultilabelTask("multilabel", "every defect class a part holds (one sigmoid per class)"),
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})") from None
