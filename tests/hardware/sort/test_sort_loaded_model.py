"""The engine with the training room's LoadedModel (untrained weights; the path is what counts)."""
from __future__ import annotations

from pathlib import Path

import pytest
from sortkit import sort_folder_against_peer, write_folder


def _loaded_model():
    inference = pytest.importorskip("training.inference", reason="training.inference not importable here")
    backbones = pytest.importorskip("training.backbones")
    import torch

    from hardware.sort.models import TimedModel
    torch.manual_seed(0)
    spec = backbones.get_backbone("mobilenet_v3_small")
    from training.card import ModelCard
    card = ModelCard("m-test", spec.name, input_size=(32, 32), threshold=0.5, target_layer=spec.target_layer)
    loaded = inference.LoadedModel(spec.build(2), card, torch.device("cpu"))
    return loaded, TimedModel(loaded)


def test_timed_model_decides_like_the_loaded_model_and_reports_stages(tmp_path: Path, project, peer):
    loaded, timed = _loaded_model()
    folder = write_folder(tmp_path / "run", 3, {1: 3})
    s = sort_folder_against_peer(project, peer, loaded, timed, folder, 3, model_id="m-test")
    assert {"preprocess", "forward", "capture", "write", "total"} <= set(s.stages_ms)
    project.reload()
    preds = [p.prediction for p in project.parts()]
    assert all(p is not None and p.model_id == "m-test" for p in preds)


def test_the_timed_model_refills_one_batch_per_thread_with_the_same_values():
    import threading

    import numpy as np
    import torch
    _loaded, timed = _loaded_model()
    rng = np.random.default_rng(0)
    cams = ["cam0", "cam1"]
    a = [rng.integers(0, 255, (40, 50, 3), dtype=np.uint8) for _ in cams]
    b = [rng.integers(0, 255, (40, 50, 3), dtype=np.uint8) for _ in cams]
    first, _ = timed.prepare(a, cams)
    again, _ = timed.prepare(b, cams)
    assert again.data_ptr() == first.data_ptr()  # the same memory, refilled
    fresh, _ = timed.loaded.prepare_batch(b, cams)
    assert torch.equal(again, fresh)  # every element rewritten: nothing of part a is left
    other = {}
    t = threading.Thread(target=lambda: other.update(batch=timed.prepare(a, cams)[0]))
    t.start()
    t.join()
    assert other["batch"].data_ptr() != first.data_ptr()  # another thread gets its own
