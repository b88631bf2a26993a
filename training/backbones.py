"""Backbones by name over torchvision: build, replace the head, freeze groups, Grad-CAM layer.

Adding a backbone is one entry in BACKBONES. Each spec knows its stages in forward order
(`groups`), the head module, the last conv stage for Grad-CAM, and its default input size.
Freeze policies:
  head        only the classifier trains (the bolt study's first transfer run)
  last-block  the last stage + the head train (the bolt study's fine-tuning: blocks 1-4 frozen)
  none        everything trains, from pretrained weights when available
  scratch     everything trains from random init (pretrained weights are never loaded)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .errors import TrainingError

FREEZE_POLICIES = ("head", "last-block", "none", "scratch")


@dataclass(frozen=True)
class Head:
    """The classifier head that replaces the backbone's last Linear.

    The default is torchvision's own: one Linear, so every model stored before heads were
    configurable loads unchanged. Dropout and a hidden dense layer are what the corrosion study
    tuned (``okng tune`` searches them); such a head is an nn.Sequential at the same place, so
    freezing, Grad-CAM and the tail forward see it as "the head" like the plain Linear.
    """

    dropout: float = 0.0  # before each Linear of the head
    hidden: int = 0  # units of a hidden dense layer (ReLU); 0 = none

    def is_default(self) -> bool:
        return not self.dropout and not self.hidden

    def validate(self) -> Head:
        if not 0.0 <= self.dropout < 1.0:
            raise TrainingError(f"head dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.hidden <= 8192:
            raise TrainingError(f"head hidden units must be in 0..8192, got {self.hidden}")
        return self

    def module(self, in_features: int, num_classes: int) -> nn.Module:
        if self.is_default():
            return nn.Linear(in_features, num_classes)
        layers: list[nn.Module] = []
        width = in_features
        if self.hidden:
            layers += [nn.Dropout(self.dropout), nn.Linear(width, self.hidden), nn.ReLU()]
            width = self.hidden
        layers += [nn.Dropout(self.dropout), nn.Linear(width, num_classes)]
        return nn.Sequential(*layers)

    def to_dict(self) -> dict[str, Any]:
        return {"dropout": float(self.dropout), "hidden": int(self.hidden)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Head:
        d = d or {}
        return cls(float(d.get("dropout", 0.0)), int(d.get("hidden", 0))).validate()

    @classmethod
    def of_config(cls, config: dict[str, Any]) -> Head:
        """The head of a TrainConfig dict (a card's config; older cards have none: the default)."""
        return cls(float(config.get("head_dropout") or 0.0), int(config.get("head_hidden") or 0)).validate()


def _get(model: nn.Module, dotted: str) -> nn.Module:
    return model.get_submodule(dotted)


def _set(model: nn.Module, dotted: str, module: nn.Module) -> None:
    parent, _, name = dotted.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, module)


@dataclass(frozen=True)
class BackboneSpec:
    """One torchvision architecture as okng uses it."""

    name: str
    factory: str  # torchvision.models function name
    head: str  # dotted name of the final nn.Linear
    groups: tuple[tuple[str, ...], ...]  # stages in forward order (dotted module names)
    target_layer: str  # last conv stage, the Grad-CAM default
    input_size: tuple[int, int] = (224, 224)
    extra: dict[str, Any] = field(default_factory=dict)

    def build(self, num_classes: int, pretrained_state: dict[str, torch.Tensor] | None = None,
              head: Head | None = None) -> nn.Module:
        """The network with ImageNet weights (if given) and a fresh head for num_classes."""
        if pretrained_state is None:
            model = self._factory()(weights=None)
        else:
            # Skeleton on the meta device, then adopt the given tensors: no wasted random init
            # (VGG16's takes half a minute on a busy 2-core CPU).
            with torch.device("meta"):
                model = self._factory()(weights=None)
            try:
                model.load_state_dict(pretrained_state, strict=True, assign=True)
            except RuntimeError as exc:
                raise TrainingError(f"pretrained weights do not fit {self.name}: {str(exc)[:300]}") from exc
        self.replace_head(model, num_classes, head)
        _no_inplace(model)
        return model

    def build_for_state(self, num_classes: int, state: dict[str, torch.Tensor],
                        head: Head | None = None) -> nn.Module:
        """The network with a num_classes head, all tensors taken from a saved state (strict)."""
        with torch.device("meta"):
            model = self._factory()(weights=None)
            self.replace_head(model, num_classes, head)
            if _stem_channels(model, state) == 1:
                single_channel_stem(model, self)
        try:
            model.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as exc:
            raise TrainingError(f"checkpoint does not fit {self.name} with {num_classes} classes: "
                                f"{str(exc)[:300]}") from exc
        _no_inplace(model)
        return model

    def build_meta(self, num_classes: int, head: Head | None = None) -> nn.Module:
        """Structure only (meta tensors, no memory): for shape checks and listings."""
        with torch.device("meta"):
            model = self._factory()(weights=None)
            self.replace_head(model, num_classes, head)
        return model

    def _factory(self) -> Callable[..., nn.Module]:
        import torchvision.models as tvm
        return getattr(tvm, self.factory)

    def replace_head(self, model: nn.Module, num_classes: int, head: Head | None = None) -> None:
        old = _get(model, self.head)
        if not isinstance(old, nn.Linear):
            raise TrainingError(f"{self.name}: head {self.head} is not a Linear layer")
        _set(model, self.head, (head or Head()).module(old.in_features, num_classes))

    def head_modules(self) -> tuple[str, ...]:
        """The classifier module (fc, or the whole `classifier` block of dense layers)."""
        return (self.head.rpartition(".")[0],) if "." in self.head else (self.head,)

    def trainable_prefixes(self, policy: str) -> tuple[str, ...]:
        """Dotted prefixes whose parameters train under a freeze policy."""
        if policy not in FREEZE_POLICIES:
            raise TrainingError(f"unknown freeze policy {policy!r} (expected {', '.join(FREEZE_POLICIES)})")
        if policy in ("none", "scratch"):
            return ("",)
        heads = self.head_modules()
        if policy == "head":
            return heads
        return tuple(self.groups[-1]) + heads

    def frozen_groups(self, policy: str) -> int:
        """How many leading stages are frozen (their output can be cached)."""
        if policy in ("none", "scratch"):
            return 0
        return len(self.groups) if policy == "head" else len(self.groups) - 1


def _no_inplace(model: nn.Module) -> None:
    # Out-of-place activations: a hooked activation must not be overwritten by the next layer
    # (Grad-CAM reads it), and frozen-feature caching relies on clean stage outputs.
    for m in model.modules():
        if isinstance(m, (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.Hardsigmoid)) and getattr(m, "inplace", False):
            m.inplace = False


def _resnet(name: str) -> BackboneSpec:
    return BackboneSpec(name, name, "fc",
                        (("conv1", "bn1", "relu", "maxpool"), ("layer1",), ("layer2",), ("layer3",), ("layer4",)),
                        "layer4")


def _features(name: str, n_features: int, head: str, blocks: list[list[int]],
              input_size: tuple[int, int] = (224, 224)) -> BackboneSpec:
    groups = tuple(tuple(f"features.{i}" for i in b) for b in blocks)
    assert sum(len(b) for b in blocks) == n_features
    return BackboneSpec(name, name, head, groups, f"features.{n_features - 1}", input_size)


def _vgg16() -> BackboneSpec:
    # Five conv blocks, each ending in a max-pool (features 4, 9, 16, 23, 30). The head is the
    # whole classifier (the dense layers a Keras-style transfer run retrains); target = the last
    # conv's ReLU (features.29), as in the original Grad-CAM on VGG16.
    blocks = [list(range(5)), list(range(5, 10)), list(range(10, 17)), list(range(17, 24)), list(range(24, 31))]
    spec = _features("vgg16", 31, "classifier.6", blocks)
    return BackboneSpec(spec.name, spec.factory, spec.head, spec.groups, "features.29")


_EFF_SIZES = {"efficientnet_b0": 224, "efficientnet_b1": 240, "efficientnet_b2": 260,
              "efficientnet_b3": 300, "efficientnet_b4": 380}


def _build_registry() -> dict[str, BackboneSpec]:
    reg: dict[str, BackboneSpec] = {}
    reg["vgg16"] = _vgg16()
    for n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
        reg[n] = _resnet(n)
    reg["mobilenet_v2"] = _features("mobilenet_v2", 19, "classifier.1",
                                    [[0, 1], [2, 3], [4, 5, 6], [7, 8, 9, 10, 11, 12, 13], [14, 15, 16, 17, 18]])
    reg["mobilenet_v3_small"] = _features("mobilenet_v3_small", 13, "classifier.3",
                                          [[0, 1], [2, 3], [4, 5, 6, 7, 8], [9, 10, 11, 12]])
    reg["mobilenet_v3_large"] = _features("mobilenet_v3_large", 17, "classifier.3",
                                          [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9, 10, 11, 12], [13, 14, 15, 16]])
    for n, s in _EFF_SIZES.items():
        reg[n] = _features(n, 9, "classifier.1", [[0, 1, 2], [3], [4], [5], [6, 7, 8]], (s, s))
    return reg


BACKBONES: dict[str, BackboneSpec] = _build_registry()


def get_backbone(name: str) -> BackboneSpec:
    """The spec of a backbone by name, with a clear error listing the known ones."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise TrainingError(f"unknown architecture {name!r} (known: {', '.join(BACKBONES)})") from None


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(p == "" or name == p or name.startswith(p + ".") for p in prefixes)


def apply_freeze(model: nn.Module, spec: BackboneSpec, policy: str) -> list[str]:
    """Set requires_grad per the policy; returns the trainable parameter names."""
    prefixes = spec.trainable_prefixes(policy)
    trainable = []
    for name, p in model.named_parameters():
        p.requires_grad_(_matches(name, prefixes))
        if p.requires_grad:
            trainable.append(name)
    return trainable


def set_train_mode(model: nn.Module, spec: BackboneSpec, policy: str) -> None:
    """train() for trainable parts, eval() for frozen ones (frozen BatchNorm keeps its stats)."""
    model.train()
    prefixes = spec.trainable_prefixes(policy)
    if "" in prefixes:
        return
    for name, m in model.named_modules():
        if name and not _matches(name, prefixes) and not any(p.startswith(name + ".") for p in prefixes):
            m.eval()


class FrozenTrunk(nn.Module):
    """The frozen leading stages of a backbone, run once to cache their output."""

    def __init__(self, model: nn.Module, spec: BackboneSpec, n_groups: int) -> None:
        super().__init__()
        self.parts = nn.ModuleList(_get(model, m) for g in spec.groups[:n_groups] for m in g)
        self.names = [m for g in spec.groups[:n_groups] for m in g]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.parts:
            x = m(x)
        return x


def tail_forward(model: nn.Module, spec: BackboneSpec, start: int, x: torch.Tensor) -> torch.Tensor:
    """Forward from stage `start` to the logits, mirroring torchvision's own forward()."""
    names = [m for g in spec.groups[start:] for m in g]
    for name in names:
        x = _get(model, name)(x)
    return _HEADS[_family(spec.name)](model, x)


def _family(name: str) -> str:
    for fam in ("resnet", "vgg", "mobilenet_v2", "mobilenet_v3", "efficientnet"):
        if name.startswith(fam):
            return fam
    raise TrainingError(f"no tail forward for {name}")


def _resnet_head(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.fc(torch.flatten(model.avgpool(x), 1))


def _mnv2_head(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
    return model.classifier(torch.flatten(x, 1))


def _pooled_head(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.classifier(torch.flatten(model.avgpool(x), 1))


_HEADS: dict[str, Callable[[nn.Module, torch.Tensor], torch.Tensor]] = {
    "resnet": _resnet_head, "vgg": _pooled_head, "mobilenet_v2": _mnv2_head,
    "mobilenet_v3": _pooled_head, "efficientnet": _pooled_head,
}


# ---------------------------------------------------------------- from-scratch and self-supervised starts

def first_conv_name(model: nn.Module) -> str:
    """Dotted name of the first Conv2d in forward order (the stem's input layer)."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name
    raise TrainingError("model has no Conv2d")


class GrayConv2d(nn.Conv2d):
    """A one-channel stem conv that also takes the three-channel input every okng pipeline
    makes (a gray view repeated to RGB): it reads channel 0 only. Inference, Grad-CAM and the
    ONNX export thus feed such a model exactly as any other; the stem does a third of the work."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x[:, :1])  # a 1-channel input passes as it is


def _stem_channels(model: nn.Module, state: dict[str, torch.Tensor]) -> int | None:
    w = state.get(first_conv_name(model) + ".weight")
    return int(w.shape[1]) if w is not None and w.ndim == 4 else None


def single_channel_stem(model: nn.Module, spec: BackboneSpec) -> nn.Module:
    """Make the stem take one channel (grayscale views), in place; returns the model.

    A grayscale view fed as three equal channels costs the first conv three times the work for
    no information; the 1-channel conv keeps the same output shape, so nothing after it changes.
    An existing 3-channel kernel is summed over its inputs, which gives the same response to a
    gray image replicated to RGB (so ImageNet or encoder weights stay meaningful).
    """
    name = first_conv_name(model)
    old = _get(model, name)
    if old.in_channels == 1:
        return model
    new = GrayConv2d(1, old.out_channels, old.kernel_size, old.stride, old.padding, old.dilation,
                    old.groups, old.bias is not None, old.padding_mode)
    if old.weight.device.type == "meta":
        new = new.to("meta")
    else:
        with torch.no_grad():
            new.weight.copy_(old.weight.sum(dim=1, keepdim=True))
            if old.bias is not None:
                new.bias.copy_(old.bias)
    _set(model, name, new)
    return model


def encoder_state(model: nn.Module, spec: BackboneSpec) -> dict[str, torch.Tensor]:
    """The backbone's tensors without its classifier head: what a self-supervised run stores."""
    heads = spec.head_modules()
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()
            if not _matches(k, heads)}


def load_encoder_state(model: nn.Module, state: dict[str, torch.Tensor],
                       spec: BackboneSpec | None = None) -> list[str]:
    """Copy an encoder's tensors into a classifier of the same architecture, in place.

    The head stays freshly initialised. A stem of a different channel count is adapted (a
    1-channel encoder into an RGB model: the kernel is spread over the three inputs; an RGB
    encoder into a 1-channel stem: summed). Returns the names of the tensors loaded; raises
    TrainingError if any backbone tensor is missing or does not fit.
    """
    own = model.state_dict()
    stem = first_conv_name(model) + ".weight"
    heads = spec.head_modules() if spec is not None else ()
    loaded, adapted = [], dict(state)
    if stem in adapted and stem in own and adapted[stem].shape != own[stem].shape:
        w = adapted[stem]
        if w.shape[1] == 1 and own[stem].shape[1] == 3:
            adapted[stem] = w.repeat(1, 3, 1, 1) / 3.0
        elif w.shape[1] == 3 and own[stem].shape[1] == 1:
            adapted[stem] = w.sum(dim=1, keepdim=True)
    missing = [k for k in own if k not in adapted and not _matches(k, heads) and not _is_head_key(k, adapted)]
    if missing:
        raise TrainingError(f"encoder lacks {len(missing)} tensors of the model (first: {missing[0]})")
    extra = [k for k in adapted if k not in own]
    if extra:  # e.g. a resnet34 encoder offered to a resnet18: never load half a network silently
        raise TrainingError(f"encoder has {len(extra)} tensors the model lacks (first: {extra[0]})")
    with torch.no_grad():
        for k, v in adapted.items():
            if own[k].shape != v.shape:
                raise TrainingError(f"encoder tensor {k} has shape {tuple(v.shape)}, model {tuple(own[k].shape)}")
            own[k].copy_(v)
            loaded.append(k)
    return loaded


def _is_head_key(key: str, state: dict[str, torch.Tensor]) -> bool:
    # Without a spec, the keys an encoder lacks are taken as the head only when they sit in the
    # model's last top-level module (fc / classifier), the one encoder_state leaves out.
    return key.split(".")[0] in ("fc", "classifier", "heads")


def build_from_encoder(arch: str, num_classes: int, state: dict[str, torch.Tensor],
                       head: Head | None = None) -> nn.Module:
    """A classifier of `arch` with a num_classes head, its backbone taken from an encoder state
    (training.pretrain); the stem has the encoder's channel count (1 for grayscale projects)."""
    spec = get_backbone(arch)
    model = spec.build(num_classes, head=head)
    stem = first_conv_name(model) + ".weight"
    if stem in state and state[stem].shape[1] == 1:
        single_channel_stem(model, spec)
    load_encoder_state(model, state, spec)
    return model
