"""The segmentation training loop (torchvision-reference style: train_one_epoch / evaluate).

BCE + dice loss on one sigmoid channel per defect class; the best epoch by validation dice is
kept; the area rule is learned from the TRAINING masks before the first epoch (it depends on
the masks only), the per-class probability thresholds on the validation split at the end.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from labeling.progress import Progress, ProgressFn, StopFn

from ..errors import Cancelled
from .data import SegSnapshot, make_batch
from .metrics import SegScores, verdict_report
from .postprocess import AreaRule, apply_rules, component_areas, content_only, verdict_score

THRESHOLD_GRID = (0.3, 0.4, 0.5, 0.6, 0.7)


@dataclass(frozen=True)
class SegEpoch:
    """Payload of the loop's epoch-end Progress (stage "eval") and a row of the card's dice history."""

    epoch: int
    loss: float
    val_loss: float
    dice: float  # pooled over the validation views, mean over classes (threshold 0.5, no area rule)
    dice_per_class: dict[str, float]
    iou: float
    val_accuracy: float  # verdict of the area rule, per part
    val_balanced_accuracy: float
    lr: float
    seconds: float


@dataclass(frozen=True)
class SegStep:
    """Payload of the loop's Progress while it trains (stage "train")."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float


class BceDiceLoss(nn.Module):
    """BCE-with-logits + (1 - soft dice), dice pooled over the batch per class, mean over classes."""

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        self.bce = nn.BCEWithLogitsLoss()
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(logits)
        dims = (0, 2, 3)
        inter = (p * target).sum(dims)
        dice = (2 * inter + self.smooth) / (p.sum(dims) + target.sum(dims) + self.smooth)
        return self.bce(logits, target) + (1 - dice).mean()


def batches(n: int, size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i:i + size] for i in range(0, n, size)]


def train_one_epoch(model: nn.Module, snap: SegSnapshot, views: np.ndarray, opt: torch.optim.Optimizer,
                    criterion: nn.Module, device: torch.device, batch_size: int, rng: np.random.Generator,
                    augment: bool, on_step: Callable[[int, int, float], None] | None,
                    should_stop: StopFn | None, lr_now: Callable[[], float] | None = None) -> float:
    model.train()
    total, n = 0.0, 0
    # BatchNorm cannot train on one sample: drop a trailing batch of one.
    bs = [b for b in batches(len(views), batch_size, rng) if len(b) > 1] or batches(len(views), batch_size, rng)
    for step, b in enumerate(bs, 1):
        if should_stop is not None and should_stop():
            raise Cancelled()
        x, m = make_batch(snap, views[b], rng if augment else None)
        x, m = x.to(device), m.to(device)
        if lr_now is not None:
            for g in opt.param_groups:
                g["lr"] = lr_now()
        if len(b) == 1:
            model.eval()  # a lone sample: BatchNorm in eval mode
        loss = criterion(model(x), m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.train()
        total += loss.item() * len(b)
        n += len(b)
        if on_step is not None:
            on_step(step, len(bs), total / n)
    return total / max(n, 1)


@torch.no_grad()
def predict_probs(model: nn.Module, snap: SegSnapshot, views: Sequence[int], device: torch.device,
                  batch_size: int, criterion: nn.Module | None = None) -> tuple[list[np.ndarray], float]:
    """Sigmoid maps (C, h, w) per view, and the mean loss when a criterion is given."""
    model.eval()
    out, total = [], 0.0
    views = np.asarray(views, dtype=np.int64)
    for b in batches(len(views), batch_size, None):
        x, m = make_batch(snap, views[b])
        logits = model(x.to(device))
        if criterion is not None:
            total += float(criterion(logits, m.to(device))) * len(b)
        for v, prob in zip(views[b], torch.sigmoid(logits).float().cpu().numpy()):
            g = snap.views[int(v)].geometry
            out.append(content_only(prob, g.pad, g.content_size))
    return out, total / max(len(views), 1)


def evaluate(snap: SegSnapshot, part_positions: Sequence[int], probs: Sequence[np.ndarray],
             rules: Sequence[AreaRule]) -> dict:
    """Dice/IoU of the kept masks and the verdict report per part, from precomputed maps
    (probs in the order of snap.view_indices(part_positions))."""
    scores = SegScores(snap.classes)
    view_pos = {v: k for k, v in enumerate(snap.view_indices(part_positions))}
    part_scores, targets = [], []
    for i in part_positions:
        p = snap.parts[int(i)]
        s = 0.0
        for v in p.views:
            d = apply_rules(probs[view_pos[v]], rules)
            scores.add(d.kept, snap.views[v].mask)
            s = max(s, verdict_score(d))
        part_scores.append(s)
        targets.append(p.target)
    rep = verdict_report(targets, part_scores)
    rep.update(scores.report())
    rep["_part_scores"], rep["_part_targets"] = part_scores, targets
    return rep


def tune_thresholds(snap: SegSnapshot, part_positions: Sequence[int], probs: Sequence[np.ndarray],
                    rules: list[AreaRule]) -> list[AreaRule]:
    """Per class, the probability threshold of THRESHOLD_GRID with the best pooled validation
    dice after the area rule (ties: the one nearest 0.5)."""
    import dataclasses
    out = list(rules)
    for c, rule in enumerate(rules):
        best = None
        for t in sorted(THRESHOLD_GRID, key=lambda t: abs(t - 0.5)):
            trial = list(out)
            trial[c] = dataclasses.replace(rule, threshold=t)
            dice = evaluate(snap, part_positions, probs, trial)["seg_per_class"][rule.name]["dice"]
            if best is None or dice > best[0] + 1e-9:
                best = (dice, t)
        out[c] = dataclasses.replace(rule, threshold=best[1])
    return out


MIN_AREA_FACTORS = (1, 2, 4, 8, 16, 32)


def tune_min_areas(snap: SegSnapshot, part_positions: Sequence[int], probs: Sequence[np.ndarray],
                   rules: list[AreaRule]) -> list[AreaRule]:
    """Per class, the smallest kept component area that gives the best validation VERDICT
    (balanced accuracy per part), class by class.

    Why: the percentile rule knows only the drawn masks. A network's stray specks on clean
    views are not in them, and with several views per part one speck on any view makes the
    part NG (the bolt demo: every part NG). Candidates are the learned minimum times
    MIN_AREA_FACTORS and, per class, one pixel above the largest component the model keeps on
    the clean validation views; ties keep the smaller minimum (recall first). Never above the
    class's maximum."""
    import dataclasses
    out = list(rules)
    clean = [v for i in part_positions for v in snap.parts[int(i)].views if snap.parts[int(i)].target == 0]
    pos = {v: k for k, v in enumerate(snap.view_indices(part_positions))}
    for c, rule in enumerate(rules):
        noise = 0
        for v in clean:
            kept = apply_rules(probs[pos[v]], out).kept[c]
            if kept.any():
                noise = max(noise, int(component_areas(kept).max()))
        base = max(1, rule.min_area)
        cands = sorted({rule.min_area, *(base * f for f in MIN_AREA_FACTORS), noise + 1 if noise else rule.min_area})
        cands = [a for a in cands if rule.max_area is None or a <= rule.max_area] or [rule.min_area]
        best = None
        for a in cands:
            trial = list(out)
            trial[c] = dataclasses.replace(rule, min_area=int(a))
            ba = evaluate(snap, part_positions, probs, trial)["balanced_accuracy"]
            ba = -1.0 if ba is None else float(ba)
            if best is None or ba > best[0] + 1e-9:
                best = (ba, int(a))
        out[c] = dataclasses.replace(rule, min_area=best[1])
    return out


def fit(model: nn.Module, snap: SegSnapshot, train_parts: np.ndarray, val_parts: np.ndarray, config, rules: list[AreaRule],
        device: torch.device, progress: ProgressFn | None, should_stop: StopFn | None,
        clock_start: float | None = None, clock: Callable[[], float] = time.monotonic,
        ) -> tuple[nn.Module, list[SegEpoch], int]:
    """Train; returns (model at its best validation dice, history, best epoch). Raises
    Cancelled(history) on a stop request. clock: what the time budget counts (wall-clock; a
    benchmark on a shared machine passes the process's CPU time)."""
    rng = np.random.default_rng(config.seed)
    train_views = np.array(snap.view_indices(train_parts), dtype=np.int64)
    val_views = snap.view_indices(val_parts)
    criterion = BceDiceLoss()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=1e-4)
    history: list[SegEpoch] = []
    best_state, best_key, best_epoch, stale = None, None, 0, 0
    start = clock() if clock_start is None else clock_start
    epochs = config.epochs
    budget = config.time_budget_s
    # A run for a time decays the LR over that time, step by step (cosine to 5 %): a per-epoch
    # cosine over an epoch count the budget never reaches keeps the LR at its peak to the end.
    # A run for epochs decays it over the epochs.
    sched = None if budget else torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, config.epochs))

    def lr_now() -> float:
        frac = min(1.0, (clock() - start) / budget) if budget else 0.0
        return config.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * frac)))
    try:
        for epoch in range(1, epochs + 1):
            if epoch > 1 and config.time_budget_s is not None and clock() - start >= config.time_budget_s:
                break
            t0 = time.monotonic()

            def on_step(step: int, steps: int, loss: float, epoch: int = epoch) -> None:
                if progress is not None:
                    progress(Progress("train", (epoch - 1) * steps + step, epochs * steps,
                                      f"epoch {epoch}/{epochs}", SegStep(epoch, epochs, step, steps, loss)))
            loss = train_one_epoch(model, snap, train_views, opt, criterion, device, config.batch_size, rng,
                                   config.augment, on_step, should_stop, lr_now if budget else None)
            if sched is not None:
                sched.step()
            probs, val_loss = predict_probs(model, snap, val_views, device, config.batch_size, criterion)
            plain = [dataclasses_replace_threshold(r, 0.5) for r in rules]
            rep = evaluate(snap, val_parts, probs, plain)
            row = SegEpoch(epoch, loss, val_loss, rep["dice"],
                           {k: v["dice"] for k, v in rep["seg_per_class"].items()}, rep["iou"], rep["accuracy"],
                           rep["balanced_accuracy"], opt.param_groups[0]["lr"], time.monotonic() - t0)
            history.append(row)
            key = (rep["dice"], -val_loss)
            if best_key is None or key > best_key:
                best_key, best_epoch, stale = key, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
            if progress is not None:
                progress(Progress("eval", epoch, epochs, f"epoch {epoch}/{epochs} done: dice {row.dice:.3f}", row))
            if config.patience and stale >= config.patience:
                break
    except Cancelled as exc:
        raise Cancelled(history) from exc
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval(), history, best_epoch


def dataclasses_replace_threshold(rule: AreaRule, t: float) -> AreaRule:
    import dataclasses
    return dataclasses.replace(rule, threshold=t)
