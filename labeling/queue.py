"""The labeling queue: its filters and its order (plain functions of a Part, used by the Label view).

Uncertainty of a model prediction is 1 - confidence (0 = sure, 1 = a coin toss); when no
prediction exists a part has no uncertainty and sorts after those that have one.
A likely label error is a part the latest out-of-fold check (training/label_issues.py) flagged
and nobody has relabelled since; they sort by how little the other folds believe the label.
Proposal disagreement is how far a segmentation model's proposal is from the inspector's mask
(1 - IoU per view, the worst view counts; masktools.disagreement): the masks most worth a
second look, or the proposals most worth correcting, come first.
"""
from __future__ import annotations

from collections.abc import Callable

from labeling.types import Part, ReviewStatus, Verdict

UNCERTAIN_BELOW = 0.75  # confidence under this counts as "uncertain"


def uncertainty(p: Part) -> float | None:
    if p.prediction is None:
        return None
    return max(0.0, min(1.0, 1.0 - float(p.prediction.confidence)))


def under_review(p: Part) -> bool:
    """Labeled, and not (yet) accepted by a lab expert for its current label."""
    if p.label is None or p.verdict == Verdict.UNLABELED:
        return False
    if p.review is None:
        return True
    return p.review.status == ReviewStatus.REJECTED or p.review.time < p.label.time


def disagrees(p: Part) -> bool:
    return (p.prediction is not None and p.verdict != Verdict.UNLABELED
            and p.prediction.verdict != p.verdict)


def likely_label_error(p: Part) -> bool:
    c = p.label_check
    return c is not None and p.label is not None and p.label.time <= c.time


def uncertain(p: Part) -> bool:
    u = uncertainty(p)
    return u is not None and (1.0 - u) < UNCERTAIN_BELOW


# Registry: the filter box lists these in order.
FILTERS: dict[str, Callable[[Part], bool]] = {
    "All": lambda p: True,
    "Unlabeled": lambda p: p.verdict == Verdict.UNLABELED,
    "OK": lambda p: p.verdict == Verdict.OK,
    "NG": lambda p: p.verdict == Verdict.NG,
    "Under review": under_review,
    "Rejected": lambda p: p.review is not None and p.review.status == ReviewStatus.REJECTED,
    "Disagrees with model": disagrees,
    "Uncertain": uncertain,
    "Likely label errors": likely_label_error,
    # every part: the order (ORDERS) puts those with a proposal first, most disagreement first
    "Proposal disagreement": lambda p: True,
}


def queue_key(p: Part) -> tuple:
    """Labeling queue order: unlabeled first, then most uncertain first, then oldest first."""
    u = uncertainty(p)
    return (p.verdict != Verdict.UNLABELED, -(u if u is not None else -1.0), p.id)


def label_error_key(p: Part) -> tuple:
    """"Likely label errors" order: flagged parts first, the label the other folds believe least
    first, then the labeling queue's order."""
    flagged = likely_label_error(p)
    return (not flagged, p.label_check.self_confidence if flagged else 0.0,  # type: ignore[union-attr]
            *queue_key(p))


def proposal_disagreement(p: Part) -> float | None:
    """The worst view's 1 - IoU of proposal and mask; None when no view has a proposal."""
    ds = [v.disagreement for v in p.views if v.disagreement is not None]
    return max(ds) if ds else None


def disagreement_key(p: Part) -> tuple:
    """"Proposal disagreement" order: most disagreement first, parts without a proposal last,
    then the labeling queue's order."""
    d = proposal_disagreement(p)
    return (d is None, -(d or 0.0), *queue_key(p))


# Registry of orders the Label view can sort its queue by.
ORDERS: dict[str, Callable[[Part], tuple]] = {
    "Labeling queue": queue_key,
    "Likely label errors": label_error_key,
    "Proposal disagreement": disagreement_key,
}
