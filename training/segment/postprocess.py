"""Post-processing learned from the training masks: the steel-defect study's area rule.

Per defect class: a probability threshold and a [min, max] component area taken from the
2nd-98th percentile of the connected-component areas in the training masks. A predicted
component outside that range is dropped (specks below it are noise; blobs above it were never
drawn by an inspector). A view is NG when any class keeps a component. Areas are counted in
model-input pixels (the masks fitted to the input exactly as the images are), so the rule
does not depend on the camera's resolution once the input size is fixed.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

LOW_PCT, HIGH_PCT = 2.0, 98.0
# The percentiles are widened by this factor (min / 2, max * 2): with few masks, or masks of
# one size (a generated demo), the raw 2nd-98th range is as narrow as the drawn areas and drops
# a model's slightly tighter or looser outline of a typical defect. 1.0 is the study's raw rule.
AREA_MARGIN = 2.0


@dataclass(frozen=True)
class AreaRule:
    """One defect class's rule; min_area 0 and max_area None keep every component."""

    name: str
    threshold: float = 0.5
    min_area: int = 0
    max_area: int | None = None

    def keeps(self, area: int) -> bool:
        return area >= self.min_area and (self.max_area is None or area <= self.max_area)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AreaRule:
        mx = d.get("max_area")
        return cls(str(d["name"]), float(d.get("threshold", 0.5)), int(d.get("min_area", 0)),
                   None if mx is None else int(mx))


def component_areas(binary: np.ndarray) -> np.ndarray:
    """Areas (pixels, 8-connected) of the components of a boolean map."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(np.asarray(binary, dtype=np.uint8), connectivity=8)
    return stats[1:n, cv2.CC_STAT_AREA].astype(np.int64)


def learn_rules(masks: Sequence[np.ndarray], names: Sequence[str], threshold: float = 0.5,
                margin: float = AREA_MARGIN) -> list[AreaRule]:
    """Rules from training masks (each (C, h, w) boolean, one channel per class in `names`).

    A class never drawn keeps every component (min 0, no max): nothing to learn from."""
    rules = []
    for c, name in enumerate(names):
        areas = [component_areas(m[c]) for m in masks if m[c].any()]
        if not areas:
            rules.append(AreaRule(name, threshold))
            continue
        a = np.concatenate(areas)
        lo, hi = np.percentile(a, [LOW_PCT, HIGH_PCT])
        rules.append(AreaRule(name, threshold, int(np.floor(lo / margin)), int(np.ceil(hi * margin))))
    return rules


@dataclass(frozen=True)
class Decision:
    """A view after the rule: kept masks, verdict, the largest kept defect's class."""

    kept: np.ndarray  # (C, h, w) bool
    ng: bool
    defect_class: int  # 1-based index of the largest kept component's class, 0 when OK
    confidence: float  # max probability over the map
    areas: list[int]  # kept pixels per class


def content_only(prob: np.ndarray, pad: Sequence[int], content_size: Sequence[int]) -> np.ndarray:
    """(C, h, w) probabilities with the letterbox padding zeroed: a component there is no part
    of the view (it maps back to nothing), yet would make the view NG with an empty mask."""
    top, left = (int(v) for v in pad)
    ch, cw = (int(v) for v in content_size)
    out = np.zeros_like(prob)
    out[..., top:top + ch, left:left + cw] = prob[..., top:top + ch, left:left + cw]
    return out


def apply_rules(prob: np.ndarray, rules: Sequence[AreaRule]) -> Decision:
    """(C, h, w) probabilities -> the kept components per class and the view's verdict."""
    prob = np.asarray(prob, dtype=np.float32)
    kept = np.zeros(prob.shape, dtype=bool)
    largest, largest_cls = 0, 0
    for c, rule in enumerate(rules):
        binary = (prob[c] >= rule.threshold).astype(np.uint8)
        n, lab, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        for k in range(1, n):
            area = int(stats[k, cv2.CC_STAT_AREA])
            if rule.keeps(area):
                kept[c] |= lab == k
                if area > largest:
                    largest, largest_cls = area, c + 1
    areas = [int(kept[c].sum()) for c in range(len(rules))]
    return Decision(kept, bool(largest), largest_cls, float(prob.max()) if prob.size else 0.0, areas)


def verdict_score(decision: Decision) -> float:
    """One score per view for ROC/PR next to classifiers: >= 0.5 exactly when the rule says NG,
    and ordered by the max probability within each side (0.5 + p/2 for NG, p/2 for OK)."""
    p = min(max(decision.confidence, 0.0), 1.0)
    return 0.5 + p / 2 if decision.ng else min(p / 2, 0.4999)


def to_class_index(kept: np.ndarray) -> np.ndarray:
    """(C, h, w) bool -> (h, w) uint8 class-index mask (a later class wins where two overlap)."""
    out = np.zeros(kept.shape[1:], dtype=np.uint8)
    for c in range(kept.shape[0]):
        out[kept[c]] = c + 1
    return out
