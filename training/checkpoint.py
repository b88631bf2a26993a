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

from .backbones import get_backbone
from .errors import TrainingError

FORMAT = "okng-checkpoint"
VERSION = 1


def to_bytes(model: nn.Module, arch: str, num_classes: int) -> bytes:
    """Serialise a model's state (CPU tensors) with its arch and class count."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "arch": arch, "num_classes": int(num_classes),
                "state_dict": state}, buf)
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
    spec = get_backbone(str(obj["arch"]))
    model = spec.build_for_state(int(obj["num_classes"]), obj["state_dict"])
    return model.eval(), obj
