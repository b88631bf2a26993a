"""Evaluation metrics in numpy (no sklearn): the figures the studies report.

Conventions: class 0 = OK, class 1 = NG (the positive class: a missed defect is the costly
error); `score` = P(NG); a sample is NG when score >= threshold.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .card import Curve


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int = 2) -> np.ndarray:
    """(n, n) counts: rows = true class, columns = predicted class."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class(cm: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per class (0 where undefined)."""
    out = {}
    for i, name in enumerate(names):
        tp = float(cm[i, i])
        pred = float(cm[:, i].sum())
        sup = float(cm[i, :].sum())
        prec = tp / pred if pred else 0.0
        rec = tp / sup if sup else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[name] = {"precision": prec, "recall": rec, "f1": f1, "support": int(sup)}
    return out


def accuracy(cm: np.ndarray) -> float:
    total = cm.sum()
    return float(np.trace(cm) / total) if total else 0.0


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over the classes present."""
    sup = cm.sum(axis=1)
    present = sup > 0
    return float(np.mean(np.diag(cm)[present] / sup[present])) if present.any() else 0.0


def cohen_kappa(cm: np.ndarray) -> float:
    """Agreement beyond chance: (p_o - p_e) / (1 - p_e)."""
    n = cm.sum()
    if not n:
        return 0.0
    po = np.trace(cm) / n
    pe = float((cm.sum(axis=0) * cm.sum(axis=1)).sum()) / (n * n)
    return float((po - pe) / (1 - pe)) if pe < 1 else (1.0 if po == 1 else 0.0)


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties averaged."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    i = 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def roc_auc(y_true: Sequence[int], score: Sequence[float]) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties count half); None with one class only."""
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if not n_pos or not n_neg:
        return None
    r = _ranks(s)
    return float((r[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pr_auc(y_true: Sequence[int], score: Sequence[float]) -> float | None:
    """Average precision: sum over distinct thresholds of (R_k - R_k-1) * P_k."""
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    n_pos = int(y.sum())
    if not n_pos:
        return None
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    last = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]  # last index of each distinct score
    prec = tp[last] / (tp[last] + fp[last])
    rec = tp[last] / n_pos
    return float(np.sum(np.diff(np.r_[0.0, rec]) * prec))


def threshold_for_recall(y_true: Sequence[int], score: Sequence[float], target: float) -> float:
    """The highest threshold whose NG recall reaches `target` (fewest false rejects)."""
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    pos = np.sort(s[y == 1])[::-1]
    if not len(pos):
        return 0.5
    k = int(np.ceil(target * len(pos) - 1e-9))
    return float(pos[max(k, 1) - 1])


def binary_report(y_true: Sequence[int], score: Sequence[float], threshold: float = 0.5,
                  names: Sequence[str] = ("OK", "NG")) -> dict[str, Any]:
    """Every figure of the studies for one set of scores."""
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    pred = (s >= threshold).astype(np.int64)
    cm = confusion_matrix(y, pred, 2)
    pc = per_class(cm, names)
    sup = cm.sum(axis=1)
    return {
        "n": len(y), "threshold": float(threshold), "confusion_matrix": cm.tolist(),
        "per_class": pc, "accuracy": accuracy(cm), "balanced_accuracy": balanced_accuracy(cm),
        "macro_f1": float(np.mean([pc[n]["f1"] for n in names])),
        "weighted_f1": float(sum(pc[n]["f1"] * sup[i] for i, n in enumerate(names)) / max(sup.sum(), 1)),
        "roc_auc": roc_auc(y, s), "pr_auc": pr_auc(y, s), "kappa": cohen_kappa(cm),
        "ng_recall": pc[names[1]]["recall"], "ng_precision": pc[names[1]]["precision"],
    }


def _one_class(report: dict[str, Any]) -> bool:
    """True when a verdict report's parts were all OK or all NG (NEU-DET has no OK part)."""
    cm = report.get("confusion_matrix")
    return isinstance(cm, list) and len(cm) == 2 and any(not sum(row) for row in cm)


def verdict_figures(report: dict[str, Any]) -> dict[str, Any]:
    """The report with the figures that need OK and NG parts both set to None where it has one
    class: its balanced accuracy is then one class's recall and its kappa 1.0 by convention,
    which compare as perfect against models scored on both."""
    if not _one_class(report):
        return report
    return {**report, "balanced_accuracy": None, "kappa": None, "roc_auc": None, "pr_auc": None}


def curve_points(y_true: Sequence[int], score: Sequence[float]) -> tuple[Curve | None, Curve | None]:
    """ROC (FPR, TPR) and PR (recall, precision) points swept over every score as threshold;
    (None, None) when the scores cover one class only."""
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    if pos == 0 or neg == 0:
        return None, None
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(y[order] == 1)
    fp = np.cumsum(y[order] == 0)
    tpr, fpr = np.r_[0.0, tp / pos], np.r_[0.0, fp / neg]
    precision = np.r_[1.0, tp / np.maximum(tp + fp, 1)]
    return Curve(fpr.tolist(), tpr.tolist()), Curve(tpr.tolist(), precision.tolist())


def column_width(*texts: Any, minimum: int = 0, gap: int = 2) -> int:
    """A text table's first column sized to its longest entry plus a gap: a class name of 20
    characters ("insufficient coating") must not push the figures after it out of line."""
    return max(minimum, *(len(str(t)) for t in texts)) + gap if texts else minimum + gap


def table2(report: dict[str, Any], title: str = "") -> str:
    """The bolt study's Table 2 layout: class, precision, recall, F1, support (+ averages)."""
    names = list(report["per_class"])
    w = column_width("macro avg", *names, minimum=12)
    lines = [title] if title else []
    lines.append(f"{'':<{w}}{'precision':>10}{'recall':>9}{'f1-score':>10}{'support':>9}")
    for n in names:
        r = report["per_class"][n]
        lines.append(f"{n:<{w}}{r['precision']:>10.2f}{r['recall']:>9.2f}{r['f1']:>10.2f}{r['support']:>9d}")
    total = sum(report["per_class"][n]["support"] for n in names)
    lines.append(f"{'accuracy':<{w}}{'':>10}{'':>9}{report['accuracy']:>10.2f}{total:>9d}")
    macro = [np.mean([report["per_class"][n][k] for n in names]) for k in ("precision", "recall", "f1")]
    lines.append(f"{'macro avg':<{w}}{macro[0]:>10.2f}{macro[1]:>9.2f}{macro[2]:>10.2f}{total:>9d}")
    cm = report["confusion_matrix"]
    lines.append(f"confusion (rows true {'/'.join(names)}, cols predicted): {cm}")
    auc = report.get("roc_auc")
    ap = report.get("pr_auc")
    lines.append(f"balanced acc {report['balanced_accuracy']:.3f}  kappa {report['kappa']:.3f}  "
                 f"ROC-AUC {'-' if auc is None else f'{auc:.3f}'}  PR-AUC {'-' if ap is None else f'{ap:.3f}'}  "
                 f"threshold {'-' if report.get('threshold') is None else format(report['threshold'], '.3f')}")
    return "\n".join(lines)


def mean_std(reports: Sequence[dict[str, Any]], keys: Sequence[str] = (
        "accuracy", "balanced_accuracy", "roc_auc", "pr_auc", "kappa", "ng_recall", "ng_precision", "macro_f1")) -> dict[str, dict[str, float]]:
    """Mean +- std (population std as the studies report) of scalar figures over folds."""
    out = {}
    for k in keys:
        vals = [r[k] for r in reports if r.get(k) is not None]
        if vals:
            out[k] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "n": len(vals)}
    return out
