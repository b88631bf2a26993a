"""CamRecipe: every choice that changes a heatmap, stored with each explanation.

Two Grad-CAM runs are only comparable when they share a recipe: in practice each field below
moves the IoU against an inspector's mask by 0.1-0.9 on its own. The recipe is plain data
(no torch) so reports, the UI and the CLI can carry it around.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

RECIPE_VERSION = 1
NORMALISATIONS = ("minmax", "max")
CLASS_CHOICES = ("ng", "predicted")


@dataclass(frozen=True)
class CamRecipe:
    """How a heatmap was made and binarised.

    layer: dotted module name; None -> the backbone's last conv stage. Deeper layers are
        coarser (7x7 cells at 224 px for ResNet) but more class-specific; shallow layers
        (layer1/layer2) are sharp but respond to any edge, so IoU swings both ways.
    target: "logit" differentiates the raw score; "softmax" the probability, whose gradient
        vanishes for confident predictions and mixes in the other classes (maps get noisier
        and can flip sign), so the thresholded area changes.
    target_class: "ng" (the NG class: where does the model see the defect), "predicted"
        (what drove this decision: for OK parts that is the OK evidence), or a class index.
    upsample / align_corners: bilinear with align_corners=False maps each feature cell onto
        the input pixels it covers; align_corners=True or "nearest" shift or block the map
        by up to half a cell, which on a 7x7 map is 16 px at 224 px input.
    normalise: "minmax" -> (m - min) / (max - min + eps) per map, so the threshold is relative
        to the map's own range; "max" -> m / (max + eps) keeps a floor of background
        attention (a map that is 0.6..1.0 everywhere stays mostly above 0.5, minmax would
        spread it over 0..1). eps keeps an all-zero map at zero instead of NaN.
    threshold: the highlight rule. "fixed:T" -> normalised value >= T (0.5 by default);
        "top:P" -> the hottest P % of the model's view (area fixed, so IoU depends only on
        where the model looks, not how peaked the map is); "otsu" -> Otsu's split of the
        values inside the view (adapts to bimodal maps, unstable on flat ones).
    """

    layer: str | None = None
    target: str = "logit"
    target_class: str | int = "ng"
    upsample: str = "bilinear"
    align_corners: bool = False
    normalise: str = "minmax"
    eps: float = 1e-8
    threshold: str = "fixed:0.5"
    relu: bool = True
    version: int = RECIPE_VERSION

    def __post_init__(self) -> None:
        if self.target not in ("logit", "softmax"):
            raise ValueError(f"recipe target must be 'logit' or 'softmax', not {self.target!r}")
        if self.normalise not in NORMALISATIONS:
            raise ValueError(f"recipe normalise must be one of {NORMALISATIONS}, not {self.normalise!r}")
        if isinstance(self.target_class, str) and self.target_class not in CLASS_CHOICES:
            raise ValueError(f"recipe target_class must be 'ng', 'predicted' or an index, "
                             f"not {self.target_class!r}")
        if self.upsample not in ("bilinear", "bicubic", "nearest", "area"):
            raise ValueError(f"unknown upsample mode {self.upsample!r}")
        if not self.eps > 0:
            raise ValueError("recipe eps must be > 0")
        from training.explain.agreement import parse_threshold
        parse_threshold(self.threshold)  # fail early on a bad rule

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CamRecipe:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def replace(self, **changes: Any) -> CamRecipe:
        """A copy with some fields changed (None values are ignored, handy for CLI flags)."""
        d = self.to_dict()
        d.update({k: v for k, v in changes.items() if v is not None})
        return CamRecipe(**d)
