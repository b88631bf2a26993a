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
