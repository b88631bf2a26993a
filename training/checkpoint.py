"""Checkpoints: torch.save bytes stored inside the project, loaded with weights_only=True.

The model's meta records the SHA-256 of the bytes, so a tampered or swapped checkpoint is
refused with a clear message before anything is unpickled.
"""
from __future__ import annotations

import hashlib
import io
from typing import Any

import torch
from torch import nn

from .backbones import Head, _no_inplace, first_conv_name, get_backbone, single_channel_stem
from .errors import TrainingError

FORMAT = "okng-checkpoint"
VERSION = 3  # 2: a pruned net's checkpoint carries its "structure" (training.pruning); 3: a "head"


def to_bytes(model: nn.Module, arch: str, num_classes: int, structure: dict[str, list[int]] | None = None,
             head: Head | None = None) -> bytes:
    """Serialise a model's state (CPU tensors) with its arch and class count; a pruned net also
    with its channel counts, a configured head with its shape. An unpruned net with the default
    head is still written as version 1, which older okng reads."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    custom = head is not None and not head.is_default()
    obj: dict[str, Any] = {"format": FORMAT, "version": 3 if custom else 2 if structure else 1, "arch": arch,
                           "num_classes": int(num_classes), "state_dict": state}
    if structure:
        obj["structure"] = structure
    if custom:
        assert head is not None
        obj["head"] = head.to_dict()
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def from_bytes(data: bytes, expected_sha256: str | None = None, what: str = "checkpoint") -> dict[str, Any]:
    """Verify and load checkpoint bytes -> {"arch", "num_classes", "state_dict"}."""
    if expected_sha256 is not None and sha256(data) != expected_sha256:
        raise TrainingError(f"{what}: checksum mismatch, the stored checkpoint was modified or replaced; "
                            "retrain or re-import the model")
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrainingError(f"{what}: not an okng checkpoint or damaged ({type(exc).__name__}: "
                            f"{str(exc)[:200]})") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise TrainingError(f"{what}: not an okng checkpoint (foreign file)")
    if int(obj.get("version", 0)) > VERSION:
        raise TrainingError(f"{what}: written by a newer okng (checkpoint version {obj['version']})")
    if not isinstance(obj.get("state_dict"), dict):
        raise TrainingError(f"{what}: checkpoint holds no weights")
    return obj


def build_from_bytes(data: bytes, expected_sha256: str | None = None, what: str = "checkpoint") -> tuple[nn.Module, dict[str, Any]]:
    """The network rebuilt from checkpoint bytes (eval mode, CPU)."""
    obj = from_bytes(data, expected_sha256, what)
    return build_model(obj).eval(), obj


def build_model(obj: dict[str, Any]) -> nn.Module:
    """The network of a loaded checkpoint (from_bytes), pruned or not (train mode)."""
    spec = get_backbone(str(obj["arch"]))
    structure = obj.get("structure")
    head = Head.from_dict(obj.get("head"))
    if not structure:
        return spec.build_for_state(int(obj["num_classes"]), obj["state_dict"], head)
    from .pruning import reshape_to
    skeleton = spec.build_meta(int(obj["num_classes"]), head)
    if int(structure.get(first_conv_name(skeleton), [3])[0]) == 1:
        single_channel_stem(skeleton, spec)  # a gray stem (GrayConv2d: fed the 3-channel pipeline)
    model = reshape_to(skeleton, structure)
    try:
        model.load_state_dict(obj["state_dict"], strict=True, assign=True)
    except RuntimeError as exc:
        raise TrainingError(f"pruned checkpoint does not fit its structure: {str(exc)[:300]}") from exc
    _no_inplace(model)
    return model
