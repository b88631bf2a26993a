"""Structural pruning: channels really removed, outputs close at a small rate, every backbone
family prunable, pruned checkpoints rebuilt, lineage and recipe stored, the CLI."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from training.backbones import BACKBONES, get_backbone
from training.checkpoint import build_from_bytes, to_bytes
from training.pruning import count, prune_filters, soft_prune, structure_of


def _convs(model: nn.Module) -> dict[str, int]:
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def test_pruning_removes_channels_and_keeps_shapes():
    torch.manual_seed(0)
    spec = get_backbone("resnet18")
    model = spec.build(2).eval()
    x = torch.randn(2, 3, 64, 64)
    before_params = sum(p.numel() for p in model.parameters())
    before = _convs(model)
    prune_filters(model, spec, (64, 64), 0.5, "l1")
    after = _convs(model)
    assert sum(p.numel() for p in model.parameters()) < 0.4 * before_params
    assert after["layer1.0.conv1"] == before["layer1.0.conv1"] // 2
    assert model.layer4[1].bn2.num_features == 256 and model.fc.in_features == 256
    assert model.fc.out_features == 2  # the head keeps its classes
    assert model(x).shape == (2, 2)


def test_small_rate_keeps_outputs_close():
    """Removing the 5 % smallest-norm filters of a trained-like net barely moves its logits."""
    torch.manual_seed(0)
    spec = get_backbone("mobilenet_v3_small")
    model = spec.build(2).eval()
    with torch.no_grad():  # a spread of filter norms, as training leaves them: small ones matter little
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and m.groups == 1:
                scale = torch.logspace(-3, 0, m.out_channels)[torch.randperm(m.out_channels)]
                m.weight.mul_(scale.view(-1, 1, 1, 1))
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        ref = torch.softmax(model(x), 1)
        prune_filters(model, spec, (64, 64), 0.05, "l2")
        got = torch.softmax(model(x), 1)
    assert (got - ref).abs().max() < 0.05


@pytest.mark.parametrize("arch", ["resnet18", "vgg16", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0"])
def test_every_family_prunes_and_its_checkpoint_rebuilds(arch):
    spec = BACKBONES[arch]
    model = spec.build(2).eval()
    size = (64, 64)
    macs0, params0 = count(model, size)
    prune_filters(model, spec, size, 0.3, "l1")
    macs1, params1 = count(model, size)
    assert macs1 < 0.7 * macs0 and params1 < 0.7 * params0
    data = to_bytes(model, arch, 2, structure_of(model))
    rebuilt, ckpt = build_from_bytes(data)
    assert ckpt["version"] == 2
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), model(x), atol=1e-5)


def test_soft_prune_zeroes_filters_without_removing_them():
    spec = get_backbone("resnet18")
    model = spec.build(2)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    zeroed = soft_prune(model, spec, (32, 32), 0.25, "l1")
    assert zeroed > 0
    assert {n: p.shape for n, p in model.named_parameters()} == shapes
    w = model.layer1[0].conv1.weight
    assert int((w.flatten(1).abs().sum(1) == 0).sum()) == 16  # a quarter of 64 filters


def test_prune_rounds_register_children_with_recipe_and_lineage(toy_project, capsys):
    from app.cli import main
    from labeling.store import Project
    from training.card import read_card, read_cards
    from training.config import TrainConfig
    from training.inference import load_model
    from training.lineage import lineage_rows
    from training.loop import train
    from training.prune import PruneSpec, prune

    res = train(toy_project, TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=1, input_size=32))
    seen = []
    out = prune(PruneSpec(str(toy_project), res.model_id, rounds=2, rate=0.3, fine_tune_epochs=1,
                          latency_batch=1), seen.append)
    assert not out.cancelled and len(out.model_ids) == 2
    assert [p.payload.round for p in seen if p.stage == "prune" and p.payload is not None] == [1, 2]
    proj = Project.open(toy_project, readonly=True)
    root, c1, c2 = (read_card(proj, i) for i in [res.model_id, *out.model_ids])
    assert (c1.parent, c2.parent) == (root.id, c1.id)
    rec = c2.extra["pruning"]
    assert rec["method"] == "l1" and rec["rate"] == 0.3 and rec["round"] == 2 and rec["root"] == root.id
    assert c2.extra["figures"]["params"] < c1.extra["figures"]["params"] < rec["parent_figures"]["params"] * 1.01
    assert c1.val.part_ids == root.val.part_ids  # judged on the same held-out parts
    assert proj.active_model_id == root.id  # a pruned model is never activated by itself
    loaded = load_model(toy_project, c2.id)  # rebuilt from its structure
    assert sum(p.numel() for p in loaded.model.parameters()) == c2.extra["figures"]["params"]
    rows = lineage_rows(read_cards(proj), c2.id)
    assert [r["id"] for r in rows] == [root.id, c1.id, c2.id]
    assert rows[0]["params"] is not None and rows[2]["params_x"] > 2
    assert main(["models", str(toy_project), "--lineage", c1.id, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in printed["lineage"]] == [root.id, c1.id, c2.id]


def test_cli_prune_asfp(toy_project, capsys):
    from app.cli import main
    from labeling.store import Project
    from training.card import read_card
    from training.config import TrainConfig
    from training.loop import train

    res = train(toy_project, TrainConfig(arch="resnet18", freeze="none", epochs=1, input_size=32, batch_size=8))
    assert main(["prune", str(toy_project), "--rounds", "2", "--rate", "0.3", "--method", "asfp",
                 "--fine-tune-epochs", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["model_ids"]) == 1  # ASFP: one model, its soft-pruned filters removed at the end
    card = read_card(Project.open(toy_project, readonly=True), out["model_ids"][0])
    rec = card.extra["pruning"]
    assert card.parent == res.model_id and rec["method"] == "asfp"
    assert rec["epoch_rates"] == sorted(rec["epoch_rates"]) and abs(rec["final_rate"] - 0.51) < 1e-9
    assert card.extra["figures"]["flops"] < 0.5 * rec["parent_figures"]["flops"]


def test_training_warm_started_from_a_pruned_model_keeps_its_channels(toy_project):
    from training.config import TrainConfig
    from training.inference import load_model
    from training.loop import train
    from training.prune import PruneSpec, prune

    cfg = {"arch": "mobilenet_v3_small", "freeze": "none", "epochs": 1, "input_size": 32}
    res = train(toy_project, TrainConfig(**cfg))
    child = prune(PruneSpec(str(toy_project), res.model_id, rounds=1, rate=0.5, fine_tune_epochs=0,
                            latency_batch=1)).model_ids[0]
    again = train(toy_project, TrainConfig(**cfg, warm_start=child))
    a, b = load_model(toy_project, child), load_model(toy_project, again.model_id)
    assert sum(p.numel() for p in b.model.parameters()) == sum(p.numel() for p in a.model.parameters())
