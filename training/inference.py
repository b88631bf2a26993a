"""Inference with a model of the project: what live sort and the workstation call.

`load_model(project, "active")` rebuilds the network from its checkpoint (verified), with the
ROIs, normalisation, input size and operating threshold recorded at training time, so a model
keeps seeing parts the way it was trained even after the project's ROIs change.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labeling.store import Project
from labeling.types import ROI, Verdict

from .card import ModelCard, read_card
from .checkpoint import build_from_bytes
from .data import ViewGeometry, preprocess_into, preprocess_view
from .errors import TrainingError


@dataclass
class PartDecision:
    """A model's decision on one part."""

    verdict: Verdict
    confidence: float  # probability of the verdict given (max NG score, or 1 - it)
    defect_class: int  # 1-based defect class (0 = none / binary model)
    view_scores: list[float]  # P(NG) per view
    threshold: float = 0.5
    geometries: list[ViewGeometry] = field(default_factory=list)


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' = CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' asked for but no CUDA GPU is available")
    return torch.device(device)


_POOL: ThreadPoolExecutor | None = None
_POOL_WORKERS: int | None = None  # None: min(4, CPUs); 1: views preprocessed inline, no pool
_POOL_CPUS: tuple[int, ...] | None = None  # CPUs the pool's threads are pinned to (None: any)


def _pool_workers() -> int:
    """Threads a part's views are spread over (the caller included)."""
    return _POOL_WORKERS or min(4, os.cpu_count() or 1)


def _pool() -> ThreadPoolExecutor:
    """Views of a part are preprocessed in parallel: cv2.resize and the numpy maths release the
    GIL, and on the live-sort path four ROI crops + resizes were ~40 % of the
    non-forward latency when done one after another."""
    global _POOL
    if _POOL is None:
        workers = _pool_workers()
        cpus = _POOL_CPUS
        init = (lambda: os.sched_setaffinity(0, set(cpus))) if cpus and hasattr(os, "sched_setaffinity") else None
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="okng-pre", initializer=init)
    return _POOL


def shared_map(fn: Callable[[int], Any], n: int) -> list[Any]:
    """[fn(0), ..., fn(n-1)], the calling thread taking part: it and the pool's helpers each take
    the next index from one counter. A helper whose CPU is busy (live sort's service CPU: the
    log writer, Grad-CAM) then holds up only the view it took, and the caller works instead of
    waiting for hand-offs (a plain pool.map measured no faster than one thread there)."""
    out: list[Any] = [None] * n
    counter = itertools.count()  # next() on it is atomic under the GIL

    def work() -> None:
        while (i := next(counter)) < n:
            out[i] = fn(i)
    n_helpers = min(_pool_workers(), n) - 1  # 0 (one view, or a pool of 1): inline, no pool made
    helpers = [_pool().submit(work) for _ in range(n_helpers)]
    work()
    for h in helpers:
        h.result()
    return out


def batch_slices(n_views: int, intra_op: int | None) -> int:
    """Into how many slices a part's batch of `n_views` is cut for its forward, each run by one
    thread at once (the caller and the preprocessing pool's helpers: the same threads that just
    cut the views).

    Only where the forward runs ONE intra-op thread (live sort's thread layout): there each slice
    runs on the thread that calls it, so a 4-view part uses every core with one hand-off per
    slice, where an intra-op pool syncs once per operator (~140 in mobilenet_v3_small; on a busy
    2-core line PC that made the live forward slower, not faster). A helper that is late holds up
    only the slice it took. A forward with its own intra-op threads (prediction, tools)
    parallelises inside each operator: one slice."""
    if intra_op != 1 or n_views < 2:
        return 1
    return min(_pool_workers(), n_views)


def run_sliced(forward: Callable[[Any], Any], batch: Any, n: int) -> list[Any]:
    """[forward(slice) for each of `n` slices of `batch` along its first axis], run at once by
    shared_map (a slice of a contiguous batch is contiguous: no copy)."""
    if n < 2:
        return [forward(batch)]
    edges = np.linspace(0, len(batch), n + 1).astype(int)
    return shared_map(lambda i: forward(batch[edges[i]:edges[i + 1]]), n)


def preprocess_pool_setting() -> tuple[int | None, tuple[int, ...] | None]:
    """(workers, cpus) as set by set_preprocess_pool (to restore it later)."""
    return _POOL_WORKERS, _POOL_CPUS


def set_preprocess_pool(workers: int | None, cpus: tuple[int, ...] | None = None) -> None:
    """How prepare_batch spreads a part's views: `workers` threads (None: the default; 1: inline
    on the calling thread), each pinned to `cpus` when given (live sort's thread layout,
    hardware.sort.threads). The old pool's threads end once idle; the new one starts lazily."""
    global _POOL, _POOL_WORKERS, _POOL_CPUS
    if (workers, cpus) == (_POOL_WORKERS, _POOL_CPUS) and _POOL is not None:
        return
    old, _POOL = _POOL, None
    _POOL_WORKERS, _POOL_CPUS = workers, (tuple(cpus) if cpus else None)
    if old is not None:
        old.shutdown(wait=False)


class LoadedModel:
    """A trained model ready to score views (eval mode, no gradients)."""

    runtime = "torch"  # training.runtime.OrtModel runs the same model on "onnxruntime"

    def __init__(self, model: torch.nn.Module, card: ModelCard, device: torch.device) -> None:
        self.card = card
        self.arch: str = card.arch
        self.class_names: list[str] = list(card.classes)
        self.input_size: tuple[int, int] = card.input_size
        self.mean: tuple[float, ...] = card.mean
        self.std: tuple[float, ...] = card.std
        self.fit: str = card.fit
        self.rois: dict[str, ROI] = {k: ROI(*v) for k, v in card.rois.items()}
        self.threshold: float = card.threshold
        self.target_layer: str = card.target_layer
        self.ng_index: int = card.ng_index
        from .tasks import get_task
        self.task = get_task(card.task)
        # multilabel: per-class thresholds chosen on validation (tasks.py rescales them to 0.5)
        self.thresholds: list[float] = [float(t) for t in card.extra.get("thresholds", [])]
        self.device = device
        self.camera_map: dict[str, str] = {}  # source camera -> model camera (training.cameras)
        self.model = model.to(device).eval()
        if device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)

    @property
    def id(self) -> str:
        return self.card.id

    def check_cameras(self, cameras: Sequence[str], mapping: dict[str, str] | None = None, exact: bool = True,
                      what: str = "the source") -> dict[str, str]:
        """Check the cameras views will come from against the model's (training.cameras) and keep
        the map; CameraMismatch when names or count differ and no explicit map says how."""
        from .cameras import match_cameras
        self.camera_map = match_cameras(self.id, self.card.model_cameras, cameras, mapping, exact, what)
        return dict(self.camera_map)

    def preprocess(self, image: np.ndarray, camera: str) -> tuple[torch.Tensor, ViewGeometry]:
        """One full view -> model input, with the model's recorded ROI for this (mapped) camera."""
        roi = self.rois.get(self.camera_map.get(camera, camera))
        return preprocess_view(image, roi, self.input_size, self.mean, self.std, self.fit)

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Raw logits of a preprocessed (N, 3, h, w) batch (on a CPU with one intra-op thread,
        its slices run at once: batch_slices)."""
        n = self.chunks(len(batch))
        return torch.cat(run_sliced(self._forward, batch, n)) if n > 1 else self._forward(batch)

    def chunks(self, n_views: int) -> int:
        """Slices of a batch of `n_views` run at once (batch_slices; a GPU takes it whole)."""
        return batch_slices(n_views, torch.get_num_threads()) if self.device.type == "cpu" else 1

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():  # per call: grad mode is per thread, and slices run on helpers
            x = batch.to(self.device)
            if self.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            return self.model(x).float().cpu()

    @property
    def cam_class(self) -> int | None:
        """The output a heatmap explains by default: NG for a verdict model; for a class model
        each view's predicted class (None)."""
        return self.ng_index if self.task.name == "verdict" else None

    def probabilities(self, batch: torch.Tensor) -> np.ndarray:
        """(N, outputs) probabilities of a preprocessed batch (softmax, or sigmoid per class)."""
        return self.probabilities_of(self.logits(batch))

    def probabilities_of(self, logits: torch.Tensor) -> np.ndarray:
        return self.task.probabilities(logits.float()).cpu().numpy()

    def ng_scores(self, batch: torch.Tensor) -> np.ndarray:
        """P(NG) per row of a preprocessed batch (a class model's derived P(NG))."""
        return self.task.view_scores(self.probabilities(batch), self.thresholds)[0]

    def decide_probs(self, probs: np.ndarray, geometries: list[ViewGeometry] | None = None) -> PartDecision:
        """The part decision from its views' probabilities (the task's rule, this model's thresholds)."""
        return self.task.decide(probs, self.threshold, self.thresholds, geometries)

    def predict_views(self, images: Sequence[np.ndarray], cameras: Sequence[str]) -> PartDecision:
        """All views of one part in ONE batched forward; NG if any view reaches the threshold;
        a class model also names the defect class of the deciding view."""
        if len(images) == 0:
            raise TrainingError("a part needs at least one view to predict")
        if len(images) != len(cameras):
            raise TrainingError(f"{len(images)} views but {len(cameras)} camera names")
        batch, geoms = self.prepare_batch(images, cameras)
        return self.decide_probs(self.probabilities(batch), geoms)

    def prepare_batch(self, images: Sequence[np.ndarray], cameras: Sequence[str],
                      out: torch.Tensor | None = None) -> tuple[torch.Tensor, list[ViewGeometry]]:
        """Preprocess the views of one part (in parallel) into one (N, 3, h, w) batch.

        Each view is written straight into its row of the batch's memory (data.preprocess_into:
        the same values as preprocess_view, training's path): no per-view tensor, no stack.
        `out`: a batch tensor to fill again (live sort reuses one per run: no 2.4 MB allocation
        and page faults per part); used when its shape fits, every element is rewritten."""
        shape = (len(images), 3, *self.input_size)
        fits = out is not None and tuple(out.shape) == shape and out.dtype == torch.float32 and out.is_contiguous()
        batch = out if fits else torch.empty(shape, dtype=torch.float32)
        rows = batch.numpy()

        def one(i: int) -> ViewGeometry:
            return preprocess_into(images[i], self.rois.get(cameras[i]), rows[i], self.mean, self.std, self.fit)
        return batch, shared_map(one, len(images))


def decide(view_scores: Sequence[float], threshold: float = 0.5, geometries: list[ViewGeometry] | None = None,
           rule: str = "max", class_probs: np.ndarray | None = None) -> PartDecision:
    """Part verdict from per-view P(NG): NG if any view is NG (max score) against the threshold.

    The one decision rule of okng (pre-labeling, live sort, any Classifier). Confidence is that
    of the deciding evidence: the part's P(NG) for NG, its P(OK) for OK (an OK part is only as
    certain as its weakest view). class_probs (views x defect classes), when the head has them,
    name the defect class of the worst view (1-based; 0 = none).
    """
    s = [float(v) for v in view_scores]
    if not s:
        raise TrainingError("a part needs at least one view to be decided")
    part = aggregate(s, rule)
    ng = part >= threshold
    dclass = 0
    if ng and class_probs is not None and np.ndim(class_probs) == 2 and np.shape(class_probs)[1] > 0:
        dclass = int(np.argmax(np.asarray(class_probs)[int(np.argmax(s))])) + 1
    return PartDecision(Verdict.NG if ng else Verdict.OK, part if ng else 1.0 - part, dclass, s,
                        threshold, geometries or [])


def aggregate(view_scores: Sequence[float], rule: str = "max") -> float:
    """Part NG score from view scores: 'max' (any view NG, the default) or 'mean'."""
    if rule == "max":
        return float(max(view_scores))
    if rule == "mean":
        return float(np.mean(view_scores))
    raise TrainingError(f"unknown part rule {rule!r} (expected max or mean)")


def resolve_model_id(project: Project, model_id: str | None) -> str:
    """'active' (or None) -> the project's active model id, with a clear error when there is none."""
    if model_id in (None, "", "active"):
        project.reload()
        if not project.active_model_id:
            raise TrainingError(f"{project.path.name} has no active model: train one, then "
                                "`okng activate PROJECT ID`")
        return project.active_model_id
    return str(model_id)


def load_model(project: Project | str | Path, model_id: str = "active", device: str = "auto") -> LoadedModel:
    """Rebuild a stored model (checksum verified, weights_only load) ready for inference."""
    # Always a handle of our own: a caller's Project may be the window's, which only its
    # store-writer thread may change (resolve_model_id reloads to see the newest active model).
    project = Project.open(project.path if isinstance(project, Project) else project, readonly=True)
    mid = resolve_model_id(project, model_id)
    card = read_card(project, mid)
    data = project.load_checkpoint(mid)
    model, ckpt = build_from_bytes(data, card.checkpoint_sha256, what=f"model {mid}")
    if ckpt.get("arch") != card.arch:
        raise TrainingError(f"model {mid}: checkpoint is a {ckpt.get('arch')}, its card says {card.arch}")
    return LoadedModel(model, card, resolve_device(device))
