"""`okng label-issues`: K real models, out-of-fold predictions, flipped labels found and recorded."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from toykit import make_toy_project

from labeling.queue import FILTERS
from labeling.store import Project
from labeling.types import Verdict


def test_label_issues_finds_flipped_labels_and_records_them(tmp_path, capsys):
    from app.cli import main
    torch.set_num_threads(1)
    path = make_toy_project(tmp_path / "flip.okng", n_ok=12, n_ng=12)
    proj = Project.open(path)
    ok = [p.id for p in proj.parts() if p.verdict == Verdict.OK]
    ng = [p.id for p in proj.parts() if p.verdict == Verdict.NG]
    flipped = [ok[0], ok[5], ng[3]]  # labelled the wrong way on purpose
    proj.set_label(ok[0], "NG", 1)
    proj.set_label(ok[5], "NG", 1)
    proj.set_label(ng[3], "OK")
    assert main(["label-issues", str(path), "--folds", "3", "--epochs", "3", "--input-size", "32",
                 "--batch-size", "8", "--seed", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    found = [r["part_id"] for r in out["issues"]]
    hit = set(found) & set(flipped)
    precision, recall = len(hit) / max(len(found), 1), len(hit) / len(flipped)
    print(f"label-issues on real models: precision {precision:.2f} recall {recall:.2f} ({found} vs {flipped})")
    assert recall >= 2 / 3 and precision >= 0.6
    again = Project.open(path, readonly=True)
    assert {p.id for p in again.parts() if FILTERS["Likely label errors"](p)} == set(found)
    row = next(r for r in out["issues"] if r["part_id"] in hit)
    assert row["suggested"] != row["given"] and 0 <= row["self_confidence"] < 0.5


def test_label_issues_checks_multilabel_parts_class_by_class(tmp_path, capsys):
    """A multilabel project, labels changed on purpose: an OK part given a class, a part's class swapped
    for another, a two-class part with one class dropped; real models, three folds. Tiny models on
    24 training parts are weak (measured precision 0.18, recall 0.67): this checks the run, the
    rows and the record; the precision/recall floors are test_label_issues' (real out-of-fold
    sigmoid probabilities, 0.94 / 0.85)."""
    from toykit import make_class_project

    from app.cli import main
    torch.set_num_threads(1)
    path = make_class_project(tmp_path / "ml.okng", per_class=6, n_ok=6, multi=6, size=(40, 48))
    proj = Project.open(path)
    parts = proj.parts()
    ok = [p.id for p in parts if p.verdict == Verdict.OK]
    single = [p for p in parts if p.label and len(p.label.classes) == 1]
    double = [p for p in parts if p.label and len(p.label.classes) == 2]
    two = next(p for p in single if p.label.defect_class == 2)
    flipped = {ok[1]: (1,), two.id: (3,), double[0].id: double[0].label.classes[:1]}
    for pid, classes in flipped.items():
        proj.set_label(pid, "NG", list(classes))
    assert main(["label-issues", str(path), "--task", "multilabel", "--folds", "3", "--freeze", "none",
                 "--epochs", "5", "--input-size", "40", "--batch-size", "8", "--seed", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["task"] == "multilabel"
    found = [r["part_id"] for r in out["issues"]]
    hit = set(found) & set(flipped)
    precision, recall = len(hit) / max(len(found), 1), len(hit) / len(flipped)
    print(f"multilabel label-issues on real models: precision {precision:.2f} recall {recall:.2f} "
          f"({found} vs {sorted(flipped)})")
    assert recall >= 1 / 3 and len(found) < len(parts) / 2
    row = next(r for r in out["issues"] if r["part_id"] == ok[1]) if ok[1] in hit else out["issues"][0]
    assert row["disputed"] and all(d[0] in "+-" for d in row["disputed"])
    again = Project.open(path, readonly=True)
    assert {p.id for p in again.parts() if FILTERS["Likely label errors"](p)} == set(found)
    if ok[1] in hit:  # the OK part given a class: the folds say it holds none
        check = again.part(ok[1]).label_check
        assert check.verdict == Verdict.OK and check.classes == () and row["suggested"] == "OK"


def test_label_issues_keeps_an_items_pictures_in_one_fold_and_trains_as_okng_train(tmp_path, capsys, items_project):
    """Shaped like KolektorSDD as imported: several pictures of each item (field `item`), one of
    them NG. Every item is then an "NG group": the folds used to be refused for lack of OK groups,
    although every fold gets OK pictures. The check groups by the item field unless told, and its
    folds train as `okng train` trains (from scratch here: said on stderr and in the JSON)."""
    from app.cli import main
    from training.config import TrainConfig
    from training.label_check import fold_config
    torch.set_num_threads(1)
    path = items_project(tmp_path / "items.okng")
    tiny = ["--folds", "3", "--epochs", "3", "--input-size", "32", "--batch-size", "8", "--seed", "1"]
    assert main(["label-issues", str(path), *tiny, "--no-record", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert "folds grouped by the parts' 'item' field" in captured.err
    assert "trained from scratch" in captured.err and any("trained from scratch" in w for w in out["warnings"])
    assert out["group_by"] == "item" and out["parts"] == 48
    assert sorted(out["fold_parts"]) == [16, 16, 16]  # 12 items of 4 pictures, 4 items a fold
    assert main(["label-issues", str(path), *tiny, "--no-record", "--json", "--group-by", "none"]) == 0
    alone = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert alone["group_by"] is None and sum(alone["fold_parts"]) == 48
    # a time budget is the whole check's: the folds share it, as cross-validation's folds do
    assert fold_config(TrainConfig(budget_s=600.0), 5).budget_s == 120.0
    assert fold_config(TrainConfig(epochs=4), 5).epochs == 4


def test_the_held_out_fold_is_only_scored_never_chooses_the_epoch(tmp_path, monkeypatch, items_project):
    """The held-out fold's labels are the ones on trial: each fold's model is its last epoch's,
    trained on every other fold, and no early stop reads the held-out labels. The real fit_split
    runs; the wrapper only records."""
    from training import loop
    from training.label_check import LabelCheckSpec, out_of_fold_probabilities
    torch.set_num_threads(1)
    path = items_project(tmp_path / "items.okng")
    calls = []
    real = loop.fit_split

    def recording(snap, train, held, config, init, *args, **kw):
        out = real(snap, train, held, config, init, *args, **kw)
        calls.append((np.asarray(train), np.asarray(held), kw.get("keep_last"), out[2], out[3], snap))
        return out
    monkeypatch.setattr(loop, "fit_split", recording)
    values = {"epochs": 3, "input_size": (32, 32), "batch_size": 8, "seed": 1, "group_by": "item", "patience": 1}
    snap, _, probs, fold_parts = out_of_fold_probabilities(LabelCheckSpec(str(path), values, folds=3))
    assert len(calls) == 3 and not np.isnan(probs).any()  # every part scored, by the fold that held it out
    items = np.array(snap.part_groups())
    assert sorted(np.concatenate([c[1] for c in calls])) == list(range(48)) and sorted(fold_parts) == [16, 16, 16]
    for train, held, keep_last, history, best_epoch, _ in calls:
        assert keep_last and len(train) + len(held) == 48 and not set(items[held]) & set(items[train])
        # every epoch ran (patience 1 stops nothing) and the last one's model judged the fold
        assert len(history) == 3 and best_epoch == 3


def test_keep_last_keeps_the_last_epoch_where_validation_preferred_an_earlier_one(tmp_path, items_project):
    """fit_split's keep_last, on a run whose validation peaks before its end (lr 0.3 wrecks the
    tiny model after its first epochs): without it the best epoch is kept, with it the last."""
    from training.config import TrainConfig
    from training.loop import fit_split
    from training.start import prepare
    torch.set_num_threads(1)
    path = items_project(tmp_path / "items.okng")
    cfg = TrainConfig(arch="mobilenet_v3_small", freeze="scratch", epochs=6, batch_size=8, input_size=(32, 32),
                      patience=0, lr=0.3, optimizer="sgd", seed=3, recipe="manual")
    start = prepare(path, cfg, None, None, 1)
    train, val = np.arange(0, 36), np.arange(36, 48)
    _, rep, hist, best, _ = fit_split(start.snap, train, val, start.config, start.init, None, None)
    _, last_rep, last_hist, last, _ = fit_split(start.snap, train, val, start.config, start.init, None, None,
                                                keep_last=True)
    assert last == len(last_hist) == 6 and best < 6, [h.val_loss for h in hist]
    assert [h.val_loss for h in hist] == [h.val_loss for h in last_hist]  # the same run, seeded
    assert last_rep["loss"] == pytest.approx(last_hist[-1].val_loss, rel=1e-4)
    assert rep["loss"] == pytest.approx(hist[best - 1].val_loss, rel=1e-4)
