"""`okng explain` end to end: a model trained and stored by training.loop, loaded by load_model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from training.config import AugmentConfig, TrainConfig
from training.explain.dataset import explain_dataset
from training.loop import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_project) -> Path:
    path = tmp_path_factory.mktemp("cli") / "p.okng"
    make_project(path, jig=False, n=10)
    cfg = TrainConfig(arch="resnet18", freeze="scratch", epochs=1, batch_size=8, input_size=(32, 48),
                      augment=AugmentConfig.none(), cache_features=False, device="cpu", num_threads=1,
                      patience=0)
    res = train(path, cfg)
    assert res.model_id and res.activated
    return path


def test_explain_json_and_overlays(trained, tmp_path, capsys):
    out = tmp_path / "overlays"
    assert main(["explain", str(trained), "--json", "--out", str(out), "--threshold", "top:5",
                 "--rows", "--parts", "1-4"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["recipe"]["threshold"] == "top:5" and d["layer"] == "layer4"
    assert d["parts"] == 4 and d["views"] == 8 and len(d["rows"]) == 8
    assert d["overlays"]["count"] == 8 and len(list(out.glob("*.png"))) == 8
    assert {a["camera"] for a in d["shortcut"]} == {"cam0", "cam1"}
    assert d["totals"]["masked_views"] == 2


def test_explain_text_layers_and_errors(trained, capsys):
    assert main(["explain", str(trained), "--layer", "layer3", "--target", "softmax"]) == 0
    text = capsys.readouterr().out
    assert "layer layer3" in text and "target softmax" in text and "shortcut alarm:" in text
    assert "lift (x flat)" in text and "within half a cell of the layer's map" in text
    assert main(["explain", str(trained), "--tolerance", "0", "--json", "--parts", "1-2"]) == 0
    assert json.loads(capsys.readouterr().out)["pointing_tolerance"] == 0.0
    for bad in ("near", "-3"):
        with pytest.raises(SystemExit) as exc:
            main(["explain", str(trained), "--tolerance", bad])
        assert exc.value.code == 2 and "--tolerance" in capsys.readouterr().err
    assert main(["explain", str(trained), "--list-layers"]) == 0
    assert capsys.readouterr().out.split() == ["conv1", "layer1", "layer2", "layer3", "layer4", "(default)"]
    for argv, msg in ((["--threshold", "half"], "threshold"), (["--layer", "layer9"], "no layer"),
                      (["--model", "nope"], "nope"), (["--parts", "x"], "--parts"),
                      (["--class", "7"], "out of range")):
        assert main(["explain", str(trained), *argv]) == 1
        assert msg in capsys.readouterr().err
    assert main(["explain", str(trained.parent / "missing.okng")]) == 1


def test_explain_dataset_by_path(trained):
    rep = explain_dataset(trained, "active", device="cpu", parts=[1, 2])
    assert len(rep.rows) == 4 and rep.model_id and rep.layer == "layer4"
