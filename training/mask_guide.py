"""Mask-guided training: the inspector's defect masks teach a classifier where the defect is.

A classifier trained on verdicts alone may separate OK from NG by anything that goes with the
label (the jig, the lighting, where the part sits: what the Grad-CAM comparison is there to
catch), and on a small set it has few examples to find the defect itself. Where the project
holds masks, a 1x1 convolution over the last stage's feature map (the map the classifier pools
and Grad-CAM explains) learns to say, cell by cell, whether the mask covers it; its loss is
added to the task's loss. This is the mixed-supervision idea of surface-defect detection (a
segmentation loss beside the classification loss) in its smallest form.

The head lives only while training: the stored model is the plain classifier, so inference,
Grad-CAM, ONNX export and live sort are unchanged. Views whose masks say nothing (an NG part
with no mask) add no guide loss; OK parts' views are known to be clean everywhere.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbones import BackboneSpec
from .config import TrainConfig
from .recipe import STRIDE
from .snapshot import Snapshot

# The guide loss's weight when the config leaves it open (TrainConfig.mask_weight None), and the
# tasks it is on for by default: measured on verdicts (KolektorSDD +0.08 to +0.20 test balanced
# accuracy on three splits that got 16-23 epochs, level on two that got 29-33; bsdata level;
# README). On class models (neu_det, its boxes as masks) it was level: macro F1 0.899 / 0.898.
MASK_WEIGHT = 1.0
DEFAULT_TASKS = ("verdict",)
# Fewer masked NG training views than this: too few to say where defects are; no guide.
MIN_MASKED_VIEWS = 4
# A last feature map narrower than this many cells says little of where (at 2x2 any defect marks
# a quarter of the view) while its loss still pulls on the features: on 40 px toy parts (2x2
# cells, 5 epochs) the guide doubled the parts a label check flagged. 4 cells: 128 px inputs.
MIN_CELLS = 4


class MaskGuide(nn.Module):
    """The training-only head over `spec.target_layer`'s output, fed by a forward hook."""

    def __init__(self, model: nn.Module, spec: BackboneSpec, weight: float) -> None:
        super().__init__()
        layer = model.get_submodule(spec.target_layer)
        convs = [m.out_channels for m in layer.modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ValueError(f"{spec.name}: no convolution in {spec.target_layer} to guide")
        self.weight = float(weight)
        self.head = nn.Conv2d(int(convs[-1]), 1, kernel_size=1)
        self._feats: torch.Tensor | None = None
        self._hook = layer.register_forward_hook(self._keep)
        self.seen = 0.0  # loss-weighted running figures for the card
        self.sum = 0.0

    def _keep(self, module: nn.Module, args: Any, out: torch.Tensor) -> None:
        self._feats = out

    def loss(self, masks: torch.Tensor, known: torch.Tensor) -> torch.Tensor | None:
        """BCE between the head's per-cell logits and each cell's largest mask coverage, over the
        views whose masks are known (None when the batch has none). Max, not mean, per cell: a
        pit a tenth of a cell wide still marks its cell."""
        feats, self._feats = self._feats, None
        if feats is None:
            raise RuntimeError("mask guide: no feature map was captured in this step")
        if not bool(known.any()):
            return None
        logits = self.head(feats[known].float())
        target = F.adaptive_max_pool2d(masks[known], logits.shape[-2:])
        out = F.binary_cross_entropy_with_logits(logits, target)
        self.sum += float(out.detach()) * int(known.sum())
        self.seen += int(known.sum())
        return out * self.weight

    def mean_loss(self) -> float | None:
        return self.sum / self.seen if self.seen else None

    def close(self) -> None:
        """Detach from the model (the stored classifier carries no hook)."""
        self._hook.remove()
        self._feats = None


def build(model: nn.Module, spec: BackboneSpec, config: TrainConfig, snap: Snapshot, train_views: np.ndarray,
          cached: bool, world_size: int) -> tuple[MaskGuide | None, str]:
    """The guide for this run, or None, and one line for the card saying which and why."""
    if config.mask_weight is None and snap.task not in DEFAULT_TASKS:
        return None, (f"off: measured on OK/NG models only so far (--mask-weight {MASK_WEIGHT:g} turns it on "
                      f"for a {snap.task} model)")
    weight = MASK_WEIGHT if config.mask_weight is None else float(config.mask_weight)
    masked = sum(snap.views[int(i)].mask is not None for i in train_views)
    if weight <= 0:
        return None, "off (mask weight 0)"
    if masked < MIN_MASKED_VIEWS:
        return None, f"off: {masked} NG training view(s) with a defect mask, fewer than {MIN_MASKED_VIEWS}"
    cells = min(snap.input_size) // STRIDE
    if cells < MIN_CELLS:
        return None, (f"off: a {'x'.join(map(str, snap.input_size))} input leaves {cells} cell(s) across the "
                      f"last feature map, fewer than {MIN_CELLS}")
    if cached:
        return None, "off: frozen stages train on cached features (the masks need the whole network)"
    if world_size > 1:
        return None, "off in a data-parallel run"
    return MaskGuide(model, spec, weight), f"on: {masked} NG training views with defect masks, weight {weight:g}"
