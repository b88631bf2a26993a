"""ONNX Runtime as a model's inference runtime: chosen on the card, checked against torch on
stored parts, same verdicts as torch on every stored part, reported by live sort's loader."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from labeling.store import Project
from training.config import TrainConfig
from training.inference import load_model
from training.loop import train
from training.registry import activate, set_runtime
from training.runtime import OrtModel, cache_path, with_runtime


@pytest.fixture(autouse=True)
def _on_the_cpu(monkeypatch):
    """ONNX Runtime is okng's CPU path: on a GPU machine a model loads on CUDA and keeps torch
    (test_a_model_on_a_gpu_keeps_torch_and_says_why), so these tests hide the GPU and check the
    CPU path on every machine (found on an H100, where they failed by design)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_onnxruntime_verdicts_equal_torch_on_stored_parts(toy_project):
    from hardware.sort.models import load_classifier
    res = train(toy_project, TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=1, input_size=32))
    activate(toy_project, res.model_id, "onnxruntime")
    proj = Project.open(toy_project, readonly=True)
    clf, info = load_classifier(proj, "active")
    assert info["runtime"] == "onnxruntime" and clf.runtime == "onnxruntime", info
    assert info["onnx_check"]["ok"] and info["onnx_check"]["parts"] > 0
    assert cache_path(toy_project, load_model(toy_project, res.model_id).card).exists()
    ref = load_model(toy_project, res.model_id)
    assert ref.card.runtime == "onnxruntime"
    for pid in proj.part_ids():
        images = proj.read_views(pid)
        cams = [v.camera for v in proj.part(pid).views][:len(images)]
        a, b = ref.predict_views(images, cams), clf.predict_views(images, cams)
        assert a.verdict == b.verdict
        np.testing.assert_allclose(a.view_scores, b.view_scores, atol=1e-4)


def test_a_pruned_model_runs_on_onnxruntime_and_torch_is_the_default(toy_project):
    from training.prune import PruneSpec, prune
    res = train(toy_project, TrainConfig(arch="resnet18", freeze="none", epochs=1, input_size=32, batch_size=8))
    out = prune(PruneSpec(str(toy_project), res.model_id, rounds=1, rate=0.5, fine_tune_epochs=0, latency_batch=1))
    child = out.model_ids[0]
    loaded = load_model(toy_project, child)
    same, info = with_runtime(loaded, toy_project)
    assert same is loaded and info == {"runtime": "torch"}  # the card's default
    set_runtime(toy_project, child, "onnxruntime")
    model, info = with_runtime(load_model(toy_project, child), toy_project)
    assert isinstance(model, OrtModel) and info["onnx_check"]["same_verdicts"]


def test_a_differing_export_falls_back_to_torch(toy_project):
    res = train(toy_project, TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=1, input_size=32))
    set_runtime(toy_project, res.model_id, "onnxruntime")
    loaded = load_model(toy_project, res.model_id)
    # A stale file under the model's cache name (another network): the check on stored parts refuses it.
    from training.backbones import get_backbone
    from training.inference import LoadedModel
    from training.onnx_export import export_onnx
    other = LoadedModel(get_backbone("mobilenet_v3_small").build(2), loaded.card, loaded.device)
    export_onnx(other, cache_path(toy_project, loaded.card))
    model, info = with_runtime(loaded, toy_project)
    assert model is loaded and info["runtime"] == "torch" and "differs from torch" in info["runtime_note"]


def test_a_model_on_a_gpu_keeps_torch_and_says_why(toy_project):
    """No GPU here: a CPU-built model stands in for one that LoadedModel put on CUDA (its device
    field is all with_runtime reads before choosing). No ONNX file is written or checked."""
    res = train(toy_project, TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=1, input_size=32))
    set_runtime(toy_project, res.model_id, "onnxruntime")
    loaded = load_model(toy_project, res.model_id)
    loaded.device = torch.device("cuda")
    model, info = with_runtime(loaded, toy_project)
    assert model is loaded and info["runtime"] == "torch" and "runs on CUDA" in info["runtime_note"]
    assert not cache_path(toy_project, loaded.card).exists()


def test_prediction_without_heatmaps_runs_on_the_cards_runtime(toy_project):
    from training.predict import predict_parts
    res = train(toy_project, TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=1, input_size=32))
    ref = predict_parts(toy_project, res.model_id, heatmaps=False)
    set_runtime(toy_project, res.model_id, "onnxruntime")
    got = predict_parts(toy_project, res.model_id, heatmaps=False, redo=True)
    assert (ref["runtime"], got["runtime"]) == ("torch", "onnxruntime")
    assert got["verdicts"] == ref["verdicts"] and got["predicted"] == ref["predicted"] > 0
    proj = Project.open(toy_project, readonly=True)
    for pid in proj.part_ids():
        a, b = proj.predictions(pid)[-2:]
        assert a.verdict == b.verdict
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


def test_live_sorts_forward_runs_on_the_onnx_session(toy_project):
    """TimedModel (live sort) calls `probabilities`: on an OrtModel that must be the session's,
    not the wrapped LoadedModel's torch forward."""
    from hardware.sort.models import load_classifier
    res = train(toy_project, TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=1, input_size=32))
    activate(toy_project, res.model_id, "onnxruntime")
    proj = Project.open(toy_project, readonly=True)
    clf, _info = load_classifier(proj, "active")
    ort_model = clf.loaded
    assert isinstance(ort_model, OrtModel)
    pid = proj.part_ids()[0]
    images = proj.read_views(pid)
    cams = [v.camera for v in proj.part(pid).views][:len(images)]

    def torch_forward(*_a, **_k):
        raise AssertionError("the torch forward ran on the onnxruntime path")
    ort_model.loaded.logits = torch_forward  # any torch forward from now on fails the test
    before = ort_model.runs
    dec = clf.predict_views(images, cams)
    assert ort_model.runs == before + 1 and len(dec.view_scores) == len(images)
    assert ort_model.predict_views(images, cams).verdict == dec.verdict


def test_a_one_thread_session_splits_the_batch_across_the_preprocessing_threads(tmp_path):
    """Live sort's layout (one intra-op thread): the part's views are cut into slices, one per
    preprocessing thread, run at once on the real session; the logits equal the whole batch's.
    A session with its own intra-op threads, or a pool of one, runs the batch whole."""
    import threading

    import torch

    from training import inference
    from training.backbones import get_backbone
    from training.card import ModelCard
    from training.inference import LoadedModel
    from training.onnx_export import export_onnx
    from training.runtime import ort_session
    torch.manual_seed(0)
    loaded = LoadedModel(get_backbone("mobilenet_v3_small").build(2).eval(),
                         ModelCard("m", "mobilenet_v3_small", input_size=(32, 32)), torch.device("cpu"))
    path = tmp_path / "m.onnx"
    export_onnx(loaded, path)

    class Recorder:  # the real session, with each call's batch size and thread noted
        def __init__(self, session):
            self.session, self.calls = session, []

        def run(self, names, feed):
            self.calls.append((len(feed["views"]), threading.get_ident()))
            return self.session.run(names, feed)

        def get_session_options(self):
            return self.session.get_session_options()
    batch = torch.randn(4, 3, 32, 32)
    saved = inference.preprocess_pool_setting()
    try:
        inference.set_preprocess_pool(2)
        one = Recorder(ort_session(path, threads=1))
        split = OrtModel(loaded, one, path)
        assert split.chunks(4) == 2 and split.chunks(1) == 1
        got = split.logits(batch)
        assert sorted(n for n, _ in one.calls) == [2, 2]
        whole = OrtModel(loaded, Recorder(ort_session(path, threads=2)), path)
        assert whole.chunks(4) == 1
        np.testing.assert_allclose(got.numpy(), whole.logits(batch).numpy(), atol=1e-5)
        np.testing.assert_allclose(got.numpy(), loaded.logits(batch).numpy(), atol=1e-4)
        # the slices really ran at once on two threads (the caller and a pool helper), on most calls
        threads_per_call = []
        for _ in range(20):
            one.calls.clear()
            split.logits(batch)
            threads_per_call.append(len({t for _, t in one.calls}))
        assert max(threads_per_call) == 2
        inference.set_preprocess_pool(1)
        one.calls.clear()
        split.logits(batch)
        assert [n for n, _ in one.calls] == [4]
    finally:
        inference.set_preprocess_pool(*saved)
