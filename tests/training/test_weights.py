"""Weights provenance (training/weights.py): a file is ImageNet only when its SHA-256 starts with
the digits torchvision puts in its weights file names; anything else is custom weights."""
from __future__ import annotations

import json

import torch

from app.cli import main
from training import weights
from training.backbones import get_backbone


def _random_file(path, arch="mobilenet_v3_small", seed=0):
    torch.manual_seed(seed)
    torch.save(get_backbone(arch)._factory()(weights=None).state_dict(), path)  # right shapes, random values
    return path


def test_known_hashes_cover_every_weights_enum_of_the_arch():
    assert weights.known_hashes("resnet18") == {"f37072fd": "resnet18-f37072fd"}
    vgg = weights.known_hashes("vgg16")
    assert vgg["397923af"] == "vgg16-397923af" and len(vgg) == 2  # IMAGENET1K_V1 and IMAGENET1K_FEATURES


def test_a_random_state_dict_of_the_right_shapes_is_custom_weights(tmp_path, capsys):
    f = _random_file(tmp_path / "random.pth")
    prov = weights.import_weights(f, "mobilenet_v3_small")
    assert not prov.imagenet and prov.label == "custom weights random.pth"
    assert prov.sha256 == weights.file_sha256(f)  # installed byte for byte: its hash still says what it is
    state, label = weights.find_pretrained("mobilenet_v3_small")
    assert state is not None and label == "custom weights random.pth"
    assert main(["weights", "list", "--json"]) == 0
    rows = {r["arch"]: r for r in json.loads(capsys.readouterr().out)}
    entry = rows["mobilenet_v3_small"]["files"][0]
    assert entry["imagenet"] is False and entry["used"] and "matches none" in entry["verified"]
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "custom weights random.pth" in out and "ImageNet" not in out.split("mobilenet_v3_small")[1].split("\n")[0]


def test_a_file_whose_hash_torchvision_names_is_imagenet(tmp_path, monkeypatch, capsys):
    # No download here: the file's own hash stands in for torchvision's, as if it were its file.
    f = _random_file(tmp_path / "mobilenet_v3_small-cafe0000.pth", seed=1)
    digest = weights.file_sha256(f)
    monkeypatch.setattr(weights, "known_hashes", lambda arch: {digest[:8]: f"mobilenet_v3_small-{digest[:8]}"})
    assert main(["weights", "import", str(f), "--arch", "mobilenet_v3_small", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["imagenet"] is True
    assert out["source"] == f"ImageNet (torchvision mobilenet_v3_small-{digest[:8]}, sha256 verified)"
    # the torchvision cache file is checked the same way: a look-alike name is not enough
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    (hub / "checkpoints").mkdir(parents=True)
    fake = hub / "checkpoints" / "resnet18-f37072fd.pth"
    _random_file(fake, "resnet18")
    prov = weights.installed("resnet18")[0]
    assert prov.path == str(fake) and not prov.imagenet and prov.label == f"custom weights {fake}"
