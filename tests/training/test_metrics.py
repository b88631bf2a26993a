"""Metrics against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    binary_report,
    cohen_kappa,
    confusion_matrix,
    mean_std,
    pr_auc,
    roc_auc,
    table2,
    threshold_for_recall,
)


def test_confusion_and_per_class_by_hand():
    y = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    s = [0.1, 0.2, 0.6, 0.3, 0.9, 0.8, 0.4, 0.7, 0.55, 0.95]
    r = binary_report(y, s, 0.5)
    # predicted NG: 0.6 (OK), 0.9 0.8 0.7 0.55 0.95 (NG); missed NG: 0.4
    assert r["confusion_matrix"] == [[3, 1], [1, 5]]
    assert r["per_class"]["NG"]["precision"] == pytest.approx(5 / 6)
    assert r["per_class"]["NG"]["recall"] == pytest.approx(5 / 6)
    assert r["per_class"]["OK"]["precision"] == pytest.approx(3 / 4)
    assert r["per_class"]["OK"]["f1"] == pytest.approx(0.75)
    assert r["per_class"]["OK"]["support"] == 4 and r["per_class"]["NG"]["support"] == 6
    assert r["accuracy"] == pytest.approx(0.8)
    assert r["balanced_accuracy"] == pytest.approx((3 / 4 + 5 / 6) / 2)
    # kappa: po = .8, pe = (4*4 + 6*6)/100 = .52 -> (.8-.52)/.48
    assert r["kappa"] == pytest.approx(0.28 / 0.48)
    # AUC: pairs (pos > neg) of 6*4=24: 0.4 beats 0.1,0.2,0.3 (3); 0.55 beats 3; others beat all 4 (16) -> 22
    assert r["roc_auc"] == pytest.approx(22 / 24)
    text = table2(r)
    assert "precision" in text and "NG" in text and "0.83" in text


def test_auc_ties_pr_auc_and_degenerate_cases():
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([1, 1], [0.2, 0.3]) is None
    # AP by hand: ranking 0.9(1) 0.8(0) 0.7(1): P@1=1 R=.5; P@3=2/3 R=1 -> .5*1 + .5*2/3
    assert pr_auc([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx(0.5 + 1 / 3)
    assert pr_auc([0, 0], [0.1, 0.2]) is None
    assert cohen_kappa(confusion_matrix([0, 1, 1], [0, 1, 1])) == pytest.approx(1.0)
    assert confusion_matrix([1, 1, 0], [0, 1, 0]).tolist() == [[1, 0], [1, 1]]


def test_threshold_reaches_target_recall_with_fewest_rejects():
    y = np.array([1, 1, 1, 1, 0, 0])
    s = np.array([0.9, 0.6, 0.3, 0.2, 0.25, 0.1])
    t = threshold_for_recall(y, s, 0.75)
    assert t == pytest.approx(0.3)
    assert binary_report(y, s, t)["ng_recall"] >= 0.75
    assert threshold_for_recall(y, s, 1.0) == pytest.approx(0.2)


def test_mean_std_over_folds():
    out = mean_std([{"accuracy": 0.9, "roc_auc": None}, {"accuracy": 1.0, "roc_auc": 0.8}])
    assert out["accuracy"]["mean"] == pytest.approx(0.95) and out["accuracy"]["std"] == pytest.approx(0.05)
    assert out["roc_auc"]["n"] == 1


def test_text_tables_size_the_class_column_to_the_longest_name():
    """A class name of 20+ characters does not push the figures out of line (evaluate, models)."""
    from training.task_metrics import multiclass_report, multilabel_report
    from training.task_metrics import table as task_table
    names = ["OK", "insufficient coating", "a very long defect class name indeed"]
    y = np.array([0, 1, 2, 0, 1, 2])
    rep = {**multiclass_report(y, np.eye(3)[y] * 0.8 + 0.1 / 3, names), "threshold": 0.5}
    ml = multilabel_report(np.eye(3, dtype=int)[y], np.eye(3)[y] * 0.8 + 0.1, names)
    for text in (table2(rep), task_table(ml)):
        rows = [ln for ln in text.splitlines() if ln.split() and (ln.startswith(tuple(names)) or not ln[0].strip())]
        head, body = rows[0], rows[1:4]
        # the figures' columns end where the header's do, whatever the name's length
        assert {len(r.rstrip()) for r in body} == {len(head.rstrip())}, text
        assert all(n in text for n in names)  # never cut


def test_comparison_table_fits_long_text_columns():
    from training.card import ModelCard
    from training.registry import comparison_table
    cards = [ModelCard("m-1", "resnet18", input_size=(1263, 500), freeze="last-block"),
             ModelCard("m-2", "resnet18", input_size=(32, 32), freeze="none")]
    lines = comparison_table(cards, None).splitlines()
    head = lines[0]
    rows = [ln for ln in lines if ln.strip().startswith("m-")]
    assert "1263x500 " in rows[0]  # the input column holds it with a gap
    for col in ("parts", "acc", "thr"):  # right-aligned figures end under their header
        at = head.index(f" {col} ") + 1 + len(col)
        assert all(r[at - 1] != " " and r[at] == " " for r in rows), (col, lines)
