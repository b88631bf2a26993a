"""Grad-CAM for NG parts, run by the part logger's thread (never on the critical path).

training.explain.cam.gradcam on the classifier's own preprocessing (prepare_batch: ROI crop,
letterbox, as in training), mapped back into each view's full-image frame
(training.explain.heatmaps), so a sorted part's heatmap lies where a pre-labeled part's does.
The target layer is the classifier's recorded one, else the model's last Conv2d.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from training.explain.cam import gradcam
from training.explain.heatmaps import to_full_image

Explainer = Callable[[Sequence[np.ndarray], Sequence[str], int], list[np.ndarray]]


def _module_of(classifier: Any) -> Any:
    for name in ("module", "model"):
        m = getattr(classifier, name, None)
        if isinstance(m, nn.Module):
            return m
    return None


def last_conv(module: nn.Module) -> nn.Module:
    """The last Conv2d of a torch module (the usual Grad-CAM target)."""
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("the model has no Conv2d layer for Grad-CAM")
    return convs[-1]


def make_explainer(classifier: Any) -> Explainer | None:
    """A function (images, cameras, defect_class) -> per-view full-image heatmaps in 0..1.

    None when the classifier has no torch module or no prepare_batch to explain with.
    """
    live = _module_of(classifier)
    prepare = getattr(classifier, "prepare_batch", None)
    if live is None or prepare is None:
        return None
    # Grad-CAM hooks are per module, not per thread: on the live module they would also catch
    # the critical path's concurrent forwards (and capture its inference-mode activations).
    # The logger thread therefore explains with its own copy of the model.
    module = copy.deepcopy(live)
    layer = _same_layer(live, module, getattr(classifier, "target_layer", None) or None)

    def explain(images: Sequence[np.ndarray], cameras: Sequence[str], defect_class: int) -> list[np.ndarray]:
        batch, geoms = prepare(images, cameras)
        batch = torch.as_tensor(batch).float().to(next(module.parameters()).device)
        with torch.enable_grad():
            # A verdict model explains NG; a class model (task != verdict) the decided class.
            task = getattr(getattr(classifier, "task", None), "name", "verdict")
            ng = getattr(classifier, "ng_index", None) if task == "verdict" else None
            cls = int(ng) if ng is not None else _class_index(module, batch, defect_class, task)
            cams = gradcam(module, batch, layer, cls, size=tuple(batch.shape[-2:]))
        return to_full_image(cams.detach().float().cpu().numpy(), geoms)

    return explain


def _same_layer(live: nn.Module, copied: nn.Module, layer: Any) -> Any:
    """The target layer inside the copy: dotted names carry over, module objects are mapped."""
    if layer is None:
        return last_conv(copied)
    if isinstance(layer, str):
        return layer
    names = {id(m): n for n, m in live.named_modules()}
    return dict(copied.named_modules())[names[id(layer)]] if id(layer) in names else last_conv(copied)


def _class_index(module: nn.Module, batch: torch.Tensor, defect_class: int, task: str = "classes") -> int:
    # A one-column head scores NG directly; with columns [OK, class1, ...] explain the class;
    # a multilabel head has no OK column: class k is column k - 1.
    with torch.no_grad():
        width = int(module(batch[:1]).shape[-1])
    if task == "multilabel":
        return min(max(defect_class, 1), width) - 1
    return 0 if width == 1 else min(max(defect_class, 1), width - 1)
