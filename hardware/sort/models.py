"""Getting a Classifier for sorting: a project's trained model, or (demo only) an untrained one.

The trained path is training.inference.load_model(project, model_id) -> LoadedModel, which
already satisfies the Classifier protocol. Hardware uses the training room for inference only:
the demo's few-second model is trained by training.quick.quick_train (the `okng sort --demo`
command composes the two).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from hardware.errors import HardwareError

log = logging.getLogger(__name__)


def load_classifier(project: Any, model_id: str = "active", runtime: str | None = None,
                    threads: int | None = None) -> tuple[Any, dict[str, Any]]:
    """(classifier, info) for a project's model, on the runtime its card asks for (or `runtime`,
    a per-run override); HardwareError with a clear message otherwise. info["runtime"] says what
    really runs (ONNX Runtime falls back to torch, with info["runtime_note"], when its export
    differs on stored parts). `threads`: ONNX Runtime's intra-op threads, fixed when its session
    is made (the sort's thread layout, hardware.sort.threads, decides them before loading)."""
    if model_id in ("", "active") and not project.active_model_id:
        raise HardwareError(f"{project.path.name} has no active model: train one first "
                            "(okng train) or pass --model ID")
    if runtime not in (None, "torch", "onnxruntime"):
        raise HardwareError(f"unknown runtime {runtime!r} (expected torch or onnxruntime)")
    # Here, not at the top: it loads torch. The card's task picks the kind: a segmentation
    # model answers predict_views like a classifier (verdict from its area rule).
    from training.runtime import with_runtime
    from training.segment.inference import load_any
    model = load_any(project, model_id)
    mid = str(getattr(model, "id", "") or (project.active_model_id if model_id in ("", "active") else model_id))
    rinfo: dict[str, Any] = {"runtime": "torch"}
    if model.card.task != "segment":  # ONNX Runtime serves classifiers; a segmentation model runs on torch
        model, rinfo = with_runtime(model, project.path, runtime, threads)
    elif runtime == "onnxruntime":
        rinfo["runtime_note"] = "ONNX Runtime not used: a segmentation model runs on torch"
    if runtime:
        rinfo["runtime_asked"] = runtime
    if rinfo.get("runtime_note"):
        log.warning("%s: %s", mid, rinfo["runtime_note"])
    return TimedModel(model, mid), {"model_id": mid, "trained": True, "arch": model.card.arch,
                                    "threshold": float(getattr(model, "threshold", 0.5)), **rinfo}


class TimedModel:
    """A training.inference.LoadedModel that reports its preprocess and forward times.

    Same decision as LoadedModel.predict_views (its preprocess, ONE batched forward, its
    decide); only split in two timed halves so the engine can report per-stage timings.
    Everything else (model, preprocess, target_layer, ng_index...) is the wrapped model's.
    """

    def __init__(self, loaded: Any, model_id: str = "") -> None:
        self.loaded = loaded
        self.model_id = model_id or str(getattr(loaded, "id", ""))
        self.runtime = str(getattr(loaded, "runtime", "torch"))  # OrtModel says "onnxruntime"
        self.last_timings: dict[str, float] = {}
        self._batch: Any = None
        try:
            import inspect
            self._reuse = "out" in inspect.signature(loaded.prepare_batch).parameters
        except (TypeError, ValueError, AttributeError):
            self._reuse = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loaded, name)

    def prepare(self, images: Any, cameras: Any) -> tuple[Any, list]:
        """Preprocessed batch (N,3,h,w) and the view geometries. A LoadedModel (or OrtModel) fills
        the same batch tensor every part (its `out`): the forward is done with it before the next
        part is prepared, and nothing keeps it."""
        if self._reuse:
            # per thread: a second caller (a test, a tool) must never fill the engine's batch
            me = threading.get_ident()
            mine = self._batch[1] if self._batch is not None and self._batch[0] == me else None
            batch, geoms = self.loaded.prepare_batch(images, cameras, out=mine)
            self._batch = (me, batch)
            return batch, geoms
        return self.loaded.prepare_batch(images, cameras)

    def forward_batch(self, batch: Any) -> Any:
        """The bare batched forward: the probabilities per view (views x outputs); a segmentation
        model: its probability maps."""
        maps = getattr(self.loaded, "prob_maps", None)
        return maps(batch) if maps is not None else self.loaded.probabilities(batch)

    def predict_views(self, images: Any, cameras: Any) -> Any:
        if len(images) == 0 or len(images) != len(cameras):
            return self.loaded.predict_views(images, cameras)  # its own clear error
        t0 = time.perf_counter()
        batch, geoms = self.prepare(images, cameras)
        t1 = time.perf_counter()
        if hasattr(self.loaded, "decide_maps"):  # a segmentation model: maps, then its area rule
            probs = self.forward_batch(batch)
            self.last_timings = {"preprocess": t1 - t0, "forward": time.perf_counter() - t1}
            return self.loaded.decide_maps(probs, geoms)[0]
        probs = self.forward_batch(batch)
        t2 = time.perf_counter()
        # the model's task decides (a class model names the class of the deciding view)
        decision = self.loaded.decide_probs(probs, geoms)
        self.last_timings = {"preprocess": t1 - t0, "forward": t2 - t1, "decide": time.perf_counter() - t2}
        return decision


def bind_cameras(classifier: Any, cameras: list[str], mapping: dict[str, str] | None = None) -> dict[str, str]:
    """Check a source's cameras against the model's before sorting (training.cameras): the same
    names and count, or an explicit map; raises CameraMismatch (a TrainingError) otherwise. A
    classifier without a model card (the demo's untrained one) has nothing to check."""
    check = getattr(classifier, "check_cameras", None)
    if check is None:
        return {c: c for c in cameras}
    return check(list(cameras), mapping, exact=True, what="the source")


def untrained_classifier(project: Any | None = None, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """A small untrained CNN wrapped as a Classifier (demo fallback; its verdicts mean nothing)."""
    from hardware.sort.classifier import TorchViewClassifier, tiny_net
    rois = dict(project.settings.rois) if project is not None else {}
    classes = len(project.settings.classes) if project is not None else 0
    clf = TorchViewClassifier(tiny_net(classes, seed), input_size=(96, 128), rois=rois,
                              model_id="untrained-tiny", trained=False)
    return clf, {"model_id": "untrained-tiny", "trained": False, "arch": "tiny_net",
                 "note": "UNTRAINED model: verdicts are meaningless"}
