"""Structural filter pruning through torch-pruning's dependency graph, and what a pruned net is.

Filters (output channels) with the smallest L1/L2 norm are removed, and torch-pruning's
dependency graph removes everything coupled to them (the BatchNorm after, the next layer's
input channels, both sides of a residual add, squeeze-excitation convs), so the tensors really
shrink: fewer parameters, fewer FLOPs, a faster CPU forward. Masks that only zero weights keep
the tensors (and the latency) as they were.

A pruned network no longer matches its torchvision constructor, so its checkpoint carries its
``structure`` (channel counts per conv / BatchNorm / Linear, see ``structure_of``) and
``rebuild`` reshapes a freshly built skeleton before the weights are loaded.

Every backbone family of training.backbones prunes (resnet, vgg, mobilenet_v2/v3,
efficientnet: checked by tests/training/test_prune.py on each family). The head's Linear keeps
its outputs (the classes) and is never pruned.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from .backbones import BackboneSpec
from .errors import TrainingError

NORMS = {"l1": 1, "l2": 2}


def _tp() -> Any:
    import torch_pruning as tp  # here, not at the top: checkpoint loading must not pay for it
    return tp


def _pruner(model: nn.Module, spec: BackboneSpec, example: torch.Tensor, rate: float, norm: str) -> Any:
    if norm not in NORMS:
        raise TrainingError(f"unknown norm {norm!r} (expected {', '.join(NORMS)})")
    if not 0.0 < rate < 1.0:
        raise TrainingError(f"pruning rate must be in (0, 1), got {rate}")
    tp = _tp()
    head = model.get_submodule(spec.head)
    try:
        with torch.enable_grad():  # the graph is traced through autograd (callers may be in no_grad)
            return tp.pruner.MagnitudePruner(model, example, importance=tp.importance.MagnitudeImportance(p=NORMS[norm]),
                                             pruning_ratio=rate, ignored_layers=[head])
    except Exception as exc:  # the graph tracer's own message says which layer it cannot follow
        raise TrainingError(f"{spec.name} cannot be pruned: torch-pruning could not trace its dependency "
                            f"graph ({type(exc).__name__}: {str(exc)[:200]})") from exc


def prune_filters(model: nn.Module, spec: BackboneSpec, input_size: tuple[int, int], rate: float,
                  norm: str = "l1") -> nn.Module:
    """Remove `rate` of the filters of every prunable layer (smallest L_p norm first), in place."""
    was_training = model.training
    model.eval()
    example = torch.zeros((1, 3, *input_size))
    pruner = _pruner(model, spec, example, rate, norm)
    with torch.enable_grad():
        pruner.step()
    model.train(was_training)
    return model


def soft_prune(model: nn.Module, spec: BackboneSpec, input_size: tuple[int, int], rate: float,
               norm: str = "l1") -> int:
    """ASFP's step: zero the smallest-norm filters (and their BatchNorm scale/shift) without
    removing them; they keep their gradients and may grow back in the next epoch. Returns how
    many output channels were zeroed."""
    tp = _tp()
    model_was = model.training
    model.eval()
    pr = _pruner(model, spec, torch.zeros((1, 3, *input_size)), rate, norm)
    zeroed = 0
    with torch.no_grad():
        for group in pr.step(interactive=True):
            for dep, idxs in group:
                mod, fn = dep.target.module, dep.handler
                if not idxs:
                    continue
                ix = torch.as_tensor(sorted({int(i) for i in idxs}), dtype=torch.long)
                if fn in (tp.prune_conv_out_channels, tp.prune_linear_out_channels):
                    mod.weight[ix] = 0
                    if mod.bias is not None:
                        mod.bias[ix] = 0
                    zeroed += len(ix)
                elif fn is tp.prune_batchnorm_out_channels and mod.affine:
                    mod.weight[ix] = 0
                    mod.bias[ix] = 0
    model.train(model_was)
    return zeroed


def count(model: nn.Module, input_size: tuple[int, int]) -> tuple[int, int]:
    """(multiply-accumulates of one view, parameters). The study's and torchvision's "FLOPs"
    are multiply-accumulates (resnet18: 1.8e9), so okng reports MACs under that name."""
    tp = _tp()
    was = model.training
    model.eval()
    macs, params = tp.utils.count_ops_and_params(model, torch.zeros((1, 3, *input_size)))
    model.train(was)
    return int(macs), int(params)


def cpu_latency(model: nn.Module, input_size: tuple[int, int], batch: int = 4, runs: int = 10,
                warmup: int = 2) -> dict[str, float]:
    """Measured CPU forward of a batch (the live sort's four views): median and p90 in ms, at
    the process's current torch thread count (recorded: latency means little without it)."""
    model = model.to("cpu").eval()
    x = torch.zeros((batch, 3, *input_size))
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    return {"p50_ms": float(np.percentile(times, 50)), "p90_ms": float(np.percentile(times, 90)),
            "batch": batch, "threads": torch.get_num_threads()}


# ---------------------------------------------------------------------- what a pruned net is
_SHAPED = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)


def structure_of(model: nn.Module) -> dict[str, list[int]]:
    """Channel counts of every conv ([in, out, groups]), BatchNorm ([features]) and Linear
    ([in, out]): with the arch, all that is needed to rebuild a pruned net."""
    out: dict[str, list[int]] = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            out[name] = [m.in_channels, m.out_channels, m.groups]
        elif isinstance(m, nn.BatchNorm2d):
            out[name] = [m.num_features]
        elif isinstance(m, nn.Linear):
            out[name] = [m.in_features, m.out_features]
    return out


def _meta(shape: tuple[int, ...]) -> nn.Parameter:
    return nn.Parameter(torch.empty(shape, device="meta"))


def reshape_to(model: nn.Module, structure: dict[str, list[int]]) -> nn.Module:
    """Give a (meta) skeleton the channel counts of `structure`, so a pruned state loads strictly."""
    for name, dims in structure.items():
        try:
            m = model.get_submodule(name)
        except AttributeError:
            raise TrainingError(f"pruned structure names {name!r}, which this architecture lacks") from None
        if isinstance(m, nn.Conv2d):
            m.in_channels, m.out_channels, m.groups = (int(v) for v in dims)
            m.weight = _meta((m.out_channels, m.in_channels // m.groups, *m.kernel_size))
            if m.bias is not None:
                m.bias = _meta((m.out_channels,))
        elif isinstance(m, nn.BatchNorm2d):
            n = int(dims[0])
            m.num_features = n
            if m.affine:
                m.weight, m.bias = _meta((n,)), _meta((n,))
            if m.track_running_stats:
                m.running_mean = torch.empty(n, device="meta")
                m.running_var = torch.empty(n, device="meta")
        elif isinstance(m, nn.Linear):
            m.in_features, m.out_features = (int(v) for v in dims)
            m.weight = _meta((m.out_features, m.in_features))
            if m.bias is not None:
                m.bias = _meta((m.out_features,))
    return model
