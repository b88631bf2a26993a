"""The optimiser, the epoch LR schedule and the loss's class weights of a training run."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .config import TrainConfig
from .errors import TrainingError
from .tasks import get_task


def class_weights(cfg: TrainConfig, targets: np.ndarray, task: str, n_outputs: int) -> np.ndarray | None:
    if cfg.class_weights is None:
        return None
    if cfg.class_weights == "balanced":
        return get_task(task).class_weights(list(targets), n_outputs)
    w = np.asarray(cfg.class_weights, dtype=np.float64)
    if w.shape != (n_outputs,):
        raise TrainingError(f"class_weights needs {n_outputs} values (one per output: "
                            f"{'[w_ok, w_ng]' if task == 'verdict' else 'OK first' if task == 'classes' else 'per class'})")
    return w


def make_optimizer(cfg: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    makers = {
        "adam": lambda: torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
        "adamw": lambda: torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
        "sgd": lambda: torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay),
    }
    return makers[cfg.optimizer]()


def make_scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer) -> Any:
    makers = {
        "cosine": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs or 10),
        "step": lambda: torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, (cfg.epochs or 10) // 3), gamma=0.1),
        "warmup-cosine": lambda: None,  # set step by step from the run's clock (loop.train_one_epoch)
        "none": lambda: None,
    }
    return makers[cfg.schedule]()
