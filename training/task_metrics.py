"""Metrics per model task (training/tasks.py): N-class softmax and multilabel, in numpy.

The verdict task's figures are metrics.binary_report. A class or multilabel model is also
scored as a verdict model (its derived P(NG) against OK/NG truth, key "verdict"), so it can be
compared with a verdict model on the same figures.

Averages: macro F1 is the plain mean over the classes that occur in the truth or the
predictions (a class nobody holds and nobody predicts says nothing about the model; neu_det
has no OK part, and its OK output should not drag every macro figure down); weighted F1 weighs
each class by its support.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .card import Curve, SplitMetrics
from .metrics import (
    accuracy,
    balanced_accuracy,
    binary_report,
    cohen_kappa,
    confusion_matrix,
    curve_points,
    per_class,
    pr_auc,
    roc_auc,
)

CURVE_POINTS = 200  # per stored class curve: enough to draw, small on the card


def rescale(probs: np.ndarray, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """Per class, a monotone map of P onto 0..1 that sends the class's threshold to 0.5.

    Makes classes with different thresholds comparable (the most confident class is the one
    furthest past its own bar) and lets one 0.5 rule decide OK/NG."""
    p = np.asarray(probs, dtype=np.float64)
    t = np.clip(np.asarray(thresholds, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.where(p < t, 0.5 * p / t, 0.5 + 0.5 * (p - t) / (1 - t))


def _averages(pc: dict[str, dict[str, float]], cm: np.ndarray) -> dict[str, float]:
    names = list(pc)
    used = [n for i, n in enumerate(names) if cm[i, :].sum() or cm[:, i].sum()]
    sup = np.array([pc[n]["support"] for n in names], dtype=float)
    out = {}
    for k in ("precision", "recall", "f1"):
        vals = np.array([pc[n][k] for n in names])
        out[f"macro_{k}"] = float(np.mean([pc[n][k] for n in used])) if used else 0.0
        out[f"weighted_{k}"] = float((vals * sup).sum() / sup.sum()) if sup.sum() else 0.0
    return out


def one_vs_rest(y_true: np.ndarray, probs: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Per class: ROC-AUC and average precision of its probability against the rest (None when
    the class is absent, or everything is that class)."""
    return {n: {"roc_auc": roc_auc((y_true == i).astype(int), probs[:, i]),
                "pr_auc": pr_auc((y_true == i).astype(int), probs[:, i])} for i, n in enumerate(names)}


def _thin(c: Curve | None, keep: int = CURVE_POINTS) -> Curve | None:
    if c is None or len(c.x) <= keep:
        return c
    idx = np.unique(np.linspace(0, len(c.x) - 1, keep).round().astype(int))  # first and last kept
    return Curve([c.x[i] for i in idx], [c.y[i] for i in idx])


def class_curves(labels: np.ndarray, probs: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, Curve]]:
    """Per class, one-vs-rest ROC and PR curves of its probability (the card keeps them per
    split, thinned to CURVE_POINTS); labels are class indices (softmax) or an (n, K) 0/1 matrix
    (multilabel). A class absent from the split, or held by every part, has none."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    out: dict[str, dict[str, Curve]] = {}
    if p.ndim != 2 or p.shape[1] != len(names) or len(y) != len(p):
        return out
    for i, n in enumerate(names):
        truth = y[:, i] if y.ndim == 2 else (y == i).astype(np.int64)
        roc, pr = curve_points(truth, p[:, i])
        if roc is not None and pr is not None:
            out[str(n)] = {"roc": _thin(roc), "pr": _thin(pr)}  # type: ignore[dict-item]
    return out


def multiclass_report(y_true: Sequence[int], probs: np.ndarray, names: Sequence[str],
                      ok_index: int | None = 0, threshold: float = 0.5) -> dict[str, Any]:
    """Softmax over N classes: prediction = the most probable class.

    ok_index: the output meaning OK (the classes task's 0); with it, the derived verdict
    (P(NG) = 1 - P(OK) against `threshold`) is reported under "verdict"."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape != (len(y), len(names)):
        raise ValueError(f"probabilities {p.shape}, expected ({len(y)}, {len(names)})")
    pred = p.argmax(axis=1) if len(y) else np.zeros(0, np.int64)
    cm = confusion_matrix(y, pred, len(names))
    pc = per_class(cm, names)
    out: dict[str, Any] = {
        "task_kind": "multiclass", "n": len(y), "names": list(names),
        "confusion_matrix": cm.tolist(), "per_class": pc, "accuracy": accuracy(cm),
        "balanced_accuracy": balanced_accuracy(cm), "kappa": cohen_kappa(cm),
        **_averages(pc, cm), "one_vs_rest": one_vs_rest(y, p, names),
    }
    if ok_index is not None:
        out["verdict"] = binary_report((y != ok_index).astype(int), 1.0 - p[:, ok_index], threshold)
    return out


def multilabel_report(y_true: np.ndarray, probs: np.ndarray, names: Sequence[str],
                      thresholds: Sequence[float] | None = None) -> dict[str, Any]:
    """One sigmoid per class: class k is present when P(k) >= its threshold.

    exact_match: parts whose whole set of classes is right; hamming_loss: the fraction of
    (part, class) decisions that are wrong. The derived verdict: NG when any class is present,
    scored by the part's largest rescaled probability (`rescale`)."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    k = len(names)
    if p.shape != y.shape or p.ndim != 2 or p.shape[1] != k:
        raise ValueError(f"truth {y.shape} and probabilities {p.shape}, expected (n, {k})")
    t = np.full(k, 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    pred = (p >= t[None, :]).astype(np.int64)
    classes: dict[str, dict[str, Any]] = {}
    for i, n in enumerate(names):
        cm = confusion_matrix(y[:, i], pred[:, i], 2)
        tp, fp, fn = float(cm[1, 1]), float(cm[0, 1]), float(cm[1, 0])
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        classes[n] = {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
                      "support": int(y[:, i].sum()), "accuracy": accuracy(cm), "threshold": float(t[i]),
                      "roc_auc": roc_auc(y[:, i], p[:, i]), "pr_auc": pr_auc(y[:, i], p[:, i])}
    sup = np.array([classes[n]["support"] for n in names], dtype=float)
    used = [n for i, n in enumerate(names) if sup[i] or pred[:, i].any()]
    f1 = np.array([classes[n]["f1"] for n in names])
    return {
        "task_kind": "multilabel", "n": len(y), "names": list(names), "per_class": classes,
        "exact_match": float((pred == y).all(axis=1).mean()) if len(y) else 0.0,
        "hamming_loss": float((pred != y).mean()) if y.size else 0.0,
        "macro_f1": float(np.mean([classes[n]["f1"] for n in used])) if used else 0.0,
        "weighted_f1": float((f1 * sup).sum() / sup.sum()) if sup.sum() else 0.0,
        "verdict": binary_report(y.any(axis=1).astype(int),
                                 rescale(p, t).max(axis=1) if len(y) else np.zeros(0), 0.5),
    }


def table(report: dict[str, Any], title: str = "") -> str:
    """The report as text: metrics.table2 (the bolt study's layout) for verdict and class
    models, plus the derived verdict's line; per class and exact match for multilabel."""
    from .metrics import column_width, table2
    kind = report.get("task_kind", "verdict")
    v = report.get("verdict")
    tail = [] if not v else [(f"derived verdict: accuracy {v['accuracy']:.3f}  balanced {v['balanced_accuracy']:.3f}  "
                              f"NG recall {v['ng_recall']:.3f}  NG precision {v['ng_precision']:.3f}")]
    if kind != "multilabel":
        macro = [] if kind == "verdict" else [f"macro F1 {report['macro_f1']:.3f}  weighted F1 {report['weighted_f1']:.3f}"]
        return "\n".join([table2(report, title), *macro, *tail])
    lines = [title] if title else []
    w = column_width(*report["per_class"], minimum=12)
    lines.append(f"{'':<{w}}{'precision':>10}{'recall':>9}{'f1-score':>10}{'support':>9}{'thr':>7}")
    for n, r in report["per_class"].items():
        lines.append(f"{n:<{w}}{r['precision']:>10.2f}{r['recall']:>9.2f}{r['f1']:>10.2f}{r['support']:>9d}"
                     f"{r['threshold']:>7.2f}")
    lines.append(f"exact match {report['exact_match']:.3f}  hamming loss {report['hamming_loss']:.3f}  "
                 f"macro F1 {report['macro_f1']:.3f}  weighted F1 {report['weighted_f1']:.3f}")
    return "\n".join(lines + tail)


def held_out(rep: dict[str, Any], part_ids: list[int]) -> SplitMetrics:
    """A split's figures for the card: the report, and the part scores with their ROC/PR curves
    (kept so that nothing is scored again to draw them)."""
    scores = [float(v) for v in rep.pop("_part_scores")]
    targets = [int(v) for v in rep.pop("_part_targets")]
    ng = rep.pop("_part_ng", None)
    probs, labels = rep.pop("_part_probs", None), rep.pop("_part_labels", None)
    rep.pop("_part_class_max", None)
    # Curves of the verdict (P(NG) against OK/NG), for class models too: what a threshold moves.
    roc, pr = curve_points(np.asarray(targets if ng is None else ng), np.asarray(scores))
    classes = {} if probs is None or labels is None else class_curves(labels, probs, rep.get("names") or [])
    return SplitMetrics(rep, part_ids, targets, scores, roc, pr, classes)
