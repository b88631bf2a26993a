"""Getting a Classifier for sorting: a project's trained model, or (demo only) a quick one.

The trained path is training.inference.load_model(project, model_id) -> LoadedModel, which
already satisfies the Classifier protocol. For the demo, when the project has no active model,
a tiny model is trained in a few seconds (training.loop.train), or, if the training room is not
available, an untrained network is used and reported as such.
"""
from __future__ import annotations

import logging
from typing import Any

from hardware.errors import HardwareError

log = logging.getLogger(__name__)


def load_classifier(project: Any, model_id: str = "active") -> tuple[Any, dict[str, Any]]:
    """(classifier, info) for a project's model; HardwareError with a clear message otherwise."""
    if model_id in ("", "active") and not project.active_model_id:
        raise HardwareError(f"{project.path.name} has no active model: train one first "
                            "(okng train) or pass --model ID")
    try:
        from training.inference import load_model
    except ImportError as exc:
        raise HardwareError(f"model inference is not available ({exc})") from None
    model = load_model(project, model_id)
    mid = str(getattr(model, "model_id", None) or (project.active_model_id if model_id in ("", "active") else model_id))
    return model, {"model_id": mid, "trained": True, "arch": _arch(project, mid)}


def _arch(project: Any, model_id: str) -> str:
    try:
        meta = project.model_meta(model_id)
    except Exception:  # noqa: BLE001 - descriptive only
        return ""
    return str(meta.get("arch") or meta.get("backbone") or meta.get("config", {}).get("arch", ""))


def untrained_classifier(project: Any | None = None, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """A small untrained CNN wrapped as a Classifier (demo fallback; its verdicts mean nothing)."""
    from hardware.sort.classifier import TorchViewClassifier, tiny_net
    rois = dict(project.settings.rois) if project is not None else {}
    classes = len(project.settings.classes) if project is not None else 0
    clf = TorchViewClassifier(tiny_net(classes, seed), input_size=(96, 128), rois=rois,
                              model_id="untrained-tiny", trained=False)
    return clf, {"model_id": "untrained-tiny", "trained": False, "arch": "tiny_net",
                 "note": "UNTRAINED model: verdicts are meaningless (training not available)"}


def demo_classifier(project: Any, progress: Any = None) -> tuple[Any, dict[str, Any]]:
    """The project's active model; else a quickly trained tiny one; else an untrained one."""
    if project.active_model_id:
        try:
            return load_classifier(project, "active")
        except Exception as exc:  # noqa: BLE001 - the demo goes on with what it can get
            log.warning("active model unusable (%s): training a new one", exc)
    try:
        model_id = quick_train(project, progress)
    except Exception as exc:  # noqa: BLE001 - training room absent or failing
        log.warning("quick training unavailable: %s", exc)
        return untrained_classifier(project)
    clf, info = load_classifier(project, model_id)
    info["quick_trained"] = True
    return clf, info


def quick_train(project: Any, progress: Any = None) -> str:
    """Train a tiny model on the project for a few seconds; returns its model id (made active)."""
    from training import loop
    cfg_cls = getattr(loop, "TrainConfig", None)
    if cfg_cls is None:
        raise HardwareError("training.loop has no TrainConfig")
    fields = getattr(cfg_cls, "__dataclass_fields__", {})
    wanted = {"arch": "mobilenet_v3_small", "backbone": "mobilenet_v3_small", "pretrained": False,
              "epochs": 2, "batch_size": 8, "input_size": (96, 128), "num_workers": 0,
              "freeze": "none", "seed": 0}
    cfg = cfg_cls(**{k: v for k, v in wanted.items() if k in fields})
    result = loop.train(project, cfg, progress=None, should_stop=None)
    model_id = getattr(result, "model_id", None) or (result.get("model_id") if isinstance(result, dict) else None)
    if not model_id:
        project.reload()
        model_id = project.active_model_id
    if not model_id:
        raise HardwareError("quick training produced no model")
    if project.active_model_id != model_id:
        project.set_active_model(model_id)
    return str(model_id)
