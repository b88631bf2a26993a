"""Grad-CAM family as pure functions: (model, batch, layer, class) -> maps.

Grad-CAM follows the bolt-screening study's eq. 2-4 to the letter:

    alpha_k^c = (1/Z) sum_ij  d y^c / d A^k_ij        (gradients global-average-pooled)
    L^c       = ReLU( sum_k alpha_k^c A^k )

Every function here leaves the model exactly as it found it: hooks are registered inside
try/finally and always removed, each module's train/eval flag and each parameter's
requires_grad flag are snapshotted and restored, and parameter .grad fields are never touched
(gradients are taken with torch.autograd.grad, not .backward()). Hook-based CAM libraries that
forget one of these silently switch a training model to eval or leave hooks that fire on
every later forward.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

TARGETS = ("logit", "softmax")
# Activations whose backward guided backprop clamps; ReLU is the original (Springenberg et
# al.), the others are the ReLU-like gates of MobileNet/EfficientNet backbones.
GUIDED_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.Hardswish, nn.GELU, nn.Mish, nn.ELU)


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    """The submodule named by a dotted path ("layer4", "features.28", "layer4.1.conv2")."""
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise ValueError("the target layer is not a submodule of this model")
        return layer
    try:
        return model.get_submodule(layer)
    except AttributeError:
        raise ValueError(f"no layer {layer!r} in {type(model).__name__} "
                         f"(choose one of: {', '.join(layer_names(model))})") from None


def layer_names(model: nn.Module) -> list[str]:
    """Dotted names of the model's conv stages, shallow to deep, for a layer selector.

    Descends from the root while a single child holds all the convolutions (VGG's
    `features`, MobileNet's `features`), then lists the children that contain a Conv2d:
    ResNet -> conv1, layer1..layer4; VGG16 -> features.0 .. features.28; EfficientNet ->
    features.0 .. features.8.
    """
    prefix, node = "", model
    while True:
        convs = [(n, c) for n, c in node.named_children() if _has_conv(c)]
        if len(convs) == 1 and not isinstance(convs[0][1], nn.Conv2d):
            name, node = convs[0]
            prefix = f"{prefix}{name}."
            continue
        return [f"{prefix}{n}" for n, _ in convs]


def _has_conv(m: nn.Module) -> bool:
    return any(isinstance(x, nn.Conv2d) for x in m.modules())


@contextmanager
def preserved_state(model: nn.Module) -> Iterator[None]:
    """Put the model in eval mode for the block; restore every module's mode and every
    parameter's requires_grad afterwards, even on exceptions."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        # Eval mode: explanations describe inference (BatchNorm running stats, no dropout),
        # and only in eval mode is each sample's map independent of the rest of the batch.
        model.eval()
        yield
    finally:
        for m, was in modes:
            m.training = was
        for p, was in flags:
            p.requires_grad_(was)


def _class_indices(logits: torch.Tensor, class_idx: int | Sequence[int] | None) -> torch.Tensor:
    n, c = logits.shape
    if class_idx is None:
        idx = logits.argmax(dim=1)
    elif isinstance(class_idx, int):
        idx = torch.full((n,), int(class_idx), dtype=torch.long, device=logits.device)
    else:
        idx = torch.as_tensor(list(class_idx), dtype=torch.long, device=logits.device)
        if idx.shape != (n,):
            raise ValueError(f"class_idx has {idx.numel()} entries for a batch of {n}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= c):
        raise ValueError(f"class index out of range 0..{c - 1}: {idx.tolist()}")
    return idx


def _scores(logits: torch.Tensor, idx: torch.Tensor, target: str) -> torch.Tensor:
    if target not in TARGETS:
        raise ValueError(f"unknown Grad-CAM target {target!r} (expected one of {TARGETS})")
    if logits.ndim != 2:
        raise ValueError(f"the model must return (N, classes) scores, got shape {tuple(logits.shape)}")
    y = logits.float().softmax(dim=1) if target == "softmax" else logits.float()
    # Summing over the batch is exact per sample: in eval mode y_n depends only on sample n.
    return y.gather(1, idx[:, None]).sum()


def _input(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    if batch.ndim != 4:
        raise ValueError(f"batch must be (N, C, H, W), got shape {tuple(batch.shape)}")
    p = next(model.parameters(), None)
    x = batch.to(p.device) if p is not None else batch
    # A fresh leaf that requires grad: the graph reaches the target layer even when every
    # parameter before it is frozen (head-only transfer learning). clone() also turns an
    # inference-mode tensor into one autograd may use.
    return x.detach().clone().requires_grad_(True)


def gradcam(model: nn.Module, batch: torch.Tensor, target_layer: str | nn.Module,
            class_idx: int | Sequence[int] | None = None, *, target: str = "logit",
            relu: bool = True, size: tuple[int, int] | None = None,
            mode: str = "bilinear", align_corners: bool = False) -> torch.Tensor:
    """Grad-CAM maps (N, h, w) at the target layer's resolution (eq. 2-4).

    One forward and one backward per batch. class_idx: None -> each sample's predicted
    class, int -> that class for all, list -> one per sample. target "logit" differentiates
    the raw score, "softmax" the probability (saturated probabilities give tiny, noisier
    gradients, which is why the recipe records it). relu=False keeps the negative evidence
    (eq. 4 without its ReLU). size upsamples to (h, w), e.g. the model input, with
    F.interpolate(mode, align_corners). If the layer runs several times in one forward (a
    shared ReLU module), its last call is used.
    """
    return gradcam_and_logits(model, batch, target_layer, class_idx, target=target, relu=relu,
                              size=size, mode=mode, align_corners=align_corners)[0]


def gradcam_and_logits(model: nn.Module, batch: torch.Tensor, target_layer: str | nn.Module,
                       class_idx: int | Sequence[int] | None = None, *, target: str = "logit",
                       relu: bool = True, size: tuple[int, int] | None = None,
                       mode: str = "bilinear", align_corners: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """gradcam() plus what the same forward gave: (maps, logits (N, classes), class indices)."""
    layer = resolve_layer(model, target_layer)
    acts: list[torch.Tensor] = []

    def keep(_m: nn.Module, _inp: object, out: object) -> object:
        a = out[0] if isinstance(out, (tuple, list)) else out  # type: ignore[index]
        acts.append(a)
        # The rest of the network gets a copy: an in-place op after the layer (`out += x`,
        # ReLU(inplace=True)) would otherwise overwrite A and rebase its gradient.
        return a.clone() if isinstance(out, torch.Tensor) else None

    with preserved_state(model), torch.enable_grad():
        handle = layer.register_forward_hook(keep)
        try:
            logits = model(_input(model, batch))
        finally:
            handle.remove()
        if not acts:
            raise ValueError(f"layer {target_layer!r} did not run in the forward pass")
        a = acts[-1]
        if not isinstance(a, torch.Tensor) or a.ndim != 4:
            shape = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
            raise ValueError(f"layer {target_layer!r} gives {shape}, Grad-CAM needs (N, K, h, w) maps")
        idx = _class_indices(logits, class_idx)
        score = _scores(logits, idx, target)
        # autograd.grad only walks the graph between the score and A: nothing below the
        # layer is differentiated and no parameter .grad is written.
        (grads,) = torch.autograd.grad(score, a)
        with torch.no_grad():
            alpha = grads.float().mean(dim=(2, 3), keepdim=True)          # eq. 2-3
            cam = (alpha * a.detach().float()).sum(dim=1)                 # eq. 4, before ReLU
            if relu:
                cam = cam.clamp_min(0)
            if size is not None:
                cam = upsample(cam, size, mode=mode, align_corners=align_corners)
    return cam, logits.detach(), idx


def upsample(cam: torch.Tensor, size: tuple[int, int], mode: str = "bilinear",
             align_corners: bool = False) -> torch.Tensor:
    """(N, h, w) -> (N, H, W). bilinear with align_corners=False treats pixels as areas, so
    a feature cell lands on the input pixels it covers (align_corners=True shifts every
    map by up to half a cell towards the centre, which moves IoU on small defects)."""
    kw = {"align_corners": align_corners} if mode in ("linear", "bilinear", "bicubic") else {}
    return F.interpolate(cam[:, None].float(), size=tuple(size), mode=mode, **kw)[:, 0]


class _GuidedGate(torch.autograd.Function):
    """Identity forward; backward lets only positive gradients through. Placed after a
    ReLU, whose own backward keeps only positive inputs, this gives guided backprop."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.clone()  # a fresh tensor: in-place ops downstream must not hit a custom view

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad.clamp_min(0)


def guided_backprop(model: nn.Module, batch: torch.Tensor,
                    class_idx: int | Sequence[int] | None = None, *,
                    target: str = "logit") -> torch.Tensor:
    """Guided backprop gradients of the class score w.r.t. the input, shape (N, C, H, W).

    Negative gradients are cut at every ReLU-like module (GUIDED_ACTIVATIONS) by forward
    hooks that are removed afterwards; activations applied as functions (F.relu) are not
    seen. One forward and one backward.
    """
    def gate(_m: nn.Module, _inp: object, out: torch.Tensor) -> torch.Tensor:
        return _GuidedGate.apply(out)

    with preserved_state(model), torch.enable_grad():
        handles = []
        try:
            for m in model.modules():
                if isinstance(m, GUIDED_ACTIVATIONS):
                    handles.append(m.register_forward_hook(gate))
            x = _input(model, batch)
            logits = model(x)
        finally:
            for h in handles:
                h.remove()
        score = _scores(logits, _class_indices(logits, class_idx), target)
        (g,) = torch.autograd.grad(score, x)
    return g.detach()


def guided_gradcam(model: nn.Module, batch: torch.Tensor, target_layer: str | nn.Module,
                   class_idx: int | Sequence[int] | None = None, *, target: str = "logit",
                   mode: str = "bilinear", align_corners: bool = False) -> torch.Tensor:
    """Guided Grad-CAM (N, C, H, W): guided backprop gradients times the Grad-CAM map
    upsampled to the input size. Zero wherever the Grad-CAM map is zero.

    The class the Grad-CAM pass resolves (predicted if None) is reused by the guided pass.
    """
    cam, _, idx = gradcam_and_logits(model, batch, target_layer, class_idx, target=target,
                                     size=tuple(batch.shape[-2:]), mode=mode,
                                     align_corners=align_corners)
    gb = guided_backprop(model, batch, idx.tolist(), target=target)
    return gb * cam[:, None].to(gb.dtype)


def saliency(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) gradients -> (N, H, W) display map: max |value| over channels."""
    return x.abs().amax(dim=1)
