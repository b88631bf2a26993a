"""The engine with the training room's LoadedModel (untrained weights; the path is what counts)."""
from __future__ import annotations

from pathlib import Path

import pytest
from sortkit import wait_for, write_folder

from hardware.sort import SortConfig, SortEngine
from hardware.sources import make_source


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
    import cv2
    loaded, timed = _loaded_model()
    n = 3
    folder = write_folder(tmp_path / "run", n, {1: 3})
    cams = ["cam0", "cam1", "cam2", "cam3"]
    expected = [loaded.predict_views([cv2.imread(str(folder / c / f"part_{k:03d}.png"), 0) for c in cams], cams)
                for k in range(n)]
    source = make_source(f"folder:{folder}")
    source.open()
    engine = SortEngine(project, timed, source, SortConfig(plc_port=peer.port, poll_period=0.002))
    assert engine.model_id == "m-test"
    engine.start(parts=n)
    wait_for(lambda: engine.snapshot()["plc"].get("resyncs", 0) >= 1, what="resync")
    for k in range(n):
        peer.trigger(k + 1, 40 + k)
        wait_for(lambda k=k: peer.result()[0] == k + 1, what=f"answer {k + 1}")
        _, echo, verdict, conf, _ = peer.result()
        assert echo == 40 + k and verdict == int(expected[k].verdict)
        assert conf == round(expected[k].confidence * 1000)
    s = engine.join(10)
    assert s.triggers == n and s.errors == 0
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
