"""Out-of-fold label checks (confident learning): which labels do the other folds confidently reject?

Every part gets a prediction from a model that never saw it (K folds: train on K-1, predict the
held-out one). Over those out-of-fold probabilities, confident learning (Northcutt, Jiang and
Chuang, "Confident learning: estimating uncertainty in dataset labels", JAIR 2021) counts, per
given class i, the parts the model confidently puts in class j:

* the threshold of class j is the model's mean P(j) over the parts labelled j, so a class the
  model is shy about gets a lower bar (no global 0.5);
* a part is confidently in class j when P(j) clears j's threshold (several: the most probable);
* the counts, C[i, j] (the confident joint), are scaled so each row sums to the number of
  parts labelled i; C[i, j] off the diagonal estimates how many parts labelled i are really j.

A part is a likely label error when it sits off the diagonal of the confident joint AND it is
among the C[i, j] parts labelled i with the largest margin P(j) - P(i) ("both" in the paper's
terms: the two rules agree, which the paper found the most precise). Issues come out most
suspicious first (lowest self-confidence P(given)).

Multilabel parts (a part may hold several classes) are checked one class at a time, one-vs-rest:
class k's out-of-fold sigmoid P(k) against "labelled k or not" is a two-class problem with its
own thresholds (mean P(k) over the parts labelled k, mean 1 - P(k) over those without), and a
part is flagged when any of its classes is (`find_multilabel_issues`).

Written here from the paper; no code taken from an (AGPL) implementation. Pure numpy: the
fold loop, the model and the project are the caller's (`out_of_fold` runs any fit/predict).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

METHODS = ("both", "confident_joint", "prune_by_noise_rate")


@dataclass(frozen=True)
class LabelIssue:
    index: int  # row in the arrays given
    given: int  # the label (0-based class)
    suggested: int  # the class the other folds are confident in
    self_confidence: float  # out-of-fold P(given): low = more likely wrong
    margin: float  # P(suggested) - P(given)


def _check(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or labels.shape != (probs.shape[0],):
        raise ValueError(f"labels {labels.shape} and probabilities {probs.shape}: need (n,) and (n, K)")
    if labels.size and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(f"labels must be 0..{probs.shape[1] - 1}")
    return labels, probs


def class_thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per class j: mean out-of-fold P(j) over the parts labelled j (inf for a class nobody holds:
    the model cannot be confident in a class it was never shown)."""
    labels, probs = _check(labels, probs)
    k = probs.shape[1]
    return np.array([probs[labels == j, j].mean() if (labels == j).any() else np.inf for j in range(k)])


def confident_classes(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per part, the class it is confidently in (-1: none clears its threshold)."""
    labels, probs = _check(labels, probs)
    above = probs >= class_thresholds(labels, probs)[None, :]
    best = np.where(above, probs, -1.0).argmax(axis=1)
    return np.where(above.any(axis=1), best, -1)


def confident_joint(labels: np.ndarray, probs: np.ndarray, calibrate: bool = True) -> np.ndarray:
    """C[i, j]: parts labelled i confidently in j; calibrated, each row sums to the count of i."""
    labels, probs = _check(labels, probs)
    k = probs.shape[1]
    conf = confident_classes(labels, probs)
    c = np.zeros((k, k))
    has = conf >= 0
    np.add.at(c, (labels[has], conf[has]), 1.0)
    if calibrate:
        counts = np.bincount(labels, minlength=k).astype(float)
        rows = c.sum(axis=1)
        c = np.where(rows[:, None] > 0, c / np.maximum(rows, 1)[:, None] * counts[:, None], 0.0)
    return c


def find_label_issues(labels: Sequence[int] | np.ndarray, probs: np.ndarray,
                      method: str = "both") -> list[LabelIssue]:
    """Likely label errors among the parts, most suspicious first (see the module docstring)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    labels, probs = _check(np.asarray(labels), probs)
    n, k = probs.shape
    if n == 0:
        return []
    conf = confident_classes(labels, probs)
    off_diagonal = (conf >= 0) & (conf != labels)
    by_rate = np.zeros(n, bool)
    cj = confident_joint(labels, probs)
    for i in range(k):
        members = np.flatnonzero(labels == i)
        if members.size == 0:
            continue
        budget = members.size - 1  # never flag a whole class: nothing would be left to learn it
        for j in range(k):
            take = min(int(np.rint(cj[i, j])), budget) if j != i else 0
            if take <= 0:
                continue
            margin = probs[members, j] - probs[members, i]
            by_rate[members[np.argsort(-margin, kind="stable")[:take]]] = True
    flagged = {"both": off_diagonal & by_rate, "confident_joint": off_diagonal,
               "prune_by_noise_rate": by_rate}[method]
    out = []
    for idx in np.flatnonzero(flagged):
        given = int(labels[idx])
        p = probs[idx].copy()
        p[given] = -1.0
        suggested = int(conf[idx]) if conf[idx] >= 0 and conf[idx] != given else int(p.argmax())
        out.append(LabelIssue(int(idx), given, suggested, float(probs[idx, given]),
                              float(probs[idx, suggested] - probs[idx, given])))
    return sorted(out, key=lambda r: (r.self_confidence, r.index))


@dataclass(frozen=True)
class MultilabelIssue:
    index: int  # row in the arrays given
    given: tuple[int, ...]  # the classes labelled (0-based outputs)
    suggested: tuple[int, ...]  # the given set with the disputed classes flipped
    disputed: tuple[int, ...]  # classes the other folds confidently read the other way, worst first
    self_confidence: float  # lowest out-of-fold P(class as labelled) over the disputed classes
    margin: float  # the largest P(other way) - P(as labelled) among them


def find_multilabel_issues(labels: np.ndarray, probs: np.ndarray, method: str = "both") -> list[MultilabelIssue]:
    """Likely label errors of multilabel parts, most suspicious first: (n, K) 0/1 labels and
    (n, K) out-of-fold sigmoid probabilities, confident learning per class (module docstring)."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 2:
        raise ValueError(f"labels {y.shape} and probabilities {p.shape}: need both (n, K)")
    # per part: {class: (P(as labelled), margin)}
    flagged: dict[int, dict[int, tuple[float, float]]] = {}
    for k in range(y.shape[1]):
        if y[:, k].min(initial=0) == y[:, k].max(initial=0):
            continue  # everyone or no one holds k: nothing to tell apart
        two = np.stack([1.0 - p[:, k], p[:, k]], axis=1)
        for issue in find_label_issues(y[:, k], two, method):
            flagged.setdefault(issue.index, {})[k] = (issue.self_confidence, issue.margin)
    out = []
    for idx, classes in flagged.items():
        disputed = tuple(sorted(classes, key=lambda c: (classes[c][0], c)))
        given = tuple(int(c) for c in np.flatnonzero(y[idx]))
        suggested = tuple(sorted(set(given) ^ set(disputed)))
        out.append(MultilabelIssue(int(idx), given, suggested, disputed, min(v[0] for v in classes.values()),
                                   max(v[1] for v in classes.values())))
    return sorted(out, key=lambda r: (r.self_confidence, r.index))


def fold_ids(n: int, folds: int, labels: Sequence[int] | np.ndarray | None = None,
             seed: int = 0) -> np.ndarray:
    """Fold number per item, stratified by label when given (every fold sees every class)."""
    if folds < 2:
        raise ValueError("out-of-fold checks need --folds 2 or more")
    if n < folds:
        raise ValueError(f"{n} labelled parts cannot make {folds} folds")
    rng = np.random.default_rng(seed)
    out = np.empty(n, np.int64)
    groups = [np.arange(n)] if labels is None else [
        np.flatnonzero(np.asarray(labels) == c) for c in np.unique(np.asarray(labels))]
    start = 0
    for g in groups:
        g = rng.permutation(g)
        out[g] = (np.arange(g.size) + start) % folds  # continue the round robin across classes
        start += g.size
    return out


# fit_predict(train_indices, test_indices) -> probabilities (len(test), K) for the test items.
FitPredict = Callable[[np.ndarray, np.ndarray], np.ndarray]


def out_of_fold(n: int, folds: int, fit_predict: FitPredict, labels: Sequence[int] | np.ndarray | None = None,
                seed: int = 0, should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """(n, K) probabilities, each row from the model of the fold that held the item out."""
    ids = fold_ids(n, folds, labels, seed)
    out: np.ndarray | None = None
    for f in range(folds):
        if should_stop and should_stop():
            raise InterruptedError("out-of-fold run stopped")
        test, train = np.flatnonzero(ids == f), np.flatnonzero(ids != f)
        p = np.asarray(fit_predict(train, test), dtype=np.float64)
        if out is None:
            out = np.full((n, p.shape[1]), np.nan)
        out[test] = p
    assert out is not None
    return out
