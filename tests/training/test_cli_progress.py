"""Long CLI commands report progress on stderr, also with --json (stdout stays one JSON object)."""
from __future__ import annotations

import io
import json

import torch
from toykit import make_toy_project

from app.cli import main
from app.cli.common import ProgressBar
from labeling.progress import Progress
from training.card import EpochMetrics


def test_progress_lines_with_json_a_line_per_epoch():
    out = io.StringIO()
    bar = ProgressBar("train", quiet=True, stream=out)
    bar.report(Progress("load", 1, 10, "reading parts"))
    for i in range(2, 11):
        bar.report(Progress("load", i, 10, "reading parts"))
    for step in range(1, 50):
        bar.report(Progress("train", step, 100, "epoch 1/2"))
    bar.report(Progress("eval", 50, 100, "epoch 1/2 done", EpochMetrics(1, 0.5, 0.4, 0.9, 0.85, 0.9, 1e-3, 1.0)))
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("okng train: load 1/10")
    assert any(line.startswith("okng train: load 10/10 (100 %)") for line in lines)  # a stage's end
    assert sum(line.startswith("okng train: train ") for line in lines) == 1  # throttled, not one per step
    assert "epoch 1/2 done: loss 0.5000, val loss 0.4000, val balanced accuracy 0.850" in lines[-2]
    assert lines[-1].startswith("okng train: done in")
    assert "\r" not in out.getvalue()


def test_train_evaluate_predict_with_json_print_progress_on_stderr(tmp_path, capsys):
    path = make_toy_project(tmp_path / "p.okng", n_ok=6, n_ng=6, size=(32, 32), views=1)
    n = torch.get_num_threads()
    try:
        assert main(["train", str(path), "--arch", "resnet18", "--freeze", "none", "--epochs", "2",
                     "--input-size", "32", "--batch-size", "8", "--patience", "0", "--json"]) == 0
    finally:
        torch.set_num_threads(n)
    cap = capsys.readouterr()
    summary = json.loads(cap.out)  # stdout: the JSON object only
    assert "epoch 1/2 done" in cap.err and "epoch 2/2 done" in cap.err and "okng train: load" in cap.err
    assert summary["metrics"]["split"]["headline"] == "test" and "test" in summary["metrics"]
    assert main(["evaluate", str(path), "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["split"] == "test" and "okng evaluate:" in cap.err
    assert main(["predict", str(path), "--no-heatmaps", "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["predicted"] == 12 and "okng predict:" in cap.err
    assert main(["train", str(path), "--arch", "resnet18", "--epochs", "1", "--input-size", "32",
                 "--test-fraction", "0.95"]) == 1
    assert "test_fraction must be" in capsys.readouterr().err
