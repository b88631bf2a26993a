"""Segmentation networks by name: a decoder (UNet, UNet++, FPN) over an encoder from a registry.

segmentation-models-pytorch builds the networks, always with ``encoder_weights=None``: it would
otherwise download weights from the internet at run time, which okng never does. ImageNet
weights come the way they do for classifiers (training.weights: an `okng weights import` file
or torchvision's local cache) and are loaded into the encoder where the layouts match: smp's
ResNet encoders ARE torchvision's ResNets (same keys, less `fc`). smp's EfficientNet and
MobileNet-v3 encoders are other implementations (lukemelas / timm layouts), so they start from
scratch, and the CLI and the card say so.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import TrainingError

DECODERS = ("unet", "unetplusplus", "fpn")


@dataclass(frozen=True)
class EncoderSpec:
    name: str  # okng's name (the CLI's --encoder)
    smp_name: str  # segmentation-models-pytorch's encoder name
    torchvision_arch: str | None = None  # a training.backbones arch whose ImageNet weights fit the encoder


def _registry() -> dict[str, EncoderSpec]:
    reg = {n: EncoderSpec(n, n, n) for n in ("resnet18", "resnet34", "resnet50")}
    for i in range(5):
        reg[f"efficientnet-b{i}"] = EncoderSpec(f"efficientnet-b{i}", f"efficientnet-b{i}")
    reg["mobilenet_v3_small"] = EncoderSpec("mobilenet_v3_small", "timm-mobilenetv3_small_100")
    reg["mobilenet_v3_large"] = EncoderSpec("mobilenet_v3_large", "timm-mobilenetv3_large_100")
    return reg


ENCODERS = _registry()


def get_encoder(name: str) -> EncoderSpec:
    try:
        return ENCODERS[name]
    except KeyError:
        raise TrainingError(f"unknown encoder {name!r} (known: {', '.join(ENCODERS)})") from None


def build(decoder: str, encoder: str, n_classes: int, state: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """The network (random init, or a full state dict of a stored model)."""
    import segmentation_models_pytorch as smp  # here: it takes seconds to import
    spec = get_encoder(encoder)
    factories = {"unet": smp.Unet, "unetplusplus": smp.UnetPlusPlus, "fpn": smp.FPN}
    if decoder not in factories:
        raise TrainingError(f"unknown decoder {decoder!r} (known: {', '.join(DECODERS)})")
    model = factories[decoder](encoder_name=spec.smp_name, encoder_weights=None, in_channels=3,
                               classes=max(1, int(n_classes)))
    if state is not None:
        model.load_state_dict(state)
    return model


def load_imagenet_encoder(model: nn.Module, encoder: str) -> tuple[bool, str | None, str | None]:
    """Load ImageNet weights into the encoder where a local file fits.

    Returns (pretrained, source, warning): the warning says why it starts from scratch."""
    spec = get_encoder(encoder)
    if spec.torchvision_arch is None:
        return False, None, (f"encoder {encoder} trained from scratch: smp's {spec.smp_name} layout differs "
                             "from torchvision's, so no local ImageNet file fits it (use a resnet encoder "
                             "for an ImageNet start)")
    from ..weights import find_pretrained
    state, source = find_pretrained(spec.torchvision_arch)
    if state is None:
        return False, None, (f"encoder {encoder} trained from scratch: no ImageNet weights found "
                             f"(install a file with `okng weights import FILE --arch {spec.torchvision_arch}`)")
    enc_state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:  # strict: a file that does not fit leaves the encoder untouched and is said
        model.encoder.load_state_dict(copy.deepcopy(enc_state))
    except RuntimeError:
        return False, None, f"encoder {encoder} trained from scratch: {source} does not fit the encoder"
    return True, source, None
