"""Live sort driven by a segmentation model: the engine answers a real Modbus peer on 127.0.0.1
with the area rule's verdict and the max probability as confidence (untrained net: the path is
what counts)."""
from __future__ import annotations

from pathlib import Path

import pytest
from sortkit import sort_folder_against_peer, write_folder


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
    loaded, timed = _seg_model()
    folder = write_folder(tmp_path / "run", 2, {1: 3})
    s = sort_folder_against_peer(project, peer, loaded, timed, folder, 2)
    assert {"preprocess", "forward"} <= set(s.stages_ms)
