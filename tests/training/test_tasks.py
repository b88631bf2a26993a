"""Model tasks (training/tasks.py) and their metrics (training/task_metrics.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from labeling.types import Label, Verdict
from training.task_metrics import multiclass_report, multilabel_report, rescale
from training.tasks import TASKS, get_task, inverse_frequency

CLASSES = ["insufficient coating", "no coating", "short coating", "foreign substance"]


def test_registry_and_targets():
    assert list(TASKS) == ["verdict", "classes", "multilabel"]
    with pytest.raises(ValueError, match="known: verdict, classes, multilabel"):
        get_task("segmentation")
    ok, ng2, ng_none, multi = (Label(Verdict.OK), Label(Verdict.NG, 2), Label(Verdict.NG),
                               Label(Verdict.NG, classes=(3, 1)))
    v, c, m = TASKS["verdict"], TASKS["classes"], TASKS["multilabel"]
    assert [v.target(x, 4) for x in (ok, ng2, ng_none, None)] == [0, 1, 1, None]
    assert [c.target(x, 4) for x in (ok, ng2, ng_none, multi)] == [0, 2, None, 3]  # main class
    assert m.target(multi, 4).tolist() == [1, 0, 1, 0] and m.target(ok, 4).tolist() == [0, 0, 0, 0]
    assert m.target(ng_none, 4) is None
    assert c.output_names(CLASSES) == ["OK", *CLASSES] and m.output_names(CLASSES) == CLASSES


def test_class_weights_balance_and_skip_absent_classes():
    w = inverse_frequency(np.array([0, 10, 30, 60]))  # no OK part (neu_det)
    assert w[0] == 0 and np.allclose(w[1:] * [10, 30, 60], w[1] * 10)
    pw = TASKS["multilabel"].class_weights([[1, 0], [0, 0], [0, 0], [1, 1]], 2)
    assert pw.tolist() == [1.0, 3.0]
    loss = TASKS["classes"].loss(w)
    assert float(loss(torch.zeros(2, 4), torch.tensor([1, 3]))) > 0


def test_decisions_name_the_class_of_the_deciding_view():
    c = TASKS["classes"]
    views = np.array([[0.9, 0.05, 0.03, 0.01, 0.01],   # OK-looking view
                      [0.2, 0.05, 0.1, 0.6, 0.05]])    # the worst view: class 3
    d = c.decide(views)
    assert d.verdict == Verdict.NG and d.defect_class == 3 and d.confidence == pytest.approx(0.8)
    assert c.decide(views[:1]).verdict == Verdict.OK and c.decide(views[:1]).defect_class == 0
    m = TASKS["multilabel"]
    # class 1 at 0.6 over a 0.5 bar (rescaled 0.6), class 4 at 0.5 over a 0.2 bar (0.6875):
    # the most confident class is the one furthest past its own bar, not the largest P
    d = m.decide(np.array([[0.6, 0.1, 0.1, 0.5]]), thresholds=[0.5, 0.5, 0.5, 0.2])
    assert d.verdict == Verdict.NG and d.defect_class == 4
    d = m.decide(np.array([[0.4, 0.1, 0.1, 0.1]]), thresholds=[0.5, 0.5, 0.5, 0.2])
    assert d.verdict == Verdict.OK and d.defect_class == 0
    assert np.allclose(rescale(np.array([0.2, 0.5, 1.0]), [0.2, 0.2, 0.2]), [0.5, 0.6875, 1.0])


def test_multilabel_thresholds_chosen_on_validation():
    y = np.array([[1, 0], [1, 0], [0, 0], [0, 0], [0, 0]])
    p = np.array([[0.30, 0.1], [0.25, 0.2], [0.20, 0.1], [0.05, 0.1], [0.1, 0.1]])
    t = TASKS["multilabel"].fit_thresholds(y, p)
    assert t == [0.25, 0.5]  # class 1 separates at 0.25; class 2 has no positive


def test_multiclass_report_by_hand():
    y = np.array([1, 1, 1, 2, 2, 3, 0, 0])
    pred = np.array([1, 1, 2, 2, 2, 3, 0, 1])
    probs = np.eye(4)[pred] * 0.7 + 0.075
    r = multiclass_report(y, probs, ["OK", "a", "b", "c"])
    assert r["confusion_matrix"] == [[1, 1, 0, 0], [0, 2, 1, 0], [0, 0, 2, 0], [0, 0, 0, 1]]
    f1 = {"OK": 2 / 3, "a": 2 / 3, "b": 0.8, "c": 1.0}
    for n, v in f1.items():
        assert r["per_class"][n]["f1"] == pytest.approx(v)
    assert r["macro_f1"] == pytest.approx(np.mean(list(f1.values())))
    assert r["weighted_f1"] == pytest.approx((2 / 3 * 2 + 2 / 3 * 3 + 0.8 * 2 + 1.0) / 8)
    po, pe = 6 / 8, (2 * 1 + 3 * 3 + 2 * 3 + 1 * 1) / 64
    assert r["kappa"] == pytest.approx((po - pe) / (1 - pe))
    assert r["one_vs_rest"]["c"]["roc_auc"] == 1.0
    # derived verdict: truth NG = not class 0; one OK part called NG, no NG part called OK
    assert r["verdict"]["confusion_matrix"] == [[1, 1], [0, 6]]
    # a class nobody holds and nobody predicts is left out of the macro average
    r2 = multiclass_report([1, 2], np.array([[0, 1, 0], [0, 0, 1]]), ["OK", "a", "b"])
    assert r2["macro_f1"] == 1.0


def test_multilabel_report_by_hand():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 0, 1]])
    p = np.array([[0.9, 0.1, 0.1], [0.8, 0.2, 0.1], [0.1, 0.1, 0.1], [0.1, 0.1, 0.7]])
    r = multilabel_report(y, p, ["a", "b", "c"])
    assert r["exact_match"] == 0.75 and r["hamming_loss"] == pytest.approx(1 / 12)
    assert r["per_class"]["b"]["recall"] == 0.0 and r["per_class"]["a"]["f1"] == 1.0
    assert r["verdict"]["confusion_matrix"] == [[1, 0], [0, 3]]
    r = multilabel_report(y, p, ["a", "b", "c"], thresholds=[0.5, 0.15, 0.5])
    assert r["exact_match"] == 1.0


def _four_class_images(n_per: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """OK (plain) and four defect patterns on noisy 16x16 images: stripes across, stripes down,
    a bright spot, a dark square. Class number = output index (0 = OK)."""
    g = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for cls in range(5):
        for _ in range(n_per):
            img = torch.rand(1, 16, 16, generator=g) * 0.4 + 0.3
            r, c = (int(v) for v in torch.randint(2, 10, (2,), generator=g))
            if cls == 1:
                img[:, r:r + 4:2, :] += 0.5
            elif cls == 2:
                img[:, :, c:c + 4:2] += 0.5
            elif cls == 3:
                img[:, r:r + 3, c:c + 3] = 1.0
            elif cls == 4:
                img[:, r:r + 4, c:c + 4] = 0.0
            xs.append(img)
            ys.append(cls)
    return torch.stack(xs), torch.tensor(ys)


def test_tiny_model_learns_four_classes_above_chance_per_class():
    torch.manual_seed(0)
    task = TASKS["classes"]
    x, y = _four_class_images(24, seed=1)
    xt, yt = _four_class_images(12, seed=2)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveMaxPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(16, 5))
    loss_fn = task.loss(task.class_weights(y.tolist(), 5))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(60):
        perm = torch.randperm(len(y))
        for k in range(0, len(y), 40):
            b = perm[k:k + 40]
            opt.zero_grad()
            loss_fn(model(x[b]), y[b]).backward()
            opt.step()
    with torch.no_grad():
        probs = task.probabilities(model(xt)).numpy()
    report = task.report(yt.numpy(), probs, task.output_names(CLASSES))
    recalls = {n: r["recall"] for n, r in report["per_class"].items()}
    print("per-class recall", recalls, "macro F1", round(report["macro_f1"], 3))
    assert min(recalls.values()) >= 0.6, recalls  # chance is 0.2
    decisions = [task.decide(p[None, :]) for p in probs]
    ng_truth = yt.numpy() > 0
    agree = np.mean([d.defect_class == t for d, t, ng in zip(decisions, yt.numpy(), ng_truth) if ng])
    assert agree >= 0.6


def test_class_curves_are_kept_per_split_on_the_card_thinned():
    """One-vs-rest ROC/PR per class go on the card (per split), thinned, and survive a round trip."""
    from training.card import ModelCard, SplitMetrics
    from training.task_metrics import CURVE_POINTS, class_curves
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 900)
    p = rng.dirichlet(np.ones(3), 900)
    curves = class_curves(y, p, ["OK", "a", "b"])
    assert set(curves) == {"OK", "a", "b"} and len(curves["a"]["roc"].x) <= CURVE_POINTS
    assert curves["a"]["roc"].x[0] == 0.0 and curves["a"]["roc"].x[-1] == 1.0  # ends kept
    ml = class_curves(np.array([[1, 0], [0, 0], [1, 0]]), np.array([[0.9, 0.1], [0.2, 0.3], [0.7, 0.2]]), ["a", "b"])
    assert set(ml) == {"a"}  # nobody holds b: no curve
    card = ModelCard("m", "resnet18", task="classes", classes=["OK", "a", "b"],
                     metrics={"val": SplitMetrics({"names": ["OK", "a", "b"]}, classes=curves)})
    back = ModelCard.from_meta(card.to_meta(), "m")
    assert back.val.classes["b"]["pr"] == curves["b"]["pr"]
