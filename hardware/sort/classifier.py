"""What the sort engine needs from a model: one call deciding a whole part from its views.

`Classifier` is a Protocol, so the engine runs with training.inference.LoadedModel (the real,
trained model) or with any torch module wrapped by `TorchViewClassifier` (tests, benchmarks,
an untrained demo model). A part is NG if any of its views is NG.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from labeling.types import ROI, Verdict


@runtime_checkable
class Decision(Protocol):
    """A PartDecision-like result (training.inference.PartDecision satisfies it)."""

    verdict: Verdict
    confidence: float
    defect_class: int
    view_scores: list[float]


@runtime_checkable
class Classifier(Protocol):
    """Decides one part from all its views with ONE batched forward."""

    def predict_views(self, images: Sequence[np.ndarray], cameras: Sequence[str]) -> Decision: ...


@dataclass
class SortDecision:
    verdict: Verdict
    confidence: float
    defect_class: int = 0
    view_scores: list[float] = field(default_factory=list)


def decide(ng_scores: Sequence[float], threshold: float = 0.5,
           class_probs: np.ndarray | None = None) -> SortDecision:
    """Part verdict from per-view P(NG): NG if any view reaches the threshold.

    Confidence is that of the deciding evidence: the worst view's P(NG) for NG, and the least
    sure view's P(OK) for OK (an OK part is only as certain as its weakest view).
    """
    scores = [float(s) for s in ng_scores]
    if not scores:
        raise ValueError("a part needs at least one view to be decided")
    worst = int(np.argmax(scores))
    if scores[worst] >= threshold:
        dclass = 0
        if class_probs is not None and class_probs.shape[-1] > 0:
            dclass = int(np.argmax(class_probs[worst])) + 1
        return SortDecision(Verdict.NG, scores[worst], dclass, scores)
    return SortDecision(Verdict.OK, 1.0 - scores[worst], 0, scores)


def crop_roi(image: np.ndarray, roi: ROI | None) -> np.ndarray:
    if roi is None:
        return image
    r = roi.clip(image.shape[1], image.shape[0])
    return image[r.y:r.y + r.h, r.x:r.x + r.w]


class TorchViewClassifier:
    """Wraps a torch module (N,3,H,W) -> logits (N,1) or (N,1+classes) as a Classifier.

    Output column 0 of a multi-column head is 'OK'; the others are the defect classes, so
    P(NG) = 1 - softmax[:, 0]. A single column is a sigmoid P(NG).
    """

    def __init__(self, module: Any, input_size: tuple[int, int] = (96, 128), threshold: float = 0.5,
                 rois: dict[str, ROI] | None = None, model_id: str = "custom",
                 mean: Sequence[float] = (0.485, 0.456, 0.406), std: Sequence[float] = (0.229, 0.224, 0.225),
                 trained: bool = True) -> None:
        import torch
        self.torch = torch
        self.module = module.eval()
        self.input_size = tuple(int(v) for v in input_size)  # (H, W)
        self.threshold = float(threshold)
        self.rois = dict(rois or {})
        self.model_id = model_id
        self.trained = trained
        self._mean = np.asarray(mean, np.float32).reshape(3, 1, 1)
        self._std = np.asarray(std, np.float32).reshape(3, 1, 1)
        self.last_timings: dict[str, float] = {}

    def preprocess(self, image: np.ndarray, camera: str) -> np.ndarray:
        """ROI crop, resize, 3 channels, normalise -> float32 (3, H, W)."""
        import cv2
        img = crop_roi(np.asarray(image), self.rois.get(camera))
        scale = 65535.0 if img.dtype == np.uint16 else 255.0
        h, w = self.input_size
        if img.shape[:2] != (h, w):
            # INTER_AREA is the right filter for a big downscale and costs ~1 ms at 1280x960.
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        x = img.astype(np.float32) / scale
        x = np.repeat(x[None], 3, axis=0) if x.ndim == 2 else x.transpose(2, 0, 1)
        return (x - self._mean) / self._std

    def forward_batch(self, batch: np.ndarray) -> np.ndarray:
        """The bare batched forward: float32 (N,3,H,W) -> logits (N,K) as numpy."""
        with self.torch.inference_mode():
            return self.module(self.torch.from_numpy(np.ascontiguousarray(batch))).float().numpy()

    def predict_views(self, images: Sequence[np.ndarray], cameras: Sequence[str]) -> SortDecision:
        t0 = time.perf_counter()
        batch = np.stack([self.preprocess(im, cam) for im, cam in zip(images, cameras)])
        t1 = time.perf_counter()
        logits = self.forward_batch(batch)
        t2 = time.perf_counter()
        self.last_timings = {"preprocess": t1 - t0, "forward": t2 - t1}
        if logits.ndim == 1 or logits.shape[1] == 1:
            scores = 1.0 / (1.0 + np.exp(-logits.reshape(-1)))
            return decide(scores, self.threshold)
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return decide(1.0 - p[:, 0], self.threshold, p[:, 1:])


def tiny_net(classes: int = 0, seed: int = 0) -> Any:
    """A small untrained CNN (for the demo without training, and tests); deterministic per seed."""
    import torch
    from torch import nn
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 1 + classes if classes else 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return net.eval()
