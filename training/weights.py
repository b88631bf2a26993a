"""Where starting weights come from, and what they are: torchvision's cache or $OKNG_HOME/weights.

Nothing is ever downloaded. `import_weights` checks a user's file against the architecture
(strict key/shape match, weights_only load) before installing it, byte for byte, as
<weights dir>/<arch>.pth.

Provenance: a file that fits an architecture's shapes is not therefore ImageNet's (a random
state dict fits too). torchvision names each weights file after the first 8 hex digits of its
SHA-256 (resnet18-f37072fd.pth), so a file is "ImageNet" only when its own SHA-256 starts with
the digits of one of its architecture's torchvision weights; anything else is "custom weights"
(`provenance`; the model card's pretrained_source records which).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
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


def known_hashes(arch: str) -> dict[str, str]:
    """SHA-256 prefix (8 hex digits) -> torchvision file stem, for every weights enum member of
    the architecture (resnet18: {"f37072fd": "resnet18-f37072fd"})."""
    import torchvision.models as tvm
    try:
        enum = tvm.get_model_weights(get_backbone(arch).factory)
    except (ValueError, AttributeError, KeyError):
        return {}
    out = {}
    for member in enum:
        stem = Path(member.url).name.split(".")[0]
        prefix = stem.rsplit("-", 1)[-1]
        if len(prefix) >= 8 and all(ch in "0123456789abcdef" for ch in prefix):
            out[prefix] = stem
    return out


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Provenance:
    """What a weights file is: torchvision's ImageNet weights (hash verified) or custom."""

    path: str
    arch: str
    sha256: str
    torchvision: str | None  # the matching torchvision file stem; None = custom weights
    imported_from: str | None = None  # the user's file name, for an imported file

    @property
    def imagenet(self) -> bool:
        return self.torchvision is not None

    @property
    def label(self) -> str:
        """The words the card, the CLI and the Train view use."""
        if self.imagenet:
            return f"ImageNet (torchvision {self.torchvision}, sha256 verified)"
        return f"custom weights {self.imported_from or self.path}"

    @property
    def verified(self) -> str:
        """How it was checked (okng weights list)."""
        if self.imagenet:
            return f"sha256 {self.sha256[:16]}... starts with torchvision's {self.torchvision.rsplit('-', 1)[-1]}"
        return f"sha256 {self.sha256[:16]}... matches none of {self.arch}'s torchvision weights"


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def provenance(path: str | Path, arch: str) -> Provenance:
    """Check a weights file against its architecture's torchvision hashes (reads the whole file)."""
    path = Path(path)
    digest = file_sha256(path)
    stem = known_hashes(arch).get(digest[:8])
    origin = None
    side = _sidecar(path)
    if side.is_file():
        try:
            origin = json.loads(side.read_text()).get("imported_from")
        except (OSError, ValueError):
            origin = None
    return Provenance(str(path), arch, digest, stem, origin)


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


def installed(arch: str) -> list[Provenance]:
    """Every local weights file training would look at for arch, in order, with its provenance."""
    return [provenance(p, arch) for p in candidate_paths(arch) if p.is_file()]


def find_pretrained(arch: str) -> tuple[dict[str, torch.Tensor] | None, str | None]:
    """(state dict, provenance label) of the first local file, or (None, None) when none exists.

    The label says "ImageNet (torchvision ..., sha256 verified)" or "custom weights FILE"."""
    for path in candidate_paths(arch):
        if path.is_file():
            return read_state(path), provenance(path, arch).label
    return None, None


def import_weights(file: str | Path, arch: str) -> Provenance:
    """Validate a user's weights file against `arch`, install it (the same bytes, so its hash
    still says what it is) where training finds it; returns its provenance."""
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
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    prov = provenance(dest, arch)
    side = _sidecar(dest)
    side.write_text(json.dumps({"imported_from": src.name, "sha256": prov.sha256,
                                "torchvision": prov.torchvision}))
    return provenance(dest, arch)

