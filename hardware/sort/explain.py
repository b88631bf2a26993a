"""Grad-CAM for NG parts, run by the part logger's thread (never on the critical path).

Uses training.explain.gradcam(model, batch, target_layer, class_idx) when that module exists;
the target layer is the model's last Conv2d. Without it, sorting runs without heatmaps.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _module_of(classifier: Any) -> Any:
    for name in ("module", "model", "net"):
        m = getattr(classifier, name, None)
        if m is not None and hasattr(m, "modules"):
            return m
    return None


def last_conv(module: Any) -> Any:
    """The last Conv2d of a torch module (the usual Grad-CAM target)."""
    from torch import nn
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("the model has no Conv2d layer for Grad-CAM")
    return convs[-1]


def make_explainer(classifier: Any) -> Callable[[Sequence[np.ndarray], Sequence[str], int], list[np.ndarray]] | None:
    """A function (images, cameras, defect_class) -> per-view heatmaps, or None if unavailable."""
    gradcam = _gradcam_function()
    if gradcam is None:
        return None
    live = _module_of(classifier)
    preprocess = getattr(classifier, "preprocess", None)
    if live is None or preprocess is None:
        return None
    # Grad-CAM hooks are per module, not per thread: on the live module they would also catch
    # the critical path's concurrent forwards (and capture its inference-mode activations).
    # The logger thread therefore explains with its own copy of the model.
    import copy
    module = copy.deepcopy(live)
    layer = _same_layer(live, module, getattr(classifier, "target_layer", None))

    def explain(images: Sequence[np.ndarray], cameras: Sequence[str], defect_class: int) -> list[np.ndarray]:
        import torch
        batch = torch.stack([_as_tensor(preprocess(im, cam)) for im, cam in zip(images, cameras)])
        with torch.enable_grad():
            ng = getattr(classifier, "ng_index", None)
            cls = int(ng) if ng is not None else _class_index(module, batch, defect_class)
            out = gradcam(module, batch, layer, cls)
        out = out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
        return [np.asarray(m, np.float32).squeeze() for m in out]

    return explain


def _same_layer(live: Any, copy: Any, layer: Any) -> Any:
    """The target layer inside the copy: dotted names carry over, module objects are mapped."""
    if layer is None:
        return last_conv(copy)
    if isinstance(layer, str):
        return layer
    names = {id(m): n for n, m in live.named_modules()}
    return dict(copy.named_modules())[names[id(layer)]] if id(layer) in names else last_conv(copy)


def _as_tensor(x: Any) -> Any:
    # LoadedModel.preprocess gives (tensor, geometry); TorchViewClassifier a numpy array.
    import torch
    if isinstance(x, tuple):
        x = x[0]
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x, np.float32))


def _gradcam_function() -> Callable | None:
    import importlib
    for name in ("training.explain", "training.explain.cam"):
        try:
            fn = getattr(importlib.import_module(name), "gradcam", None)
        except ImportError:
            continue
        if callable(fn):
            return fn
    return None


def _class_index(module: Any, batch: Any, defect_class: int) -> int:
    # A one-column head scores NG directly; with columns [OK, class1, ...] explain the class.
    import torch
    with torch.no_grad():
        width = int(module(batch[:1]).shape[-1])
    return 0 if width == 1 else min(max(defect_class, 1), width - 1)
