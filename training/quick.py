"""A small model trained in a few seconds, for the live-sort demo when a project has none."""
from __future__ import annotations

from typing import Any

from .config import TrainConfig
from .errors import TrainingError
from .loop import train


def quick_train(project: Any, progress: Any = None, arch: str = "mobilenet_v3_small",
                epochs: int = 3, input_size: int = 128) -> str:
    """Train a small model on the project; returns its id (made active)."""
    cfg = TrainConfig(arch=arch, freeze="none", epochs=epochs, batch_size=16, input_size=input_size,
                      patience=0, seed=0, num_threads=1)
    result = train(project.path, cfg, progress=progress)
    if result.cancelled or not result.model_id:
        raise TrainingError("quick training produced no model")
    project.reload()
    if project.active_model_id != result.model_id:
        project.set_active_model(result.model_id)
    return str(result.model_id)
