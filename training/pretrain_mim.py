"""Masked-image pretraining for ConvNets (SimMIM, Xie et al. 2022, with a CNN encoder).

Why a second objective beside SimCLR: a contrastive loss learns only when the views of one
image can be told apart from those of another. On KolektorSDD (commutators that all look
alike) SimCLR's loss stayed at chance in every CPU budget tried. Reconstructing hidden patches
from the visible ones needs no such contrast: every image teaches the encoder how this plant's
surfaces continue (texture, edges, the commutator bars), whatever the other images look like.

The recipe is SimMIM's, which works with any encoder that has a stride-32 feature map: a random
60 % of 16 px patches of each crop are set to the mean (0), the backbone's stages (the
classifier's own modules, so the weights carry over unchanged) encode the masked crop, a 1x1
conv predicts each feature cell's 32x32 pixels (pixel shuffle), and the loss is the L1 error on
the hidden pixels only.

Each crop is standardised first (zero mean, unit deviation per channel). Measured on KolektorSDD
(bright, low-contrast commutator surfaces, 2-core CPU): on the fixed normalisation the
error stayed at the mean-fill level (0.191 against 0.194 after 353 steps, 5 min); standardised, it
fell 6 % below it in 130 steps (2 min) and was still falling. The brightness and contrast jitter of the
crops (kept for SimCLR) is then a nuisance the encoder need not learn to undo, and a faint
surface counts as much as a contrasty one. A classifier started from the encoder sees the fixed
normalisation again; its batch norms absorb the difference in scale and offset.

"Did it learn?" is asked against a guess that needs no network: filling each hidden patch with
the mean of the image's visible pixels. An encoder whose reconstruction is no better than that
has learned nothing about the images' structure.
"""
from __future__ import annotations

import torch
from torch import nn

from .backbones import BackboneSpec, FrozenTrunk

MASK_PATCH = 16  # px; SimMIM's ablation found small patches with a high ratio work for CNN-like encoders
MASK_RATIO = 0.6
STRIDE = 32  # every okng backbone's last stage is at 1/32 of the input
# The reconstruction must end this far below the mean-fill guess to count as learned: beyond the
# batch-to-batch spread of the two (both are averaged over the last tenth of the steps). Measured
# on KolektorSDD: 6 % below after 130 steps, 7.5 % after 242 (5 min), still falling; without the
# crop standardisation, at the mean-fill level (3 % above after 146 steps, 1.5 % below after 353).
LEARNED_BELOW_MEAN_FILL = 0.05


def mim_crop(crop: int) -> int:
    """The crop side rounded up to the encoder's stride (the decoder rebuilds 32x32 per cell)."""
    return max(STRIDE, -(-crop // STRIDE) * STRIDE)


def random_mask(n: int, side: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 1, side, side) float mask, 1 on hidden pixels: MASK_RATIO of the MASK_PATCH squares
    of each image, chosen at random (at least one hidden and one visible square)."""
    cells = side // MASK_PATCH
    k = min(cells * cells - 1, max(1, round(MASK_RATIO * cells * cells)))
    order = torch.rand(n, cells * cells, generator=generator).argsort(dim=1)
    grid = torch.zeros(n, cells * cells)
    grid.scatter_(1, order[:, :k], 1.0)
    grid = grid.view(n, 1, cells, cells)
    return grid.repeat_interleave(MASK_PATCH, dim=2).repeat_interleave(MASK_PATCH, dim=3)


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Each image of (N, C, H, W) at zero mean and unit deviation per channel (flat images stay flat)."""
    return (x - x.mean(dim=(2, 3), keepdim=True)) / x.std(dim=(2, 3), keepdim=True).clamp(min=1e-3)


def mean_fill_error(x: torch.Tensor, mask: torch.Tensor) -> float:
    """L1 error on the hidden pixels of filling them with each image's visible mean (per channel)."""
    visible = 1.0 - mask
    mean = (x * visible).sum(dim=(2, 3), keepdim=True) / visible.sum(dim=(2, 3), keepdim=True).clamp(min=1)
    err = ((x - mean).abs() * mask).sum() / (mask.sum() * x.shape[1]).clamp(min=1)
    return float(err)


class MaskedImage(nn.Module):
    """The backbone's stages plus SimMIM's one-layer decoder; `model` is the whole classifier
    (its head untouched and unused), so encoder_state(model) is what a later run loads."""

    def __init__(self, model: nn.Module, backbone: BackboneSpec, channels: int, crop: int) -> None:
        super().__init__()
        self.model = model
        self.trunk = FrozenTrunk(model, backbone, len(backbone.groups))  # shares the modules; trained here
        self.channels, self.crop = channels, mim_crop(crop)
        was = model.training
        model.eval()  # a probe for the feature map's shape: no batch statistics touched
        with torch.no_grad():
            feat = self.trunk(torch.zeros(1, channels, self.crop, self.crop))
        model.train(was)
        stride = self.crop // feat.shape[-1]
        self.decoder = nn.Sequential(nn.Conv2d(feat.shape[1], stride * stride * channels, 1), nn.PixelShuffle(stride))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.trunk(x * (1.0 - mask)))

    def loss(self, x: torch.Tensor, mask: torch.Tensor, bf16: bool) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            rec = self(x, mask)
        return ((rec.float() - x).abs() * mask).sum() / (mask.sum() * x.shape[1]).clamp(min=1)


def mim_check(losses: list[float], baselines: list[float]) -> tuple[float, bool | None, str]:
    """(mean-fill error, learned?, a sentence) from a run's losses and its batches' mean-fill
    errors, both over the last tenth of the steps; None under 20 steps."""
    if len(losses) < 20:
        return (baselines[-1] if baselines else 0.0), None, \
            f"only {len(losses)} steps: too few to tell whether the encoder learned"
    n = max(5, len(losses) // 10)
    end, base = sum(losses[-n:]) / n, sum(baselines[-n:]) / n
    below = 1.0 - end / base if base > 0 else 0.0
    if below >= LEARNED_BELOW_MEAN_FILL:
        return base, True, (f"reconstruction error ended at {end:.3f}, {below:.0%} below filling hidden patches "
                            f"with the image mean ({base:.3f}): the encoder learned how these surfaces continue")
    return base, False, (f"reconstruction error ended at {end:.3f}, no better than filling hidden patches with the "
                         f"image mean ({base:.3f}): the encoder did not learn (too short a run); a model started "
                         "from it starts about as from scratch")
