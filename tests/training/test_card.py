"""The model card: old projects' dict metadata opens (migrated on read), a newer schema is refused,
the comparison table keeps its columns apart, and every reader takes the same card."""
from __future__ import annotations

import time

import pytest
from toykit import make_toy_project

from labeling.store import Project
from training.backbones import get_backbone
from training.card import SCHEMA, ModelCard, read_card, read_cards
from training.checkpoint import sha256, to_bytes
from training.errors import TrainingError
from training.inference import load_model
from training.registry import comparison_rows, comparison_table


def old_meta(arch: str, data: bytes) -> dict:
    """The record training/registry.py wrote before the card (no "schema"), key for key."""
    return {
        "arch": arch, "freeze": "last-block",
        "config": {"arch": arch, "freeze": "last-block", "epochs": 2, "fit": "letterbox"},
        "class_names": ["OK", "NG"], "input_size": [32, 32], "fit": "letterbox",
        "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        "rois": {"cam0": [1, 2, 20, 20]},
        "metrics": {"val": {"n": 4, "threshold": 0.4, "accuracy": 0.75, "balanced_accuracy": 0.75,
                            "roc_auc": 0.5, "pr_auc": 0.6, "kappa": 0.5, "ng_recall": 1.0, "ng_precision": 0.5,
                            "confusion_matrix": [[1, 1], [0, 2]],
                            "per_class": {"OK": {"precision": 1.0, "recall": 0.5, "f1": 0.67, "support": 2},
                                          "NG": {"precision": 0.67, "recall": 1.0, "f1": 0.8, "support": 2}}},
                    "split": {"train_parts": 20, "val_parts": 4, "val_part_ids": [3, 7, 11, 19]}},
        "threshold": 0.4, "part_rule": "max", "pretrained": True, "pretrained_source": "/weights/r18.pth",
        "parent": None, "created": time.time(), "dataset": {"hash": "abc", "n_parts": 24, "parts": [[3, "OK", 0]]},
        "history": [{"epoch": 1, "loss": 0.7, "val_loss": 0.6, "val_accuracy": 0.5, "val_balanced_accuracy": 0.5,
                     "val_roc_auc": None, "lr": 0.001, "seconds": 1.5},
                    {"epoch": 2, "loss": 0.5, "val_loss": 0.4, "val_accuracy": 0.75,
                     "val_balanced_accuracy": 0.75, "val_roc_auc": 0.5, "lr": 0.0005, "seconds": 1.25}],
        "best_epoch": 2, "target_layer": get_backbone(arch).target_layer, "checkpoint_sha256": sha256(data),
        "train_seconds": 3.5, "warnings": [], "cancelled": False,
    }


@pytest.fixture
def old_project(tmp_path):
    """A real HDF5 project holding a model stored the old way (dict metadata, no schema)."""
    path = make_toy_project(tmp_path / "old.okng", n_ok=3, n_ng=3, size=(32, 32), views=1)
    arch = "mobilenet_v3_small"
    data = to_bytes(get_backbone(arch).build(2), arch, 2)
    proj = Project.open(path)
    mid = f"{arch}-20240101-000000-abcd"
    proj.save_model(mid, old_meta(arch, data), data)
    proj.set_active_model(mid)
    return path, mid


def test_old_dict_metadata_is_migrated_on_read(old_project):
    path, mid = old_project
    card = read_card(Project.open(path, readonly=True), mid)
    assert card.schema == SCHEMA and card.id == mid and card.task == "verdict"
    assert card.arch == "mobilenet_v3_small" and card.freeze == "last-block" and card.classes == ["OK", "NG"]
    assert card.input_size == (32, 32) and card.mean == (0.5, 0.5, 0.5) and card.std == (0.25, 0.25, 0.25)
    assert card.roi("cam0") is not None and card.roi("cam0").to_list() == [1, 2, 20, 20] and card.roi("x") is None
    assert card.threshold == 0.4 and card.pretrained and card.pretrained_source == "/weights/r18.pth"
    assert card.val.get("balanced_accuracy") == 0.75 and card.val_part_ids == [3, 7, 11, 19]
    assert card.val.roc is None and card.val.scores == []  # the old record kept none: nothing invented
    assert card.train_parts == 20 and card.seen_part_ids == {3}
    assert [h.epoch for h in card.history] == [1, 2] and card.history[1].val_balanced_accuracy == 0.75
    assert card.timings.train_seconds == 3.5 and card.timings.epoch_seconds == [1.5, 1.25]
    # a migrated card stores and reads back as itself
    assert ModelCard.from_meta(card.to_meta()) == card


def test_old_model_loads_and_lists(old_project):
    path, mid = old_project
    loaded = load_model(path, "active", device="cpu")
    assert loaded.card.id == mid and loaded.input_size == (32, 32) and loaded.threshold == 0.4
    assert loaded.mean == (0.5, 0.5, 0.5) and loaded.rois["cam0"].to_list() == [1, 2, 20, 20]
    cards = read_cards(Project.open(path, readonly=True))
    rows = comparison_rows(cards, mid)
    assert rows[0]["id"] == mid and rows[0]["active"] and rows[0]["balanced_accuracy"] == 0.75


def test_comparison_table_keeps_the_id_apart_from_the_arch():
    long_id = "mobilenet_v3_small-20260101-120000-beef"  # 39 characters
    cards = [ModelCard(long_id, "mobilenet_v3_small"), ModelCard("resnet18-20260101-120001-abcd", "resnet18")]
    lines = comparison_table(cards, long_id).splitlines()
    head, first = lines[0], lines[1]
    col = head.index("arch")
    assert first[col:].startswith("mobilenet_v3_small") and first[col - 1] == " "
    assert first[2:col].rstrip() == long_id


def test_newer_schema_and_unknown_task_are_refused():
    with pytest.raises(TrainingError, match="newer okng"):
        ModelCard.from_meta({"schema": SCHEMA + 1, "id": "m", "arch": "resnet18"})
    with pytest.raises(TrainingError, match="unknown task"):
        ModelCard.from_meta({"schema": SCHEMA, "id": "m", "arch": "resnet18", "task": "teleport"})
    with pytest.raises(TrainingError, match="no architecture"):
        ModelCard.from_meta({"backbone": "resnet18"}, "m")  # the shape a GUI test once faked


def test_a_split_of_one_verdict_shows_no_balanced_accuracy_or_kappa():
    """NEU-DET has no OK part: its class models' derived verdict is NG for every part, so the
    verdict's balanced accuracy (one class's recall) and kappa (1.0 by convention) are left out
    rather than listed as perfect beside models scored on both verdicts."""
    import numpy as np

    from training.card import SplitMetrics
    from training.metrics import binary_report
    from training.task_metrics import multiclass_report
    names = ["OK", "crazing", "scratches"]
    y = np.array([1, 1, 2, 2, 2])
    probs = np.array([[0.0, 0.9, 0.1], [0.0, 0.2, 0.8], [0.0, 0.1, 0.9], [0.0, 0.3, 0.7], [0.1, 0.1, 0.8]])
    neu = ModelCard("neu", "resnet18", task="classes", classes=names,
                    metrics={"val": SplitMetrics(multiclass_report(y, probs, names))})
    both = ModelCard("both", "resnet18", metrics={"val": SplitMetrics(binary_report([0, 1, 1], [0.2, 0.7, 0.4]))})
    rows = {r["id"]: r for r in comparison_rows([neu, both], None)}
    assert rows["neu"]["balanced_accuracy"] is None and rows["neu"]["kappa"] is None
    assert rows["neu"]["accuracy"] == 1.0 and rows["neu"]["macro_f1"] is not None
    assert rows["both"]["balanced_accuracy"] == 0.75 and rows["both"]["kappa"] is not None
    table = comparison_table([neu, both], None)
    assert "do not exist; compare such models by mF1" in table
    assert "do not exist" not in comparison_table([both], None)
