"""Training per task on tiny generated projects: classes (with and without OK parts) and
multilabel; the card, the decision with its defect class, evaluate and the comparison."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from toykit import make_class_project

from labeling.store import Project
from labeling.types import Verdict
from training.card import read_card
from training.config import TrainConfig
from training.errors import TrainingError
from training.evaluate import evaluate_model
from training.inference import load_model
from training.loop import train
from training.registry import comparison_table

# recipe manual: the settings the other tests were sized with (Adam, no schedule).
FAST = {"arch": "resnet18", "freeze": "none", "epochs": 6, "input_size": 48, "batch_size": 8, "seed": 1,
        "patience": 0, "recipe": "manual"}
# The four-class model trains with the default recipe (auto: scratch here, no ImageNet weights):
# a short run of 6 tiny epochs must learn every class (recipe.SHORT_RUN_STEPS, the batch-scaled lr).
DEFAULT = {k: v for k, v in FAST.items() if k != "recipe"}


@pytest.fixture(scope="module")
def classes_model(tmp_path_factory):
    torch.set_num_threads(1)
    path = make_class_project(tmp_path_factory.mktemp("classes") / "cls.okng", per_class=10, n_ok=10)
    return path, train(path, TrainConfig(task="classes", **DEFAULT))


def test_class_model_learns_every_class_above_chance(classes_model):
    path, res = classes_model
    assert not res.cancelled and res.card.task == "classes"
    assert res.card.extra["recipe"]["name"] == "scratch" and "augment_why" in res.card.extra["recipe"]
    card = read_card(Project.open(path, readonly=True), res.model_id)
    assert card.classes == ["OK", "insufficient coating", "no coating", "short coating", "foreign substance"]
    rep = evaluate_model(path, res.model_id, all_parts=True)  # all parts: the tiny val split is 2 per class
    recall = {n: r["recall"] for n, r in rep["parts"]["per_class"].items()}
    print("per-class recall", recall, "macro F1", rep["parts"]["macro_f1"])
    assert min(recall.values()) >= 0.5, recall  # chance is 0.2
    assert rep["task"] == "classes" and len(rep["parts"]["confusion_matrix"]) == 5
    assert rep["verdict"]["ng_recall"] >= 0.8 and "one_vs_rest" in rep["parts"]


def test_class_model_names_the_defect_of_the_deciding_view(classes_model):
    path, res = classes_model
    proj = Project.open(path, readonly=True)
    loaded = load_model(proj, res.model_id, "cpu")
    agree = []
    for p in proj.parts():
        dec = loaded.predict_views(proj.read_views(p.id), [v.camera for v in p.views])
        if p.verdict == Verdict.NG and dec.verdict == Verdict.NG:
            agree.append(dec.defect_class == p.label.defect_class)
        if dec.verdict == Verdict.OK:
            assert dec.defect_class == 0
    assert len(agree) >= 30 and np.mean(agree) >= 0.6, np.mean(agree)


def test_defect_classes_without_ok_parts_train(tmp_path):
    """neu_det's shape: six defect classes, no OK part. A classes model trains on them."""
    path = make_class_project(tmp_path / "nook.okng", per_class=6, ok_parts=False)
    res = train(path, TrainConfig(task="classes", **dict(FAST, epochs=2)))
    assert res.card.task == "classes" and res.card.val.report["per_class"]["OK"]["support"] == 0
    with pytest.raises(TrainingError, match="at least 2 OK and 2 NG"):
        train(path, TrainConfig(task="verdict", **dict(FAST, epochs=1)))


def test_multilabel_model_thresholds_and_comparison(tmp_path, classes_model):
    path = make_class_project(tmp_path / "ml.okng", per_class=6, n_ok=6, multi=8)
    res = train(path, TrainConfig(task="multilabel", **dict(FAST, epochs=4)))
    card = res.card
    assert card.task == "multilabel" and card.classes == [c for c in card.classes if c != "OK"]
    assert len(card.extra["thresholds"]) == 4 and all(0 < t < 1 for t in card.extra["thresholds"])
    rep = card.val.report
    assert {"exact_match", "hamming_loss", "macro_f1", "verdict"} <= set(rep)
    loaded = load_model(Project.open(path, readonly=True), card.id, "cpu")
    assert loaded.thresholds == card.extra["thresholds"]
    ev = evaluate_model(path, card.id, all_parts=True)
    assert ev["parts"]["task_kind"] == "multilabel" and ev["parts"]["per_class"]["no coating"]["support"] > 0
    # models are compared within their task: one block per task
    cards = [res.card, classes_model[1].card]
    text = comparison_table(cards, None)
    assert "task multilabel" in text and "task classes" in text


def test_ng_parts_without_a_class_are_left_out_of_a_class_task(tmp_path):
    from toykit import make_toy_project
    path = make_toy_project(tmp_path / "toy.okng", n_ok=4, n_ng=5)
    proj = Project.open(path)
    ng = [p.id for p in proj.parts() if p.verdict == Verdict.NG]
    proj.set_label(ng[0], "NG")  # judged NG, no class given
    res = train(path, TrainConfig(task="classes", **dict(FAST, epochs=1)))
    assert any("1 NG parts without a defect class left out" in w for w in res.warnings)
    assert res.card.dataset["n_parts"] == 8
    with pytest.raises(TrainingError, match="unknown task"):
        TrainConfig(task="segmentation").validate()


def test_explain_any_class_of_a_class_model_by_name(classes_model, capsys):
    import json

    from app.cli import main
    path, res = classes_model
    assert main(["explain", str(path), "--model", res.model_id, "--class", "No Coating", "--parts", "11-16",
                 "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["recipe"]["target_class"] == 2 and out["class_names"][2] == "no coating"
    # the agreement table is per defect class (parts 11-16 are all "insufficient coating")
    assert set(out["summary"]) == {"insufficient coating"}
    assert main(["explain", str(path), "--model", res.model_id, "--class", "rust", "--json"]) == 1
    assert "the model's classes are OK, insufficient coating" in capsys.readouterr().err
