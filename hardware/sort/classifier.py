"""What the sort engine needs from a model: one call deciding a whole part from its views.

`Classifier` is a Protocol, so the engine runs with training.inference.LoadedModel (the real,
trained model) or with any torch module wrapped by `TorchViewClassifier` (tests, benchmarks,
an untrained demo model). Both prepare views the way training does (training.data.preprocess_view:
ROI crop, letterbox, normalise) and decide with the one rule, training.inference.decide (a part
is NG if any of its views is NG), so both return a training.inference.PartDecision.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from labeling.types import ROI, Verdict

if TYPE_CHECKING:  # torch and training load lazily: the window imports this room at start-up
    import torch

    from training.data import ViewGeometry
    from training.inference import PartDecision


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


class TorchViewClassifier:
    """Wraps a torch module (N,3,H,W) -> logits (N,1) or (N,1+classes) as a Classifier.

    Output column 0 of a multi-column head is 'OK'; the others are the defect classes, so
    P(NG) = 1 - softmax[:, 0]. A single column is a sigmoid P(NG).
    """

    def __init__(self, module: Any, input_size: tuple[int, int] = (96, 128), threshold: float = 0.5,
                 rois: dict[str, ROI] | None = None, model_id: str = "custom",
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 trained: bool = True) -> None:
        self.module = module.eval()
        self.input_size = tuple(int(v) for v in input_size)  # (H, W)
        self.threshold = float(threshold)
        self.rois = dict(rois or {})
        self.model_id = model_id
        self.trained = trained
        self.mean = tuple(float(v) for v in mean) if mean is not None else None  # None: ImageNet's
        self.std = tuple(float(v) for v in std) if std is not None else None
        self.last_timings: dict[str, float] = {}

    def preprocess(self, image: np.ndarray, camera: str) -> tuple[torch.Tensor, ViewGeometry]:
        """One full view -> (3, H, W) input and its geometry, exactly as training prepares it."""
        from training.data import IMAGENET_MEAN, IMAGENET_STD, preprocess_view
        return preprocess_view(image, self.rois.get(camera), self.input_size,  # type: ignore[arg-type]
                               self.mean or IMAGENET_MEAN, self.std or IMAGENET_STD)

    def prepare_batch(self, images: Sequence[np.ndarray], cameras: Sequence[str]) -> tuple[torch.Tensor, list[ViewGeometry]]:
        import torch
        pairs = [self.preprocess(im, cam) for im, cam in zip(images, cameras)]
        return torch.stack([p[0] for p in pairs]), [p[1] for p in pairs]

    def forward_batch(self, batch: Any) -> np.ndarray:
        """The bare batched forward: (N,3,H,W) -> logits (N,K) as numpy."""
        import torch
        with torch.inference_mode():
            return self.module(torch.as_tensor(batch)).float().numpy()

    def predict_views(self, images: Sequence[np.ndarray], cameras: Sequence[str]) -> PartDecision:
        from training.inference import decide
        t0 = time.perf_counter()
        batch, geoms = self.prepare_batch(images, cameras)
        t1 = time.perf_counter()
        logits = self.forward_batch(batch)
        t2 = time.perf_counter()
        self.last_timings = {"preprocess": t1 - t0, "forward": t2 - t1}
        if logits.ndim == 1 or logits.shape[1] == 1:
            scores = 1.0 / (1.0 + np.exp(-logits.reshape(-1)))
            return decide(scores, self.threshold, geoms)
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return decide(1.0 - p[:, 0], self.threshold, geoms, class_probs=p[:, 1:])


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
