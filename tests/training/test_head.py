"""The configurable classifier head: torchvision's Linear by default (old models load as they
were), dropout + a hidden dense layer when asked, stored in the checkpoint and on the card."""
from __future__ import annotations

import torch
from torch import nn

from training.backbones import Head, get_backbone
from training.checkpoint import build_from_bytes, from_bytes, to_bytes


def test_default_head_is_one_linear_and_writes_the_old_checkpoint():
    spec = get_backbone("resnet18")
    model = spec.build(2)
    assert isinstance(model.fc, nn.Linear)
    obj = from_bytes(to_bytes(model, "resnet18", 2, head=Head()))
    assert obj["version"] == 1 and "head" not in obj


def test_custom_head_round_trips_through_a_checkpoint():
    spec = get_backbone("mobilenet_v3_small")
    head = Head(dropout=0.3, hidden=32)
    model = spec.build(3, head=head).eval()
    assert isinstance(model.get_submodule(spec.head), nn.Sequential)
    data = to_bytes(model, spec.name, 3, head=head)
    again, obj = build_from_bytes(data)
    assert obj["version"] == 3 and obj["head"] == {"dropout": 0.3, "hidden": 32}
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), again(x), atol=1e-6)


def test_a_trained_model_with_a_head_records_it_and_loads(toy_project):
    from training.inference import load_model
    from training.session import TrainSpec, run_session
    res = run_session(TrainSpec(str(toy_project), {"epochs": 1, "input_size": 32, "batch_size": 8, "num_threads": 1,
                                                   "head_dropout": 0.2, "head_hidden": 16, "recipe": "manual"}))
    assert res.card.config["head_dropout"] == 0.2 and res.card.config["head_hidden"] == 16
    loaded = load_model(toy_project, res.model_id, device="cpu")
    assert isinstance(loaded.model.fc, nn.Sequential) and loaded.model.fc[1].out_features == 16
