"""A training process reads while another real process writes labels; the CLI; weights import."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from toykit import make_toy_project

from app.cli import main
from labeling.store import Project
from labeling.types import Verdict
from training.card import read_card
from training.config import TrainConfig
from training.loop import train
from training.weights import find_pretrained, weights_dir

ROOT = Path(__file__).resolve().parents[2]

WRITER = r"""
import sys, time
from labeling.store import Project
path, stop = sys.argv[1], sys.argv[2]
proj = Project.open(path)
extra = [p.id for p in proj.parts() if p.name.startswith("extra")]
print("ready", flush=True)
n = 0
import os
while not os.path.exists(stop):
    pid = extra[n % len(extra)]
    proj.set_label(pid, "NG" if (n // len(extra)) % 2 else "OK")
    n += 1
print(n, time.time(), flush=True)
"""


def test_training_reads_a_consistent_snapshot_while_another_process_labels(tmp_path):
    path = make_toy_project(tmp_path / "live.okng", n_ok=8, n_ng=8, size=(32, 32), views=1)
    proj = Project.open(path)
    rng = np.random.default_rng(5)
    for i in range(6):  # unlabelled parts the other process keeps labelling
        proj.add_part([rng.integers(0, 255, (32, 32), dtype=np.uint8)], name=f"extra{i}")
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(stop)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        t0 = time.time()
        res = train(path, TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=1, input_size=32,
                                      batch_size=8, patience=0))
        t1 = time.time()
    finally:
        stop.touch()
        out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    n_written = int(out.split()[0])
    assert n_written > 0
    assert not res.cancelled and res.model_id
    card = read_card(Project.open(path, readonly=True), res.model_id)
    rows = {r[0]: r[1] for r in card.dataset["parts"]}
    final = Project.open(path, readonly=True)
    for p in final.parts():  # the original labels are all in, untouched
        if not p.name.startswith("extra"):
            assert rows[p.id] == p.verdict.name
    assert all(v in ("OK", "NG") for v in rows.values())
    assert t1 > t0


def test_cli_train_json_models_activate_evaluate_export(tmp_path, capsys):
    path = make_toy_project(tmp_path / "cli.okng", n_ok=6, n_ng=6, size=(32, 32), views=1)
    n = torch.get_num_threads()
    try:
        rc = main(["train", str(path), "--arch", "mobilenet_v3_small", "--freeze", "none", "--epochs", "1",
                   "--input-size", "32", "--batch-size", "8", "--json"])
    finally:
        torch.set_num_threads(n)
    captured = capsys.readouterr()
    assert rc == 0
    summary = json.loads(captured.out)
    mid = summary["model_id"]
    assert summary["pretrained"] is False and "balanced_accuracy" in summary["metrics"]["val"]
    assert "trained from scratch: no ImageNet weights found for mobilenet_v3_small" in captured.err
    assert main(["models", str(path), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["active"] == mid and listing["models"][0]["id"] == mid
    assert main(["models", str(path)]) == 0 and mid in capsys.readouterr().out
    assert main(["activate", str(path), mid]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(path), "--model", mid, "--json", "--all"]) == 0
    assert json.loads(capsys.readouterr().out)["parts"]["n"] == 12
    assert main(["export-onnx", str(path), str(tmp_path / "m.onnx"), "--model", mid, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["equal"] is True
    assert main(["activate", str(path), "no-such-model"]) == 1
    assert "no model" in capsys.readouterr().err
    assert main(["train", str(path), "--arch", "alexnet9"]) == 1
    assert "unknown architecture" in capsys.readouterr().err


def test_weights_import_is_found_and_used(tmp_path, capsys):
    from training.backbones import get_backbone
    spec = get_backbone("mobilenet_v3_small")
    torch.manual_seed(0)
    state = spec._factory()(weights=None).state_dict()  # an ImageNet-shaped (1000-class) file
    f = tmp_path / "mnv3s.pth"
    torch.save({"state_dict": state}, f)
    assert main(["weights", "import", str(f), "--arch", "mobilenet_v3_small"]) == 0
    assert (weights_dir() / "mobilenet_v3_small.pth").is_file()
    found, source = find_pretrained("mobilenet_v3_small")
    assert source and torch.equal(found["features.0.0.weight"], state["features.0.0.weight"])
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong)
    assert main(["weights", "import", str(wrong), "--arch", "resnet18"]) == 1
    assert "does not match resnet18" in capsys.readouterr().err
    (tmp_path / "junk.pth").write_bytes(b"junk")
    assert main(["weights", "import", str(tmp_path / "junk.pth"), "--arch", "resnet18"]) == 1
    assert "not a loadable PyTorch weights file" in capsys.readouterr().err
    path = make_toy_project(tmp_path / "pre.okng", n_ok=4, n_ng=4, size=(32, 32), views=1)
    res = train(path, TrainConfig(arch="mobilenet_v3_small", freeze="head", epochs=1, input_size=32))
    # a random state dict of the right shapes is used, but never called ImageNet (training.weights)
    assert res.pretrained and res.pretrained_source == "custom weights mnv3s.pth"
    assert any("not called ImageNet" in w for w in res.warnings)
    card = read_card(Project.open(path, readonly=True), res.model_id)
    assert card.pretrained is True and card.start == "custom" and not card.imagenet


def test_demo_bolt_project_end_to_end(tmp_path):
    build = pytest.importorskip("labeling.demo.build")
    path = tmp_path / "demo.okng"
    build.make_demo_project(path, kind="bolts", parts=12, size=(64, 48))
    res = train(path, TrainConfig(arch="resnet18", epochs=1, input_size=48, batch_size=8))
    assert res.model_id and not res.cancelled
    proj = Project.open(path, readonly=True)
    loaded = __import__("training.inference", fromlist=["load_model"]).load_model(proj, res.model_id, "cpu")
    part = proj.parts()[0]
    dec = loaded.predict_views(proj.read_views(part.id), [v.camera for v in part.views])
    assert len(dec.view_scores) == len(part.views) and dec.verdict in (Verdict.OK, Verdict.NG)
    g = dec.geometries[0]
    assert g.to_image(np.ones((6, 6), np.float32)).shape == part.views[0].shape[:2]
