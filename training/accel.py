"""How a training step uses the hardware: mixed precision, memory format, pinned host memory.

Everything here is optional and chosen per device, nothing requires a GPU:
* CUDA: float16 autocast with a GradScaler (``TrainConfig.amp``, on by default), channels_last,
  cudnn.benchmark (the input size is fixed for a run, so the autotuner's pick holds), and batches
  assembled in pinned host memory and copied without blocking.
* CPU with native bf16 (avx512_bf16 / AMX): bf16 autocast + channels_last when the config asks
  (the from-scratch recipe does, training.recipe); no scaler (bf16 keeps float32's range).
* Any other CPU: float32, in channels_last when the config asks.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn


def cpu_bf16() -> bool:
    from .pretrain import cpu_has_bf16
    return cpu_has_bf16()


def use_bf16(wanted: bool | None, device: torch.device) -> bool:
    """bf16 autocast: asked for, on a CPU that computes it natively (emulated it is slower)."""
    return bool(wanted) and device.type == "cpu" and cpu_bf16()


def autocast(device: torch.device, bf16: bool, amp: bool) -> Any:
    """The step's precision context: CPU bf16, CUDA float16 (amp), or none."""
    if bf16:
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def grad_scaler(device: torch.device, amp: bool) -> torch.amp.GradScaler | None:
    """float16 gradients underflow without loss scaling; bf16 and float32 need none."""
    return torch.amp.GradScaler("cuda") if amp and device.type == "cuda" else None


def use_channels_last(wanted: bool | None, device: torch.device) -> bool:
    """channels_last: always on CUDA; on a CPU when the config asks for the CPU's fast paths
    (`bf16`: the recipe does, except for MobileNet), with native bf16 or without. On an AVX2 CPU
    without bf16 (AMD EPYC, float32, one thread) a gray-stem resnet18 at 224 px trained 10 %
    and scored 23 % faster in it (batch 16; the RGB stem 15 % / 20 %)."""
    return device.type == "cuda" or (device.type == "cpu" and bool(wanted))


def prepare_model(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """channels_last when asked (use_channels_last); cudnn autotuning on CUDA."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def to_device(views: list[torch.Tensor], device: torch.device, channels_last: bool) -> torch.Tensor:
    """A batch of CHW views on the device: on CUDA stacked straight into pinned memory and copied
    asynchronously (the copy is ordered before the kernels that read it, on the same stream)."""
    if device.type == "cuda":
        buf = torch.empty((len(views), *views[0].shape), dtype=views[0].dtype, pin_memory=True)
        x = torch.stack(views, out=buf).to(device, non_blocking=True)
    else:
        x = torch.stack(views).to(device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
