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
        "All", "OK", "Under review", "Disagrees with model", "Uncertain", "Proposal disagreement"]
    assert [name for name, f in FILTERS.items() if f(fresh)] == ["All", "Unlabeled", "Proposal disagreement"]


def test_likely_label_errors_filter_and_order(tmp_path):
    """Findings of an out-of-fold check, recorded in a real project: flagged parts first, least
    believed first; relabelling a part clears it; the next check replaces the findings."""
    import numpy as np

    from labeling.queue import ORDERS, label_error_key, likely_label_error
    from labeling.store import Project
    from labeling.types import BOLT_CLASSES, LabelCheck, Settings

    p = Project.create(tmp_path / "p.h5", Settings(classes=list(BOLT_CLASSES)))
    ids = [p.add_part([np.zeros((8, 8), np.uint8)]) for _ in range(4)]
    for pid in ids:
        p.set_label(pid, "NG", 1)
    p.set_label_checks({ids[1]: LabelCheck(Verdict.NG, 3, 0.30, 1e12, "run1"),
                        ids[3]: LabelCheck(Verdict.OK, 0, 0.05, 1e12, "run1")}, run="run1")
    q = Project.open(p.path)
    assert [x.id for x in q.parts() if FILTERS["Likely label errors"](x)] == [ids[1], ids[3]]
    assert [x.id for x in sorted(q.parts(), key=label_error_key)][:2] == [ids[3], ids[1]]
    assert ORDERS["Likely label errors"] is label_error_key
    assert q.part(ids[3]).label_check.verdict == Verdict.OK
    q.set_label_checks({ids[0]: LabelCheck(Verdict.NG, 2, 0.4, 0.0, "run2")}, run="run2")
    r = Project.open(p.path)
    assert [x.id for x in r.parts() if x.label_check] == [ids[0]]
    assert not likely_label_error(r.part(ids[0]))  # labelled after the check's time: stale
    assert [e["op"] for e in r.events() if e["op"] == "label_check"] == ["label_check"] * 2


def test_proposal_disagreement_order(tmp_path):
    """1 - IoU of proposal and mask, worst view counts, recorded in a real project and kept
    current when the mask changes; parts without a proposal sort last."""
    import numpy as np

    from labeling.masktools import disagreement
    from labeling.queue import ORDERS, proposal_disagreement
    from labeling.store import Project
    from labeling.types import DefectClass, Settings

    p = Project.create(tmp_path / "p.h5", Settings(classes=[DefectClass("crack")]))
    mask = np.zeros((8, 8), np.uint8)
    mask[:4, :4] = 1  # 16 px
    ids = [p.add_part([np.zeros((8, 8), np.uint8)] * 2, masks=[mask, None]) for _ in range(3)]
    half = np.zeros_like(mask)
    half[:4, :2] = 1  # 8 of the 16 px: IoU 0.5
    p.set_proposal(ids[0], 0, mask, "seg")  # agrees
    p.set_proposal(ids[1], 0, mask, "seg")
    p.set_proposal(ids[1], 1, half, "seg")  # view 1 has no mask: IoU 0, the worst view counts
    p.set_proposal(ids[2], 0, half, "seg")
    q = Project.open(p.path)
    assert [proposal_disagreement(q.part(i)) for i in ids] == [0.0, 1.0, 0.5]
    extra = q.add_part([np.zeros((8, 8), np.uint8)])  # no proposal: last
    order = [x.id for x in sorted(q.parts(), key=ORDERS["Proposal disagreement"])]
    assert order == [ids[1], ids[2], ids[0], extra]
    q.set_mask(ids[2], 0, half)  # the inspector takes the proposal: no disagreement left
    assert proposal_disagreement(Project.open(p.path).part(ids[2])) == 0.0
    assert disagreement(None, None) is None and disagreement(None, np.zeros((2, 2))) == 0.0
