"""Live sort driven by a segmentation model: the engine answers a real Modbus peer on 127.0.0.1
with the area rule's verdict and the max probability as confidence (untrained net: the path is
what counts)."""
from __future__ import annotations

from pathlib import Path

import pytest
from sortkit import wait_for, write_folder

from hardware.sort import SortConfig, SortEngine
from hardware.sources import make_source


def _seg_model():
    pytest.importorskip("segmentation_models_pytorch")
    import torch

    from hardware.sort.models import TimedModel
    from training.card import ModelCard
    from training.segment import models
    from training.segment.inference import SegModel
    from training.segment.postprocess import AreaRule
    torch.manual_seed(0)
    card = ModelCard("seg-test", "unet-resnet18", task="segment", classes=["scratch"], input_size=(32, 32),
                     extra={"segment": {"decoder": "unet", "encoder": "resnet18",
                                        "rules": [AreaRule("scratch", 0.5, 2, None).to_dict()]}})
    loaded = SegModel(models.build("unet", "resnet18", 1), card, torch.device("cpu"))
    return loaded, TimedModel(loaded)


def test_segmentation_model_answers_the_plc(tmp_path: Path, project, peer):
    import cv2
    loaded, timed = _seg_model()
    n = 2
    folder = write_folder(tmp_path / "run", n, {1: 3})
    cams = ["cam0", "cam1", "cam2", "cam3"]
    expected = [loaded.predict_views([cv2.imread(str(folder / c / f"part_{k:03d}.png"), 0) for c in cams], cams)
                for k in range(n)]
    source = make_source(f"folder:{folder}")
    source.open()
    engine = SortEngine(project, timed, source, SortConfig(plc_port=peer.port, poll_period=0.002))
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
    assert {"preprocess", "forward"} <= set(s.stages_ms)
