"""`okng sort` end to end: the demo rig against the built-in PLC simulator, and bad input."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.cli import main
from labeling.demo import make_demo_project
from labeling.store import Project
from labeling.types import PartSource


def test_sort_demo_runs_end_to_end_and_prints_a_json_summary(tmp_path: Path, capsys, monkeypatch):
    # A small demo project given on the command line; the demo classifier is trained on it
    # when the training room is there, else an untrained one (reported as such).
    monkeypatch.setattr("training.quick.quick_train", _no_training)
    path = tmp_path / "demo.okng"
    make_demo_project(path, "bolts", parts=4, size=(64, 48))
    rc = main(["sort", str(path), "--demo", "--parts", "6", "--rate", "5", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["triggers"] == 6 and out["answered"] == 6 and out["missed"] == 0
    assert sum(out["verdicts"].values()) == 6
    sim = out["simulator"]
    assert sim["triggers"] == 6 and sim["answered"] == 6 and sim["answered_late"] == 0
    assert sim["passed"] == out["verdicts"]["OK"]
    assert out["model"]["trained"] is False and "UNTRAINED" in out["model"]["note"]
    assert set(out["latency_ms"]) >= {"p50", "p95", "p99"}
    # can it keep up: the warm-up's forward, then the parts' own p50 against the triggers' rate
    assert out["forward_ms"] > 0 and out["capacity"]["basis"] == "measured p50"
    assert out["capacity"]["line_rate"] == pytest.approx(5.0, rel=0.2) and out["capacity"]["level"] == "ok"
    project = Project.open(path)
    assert len([p for p in project.parts() if p.source == PartSource.SORT]) == 6
    # without --json the same sentence goes to stderr for the person at the terminal
    assert main(["sort", str(path), "--demo", "--parts", "3", "--rate", "5", "--no-log"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"okng sort: \d+ ms a part \(measured p50\): at most [\d.]+ parts/s on this PC; the line "
                     r"triggers [\d.]+ parts/s \(load \d+%\)\.", err), err


def test_sort_demo_runs_with_a_segmentation_model(tmp_path: Path, capsys):
    """`okng sort --demo --model SEG_ID`: the demo rig sorted by a stored segmentation model (its
    area rule gives the verdicts; an untrained net here: the path is what counts)."""
    pytest.importorskip("segmentation_models_pytorch")
    import torch

    from training.card import ModelCard
    from training.checkpoint import sha256, to_bytes
    from training.segment import models
    from training.segment.postprocess import AreaRule
    path = tmp_path / "demo.okng"
    project = make_demo_project(path, "bolts", parts=4, size=(64, 48))
    torch.manual_seed(0)
    names = [c.name for c in project.settings.classes]
    data = to_bytes(models.build("unet", "resnet18", len(names)), "unet-resnet18", len(names))
    card = ModelCard("seg-demo", "unet-resnet18", task="segment", classes=names, input_size=(32, 32),
                     checkpoint_sha256=sha256(data), cameras=list(project.settings.cameras),
                     extra={"segment": {"decoder": "unet", "encoder": "resnet18",
                                        "rules": [AreaRule(n, 0.5, 4, None).to_dict() for n in names]}})
    project.save_model(card.id, card.to_meta(), data)
    assert main(["sort", str(path), "--demo", "--model", "seg-demo", "--parts", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["answered"] == 3 and out["model"]["model_id"] == "seg-demo" and out["model"]["arch"] == "unet-resnet18"


def _no_training(project, progress=None):
    raise RuntimeError("training skipped in this test (seconds matter)")


@pytest.mark.parametrize("argv, message", [
    (["sort"], "give a PROJECT file, or --demo"),
    (["sort", "missing.okng"], "no project file"),
    (["sort", "--demo", "--parts", "0"], "--parts must be positive"),
    (["sort", "--demo", "--plc", "host:notaport"], "port"),
])
def test_sort_bad_input_is_one_clear_error_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_sort_without_a_model_says_so(tmp_path: Path, capsys):
    path = tmp_path / "p.okng"
    make_demo_project(path, "bolts", parts=1, size=(64, 48))
    assert main(["sort", str(path), "--parts", "1"]) == 1
    assert "no active model" in capsys.readouterr().err


def test_sort_runtime_is_chosen_per_run_and_the_thread_layout_reported(tmp_path: Path, capsys):
    """--runtime overrides the card for one run (ONNX Runtime still only after its export matched
    torch on stored parts); the card is left as it was; the summary says what ran and where."""
    pytest.importorskip("onnxruntime")
    import torch

    from training.config import TrainConfig
    from training.inference import load_model
    from training.loop import train
    from training.registry import activate
    path = tmp_path / "p.okng"
    make_demo_project(path, "bolts", parts=8, size=(64, 48))
    torch.manual_seed(0)
    res = train(path, TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=1, input_size=32))
    activate(path, res.model_id)  # the card says torch
    argv = ["sort", str(path), "--source", "sim:64x48", "--parts", "3", "--no-log", "--json"]
    assert main([*argv, "--runtime", "onnxruntime"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["runtime"] == "onnxruntime" and out["model"]["runtime"] == "onnxruntime"
    assert out["model"]["onnx_check"]["ok"] and out["model"]["runtime_asked"] == "onnxruntime"
    assert out["answered"] == 3 and out["missed"] == 0
    assert out["threads"]["mode"] == "auto" and out["threads"]["intra_op"] >= 1
    assert out["threads"]["ort_intra_op"] == out["threads"]["intra_op"]
    assert load_model(path, res.model_id).card.runtime == "torch"  # a per-run choice only
    assert main([*argv, "--pin", "off"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["runtime"] == "torch" and not out["threads"]["pinned"]
