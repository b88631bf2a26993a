"""A stored segmentation model ready for use: probability maps, the area rule, the part decision.

``SegModel.predict_views(images, cameras)`` answers with training.inference.PartDecision like a
classifier does, so live sort's engine drives it unchanged: the verdict is the area rule's (NG
when any view keeps a component), DEFECT_CLASS the class of the largest kept component,
CONFIDENCE the max probability (of the deciding view for NG, 1 - it for OK).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from labeling.store import Project
from labeling.types import Verdict

from ..card import ModelCard, read_card
from ..checkpoint import from_bytes
from ..data import ViewGeometry, preprocess_view
from ..inference import PartDecision, resolve_device, resolve_model_id
from . import models
from .postprocess import AreaRule, Decision, apply_rules, content_only


@dataclass
class ViewProposal:
    """One view's answer: kept masks over the full image (class-index), probability, decision."""

    mask: np.ndarray  # (H, W) uint8 class-index over the full view
    decision: Decision
    geometry: ViewGeometry


class SegModel:
    def __init__(self, model: torch.nn.Module, card: ModelCard, device: torch.device) -> None:
        from .train import seg_info
        info = seg_info(card)
        self.model = model.to(device).eval()
        self.card = card
        self.id = card.id
        self.device = device
        self.rules = [AreaRule.from_dict(r) for r in info["rules"]]
        self.threshold = 0.5
        self.trained = True

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.card.input_size)

    @property
    def arch(self) -> str:
        return self.card.arch

    def prepare_batch(self, images: Sequence[np.ndarray], cameras: Sequence[str]) -> tuple[torch.Tensor, list[ViewGeometry]]:
        xs, geoms = [], []
        for img, cam in zip(images, cameras):
            x, g = preprocess_view(img, self.card.roi(cam), self.card.input_size, self.card.mean, self.card.std,
                                   "letterbox")
            xs.append(x)
            geoms.append(g)
        return torch.stack(xs), geoms

    @torch.no_grad()
    def prob_maps(self, batch: torch.Tensor) -> np.ndarray:
        """(N, C, h, w) sigmoid maps over the model input."""
        return torch.sigmoid(self.model(batch.to(self.device))).float().cpu().numpy()

    def decide_maps(self, probs: np.ndarray, geoms: list[ViewGeometry]) -> tuple[PartDecision, list[Decision]]:
        decisions = [apply_rules(content_only(p, g.pad, g.content_size), self.rules) for p, g in zip(probs, geoms)]
        ng_views = [d for d in decisions if d.ng]
        scores = [d.confidence if d.ng else 0.0 for d in decisions]
        if ng_views:
            worst = max(ng_views, key=lambda d: max(d.areas))
            conf = max(d.confidence for d in ng_views)
            part = PartDecision(Verdict.NG, conf, worst.defect_class, scores, 0.5, geoms)
        else:
            part = PartDecision(Verdict.OK, 1.0 - max(d.confidence for d in decisions), 0, scores, 0.5, geoms)
        return part, decisions

    def predict_views(self, images: Sequence[np.ndarray], cameras: Sequence[str]) -> PartDecision:
        batch, geoms = self.prepare_batch(images, cameras)
        return self.decide_maps(self.prob_maps(batch), geoms)[0]

    def propose(self, images: Sequence[np.ndarray], cameras: Sequence[str]) -> tuple[PartDecision, list[ViewProposal]]:
        """The part decision and per view the kept masks mapped back onto the full image."""
        batch, geoms = self.prepare_batch(images, cameras)
        part, decisions = self.decide_maps(self.prob_maps(batch), geoms)
        out = []
        for d, g in zip(decisions, geoms):
            full = np.zeros(g.image_shape, dtype=np.uint8)
            for c in range(d.kept.shape[0]):
                if d.kept[c].any():
                    full[g.to_image(d.kept[c].astype(np.float32)) >= 0.5] = c + 1
            out.append(ViewProposal(full, d, g))
        return part, out


def load_any(project: Project | str | Path, model_id: str = "active", device: str = "auto") -> object:
    """The stored model by its card's task: a SegModel for "segment", else a classifier
    (training.inference.LoadedModel). Live sort and ONNX export pick with this."""
    proj = Project.open(project.path if isinstance(project, Project) else project, readonly=True)
    mid = resolve_model_id(proj, model_id)
    if read_card(proj, mid).task == "segment":
        return load_segmenter(proj, mid, device)
    from ..inference import load_model
    return load_model(proj, mid, device)


def load_segmenter(project: Project | str | Path, model_id: str, device: str = "auto") -> SegModel:
    project = Project.open(project.path if isinstance(project, Project) else project, readonly=True)
    mid = resolve_model_id(project, model_id)
    card = read_card(project, mid)
    from .train import seg_info
    info = seg_info(card)
    ckpt = from_bytes(project.load_checkpoint(mid), card.checkpoint_sha256, f"model {mid}")
    net = models.build(info["decoder"], info["encoder"], len(card.classes), ckpt["state_dict"])
    return SegModel(net, card, resolve_device(device))
