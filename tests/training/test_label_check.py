"""`okng label-issues`: K real models, out-of-fold predictions, flipped labels found and recorded."""
from __future__ import annotations

import json

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
