"""The training loop, torchvision-references style: train_one_epoch / evaluate / train.

`train(project_path, config, progress, should_stop)` reads a snapshot of the labelled parts,
splits them by part into train / validation / test (training.splits), fine-tunes the backbone,
keeps the best epoch (validation balanced accuracy at the part level), picks the operating
threshold on validation, scores the untouched test parts once at that threshold (the headline
figures) and stores the model in the project's registry. Cancelling stores nothing.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from labeling.progress import Progress, ProgressFn, StopFn

from . import accel, core_share, mask_guide
from .backbones import (
    BackboneSpec,
    FrozenTrunk,
    apply_freeze,
    get_backbone,
    set_train_mode,
    single_channel_stem,
)
from .batchnorm import needs_bn_refresh, refresh_batchnorm
from .card import EpochMetrics, ModelCard
from .config import AugmentConfig, TrainConfig
from .data import IMAGENET_MEAN, IMAGENET_STD
from .distributed import Local, join, on_main
from .ema import WeightAverage, decay_for
from .errors import Cancelled, TrainingError
from .features import CACHE_BUDGET_BYTES, FeatureCache, Forward, batches
from .inference import aggregate, resolve_device
from .mask_guide import MaskGuide
from .metrics import binary_report, mean_std, threshold_for_recall
from .optim import class_weights, make_optimizer, make_scheduler
from .recipe import RunClock, flips_of, lr_factor, short_note, short_steps
from .run_progress import EtaClock, epoch_suffix, progress_position
from .sampling import balanced_p
from .snapshot import CLASS_NAMES, Snapshot
from .splits import check_split, draw_split, kfold
from .start import Start, prepare
from .task_metrics import held_out
from .tasks import get_task
from .transforms import flip_variants


@dataclass(frozen=True)
class TrainStep:
    """Payload of the loop's Progress while it trains (stage "train"): where in the run it is."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    eta_s: float


@dataclass
class TrainResult:
    """What a run returns. ``card`` is the stored model's card (None when cancelled: nothing is
    stored); ``history`` holds the epochs it finished, also when cancelled."""

    model_id: str | None
    metrics: dict
    cancelled: bool
    pretrained: bool
    history: list[EpochMetrics] = field(default_factory=list)
    threshold: float = 0.5
    pretrained_source: str | None = None
    activated: bool = False
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    card: ModelCard | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "card"}
        d["history"] = [asdict(h) for h in self.history]
        return d


@dataclass
class _Run:
    """Everything one split's training needs (built once per split)."""

    model: nn.Module
    spec: BackboneSpec
    config: TrainConfig
    device: torch.device
    forward: Forward
    train_views: np.ndarray
    val_parts: np.ndarray
    snap: Snapshot
    criterion: nn.Module
    batch_size: int
    clock: RunClock | None = None
    bf16: bool = False  # CPU bf16 autocast (channels_last model)
    sample_p: np.ndarray | None = None  # per training view: the balanced sampler's probabilities
    epochs_done: int = 0
    sync: Local = field(default_factory=Local)  # the ranks of a data-parallel run (training.distributed)
    aug_rng: np.random.Generator | None = None  # per rank (None: the plan's rng, a single run)
    amp: bool = False  # CUDA float16 autocast (its GradScaler: train_one_epoch's scaler)
    step_marks: list[float] = field(default_factory=list)  # the clock after each step of epoch 1
    guide: MaskGuide | None = None  # the defect-mask loss beside the task's (training.mask_guide)


def _plan(run: _Run, rng: np.random.Generator) -> list[np.ndarray]:
    """This epoch's batches: a shuffle, or a class-balanced draw with replacement (as many views)."""
    if run.sample_p is None:
        return run.sync.batches(run.train_views, run.batch_size, rng)
    drawn = rng.choice(run.train_views, size=len(run.train_views), replace=True, p=run.sample_p)
    return run.sync.batches(drawn, run.batch_size, None)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def train_one_epoch(run: _Run, optimizer: torch.optim.Optimizer, rng: np.random.Generator,
                    scaler: torch.amp.GradScaler | None, on_step: Callable[[int, int, float], None],
                    should_stop: StopFn | None) -> float:
    """One pass over the training views; returns the mean loss. Under a time budget the pass
    ends early when the time is up (the LR follows the clock step by step).

    A data-parallel run draws the same plan on every rank (shared rng) and trains each rank on
    its slice of every global batch; augmentations draw from the rank's own rng."""
    set_train_mode(run.model, run.spec, run.config.freeze)
    aug = run.config.augment
    total, n = 0.0, 0
    plan = _plan(run, rng)
    aug_rng = run.aug_rng or rng
    warm_cos = run.config.schedule == "warmup-cosine" and run.clock is not None
    for step, global_idx in enumerate(plan):
        if should_stop is not None and should_stop():
            raise Cancelled()
        core_share.rebalance()  # a run started or ended beside this one: take the fair share again
        idx = run.sync.shard(global_idx)
        y = _targets(run, idx)
        scale = run.sync.step(run.clock, run.criterion, y)
        if step and run.clock is not None and run.clock.out_of_time():
            break
        if warm_cos:
            assert run.clock is not None
            f = lr_factor(run.clock.fraction(run.epochs_done + step / len(plan)))
            for g in optimizer.param_groups:
                g["lr"] = run.config.lr * f
        guide_loss = None
        with _autocast(run):
            if run.guide is not None:
                logits, masks, known = run.forward.guided(idx, aug, aug_rng)
                guide_loss = run.guide.loss(masks, known)
            else:
                logits = run.forward(idx, aug, aug_rng, train=True)
            loss = run.criterion(logits.float(), y)
        # The epoch's reported loss stays the task's; the guide's term only steers the step.
        step_loss = loss if guide_loss is None else loss + guide_loss
        # DDP averages the ranks' gradients: scaled, that is the global batch's (sync.step).
        step_loss = step_loss * scale if scale != 1.0 else step_loss
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(step_loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            step_loss.backward()
            optimizer.step()
        total += float(loss.detach()) * len(idx)  # on CUDA also the wait for the step's kernels
        n += len(idx)
        if run.epochs_done == 0 and run.clock is not None:
            run.step_marks.append(run.clock.elapsed())  # the pace for _maybe_short
        on_step(step + 1, len(plan), total / max(n, 1))
    return run.sync.sum(total) / max(run.sync.sum(n), 1)


def _targets(run: _Run, idx: Sequence[int]) -> torch.Tensor:
    """The loss's targets of these views: class indices, or a float (n, K) matrix (multilabel)."""
    return torch.as_tensor(np.asarray([run.snap.views[int(i)].target for i in idx]), device=run.device)


def _autocast(run: _Run) -> Any:
    return accel.autocast(run.device, run.bf16, run.amp)


def evaluate(run: _Run, part_positions: Sequence[int], threshold: float = 0.5,
             should_stop: StopFn | None = None, thresholds: Sequence[float] = ()) -> dict[str, Any]:
    """Scores and metrics on parts: part = NG if any view NG (max P(NG)); view-level too.

    A class or multilabel model is scored by its task's report (tasks.py), on the outputs of
    each part's deciding view (the view of highest P(NG), the one live sort takes the class
    from); its derived verdict figures are under "verdict"."""
    run.model.eval()
    task = get_task(run.snap.task)
    views = run.snap.view_indices(part_positions)
    probs = np.zeros((len(run.snap.views), len(run.snap.output_names)), dtype=np.float64)
    loss_sum = 0.0
    # Data-parallel: each rank scores its shard (as many rounds on every rank: the stop check
    # is collective), then the probabilities are gathered, so every rank reports the same.
    chunks = batches(run.sync.shard(views), max(run.batch_size, 64), None)
    with torch.inference_mode():
        for k in range(run.sync.count(len(chunks))):
            if should_stop is not None and should_stop():
                raise Cancelled()
            if k >= len(chunks):
                continue
            idx = chunks[k]
            with _autocast(run):
                logits = run.forward(idx, None, None).float()
            loss_sum += float(run.criterion(logits, _targets(run, idx).to(logits.device))) * len(idx)
            probs[idx] = task.probabilities(logits).cpu().numpy()
    if views:
        probs[views] = run.sync.sum_rows(probs[views])
    loss_sum = run.sync.sum(loss_sum)
    ng, _ = task.view_scores(probs, thresholds)
    parts = [run.snap.parts[int(i)] for i in part_positions]
    deciding = [p.views[int(np.argmax([ng[v] for v in p.views]))] for p in parts]
    part_s = np.array([aggregate([ng[v] for v in p.views]) for p in parts])
    part_ng = np.array([p.ng for p in parts])
    if run.snap.task == "verdict":
        view_y = np.array([run.snap.views[v].target for v in views])
        rep = binary_report(part_ng, part_s, threshold, CLASS_NAMES)
        rep["views"] = binary_report(view_y, ng[views], threshold, CLASS_NAMES)
    else:
        names = run.snap.output_names
        view_y = np.asarray([run.snap.views[v].target for v in views]).astype(np.int64)
        rep = task.report(run.snap.part_labels(part_positions), probs[deciding], names, threshold, thresholds)
        rep["views"] = task.report(view_y, probs[views], names, threshold, thresholds)
        verdict = rep["verdict"]
        # The epoch history and early stopping read these keys for every task.
        rep.setdefault("accuracy", rep.get("exact_match", verdict["accuracy"]))
        rep.setdefault("balanced_accuracy", verdict["balanced_accuracy"])
        rep["roc_auc"] = verdict["roc_auc"]
        rep["threshold"] = float(threshold)
        if thresholds:
            rep["thresholds"] = [float(t) for t in thresholds]
        rep["_part_probs"] = probs[deciding]
        rep["_part_labels"] = run.snap.part_labels(part_positions)  # per-class curves (held_out)
        if run.snap.task == "multilabel":  # a part holds class k when any view does (label checks)
            rep["_part_class_max"] = np.stack([probs[p.views].max(axis=0) for p in parts]) if parts else probs[:0]
    rep["loss"] = loss_sum / max(len(views), 1)
    rep["_part_scores"] = part_s
    rep["_part_targets"] = np.array([p.target for p in parts])
    rep["_part_ng"] = part_ng
    return rep


def _selection_key(task: str, rep: dict[str, Any]) -> tuple:
    """Which epoch is best: balanced accuracy for verdicts, macro F1 for class models (every
    class counts the same, however rare)."""
    if task == "verdict":
        return (rep["balanced_accuracy"], rep["roc_auc"] or 0.0, -rep["loss"])
    return (rep["macro_f1"], rep["balanced_accuracy"], -rep["loss"])


def _maybe_short(run: _Run, steps_done: int, info: dict[str, Any] | None) -> None:
    """After the first epoch of a budgeted run: too few steps ahead for the photometric and shift
    augmentations to pay (training.recipe.SHORT_RUN_STEPS), so flips only from here. The clock
    was just agreed across ranks (sync.tick), so every rank decides alike."""
    clock, cfg = run.clock, run.config
    if clock is None or cfg.augment.flips_only():
        return
    marks = run.sync.share(run.step_marks)  # rank 0's pace, so every rank decides alike
    steps = short_steps(len(marks) or steps_done, clock.elapsed(), clock.budget_s, cfg.short_run_steps, marks)
    if steps is None:
        return
    run.config = dataclasses.replace(cfg, augment=flips_of(cfg.augment))
    if info is not None:
        info["augment_why"] = short_note(steps, cfg.short_run_steps, clock.elapsed())
        info["augment"] = run.config.augment  # what the card records as the run's augmentation


def fit_split(snap: Snapshot, train_parts: np.ndarray, val_parts: np.ndarray, config: TrainConfig,
              init: Callable[[], nn.Module], progress: ProgressFn | None, should_stop: StopFn | None,
              label: str = "", test_parts: np.ndarray | None = None, now: Callable[[], float] | None = None,
              sync: Local | None = None, info: dict[str, Any] | None = None, keep_last: bool = False,
              ) -> tuple[nn.Module, dict[str, Any], list[EpochMetrics], int, dict[str, Any] | None]:
    """Train on one split; returns (best model, validation report at its threshold, history, best
    epoch, test report at that same threshold or None without test parts).

    ``keep_last``: the last epoch's model, whatever validation says, and no early stop: the
    validation parts are then only scored, never chosen on (the label check's held-out fold,
    whose labels are on trial).

    The test parts take no part in choosing the epoch or the threshold: they are scored once, at
    the end. Reports keep the part scores and targets (keys "_part_scores", "_part_targets") for
    the card; a cancel raises Cancelled carrying the epochs finished.

    ``sync``: the ranks of a data-parallel run (training.distributed; default: this process
    alone), where every rank calls fit_split with the same arguments and should_stop is the
    ranks' collective stop. ``info``, when given, receives the run's world size and global batch.

    The run takes its fair share of this machine's cores while it trains (training.core_share)."""
    with core_share.session(config.num_threads):
        return _fit_split(snap, train_parts, val_parts, config, init, progress, should_stop, label, test_parts,
                          now, sync, info, keep_last)


def _fit_split(snap: Snapshot, train_parts: np.ndarray, val_parts: np.ndarray, config: TrainConfig,
               init: Callable[[], nn.Module], progress: ProgressFn | None, should_stop: StopFn | None,
               label: str, test_parts: np.ndarray | None, now: Callable[[], float] | None,
               sync: Local | None, info: dict[str, Any] | None, keep_last: bool = False,
               ) -> tuple[nn.Module, dict[str, Any], list[EpochMetrics], int, dict[str, Any] | None]:
    sync = sync or Local()
    spec = get_backbone(config.arch)
    device = sync.device(resolve_device(config.device))
    seed_everything(config.seed)
    model = init()
    if config.gray_stem:
        single_channel_stem(model, spec)
    model = model.to(device)
    apply_freeze(model, spec, config.freeze)
    bf16 = accel.use_bf16(config.bf16, device)
    channels_last = accel.use_channels_last(config.bf16, device)
    model = accel.prepare_model(model, device, channels_last)
    train_views = np.array(snap.view_indices(train_parts), dtype=np.int64)
    if len(train_views) < 2 * sync.world_size:
        raise TrainingError(f"{len(train_views)} training views cannot feed {sync.world_size} processes "
                            "(two views each at least): train with fewer processes")
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    n_frozen = spec.frozen_groups(config.freeze)
    cache = None
    aug = config.augment
    epochs = config.epochs
    clock = RunClock(config.budget_s, epochs, now or time.monotonic)
    n_val_views = len(snap.view_indices(val_parts))
    if n_frozen and config.cache_features and aug.flips_only():
        trunk = FrozenTrunk(model, spec, n_frozen)
        rows = len(snap.views) + len(train_views) * (len(flip_variants(aug)) - 1)
        if FeatureCache.estimate_bytes(trunk, snap.input_size, rows, device) <= CACHE_BUDGET_BYTES:
            cache = FeatureCache(trunk, snap, rows, aug, mean, std, device, config.frozen_batch_size)
    train_targets = np.asarray([snap.views[i].target for i in train_views])
    n_out = len(snap.output_names)
    criterion = get_task(snap.task).loss(class_weights(config, train_targets, snap.task, n_out)).to(device)
    batch_size = config.batch_size
    if cache is not None:
        # Larger batches over cached features, but keep >= ~16 steps an epoch on small projects.
        batch_size = max(config.batch_size, min(config.frozen_batch_size, len(train_views) // 16))
    forward = Forward(model, spec, snap, mean, std, device, cache, n_frozen, channels_last)
    # Before the first step (and the cache's first trunk pass): DDP gives every rank rank 0's weights.
    forward.step_net = sync.wrap(forward.net, device)
    sample_p = balanced_p(train_targets) if config.sampler == "balanced" else None
    amp = bool(config.amp) and device.type == "cuda"
    # Every rank draws the same plan (shared seed) but its own augmentations.
    aug_rng = np.random.default_rng([config.seed, sync.rank]) if sync.world_size > 1 else None
    run = _Run(model, spec, config, device, forward, train_views, val_parts, snap, criterion, batch_size,
               clock, bf16, sample_p, sync=sync, aug_rng=aug_rng, amp=amp)
    steps_per_epoch = len(batches(train_views, batch_size, None))  # a single run's count (the plan's sizes)
    # Before the mask guide hooks into the model: the average's copy of it would carry the hooks.
    average = (WeightAverage(model, decay_for(config.ema_epochs, steps_per_epoch))
               if config.ema_epochs else None)
    run.guide, guide_why = mask_guide.build(model, spec, config, snap, train_views, cache is not None,
                                            sync.world_size)
    if info is not None:
        info.update(world_size=sync.world_size, global_batch=batch_size, mask_guide=guide_why)
    params = [p for p in model.parameters() if p.requires_grad]
    if run.guide is not None:
        run.guide.to(device)
        params += list(run.guide.parameters())
    opt = make_optimizer(config, params)
    if average is not None:
        average.follow(model, opt)
    sched = make_scheduler(config, opt)
    scaler = accel.grad_scaler(device, amp)
    rng = np.random.default_rng(config.seed)
    history: list[EpochMetrics] = []
    best_state, best_key, best_epoch, stale = None, None, 0, 0
    per_epoch = len(train_views) + n_val_views
    eta = EtaClock((epochs or 1) * per_epoch)
    clock.start()
    epoch = 0
    try:
        while True:
            sync.tick(clock)  # rank 0's time decides for every rank whether another epoch starts
            if not clock.more_epochs(epoch):
                break
            if epoch == 1:
                _maybe_short(run, steps_per_epoch, info)
            epoch += 1
            base = (epoch - 1) * per_epoch

            def on_step(step: int, steps: int, loss: float, epoch: int = epoch, base: int = base) -> None:
                if progress is not None:
                    done, total, left = progress_position(clock, base + min(step * batch_size, len(train_views)),
                                               per_epoch, eta)
                    progress(Progress("train", done, total, f"{label}epoch {epoch}{epoch_suffix(epochs, clock)}",
                                      TrainStep(epoch, epochs or 0, step, steps, loss, left)))
            t0 = time.monotonic()
            loss = train_one_epoch(run, opt, rng, scaler, on_step, should_stop)
            run.epochs_done = epoch
            if sched is not None:
                sched.step()
            # The weights validated (and kept when best) are the average's where the run keeps one;
            # PreciseBN then refreshes the statistics of those weights.
            with average.applied(model) if average is not None else contextlib.nullcontext():
                if needs_bn_refresh(cache is not None, steps_per_epoch, epoch):
                    refresh_batchnorm(model, spec, config.freeze, forward, train_views, batch_size, sync,
                                      should_stop, None if cache is not None else 256)
                rep = evaluate(run, val_parts, 0.5, should_stop)
                key = _selection_key(snap.task, rep)
                if keep_last or best_key is None or key > best_key:
                    best_key, best_epoch, stale = key, epoch, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    stale += 1
            row = EpochMetrics(epoch, loss, rep["loss"], rep["accuracy"], rep["balanced_accuracy"], rep["roc_auc"],
                               opt.param_groups[0]["lr"], time.monotonic() - t0, rep.get("macro_f1"))
            history.append(row)
            if progress is not None:
                done, total, _ = progress_position(clock, epoch * per_epoch, per_epoch, eta)
                progress(Progress("eval", done, total, f"{label}epoch {epoch}{epoch_suffix(epochs, clock)} done", row))
            if config.patience and stale >= config.patience:
                break
        assert best_state is not None
        model.load_state_dict(best_state)
        rep = evaluate(run, val_parts, 0.5, should_stop)
        threshold, thresholds = 0.5, []
        if snap.task == "multilabel":
            # Per-class thresholds chosen on validation (the best F1 of each class).
            thresholds = get_task(snap.task).fit_thresholds(snap.part_labels(val_parts), rep["_part_probs"])
            rep = evaluate(run, val_parts, threshold, should_stop, thresholds)
        if config.target_ng_recall is not None:
            threshold = threshold_for_recall(rep["_part_ng"], rep["_part_scores"], config.target_ng_recall)
            rep = evaluate(run, val_parts, threshold, should_stop, thresholds)
        test_rep = None
        if test_parts is not None and len(test_parts):
            if progress is not None:
                progress(Progress("test", 0, 1, f"{label}scoring the held-out test parts"))
            test_rep = evaluate(run, test_parts, threshold, should_stop, thresholds)
    except Cancelled as exc:
        raise Cancelled(history) from exc
    finally:
        if run.guide is not None:
            run.guide.close()
            if info is not None and run.guide.mean_loss() is not None:
                info["mask_guide"] += f" (mean mask loss {run.guide.mean_loss():.3f})"
    return model.eval().to("cpu"), rep, history, best_epoch, test_rep


def train(project_path: str | Path, config: TrainConfig, progress: ProgressFn | None = None,
          should_stop: StopFn | None = None, extra: dict[str, Any] | None = None) -> TrainResult:
    """Train a model on the project's labelled parts and store it in the project's registry
    (``extra``: more for the card's extra, e.g. the study a tuned model comes from).

    Under torchrun every rank calls this (training.distributed): rank 0 reads the project,
    reports progress and stores the one model; every rank returns the same result."""
    t0 = time.monotonic()
    config.validate()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    sync = join(config.device)
    finished = False
    try:
        # registered from the first read of the project to the stored model, not only while fitting
        with core_share.session(config.num_threads):
            res = _train(Path(project_path), config, progress if sync.main else None, should_stop, sync, t0, extra)
        finished = True
        return res
    finally:
        sync.close(finished)


def _train(project_path: Path, config: TrainConfig, progress: ProgressFn | None, should_stop: StopFn | None,
           sync: Local, t0: float, extra: dict[str, Any] | None = None) -> TrainResult:
    mine: dict[str, Any] = {}

    def read() -> Start:  # rank 0 keeps its initializer; the others receive plain data
        prep = prepare(project_path, config, progress, should_stop, sync.world_size)
        mine["init"] = prep.init
        return dataclasses.replace(prep, init=None)
    prep = on_main(sync, read)
    config, pretrained, source, warnings, snap = prep.config, prep.pretrained, prep.source, prep.warnings, prep.snap
    if snap is None:
        return TrainResult(None, {}, True, pretrained, warnings=warnings, seconds=time.monotonic() - t0)
    template = prep.template
    init = mine.get("init") or (lambda: copy.deepcopy(template))
    stop = sync.stop(should_stop)  # every rank answers the same (a collective under torchrun)
    targets = snap.part_targets()
    # A warm start keeps its parent's split (a fresh draw would leak the parent's training parts into
    # this test split); rank 0 reads the parent's card, the other ranks receive the split.
    split = on_main(sync, lambda: draw_split(project_path, config, [p.part_id for p in snap.parts], targets,
                                             snap.part_groups()))
    warnings.extend(check_split(split, targets))
    metrics: dict[str, Any] = {}
    info: dict[str, Any] = {}
    try:
        if config.folds >= 2:  # inside the parts outside the test split: k-fold keeps an outer test set
            outer = np.sort(np.concatenate([split.train, split.val]))
            metrics["cv"] = cross_validate_snapshot(snap, config, init, progress, stop, outer, sync)
        model, rep, history, best_epoch, test_rep = fit_split(
            snap, split.train, split.val, config, init, progress, stop, test_parts=split.test, sync=sync, info=info)
    except Cancelled as exc:
        return TrainResult(None, metrics, True, pretrained, exc.history, warnings=warnings,
                           seconds=time.monotonic() - t0)
    if stop is not None and stop():
        return TrainResult(None, metrics, True, pretrained, history, warnings=warnings, seconds=time.monotonic() - t0)

    def store() -> TrainResult:
        from .registry import register_model
        ids = [p.part_id for p in snap.parts]
        test_ids = [ids[int(i)] for i in split.test]
        held = {"val": held_out(rep, [ids[int(i)] for i in split.val])}
        if test_rep is not None:
            held["test"] = held_out(test_rep, test_ids)
        if config.encoder and test_ids:  # pretraining saw these views, unlabelled
            from .pretrain import encoder_test_overlap
            seen = encoder_test_overlap(project_path, config.encoder, test_ids)
            if seen:
                warnings.append(seen)
        split_record = {**split.ids(ids), "group_by": config.group_by, "split_field": config.split_field,
                        "val_fraction": config.val_fraction,
                        "test_fraction": config.test_fraction, "seed": config.seed}
        if progress is not None:
            progress(Progress("save", 1, 1, "saving model"))
        seconds = time.monotonic() - t0
        # A budgeted run that found itself short after epoch 1 says so where the recipe's choices are.
        note = {**prep.note, **{k: info[k] for k in ("augment_why", "mask_guide") if k in info}}
        # The card's config is what trained the stored model: a short run's flips, from epoch 2 on
        # (augment_why says so), not the full set that the recipe resolved before the first epoch.
        ran = dataclasses.replace(config, augment=info["augment"]) if "augment" in info else config
        card, activated = register_model(project_path, model, get_backbone(config.arch), ran, snap, held,
                                         metrics.get("cv"), len(split.train), history, best_epoch, pretrained,
                                         source, seconds, warnings, split_record, {"recipe": note, **(extra or {})},
                                         world_size=sync.world_size, global_batch=int(info.get("global_batch", 0)))
        for name, m in held.items():
            metrics[name] = m.report
        metrics["split"] = {"train_parts": len(split.train), "val_parts": len(split.val),
                            "test_parts": len(split.test), "val_part_ids": held["val"].part_ids,
                            "test_part_ids": held["test"].part_ids if "test" in held else [],
                            "group_by": config.group_by, "split_field": config.split_field,
                            "headline": "test" if "test" in held else "val"}
        return TrainResult(card.id, metrics, False, pretrained, history, card.threshold, source, activated,
                           seconds, warnings, card)
    return on_main(sync, store)  # rank 0 alone writes the project


def cross_validate_snapshot(snap: Snapshot, config: TrainConfig, init: Callable[[], nn.Module],
                            progress: ProgressFn | None, should_stop: StopFn | None,
                            positions: np.ndarray | None = None, sync: Local | None = None) -> dict[str, Any]:
    """k-fold by part (groups kept whole) over `positions` (default: every part; train() passes
    the parts outside the test split): per-fold validation reports and mean +- std (raises
    Cancelled)."""
    pos = np.arange(len(snap.parts)) if positions is None else np.asarray(positions, dtype=np.int64)
    groups = snap.part_groups()
    folds = kfold(snap.part_targets()[pos], config.folds, config.seed,
                  [groups[int(i)] for i in pos] if groups is not None else None)
    if config.budget_s:  # the folds and the final model share the budget
        config = dataclasses.replace(config, budget_s=config.budget_s / (len(folds) + 1))
    reports = []
    for k, (tr, va) in enumerate(folds):
        _, rep, hist, best, _ = fit_split(snap, pos[tr], pos[va], config, init, progress, should_stop,
                                          label=f"fold {k + 1}/{len(folds)}: ", sync=sync)
        for key in ("_part_scores", "_part_targets", "_part_ng", "_part_probs", "_part_labels",
                    "_part_class_max"):
            rep.pop(key, None)
        reports.append({**{k2: v for k2, v in rep.items() if k2 != "views"}, "best_epoch": best, "epochs_run": len(hist)})
    return {"folds": len(folds), "summary": mean_std(reports), "per_fold": reports}


__all__ = [
    "AugmentConfig",
    "TrainConfig",
    "TrainResult",
    "TrainStep",
    "evaluate",
    "fit_split",
    "train",
    "train_one_epoch",
]
