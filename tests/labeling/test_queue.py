"""The labeling queue (labeling/queue.py), headless: unlabelled first, then the model's least
sure first, then oldest first; and the filters the Label view lists."""
from __future__ import annotations

from labeling.queue import FILTERS, queue_key, uncertainty
from labeling.types import Label, Part, PartSource, Prediction, Verdict


def _part(pid: int, verdict: Verdict | None = None, confidence: float | None = None,
          predicted: Verdict = Verdict.OK) -> Part:
    p = Part(pid, f"p{pid}", 0.0, PartSource.CAPTURE)
    if verdict is not None:
        p.label = Label(verdict)
    if confidence is not None:
        p.prediction = Prediction("m", predicted, (0.5,), confidence)
    return p


def test_queue_order():
    parts = [_part(1, Verdict.OK), _part(2), _part(3, None, 0.9), _part(4, None, 0.55), _part(5, Verdict.NG, 0.6)]
    assert [p.id for p in sorted(parts, key=queue_key)] == [4, 3, 2, 5, 1]
    assert uncertainty(parts[1]) is None and abs(uncertainty(parts[3]) - 0.45) < 1e-9


def test_filters():
    ok_disagree = _part(1, Verdict.OK, 0.6, predicted=Verdict.NG)
    fresh = _part(2)
    assert [name for name, f in FILTERS.items() if f(ok_disagree)] == [
        "All", "OK", "Under review", "Disagrees with model", "Uncertain"]
    assert [name for name, f in FILTERS.items() if f(fresh)] == ["All", "Unlabeled"]
