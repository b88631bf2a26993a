"""The one train / validation / test split (training/splits.py): stratified, by part or by
group, deterministic; and what training does with it (headline test figures on the card)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from toykit import make_toy_project

from labeling.store import Project
from labeling.types import Label, Settings, Verdict
from training.card import ModelCard, read_card
from training.config import TrainConfig
from training.errors import TrainingError
from training.evaluate import evaluate_model
from training.loop import train
from training.registry import comparison_table
from training.splits import check_split, inherit_split, kfold, split_parts


def _disjoint(s) -> bool:
    a, b, c = set(s.train.tolist()), set(s.val.tolist()), set(s.test.tolist())
    return not (a & b or a & c or b & c)


def test_default_split_is_70_15_15_stratified_and_deterministic():
    t = np.array([0] * 60 + [1] * 40)
    s = split_parts(t, 0.15, 0.15, seed=4)
    assert _disjoint(s) and len(s.train) + len(s.val) + len(s.test) == 100
    assert (len(s.train), len(s.val), len(s.test)) == (70, 15, 15)
    assert t[s.test].sum() == 6 and t[s.val].sum() == 6  # 15 % of each verdict
    again = split_parts(t, 0.15, 0.15, seed=4)
    assert all(np.array_equal(getattr(s, k), getattr(again, k)) for k in ("train", "val", "test"))
    other = split_parts(t, 0.15, 0.15, seed=5)
    assert not np.array_equal(s.test, other.test)
    assert check_split(s, t) == []


def test_groups_never_straddle_two_sets():
    groups = [f"item{i // 4}" for i in range(80)]  # 4 crops per item
    t = np.array([int(i // 4 % 3 == 0) for i in range(80)])  # an item's crops share a verdict
    t[5] = 1  # one NG crop in an otherwise OK item: the item counts as NG
    for seed in range(5):
        s = split_parts(t, 0.15, 0.2, seed, groups)
        assert _disjoint(s)
        for name in ("train", "val", "test"):
            pos = getattr(s, name)
            others = set().union(*({groups[i] for i in getattr(s, o)} for o in ("train", "val", "test") if o != name))
            assert not {groups[i] for i in pos} & others
        assert len(s.test) and len(s.val) and {0, 1} <= set(t[s.test].tolist())
    # parts without a group value are groups of their own
    loose = split_parts(t, 0.15, 0.15, 0, [None] * 80)
    assert len(loose.test) == 12 and len(loose.val) == 12
    for tr, va in kfold(t, 4, 0, groups):
        assert not {groups[i] for i in tr} & {groups[i] for i in va}


def test_kfold_counts_verdicts_by_part_when_every_group_holds_an_ng_picture():
    """KolektorSDD's shape: eight pictures of each item, one of them NG, so every group's worst
    verdict is NG. Each fold still validates OK and NG pictures, groups whole, every part once."""
    groups = [f"kos{i // 8}" for i in range(80)]
    t = np.array([int(i % 8 == 3) for i in range(80)])
    for seed in range(3):
        folds = kfold(t, 5, seed, groups)
        seen = np.concatenate([va for _, va in folds])
        assert sorted(seen.tolist()) == list(range(80))
        for tr, va in folds:
            assert set(t[va].tolist()) == {0, 1} and set(t[tr].tolist()) == {0, 1}
            assert not {groups[i] for i in tr} & {groups[i] for i in va}
            assert len(va) == 16
    # NG pictures in only three items cannot fill five folds: refused, saying what it counted
    t3 = np.array([int(i % 8 == 3 and i < 24) for i in range(80)])
    with pytest.raises(TrainingError, match=r"at least 5 groups of each verdict .*have 10 OK, 3 NG"):
        kfold(t3, 5, 0, groups)


def test_a_warm_started_child_keeps_its_parents_split_and_splits_only_new_parts():
    t = np.array([0] * 60 + [1] * 40)
    ids = list(range(100, 200))
    parent = {**split_parts(t, 0.15, 0.15, seed=4).ids(ids), "group_by": None}
    # 40 parts labelled since the parent; the child asks for another seed: a fresh draw would differ.
    t2, ids2 = np.concatenate([t, [0] * 24 + [1] * 16]), ids + list(range(300, 340))
    child = inherit_split(parent, "p1", ids2, t2, 0.15, 0.15, seed=9)
    got = child.ids(ids2)
    assert _disjoint(child) and sum(map(len, got.values())) == 140
    for name in ("train", "val", "test"):  # every parent part stays where the parent had it
        assert set(parent[name]) <= set(got[name])
    new = {name: set(got[name]) - set(parent[name]) for name in got}
    assert (len(new["train"]), len(new["val"]), len(new["test"])) == (28, 6, 6)  # 15/15 % of the new ones
    assert not set(parent["train"]) & set(got["test"])


def test_inherit_split_keeps_groups_whole_and_refuses_what_it_cannot_place():
    groups = [f"item{i // 4}" for i in range(40)]
    t = np.array([0] * 20 + [1] * 20)
    ids = list(range(40))
    parent = {**split_parts(t[:36], 0.2, 0.2, 1, groups[:36]).ids(ids[:36]), "group_by": "item"}
    # part 36..39 are item9 (new); part 40 is a new crop of item0, which the parent holds
    t2, ids2, g2 = np.append(t, 0), ids + [40], groups + ["item0"]
    child = inherit_split(parent, "p1", ids2, t2, 0.2, 0.2, 3, g2, "item")
    got = child.ids(ids2)
    home = next(n for n in got if 0 in parent[n])
    assert 40 in got[home]
    with pytest.raises(TrainingError, match="needs --group-by item"):
        inherit_split(parent, "p1", ids2, t2, 0.2, 0.2, 3, None, None)
    with pytest.raises(TrainingError, match="keeps no train/val/test split"):
        inherit_split({}, "p1", ids2, t2, 0.2, 0.2, 3)


def test_too_few_parts_give_a_warning_not_a_crash():
    t = np.array([0, 0, 1, 1])
    s = split_parts(t, 0.15, 0.15, 0)
    assert len(s.test) == 0 and len(s.val) == 2  # 2 per verdict: no test share, one each to validation
    assert check_split(s, t) == []
    t = np.array([0, 0, 0, 1, 1])
    s = split_parts(t, 0.15, 0.15, 0)
    assert len(s.test) == 1 and any("test split holds only OK" in w for w in check_split(s, t))
    with pytest.raises(TrainingError, match="at least 3 groups"):
        kfold(np.array([0, 0, 0, 1, 1, 1]), 3, 0, ["a", "a", "b", "c", "c", "d"])


def test_training_reports_the_test_split_as_headline(tmp_path):
    torch.set_num_threads(1)
    path = make_toy_project(tmp_path / "t.okng", n_ok=10, n_ng=10, size=(32, 32), views=1)
    res = train(path, TrainConfig(arch="resnet18", freeze="none", epochs=2, input_size=32, batch_size=8,
                                  target_ng_recall=1.0))
    split = res.metrics["split"]
    assert split["train_parts"] + split["val_parts"] + split["test_parts"] == 20
    assert split["test_parts"] >= 2 and split["headline"] == "test"
    card = read_card(Project.open(path, readonly=True), res.model_id)
    assert card.headline_split == "test" and card.headline is card.metrics["test"]
    ids = card.split
    assert set(ids["test"]) == set(card.test.part_ids) and set(ids["val"]) == set(card.val.part_ids)
    assert not set(ids["test"]) & (set(ids["train"]) | set(ids["val"]))
    # the threshold was chosen on validation and the test parts are scored at it
    assert card.test.get("threshold") == pytest.approx(card.threshold) == card.val.get("threshold")
    # evaluate: by default the test parts only (no part was labelled since)
    rep = evaluate_model(path, res.model_id, device="cpu")
    assert rep["parts"]["n"] == split["test_parts"] and rep["split"] == "test"
    assert rep["parts"]["balanced_accuracy"] == pytest.approx(card.test.get("balanced_accuracy"))
    every = evaluate_model(path, res.model_id, all_parts=True, device="cpu")
    assert every["parts"]["n"] == 20 and "training parts included" in every["scope"]
    table = comparison_table([card], card.id)
    assert " test " in table and "held-out TEST" in table


def _item_project(path, item: str = "item") -> dict[int, str]:
    """24 parts, two crops per scan (field `item`, same verdict), and a `height` field that
    repeats across parts without naming an item; each part's item by id."""
    proj = Project.create(path, Settings(name="g", cameras=["cam0"]))
    rng = np.random.default_rng(1)
    item_of = {}
    for i in range(24):
        scan = f"scan{i // 2}"  # two crops per scan, same verdict
        ng = (i // 2) % 2 == 1
        img = rng.normal(70, 10, (32, 32)).clip(0, 255).astype(np.uint8)
        if ng:
            img[10:20, 10:20] = 250
        pid = proj.add_part([img], meta={"fields": {item: scan, "height": str(1250 + i % 3)}},
                            label=Label(Verdict.NG, 1) if ng else Label(Verdict.OK))
        item_of[pid] = scan
    return item_of


def test_group_by_item_keeps_an_items_parts_together_and_is_stored(tmp_path):
    torch.set_num_threads(1)
    path = tmp_path / "g.okng"
    item_of = _item_project(path)
    res = train(path, TrainConfig(arch="resnet18", freeze="none", epochs=1, input_size=32, batch_size=8,
                                  group_by="item", seed=3))
    card = read_card(Project.open(path, readonly=True), res.model_id)
    assert card.split["group_by"] == "item" and res.metrics["split"]["group_by"] == "item"
    sides = {name: {item_of[i] for i in card.split[name]} for name in ("train", "val", "test")}
    assert not (sides["train"] & sides["val"] or sides["train"] & sides["test"] or sides["val"] & sides["test"])
    assert len(card.split["test"]) >= 2
    with pytest.raises(TrainingError, match="no labelled part has a field 'lot'"):
        train(path, TrainConfig(arch="resnet18", epochs=1, input_size=32, group_by="lot"))


def test_okng_train_groups_by_an_item_field_unless_told_and_a_warm_start_keeps_its_parents(tmp_path, capsys):
    """`--group-by auto` (the default): an item-named field groups the split (matched by name:
    the repeating `height` field is not taken), said on stderr; `none` splits part by part; a
    warm start keeps its parent's grouping (an item field appearing later does not break it)."""
    from app.cli import main as cli_main
    from training.grouping import auto_group_by, suggest
    assert suggest(["height", "Serial", "item"]) == "item" and suggest(["Serial", "fold"]) == "Serial"
    assert suggest(["height", "fold", "width"]) is None
    torch.set_num_threads(1)
    path = tmp_path / "g.okng"
    item_of = _item_project(path, item="Item")
    tiny = ["--arch", "resnet18", "--epochs", "1", "--input-size", "32", "--batch-size", "8"]
    assert cli_main(["train", str(path), *tiny]) == 0
    err = capsys.readouterr().err
    assert "split grouped by the parts' 'Item' field (24 parts, 12 values)" in err and "--group-by none" in err
    proj = Project.open(path, readonly=True)
    grouped = read_card(proj, proj.models()[-1]["id"])
    assert grouped.split["group_by"] == "Item"
    sides = [{item_of[i] for i in grouped.split[k]} for k in ("train", "val", "test")]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])

    assert cli_main(["train", str(path), *tiny, "--group-by", "none"]) == 0
    assert "split grouped" not in capsys.readouterr().err
    proj = Project.open(path, readonly=True)
    alone = read_card(proj, proj.models()[-1]["id"])
    assert alone.split["group_by"] is None
    assert auto_group_by(path, alone.id) == (None, "")  # its child inherits a part-by-part split
    assert cli_main(["train", str(path), *tiny, "--warm-start", alone.id]) == 0
    proj = Project.open(path, readonly=True)
    child = read_card(proj, proj.models()[-1]["id"])
    assert child.split["group_by"] is None and child.split["test"] == alone.split["test"]


def test_a_split_field_fixes_each_parts_set_and_new_parts_are_drawn(tmp_path, capsys):
    """`split_field`: the parts' own train/val/test values are the split (aliases and case
    allowed); a part without one is placed by the fractions; a value naming no set is refused."""
    torch.set_num_threads(1)
    path = tmp_path / "s.okng"
    proj = Project.create(path, Settings(name="s", cameras=["cam0"]))
    rng = np.random.default_rng(2)
    said = {}
    names = ["train"] * 8 + ["Validation"] * 4 + ["TEST"] * 4 + [""] * 8
    for i, name in enumerate(names):
        ng = i % 2 == 1
        img = rng.normal(70, 10, (32, 32)).clip(0, 255).astype(np.uint8)
        if ng:
            img[10:20, 10:20] = 250
        fields = {"split": name} if name else {}
        pid = proj.add_part([img], meta={"fields": fields}, label=Label(Verdict.NG, 1) if ng else Label(Verdict.OK))
        said[pid] = {"train": "train", "validation": "val", "test": "test"}.get(name.lower())
    res = train(path, TrainConfig(arch="resnet18", freeze="none", epochs=1, input_size=32, batch_size=8,
                                  split_field="split", seed=3))
    card = read_card(Project.open(path, readonly=True), res.model_id)
    assert card.split["split_field"] == "split" and res.metrics["split"]["split_field"] == "split"
    for pid, name in said.items():
        placed = next(k for k in ("train", "val", "test") if pid in card.split[k])
        assert name is None or placed == name
    unsaid = [pid for pid, name in said.items() if name is None]
    assert any(pid in card.split["train"] for pid in unsaid)  # drawn by the fractions, not dropped
    assert sum(len(card.split[k]) for k in ("train", "val", "test")) == len(names)
    with pytest.raises(TrainingError, match="no labelled part has a field 'fold'"):
        train(path, TrainConfig(arch="resnet18", epochs=1, input_size=32, split_field="fold"))
    from app.cli import main as cli_main
    assert cli_main(["train", str(path), "--split-field", "split", "--arch", "resnet18", "--epochs", "1",
                     "--input-size", "32", "--batch-size", "8", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "as the field 'split' says" in out
    assert cli_main(["train", str(path), "--task", "segment", "--split-field", "split"]) == 2
    assert "--split-field covers verdict" in capsys.readouterr().err
    proj = Project.open(path)
    proj.add_part([img], meta={"fields": {"split": "holdout"}}, label=Label(Verdict.OK))
    with pytest.raises(TrainingError, match="'holdout' name no set"):
        train(path, TrainConfig(arch="resnet18", epochs=1, input_size=32, split_field="split"))
    with pytest.raises(TrainingError, match="not both"):
        TrainConfig(split_field="split", warm_start="m1").validate()


def test_kfold_keeps_an_outer_test_set(tmp_path):
    torch.set_num_threads(1)
    path = make_toy_project(tmp_path / "k.okng", n_ok=10, n_ng=10, size=(32, 32), views=1)
    res = train(path, TrainConfig(arch="resnet18", freeze="none", epochs=1, input_size=32, batch_size=8,
                                  folds=2, seed=2))
    card = read_card(Project.open(path, readonly=True), res.model_id)
    test = set(card.split["test"])
    assert test and card.cv["folds"] == 2
    n_validated = sum(f["n"] for f in card.cv["per_fold"])
    assert n_validated == 20 - len(test)  # every part outside the test set validated once, none of it


def test_an_old_card_without_test_split_still_displays_as_validation():
    card = ModelCard.from_meta({"id": "old", "arch": "resnet18", "class_names": ["OK", "NG"],
                                "metrics": {"val": {"n": 4, "balanced_accuracy": 0.75, "accuracy": 0.75},
                                            "split": {"val_part_ids": [1, 2, 3, 4]}}})
    assert card.headline_split == "val" and card.headline_name == "validation"
    assert card.held_out_part_ids == [1, 2, 3, 4] and card.split == {}
    table = comparison_table([card], None)
    assert " val " in table and "0.750" in table
