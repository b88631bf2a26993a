"""Backbone registry: every entry builds with a new head; freeze policies freeze what they say."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from training.backbones import (
    BACKBONES,
    FrozenTrunk,
    apply_freeze,
    get_backbone,
    set_train_mode,
    tail_forward,
)
from training.errors import TrainingError

EXPECTED = {"vgg16", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "mobilenet_v2",
            "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_b1",
            "efficientnet_b2", "efficientnet_b3", "efficientnet_b4"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_backbone_builds_with_head_groups_and_target_layer(name):
    spec = BACKBONES[name]
    model = spec.build_meta(3)  # structure only: no memory, no slow random init
    head = model.get_submodule(spec.head)
    assert isinstance(head, nn.Linear) and head.out_features == 3
    model.get_submodule(spec.target_layer)
    for group in spec.groups:
        for m in group:
            model.get_submodule(m)
    with torch.no_grad():  # shapes flow through trunk + tail on the meta device
        x = torch.empty((2, 3, 64, 64), device="meta")
        k = spec.frozen_groups("last-block")
        assert tuple(tail_forward(model, spec, k, FrozenTrunk(model, spec, k)(x)).shape) == (2, 3)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_real_forward_and_trunk_tail_split_agree(name):
    spec = get_backbone(name)
    torch.manual_seed(0)
    model = spec.build(2).eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        y = model(x)
        for k in range(len(spec.groups) + 1):
            assert torch.allclose(tail_forward(model, spec, k, FrozenTrunk(model, spec, k)(x)), y, atol=1e-5)


def test_freeze_policies_freeze_what_they_say():
    spec = get_backbone("resnet18")
    model = spec.build_meta(2)
    head = set(apply_freeze(model, spec, "head"))
    assert head == {"fc.weight", "fc.bias"}
    last = set(apply_freeze(model, spec, "last-block"))
    assert all(n.startswith(("layer4.", "fc.")) for n in last) and any(n.startswith("layer4.") for n in last)
    assert not model.conv1.weight.requires_grad and not model.layer3[0].conv1.weight.requires_grad
    assert len(apply_freeze(model, spec, "none")) == len(list(model.parameters()))
    vgg = get_backbone("vgg16")
    vm = vgg.build_meta(2)
    trained = apply_freeze(vm, vgg, "last-block")  # the bolt study: blocks 1-4 frozen, block 5 + head
    assert {n.split(".")[0] + "." + n.split(".")[1] for n in trained if n.startswith("features")} == \
        {"features.24", "features.26", "features.28"}
    with pytest.raises(TrainingError, match="freeze policy"):
        apply_freeze(model, spec, "everything")


def test_frozen_batchnorm_stays_in_eval_mode():
    spec = get_backbone("resnet18")
    model = spec.build_meta(2)
    apply_freeze(model, spec, "last-block")
    set_train_mode(model, spec, "last-block")
    assert not model.bn1.training and not model.layer3[1].bn2.training
    assert model.layer4[0].bn1.training and model.fc.training


def test_unknown_arch_lists_known_ones():
    with pytest.raises(TrainingError, match="resnet18"):
        get_backbone("alexnet9000")
