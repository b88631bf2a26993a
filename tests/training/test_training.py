"""Training end to end on tiny separable projects: learn, register, reload, export, cancel."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import torch
from toykit import make_toy_project

from labeling.progress import Progress
from labeling.store import Project
from labeling.types import Verdict
from training.card import SCHEMA, EpochMetrics, read_card
from training.config import AugmentConfig, TrainConfig
from training.errors import TrainingError
from training.evaluate import evaluate_model
from training.inference import load_model
from training.loop import TrainStep, fit_split, train
from training.onnx_export import export_onnx

FAST = {"arch": "resnet18", "freeze": "last-block", "epochs": 3, "input_size": 32, "batch_size": 8, "seed": 1}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    path = make_toy_project(tmp_path_factory.mktemp("trained") / "toy.okng")
    seen = []
    res = train(path, TrainConfig(**FAST), progress=seen.append)
    return path, res, seen


def test_training_learns_the_toy_project_and_registers_everything(trained):
    path, res, seen = trained
    assert not res.cancelled and res.model_id
    assert res.metrics["val"]["balanced_accuracy"] == 1.0
    assert not res.pretrained
    assert any("trained from scratch: no ImageNet weights found for resnet18" in w for w in res.warnings)
    assert all(isinstance(p, Progress) for p in seen)
    assert {p.stage for p in seen} >= {"load", "train", "eval", "save"}
    steps = [p.payload for p in seen if p.stage == "train"]
    assert steps and all(isinstance(s, TrainStep) and s.eta_s >= 0 for s in steps)
    epochs = [p.payload for p in seen if p.stage == "eval"]
    assert [e.epoch for e in epochs] == [1, 2, 3] and all(isinstance(e, EpochMetrics) for e in epochs)
    assert all(p.total and 0 <= p.done <= p.total for p in seen)
    proj = Project.open(path, readonly=True)
    assert proj.active_model_id == res.model_id and res.activated
    assert proj.model_meta(res.model_id)["schema"] == SCHEMA
    card = read_card(proj, res.model_id)
    assert card == res.card
    assert card.task == "verdict" and card.classes == ["OK", "NG"]
    assert card.arch == "resnet18" and card.freeze == "last-block" and card.input_size == (32, 32)
    assert not card.pretrained and card.parent is None and card.target_layer == "layer4"
    assert card.config["epochs"] == 3 and card.history == res.history and 1 <= card.best_epoch <= 3
    assert card.timings.train_seconds > 0 and len(card.timings.epoch_seconds) == 3
    assert card.checkpoint_sha256 and card.created > 0 and card.warnings == res.warnings
    ds = card.dataset
    assert ds["n_parts"] == 24 and len(ds["parts"]) == 24 and {r[1] for r in ds["parts"]} == {"OK", "NG"}
    val = card.val
    for key in ("confusion_matrix", "per_class", "accuracy", "balanced_accuracy", "roc_auc", "pr_auc", "kappa"):
        assert key in val.report
    # the held-out scores and curves are kept: nothing is scored again to draw them
    assert len(val.part_ids) == len(val.scores) == len(val.targets) == res.metrics["split"]["val_parts"]
    assert val.roc is not None and val.roc.x[0] == 0.0 and val.roc.y[-1] == 1.0
    assert val.pr is not None and len(val.pr.x) == len(val.pr.y) == len(val.scores) + 1


def test_checkpoint_reloads_with_identical_outputs(trained):
    path, res, _ = trained
    a = load_model(path, res.model_id, device="cpu")
    b = load_model(path, "active", device="cpu")
    assert a.target_layer == "layer4" and a.input_size == (32, 32) and not a.model.training
    proj = Project.open(path, readonly=True)
    ng = next(p for p in proj.parts() if p.verdict == Verdict.NG)
    views = proj.read_views(ng.id)
    batch = torch.stack([a.preprocess(v, "cam0")[0] for v in views])
    assert torch.equal(a.logits(batch), b.logits(batch))
    dec = a.predict_views(views, [v.camera for v in ng.views])
    assert dec.verdict == Verdict.NG and len(dec.view_scores) == 2 and max(dec.view_scores) == dec.confidence
    ok = next(p for p in proj.parts() if p.verdict == Verdict.OK)
    assert a.predict_views(proj.read_views(ok.id), ["cam0", "cam1"]).verdict == Verdict.OK


def test_tampered_and_foreign_checkpoints_are_refused(trained, tmp_path):
    path, res, _ = trained
    copy = tmp_path / "copy.okng"
    shutil.copy(path, copy)
    proj = Project.open(copy)
    meta = proj.model_meta(res.model_id)
    data = bytearray(proj.load_checkpoint(res.model_id))
    data[len(data) // 2] ^= 0xFF
    proj.save_model(res.model_id, meta, bytes(data))
    with pytest.raises(TrainingError, match="checksum mismatch"):
        load_model(copy, res.model_id)
    from training.checkpoint import sha256
    buf = io.BytesIO()
    torch.save({"weights": torch.zeros(3)}, buf)
    for blob, msg in ((buf.getvalue(), "foreign"), (b"not a checkpoint at all", "damaged")):
        proj.save_model(res.model_id, dict(meta, checkpoint_sha256=sha256(blob)), blob)
        with pytest.raises(TrainingError, match=msg):
            load_model(copy, res.model_id)


def test_onnx_export_matches_torch(trained, tmp_path):
    path, res, _ = trained
    loaded = load_model(path, res.model_id, device="cpu")
    rep = export_onnx(loaded, tmp_path / "m.onnx")
    assert rep["equal"] and rep["max_abs_diff"] < 1e-4
    import onnxruntime as ort
    proj = Project.open(path, readonly=True)
    x = torch.stack([loaded.preprocess(v, "cam0")[0] for v in proj.read_views(proj.part_ids()[-1])])
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(["logits"], {"views": x.numpy()})[0]
    assert np.allclose(got, loaded.logits(x).numpy(), atol=1e-4)


def test_evaluate_on_held_out_parts(trained):
    path, res, _ = trained
    rep = evaluate_model(path, "active", device="cpu")
    assert rep["model_id"] == res.model_id
    assert rep["parts"]["n"] == res.metrics["split"]["val_parts"]
    assert rep["parts"]["balanced_accuracy"] == pytest.approx(res.metrics["val"]["balanced_accuracy"])
    assert evaluate_model(path, res.model_id, all_parts=True, device="cpu")["parts"]["n"] == 24


def test_cancel_mid_epoch_leaves_project_and_registry_intact(trained, tmp_path):
    path, res, _ = trained
    copy = tmp_path / "c.okng"
    shutil.copy(path, copy)
    before = Project.open(copy, readonly=True)
    models_before = before.models()
    events_before = len(before.events())
    calls = []

    def progress(p):
        calls.append(p)

    def should_stop():
        return any(p.stage == "train" and p.payload.step >= 1 for p in calls)

    out = train(copy, TrainConfig(**dict(FAST, freeze="none", arch="mobilenet_v3_small")), progress, should_stop)
    assert out.cancelled and out.model_id is None and out.card is None
    after = Project.open(copy, readonly=True)
    assert after.models() == models_before and after.active_model_id == res.model_id
    assert len(after.events()) == events_before
    assert [p.verdict for p in after.parts()] == [p.verdict for p in before.parts()]


def test_warm_start_target_recall_and_determinism(trained):
    path, res, _ = trained
    # Another seed would draw another split: the child keeps its parent's (no test leak).
    cfg = TrainConfig(**dict(FAST, epochs=1, warm_start=res.model_id, target_ng_recall=1.0, seed=7))
    child = train(path, cfg)
    card = read_card(Project.open(path, readonly=True), child.model_id)
    assert card.parent == res.model_id and card.pretrained is False
    parent = read_card(Project.open(path, readonly=True), res.model_id)
    assert parent.split["test"] and {k: sorted(card.split[k]) for k in ("train", "val", "test")} == \
        {k: sorted(parent.split[k]) for k in ("train", "val", "test")}
    assert child.metrics["val"]["ng_recall"] == 1.0 and not child.activated
    # Same seed, same data -> the same run (one epoch of a live, augmented forward).
    from training.backbones import get_backbone
    from training.snapshot import load_snapshot, stratified_split
    snap = load_snapshot(path, (32, 32))
    tr, va = stratified_split(snap.part_targets(), 0.2, 0)
    spec = get_backbone("mobilenet_v3_small")
    c = TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=1, input_size=32, batch_size=8,
                    augment=AugmentConfig.preset("light"))
    runs = [fit_split(snap, tr, va, c, lambda: spec.build(2), None, None)[2][0] for _ in range(2)]
    assert runs[0].loss == runs[1].loss and runs[0].val_loss == runs[1].val_loss


def test_bad_config_and_empty_project_give_clear_errors(tmp_path):
    with pytest.raises(TrainingError, match="unknown architecture"):
        TrainConfig(arch="resnet9").validate()
    with pytest.raises(TrainingError, match="folds"):
        TrainConfig(folds=1).validate()
    path = make_toy_project(tmp_path / "e.okng", n_ok=3, n_ng=1, size=(16, 16), views=1)
    with pytest.raises(TrainingError, match="at least 2 OK and 2 NG"):
        train(path, TrainConfig(**FAST))
    assert Project.open(path, readonly=True).models() == []


def test_kfold_cross_validation_reports_mean_and_std(tmp_path):
    path = make_toy_project(tmp_path / "cv.okng", n_ok=6, n_ng=6, size=(32, 32), views=1)
    res = train(path, TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=1, input_size=32,
                                  batch_size=8, folds=2))
    cv = res.metrics["cv"]
    assert cv["folds"] == 2 and len(cv["per_fold"]) == 2
    bal = cv["summary"]["balanced_accuracy"]
    assert bal["n"] == 2 and 0.0 <= bal["mean"] <= 1.0 and bal["std"] >= 0.0
    vals = [f["balanced_accuracy"] for f in cv["per_fold"]]
    assert bal["mean"] == pytest.approx(np.mean(vals)) and bal["std"] == pytest.approx(np.std(vals))
    card = read_card(Project.open(path, readonly=True), res.model_id)
    assert card.cv["summary"]["balanced_accuracy"]["n"] == 2


@pytest.mark.parametrize("batch_size, refreshed", [(8, True), (2, False)])
def test_batchnorm_refresh_only_while_epochs_are_too_short_to_settle(tmp_path, batch_size, refreshed):
    """PreciseBN (a pass over the training views that recomputes BatchNorm's statistics) runs
    after an epoch of under 10 steps and is skipped at 10+: there the moving averages have settled
    and the pass cost a quarter of each epoch. Its mark: the refreshed statistics count one chunk
    of <= 64 views, the moving ones every training step."""
    torch.set_num_threads(1)
    path = make_toy_project(tmp_path / "bn.okng", n_ok=20, n_ng=20, size=(32, 32), views=1)
    res = train(path, TrainConfig(arch="resnet18", freeze="none", epochs=2, input_size=32,
                                  batch_size=batch_size, seed=0, test_fraction=0.0))
    net = load_model(path, res.model_id, device="cpu").model
    tracked = {int(m.num_batches_tracked) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert tracked == {1} if refreshed else min(tracked) >= 10, tracked
