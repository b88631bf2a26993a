"""Training on a Ray cluster (training.remote): a real Ray head on 127.0.0.1 started here, the
dataset snapshot file, registration in the project, cancel, and a bad address."""
from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from rayhead import free_port, start_head, stop_head
from toykit import make_toy_project

from app.cli import main
from labeling.h5io import transaction
from labeling.store import Project
from labeling.types import ROI
from training.card import read_card, read_cards
from training.errors import TrainingError
from training.remote.ray_job import RemoteSpec, client_address, run_remote
from training.remote.snapshot_file import SNAPSHOT_ATTR, file_sha256, write_snapshot
from training.session import TrainSpec
from training.snapshot import load_snapshot

# A loaded 2-core machine runs the cluster's processes (inheriting the test's niceness) slowly:
# minutes, not the usual tens of seconds, so a longer limit than the suite's 300 s.
pytestmark = pytest.mark.timeout(900)
TINY = {"arch": "mobilenet_v3_small", "freeze": "scratch", "epochs": 2, "input_size": 32, "batch_size": 8,
        "seed": 1, "recipe": "manual", "patience": 0, "num_threads": 1}


@pytest.fixture(scope="module")
def head():
    h = start_head()
    yield h
    left = stop_head(h)
    assert not left, f"Ray processes left running: {left}"


@pytest.fixture
def project(tmp_path) -> Path:
    path = make_toy_project(tmp_path / "toy.okng", n_ok=6, n_ng=6, size=(32, 40), views=1, masks=True)
    proj = Project.open(path)
    proj.set_roi("cam0", ROI(2, 2, 36, 28))
    proj.add_part([np.zeros((32, 40), np.uint8)])  # unlabelled: not in the snapshot
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_snapshot_file_holds_the_labelled_parts_under_their_ids(project, tmp_path):
    src = Project.open(project, readonly=True)
    snap = write_snapshot(project, tmp_path / "snap.h5", {})
    assert snap is not None and snap.sha256 == file_sha256(snap.path) and snap.parts == 12 and snap.views == 12
    out = Project.open(snap.path, readonly=True)
    labelled = [p for p in src.parts() if p.label is not None]
    assert [p.id for p in out.parts()] == [p.id for p in labelled]  # the project's ids, no unlabelled part
    assert out.settings.rois == src.settings.rois and out.settings.classes == src.settings.classes
    for p in labelled:
        q = out.part(p.id)
        assert q.label.verdict == p.label.verdict and q.label.classes == p.label.classes
        for k, v in enumerate(p.views):
            assert np.array_equal(out.read_image(p.id, k), src.read_image(p.id, k))
            m, n = src.read_mask(p.id, k), out.read_mask(p.id, k)
            assert (m is None and n is None) or np.array_equal(m, n)
    with transaction(Path(snap.path), "r") as f:
        assert json.loads(f.attrs[SNAPSHOT_ATTR])["project_id"] == src.project_id
    assert not out.models() and out.active_model_id is None
    Project.open(project).save_model("parent", {"arch": "mobilenet_v3_small"}, b"weights")
    warm = write_snapshot(project, tmp_path / "warm.h5", {"warm_start": "parent"})
    assert Project.open(warm.path, readonly=True).load_checkpoint("parent") == b"weights"  # a warm start's parent


def test_addresses_are_read_as_ray_client_addresses():
    assert client_address("gpu-server") == ("ray://gpu-server:10001", "gpu-server", 10001)
    assert client_address("ray://10.0.0.5:10002")[0] == "ray://10.0.0.5:10002"
    with pytest.raises(TrainingError, match="not a Ray cluster address"):
        client_address("gpu-server:port")


def test_bad_address_is_a_clear_error_and_changes_nothing(project, capsys):
    before = _digest(project)
    port = free_port()  # nothing listens there
    assert main(["train", str(project), "--ray", f"127.0.0.1:{port}", *_cli(TINY)]) == 1
    err = capsys.readouterr().err
    assert f"no Ray cluster at 127.0.0.1:{port}" in err and "ray start --head" in err and "Traceback" not in err
    assert _digest(project) == before  # nothing written, nothing lost


def _cli(values: dict) -> list[str]:
    return ["--arch", values["arch"], "--freeze", values["freeze"], "--epochs", str(values["epochs"]),
            "--input-size", str(values["input_size"]), "--batch-size", str(values["batch_size"]),
            "--seed", str(values["seed"]), "--recipe", values["recipe"], "--patience", str(values["patience"])]


def test_cli_trains_on_the_cluster_and_registers_the_model_once(head, project, capsys):
    rc = main(["train", str(project), "--ray", head.address, *_cli(TINY), "--json"])
    run = capsys.readouterr()
    assert rc == 0, run.err
    out = json.loads(run.out)
    cards = read_cards(Project.open(project, readonly=True))
    assert [c.id for c in cards] == [out["model_id"]]  # registered once, by the driver
    card = read_card(Project.open(project, readonly=True), out["model_id"])
    assert Project.open(project, readonly=True).active_model_id == card.id and out["activated"]
    remote = card.extra["remote"]
    assert remote["address"] == head.address and remote["node"]["gpu"] is None and remote["gpus"] == 0
    assert len(remote["snapshot_sha256"]) == 64 and out["remote"] == remote
    assert card.dataset["n_parts"] == 12 and len(card.history) == 2
    # the cluster trained on exactly what a run on this PC would have read: same parts, labels, ROIs
    local = load_snapshot(project, card.input_size, card.fit, task=card.task)
    assert card.dataset["hash"] == local.label_hash()
    ids = set(Project.open(project, readonly=True).part_ids())
    assert set(card.split["test"]) | set(card.split["val"]) | set(card.split["train"]) <= ids
    for stage in ("snapshot", "connect", "submit", "register"):
        assert stage in run.err  # progress lines of the driver
    assert "eval" in run.err  # and of the cluster's run (each epoch's end)


def test_cancel_stops_the_cluster_run_and_stores_nothing(head, project):
    before = _digest(project)
    seen: list = []
    go = threading.Event()

    def progress(p):
        seen.append(p)
        if p.stage == "train":
            go.set()
    spec = RemoteSpec(TrainSpec(str(project), {**TINY, "epochs": 2000}), head.address)
    res = run_remote(spec, progress, go.is_set)
    assert res.cancelled and res.model_id is None
    assert any(p.stage == "cancel" for p in seen) and any(p.stage == "train" for p in seen)
    assert not Project.open(project, readonly=True).models() and _digest(project) == before
