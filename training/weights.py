"""Where ImageNet weights come from: torchvision's local cache or $OKNG_HOME/weights.

Nothing is ever downloaded. `import_weights` checks a user's file against the architecture
(strict key/shape match, weights_only load) before installing it as <weights dir>/<arch>.pth.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from labeling.home import okng_home

from .backbones import get_backbone
from .errors import TrainingError


def weights_dir() -> Path:
    """Where `okng weights import` puts files: $OKNG_HOME/weights (default ~/.okng/weights)."""
    return okng_home() / "weights"


def _torchvision_filename(arch: str) -> str | None:
    try:
        import torchvision.models as tvm
        enum = tvm.get_model_weights(get_backbone(arch).factory)
        return Path(enum.DEFAULT.url).name
    except (ValueError, AttributeError, KeyError):
        return None


def candidate_paths(arch: str) -> list[Path]:
    """Files looked at, in order: the user's imported file, then torchvision's hub cache."""
    get_backbone(arch)
    out = [weights_dir() / f"{arch}.pth"]
    name = _torchvision_filename(arch)
    if name:
        out.append(Path(torch.hub.get_dir()) / "checkpoints" / name)
    return out


def _unwrap(obj: Any) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
        state = {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if state:
            return state
    raise TrainingError("the file holds no state dict of tensors")


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """Load a weights file safely (weights_only=True); clear error on a foreign/damaged file."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise TrainingError(f"{path}: not a loadable PyTorch weights file ({type(exc).__name__}: "
                            f"{str(exc)[:200]})") from exc
    return _unwrap(obj)


def find_pretrained(arch: str) -> tuple[dict[str, torch.Tensor] | None, str | None]:
    """(ImageNet state dict, source path) or (None, None) when no local file exists."""
    for path in candidate_paths(arch):
        if path.is_file():
            return read_state(path), str(path)
    return None, None


def import_weights(file: str | Path, arch: str) -> Path:
    """Validate a user's weights file against `arch` and install it where training finds it."""
    spec = get_backbone(arch)
    src = Path(file)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such file")
    state = read_state(src)
    ref = spec.build_meta(1000).state_dict()
    missing = sorted(set(ref) - set(state))
    extra = sorted(set(state) - set(ref))
    if missing or extra:
        raise TrainingError(f"{src.name} does not match {arch}: {len(missing)} missing keys "
                            f"(e.g. {missing[:3]}), {len(extra)} unexpected (e.g. {extra[:3]})")
    bad = [k for k, v in ref.items() if tuple(v.shape) != tuple(state[k].shape)]
    if bad:
        raise TrainingError(f"{src.name} does not match {arch}: shape differs for {bad[:3]}")
    dest = weights_dir() / f"{arch}.pth"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, dest)
    return dest

