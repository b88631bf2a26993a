"""The prune job: rounds of structural filter pruning + fine-tuning, each round a child model.

``prune(spec, progress, should_stop) -> PruneResult`` takes a stored model and, as in the X-ray
wool study, removes ``rate`` of the filters of every layer by L1 (or L2) norm, fine-tunes on the
project's training parts (training.loop.fit_split: the training loop's own epochs, optimiser,
BatchNorm refresh and threshold choice), and registers the result as a child of the model it
came from; ``rounds`` times (3 x 30 % keeps 0.7^3 = 34 % of the filters). Each child's card holds
the recipe, params, FLOPs (MACs), measured CPU latency and the held-out metrics on the SAME parts
its ancestors were judged on (the root's "val" (and "test" when it has one) part ids), so the
lineage table compares like with like.

``method="asfp"`` is the study's comparison, asymptotic soft filter pruning: one run of
``rounds x fine_tune_epochs`` epochs where, after every epoch, the smallest filters are zeroed
at a rate growing towards the same final rate; zeroed filters keep updating (they may come
back). At the end the zeroed filters are removed for real and ONE child is registered.

The parts used for fine-tuning are the snapshot's parts minus every held-out split of the
root model: no part the metrics are computed on is ever trained on. A cancel stops between
steps; rounds already registered stay (each is a complete model) and are returned.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from labeling.progress import Progress, ProgressFn, StopFn

from .backbones import get_backbone
from .card import ModelCard, SplitMetrics
from .errors import TrainingError
from .pruning import count, cpu_latency, prune_filters, soft_prune, structure_of

METHODS = ("l1", "asfp")


@dataclass
class PruneSpec:
    """What to prune and how (picklable: the Train view runs the job in a child process)."""

    project_path: str
    model_id: str = "active"
    rounds: int = 3
    rate: float = 0.3  # fraction of each layer's filters removed per round
    norm: str = "l1"  # l1 | l2: the filter norm ranked
    method: str = "l1"  # l1: hard rounds; asfp: soft pruning with a growing rate, removed at the end
    fine_tune_epochs: int = 2
    lr: float | None = None  # None: the parent's learning rate / 10 (fine-tuning, not training)
    batch_size: int | None = None  # None: the parent's
    device: str = "cpu"
    num_threads: int | None = None
    latency_batch: int = 4  # views per forward when timing (the live sort's four cameras)
    seed: int = 0

    def validate(self) -> PruneSpec:
        if self.method not in METHODS:
            raise TrainingError(f"unknown pruning method {self.method!r} (expected {', '.join(METHODS)})")
        if self.norm not in ("l1", "l2"):
            raise TrainingError(f"unknown norm {self.norm!r} (expected l1 or l2)")
        if not 0.0 < self.rate < 1.0:
            raise TrainingError(f"pruning rate must be in (0, 1), got {self.rate}")
        if not 1 <= self.rounds <= 20:
            raise TrainingError(f"rounds must be 1..20, got {self.rounds}")
        if self.fine_tune_epochs < 0:
            raise TrainingError("fine-tune epochs must be >= 0")
        return self


@dataclass(frozen=True)
class Figures:
    """What pruning is judged by: size, cost, measured speed."""

    params: int
    flops: int  # multiply-accumulates of one view (the study's and torchvision's "FLOPs")
    latency_ms: float  # median CPU forward of `latency_batch` views
    latency_batch: int
    threads: int


@dataclass
class PruneRound:
    """One registered child (the Progress payload after each round, a row of the result)."""

    round: int
    model_id: str
    parent: str
    figures: Figures
    metrics: dict[str, float | None]  # split -> balanced accuracy
    before_fine_tune: dict[str, float | None]  # split -> balanced accuracy right after pruning


@dataclass
class PruneResult:
    parent_id: str
    parent_figures: Figures | None
    rounds: list[PruneRound] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def model_ids(self) -> list[str]:
        return [r.model_id for r in self.rounds]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"model_ids": self.model_ids}


class _Stop(Exception):
    pass


def figures(model: nn.Module, input_size: tuple[int, int], batch: int) -> Figures:
    macs, params = count(model, input_size)
    lat = cpu_latency(model, input_size, batch)
    return Figures(params, macs, round(lat["p50_ms"], 3), batch, int(lat["threads"]))


def _held_out(card: ModelCard, snap: Any, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(training positions, split -> held-out positions) in the snapshot, by the root's part ids."""
    from .snapshot import stratified_split
    pos = {p.part_id: i for i, p in enumerate(snap.parts)}
    splits = {name: np.array([pos[i] for i in m.part_ids if i in pos], dtype=np.int64)
              for name, m in card.metrics.items() if m.part_ids}
    if not splits.get("val", np.empty(0)).size:
        _tr, va = stratified_split(snap.part_targets(), 0.2, seed)
        splits["val"] = np.asarray(va, dtype=np.int64)
    held = set().union(*(set(v.tolist()) for v in splits.values()))
    train = np.array([i for i in range(len(snap.parts)) if i not in held], dtype=np.int64)
    if len(train) < 2:
        raise TrainingError("too few labelled parts outside the held-out splits to fine-tune on")
    return train, splits


def _score(model: nn.Module, snap: Any, cfg: Any, positions: np.ndarray, threshold: float) -> dict[str, Any]:
    """The loop's evaluate() on some parts, for a model that is not being trained."""
    from .data import IMAGENET_MEAN, IMAGENET_STD
    from .features import Forward
    from .loop import _Run, evaluate
    spec = get_backbone(cfg.arch)
    dev = torch.device(cfg.device if cfg.device != "auto" else "cpu")
    model = model.to(dev)
    run = _Run(model, spec, cfg, dev, Forward(model, spec, snap, IMAGENET_MEAN, IMAGENET_STD, dev, None, 0),
               np.empty(0, dtype=np.int64), positions, snap, nn.CrossEntropyLoss(), cfg.batch_size)
    return evaluate(run, positions, threshold)


def _bal(rep: dict[str, Any] | SplitMetrics) -> float | None:
    v = rep.get("balanced_accuracy")
    return None if v is None else float(v)


def prune(spec: PruneSpec, progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> PruneResult:
    """Prune a stored model in rounds; every round's model registered as a child of the last."""
    from labeling.store import Project

    from .card import read_card
    from .checkpoint import build_model, from_bytes
    from .config import TrainConfig
    from .inference import resolve_model_id
    from .loop import Cancelled, fit_split, seed_everything
    from .registry import register_pruned
    from .snapshot import load_snapshot
    from .task_metrics import held_out

    t0 = time.monotonic()
    spec.validate()
    stop = should_stop or (lambda: False)
    report = progress or (lambda _p: None)
    if spec.num_threads:
        torch.set_num_threads(spec.num_threads)
    path = Path(spec.project_path)
    proj = Project.open(path, readonly=True)
    root_id = resolve_model_id(proj, spec.model_id)
    card = read_card(proj, root_id)
    if card.task != "verdict":
        raise TrainingError(f"model {root_id}: pruning handles verdict models (this one is {card.task!r})")
    ckpt = from_bytes(proj.load_checkpoint(root_id), card.checkpoint_sha256, f"model {root_id}")
    model = build_model(ckpt).eval()
    bspec = get_backbone(card.arch)
    size = tuple(card.input_size)
    base = TrainConfig.from_dict(card.config) if card.config else TrainConfig(arch=card.arch)
    cfg = replace(base, arch=card.arch, freeze="none", patience=0, folds=0, cache_features=False,
                  warm_start=root_id, device=spec.device, num_threads=spec.num_threads, input_size=size,
                  epochs=max(1, spec.fine_tune_epochs), lr=spec.lr or base.lr / 10,
                  batch_size=spec.batch_size or base.batch_size, seed=spec.seed)
    report(Progress("prune", 0, spec.rounds, f"measuring {root_id}"))
    parent_fig = figures(model, size, spec.latency_batch)
    result = PruneResult(root_id, parent_fig)
    snap = load_snapshot(path, size, card.fit, report, stop)
    if snap is None:
        result.cancelled, result.seconds = True, time.monotonic() - t0
        return result
    train_p, splits = _held_out(card, snap, spec.seed)
    ids = {name: [snap.parts[int(i)].part_id for i in pos] for name, pos in splits.items()}
    recipe = {"method": spec.method, "norm": spec.norm, "rate": spec.rate, "rounds": spec.rounds,
              "fine_tune_epochs": spec.fine_tune_epochs, "lr": cfg.lr, "root": root_id,
              "train_parts": len(train_p)}

    def fine_tune(net: nn.Module, epochs: int, label: str) -> tuple[nn.Module, dict[str, Any], list, int]:
        c = replace(cfg, epochs=epochs)
        # the root's test parts are scored by finish(), never used to choose the epoch
        net, rep, history, best, _test = fit_split(snap, train_p, splits["val"], c, lambda: net, report, stop,
                                                   label=label)
        return net, rep, history, best

    def finish(net: nn.Module, r: int, parent: ModelCard, rep: dict[str, Any], history: list, best: int,
               before: dict[str, float | None], extra_recipe: dict[str, Any]) -> ModelCard:
        threshold = float(rep.get("threshold", parent.threshold))
        metrics = {"val": held_out(rep, ids["val"])}
        for name, pos in splits.items():
            if name != "val":
                metrics[name] = held_out(_score(net, snap, c_eval, pos, threshold), ids[name])
        fig = figures(net, size, spec.latency_batch)
        extra = {**parent.extra, "pruning": {**recipe, **extra_recipe, "round": r,
                                             "parent_figures": asdict(parent_figs[-1])},
                 "figures": asdict(fig)}
        child = register_pruned(path, net, parent, structure_of(net), metrics, history, best, threshold,
                                time.monotonic() - t0, extra)
        row = PruneRound(r, child.id, parent.id, fig, {k: _bal(m) for k, m in metrics.items()}, before)
        result.rounds.append(row)
        parent_figs.append(fig)
        report(Progress("prune", r, spec.rounds, f"round {r}: {child.id}", row))
        return child

    c_eval = replace(cfg, batch_size=max(cfg.batch_size, 32))
    parent_figs = [parent_fig]
    seed_everything(spec.seed)
    parent = card
    try:
        if spec.method == "l1":
            for r in range(1, spec.rounds + 1):
                if stop():
                    raise _Stop
                prune_filters(model, bspec, size, spec.rate, spec.norm)
                before = {n: _bal(_score(model, snap, c_eval, pos, parent.threshold)) for n, pos in splits.items()}
                if spec.fine_tune_epochs:
                    model, rep, hist, best = fine_tune(model, spec.fine_tune_epochs, f"round {r}/{spec.rounds}: ")
                else:
                    rep, hist, best = _score(model, snap, c_eval, splits["val"], parent.threshold), [], 0
                parent = finish(model, r, parent, rep, hist, best, before, {})
        else:
            final = 1.0 - (1.0 - spec.rate) ** spec.rounds
            epochs = spec.rounds * max(1, spec.fine_tune_epochs)
            rates, hist_all = [], []
            for e in range(1, epochs + 1):
                if stop():
                    raise _Stop
                # ASFP's exponential schedule: most of the rate early, approaching `final`
                rate_e = final * (1 - math.exp(-4 * e / epochs)) / (1 - math.exp(-4))
                model, rep, hist, _ = fine_tune(model, 1, f"asfp epoch {e}/{epochs}: ")
                soft_prune(model, bspec, size, rate_e, spec.norm)
                rates.append(round(rate_e, 4))
                hist_all += [replace(h, epoch=e) for h in hist]
            prune_filters(model, bspec, size, final, spec.norm)  # the zeroed filters, removed for real
            rep = _score(model, snap, c_eval, splits["val"], 0.5)
            if cfg.target_ng_recall is not None:
                from .metrics import threshold_for_recall
                thr = threshold_for_recall(rep["_part_targets"], rep["_part_scores"], cfg.target_ng_recall)
                rep = _score(model, snap, c_eval, splits["val"], thr)
            finish(model, 1, card, rep, hist_all, len(hist_all), {}, {"final_rate": final, "epoch_rates": rates})
    except (_Stop, Cancelled):
        result.cancelled = True
    result.seconds = time.monotonic() - t0
    return result

