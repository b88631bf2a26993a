"""Segmentation figures: dice / IoU per class (per image and pooled) and the verdict report.

Per image: an image where neither the target nor the prediction has a pixel of the class
scores 1 (the steel competition's convention: a clean image correctly left clean is right).
Pooled: intersections and sums over all images of the split, so large defects weigh more.
The verdict (NG when any class keeps a component after the area rule) is reported with the
classifiers' training.metrics.binary_report, so `okng models` compares both kinds.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..metrics import binary_report


def dice_iou(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """One image, one class (boolean maps)."""
    inter = float(np.logical_and(pred, target).sum())
    s = float(pred.sum() + target.sum())
    if s == 0:
        return 1.0, 1.0
    return 2 * inter / s, inter / (s - inter)


class SegScores:
    """Accumulates dice/IoU per class over images."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        n = len(self.names)
        self.inter = np.zeros(n)
        self.sums = np.zeros(n)
        self.per_image: list[list[tuple[float, float]]] = [[] for _ in range(n)]

    def add(self, pred: np.ndarray, target: np.ndarray) -> None:
        """pred, target: (C, h, w) bool of one view."""
        for c in range(len(self.names)):
            self.inter[c] += np.logical_and(pred[c], target[c]).sum()
            self.sums[c] += pred[c].sum() + target[c].sum()
            self.per_image[c].append(dice_iou(pred[c], target[c]))

    def report(self) -> dict[str, Any]:
        per_class = {}
        for c, name in enumerate(self.names):
            pooled_dice = 2 * self.inter[c] / self.sums[c] if self.sums[c] else 1.0
            union = self.sums[c] - self.inter[c]
            pooled_iou = self.inter[c] / union if union else 1.0
            img = np.array(self.per_image[c]) if self.per_image[c] else np.ones((1, 2))
            per_class[name] = {"dice": float(pooled_dice), "iou": float(pooled_iou),
                               "dice_per_image": float(img[:, 0].mean()), "iou_per_image": float(img[:, 1].mean())}
        return {"dice": float(np.mean([v["dice"] for v in per_class.values()])),
                "iou": float(np.mean([v["iou"] for v in per_class.values()])),
                "dice_per_image": float(np.mean([v["dice_per_image"] for v in per_class.values()])),
                "seg_per_class": per_class}


def verdict_report(part_targets: Sequence[int], part_scores: Sequence[float]) -> dict[str, Any]:
    """The classifiers' report on the parts' verdict scores (postprocess.verdict_score: NG
    exactly when >= 0.5)."""
    return binary_report(np.asarray(part_targets), np.asarray(part_scores), 0.5)
