"""`okng train --task segment`: snapshot, split by part, fit, learn the rule, store the card."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from labeling.progress import Progress, ProgressFn, StopFn
from labeling.store import Project

from ..card import EpochMetrics, ModelCard, Timings
from ..checkpoint import from_bytes, sha256, to_bytes
from ..data import IMAGENET_MEAN, IMAGENET_STD
from ..errors import TrainingError
from ..inference import resolve_device
from ..loop import TrainResult, seed_everything
from ..registry import new_model_id
from ..splits import PartSplit, check_split, split_parts
from ..task_metrics import held_out
from . import models
from .config import SegConfig
from .data import load_seg_snapshot
from .loop import Cancelled, evaluate, fit, predict_probs, tune_min_areas, tune_thresholds
from .postprocess import learn_rules


def seg_info(card: ModelCard) -> dict[str, Any]:
    """The segmentation part of a card (extra["segment"]): decoder, encoder, rules, dice history."""
    info = card.extra.get("segment")
    if card.task != "segment" or not isinstance(info, dict):
        raise TrainingError(f"model {card.id} is not a segmentation model (task {card.task})")
    return info


def _initial_model(config: SegConfig, n_classes: int, project_path: Path,
                   warnings: list[str]) -> tuple[torch.nn.Module, bool, str | None]:
    if config.warm_start:
        from ..card import read_card
        proj = Project.open(project_path, readonly=True)
        parent = read_card(proj, config.warm_start)
        info = seg_info(parent)
        if (info["decoder"], info["encoder"], len(parent.classes)) != (config.decoder, config.encoder, n_classes):
            raise TrainingError(f"warm start from {parent.id} needs --encoder {info['encoder']} and the same "
                                f"{len(parent.classes)} defect classes")
        ckpt = from_bytes(proj.load_checkpoint(parent.id), parent.checkpoint_sha256, f"model {parent.id}")
        return models.build(config.decoder, config.encoder, n_classes, ckpt["state_dict"]), parent.pretrained, \
            f"model:{parent.id}"
    model = models.build(config.decoder, config.encoder, n_classes)
    if not config.pretrained:
        warnings.append(f"encoder {config.encoder} trained from scratch (asked for)")
        return model, False, None
    pretrained, source, warning = models.load_imagenet_encoder(model, config.encoder)
    if warning:
        warnings.append(warning)
    return model, pretrained, source


def train(project_path: str | Path, config: SegConfig, progress: ProgressFn | None = None,
          should_stop: StopFn | None = None) -> TrainResult:
    """Train a segmentation model on the project's masks and store it with its card."""
    t0 = time.monotonic()
    config.validate()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    project_path = Path(project_path)
    seed_everything(config.seed)
    snap = load_seg_snapshot(project_path, config.input_size, progress, should_stop, config.group_by)
    if snap is None:
        return TrainResult(None, {}, True, False, seconds=time.monotonic() - t0)
    warnings: list[str] = []
    if snap.skipped:
        warnings.append(f"{len(snap.skipped)} NG parts left out: no mask drawn (parts {snap.skipped[:10]})")
    model, pretrained, source = _initial_model(config, len(snap.classes), project_path, warnings)
    device = resolve_device(config.device)
    model = model.to(device)
    split = split_positions(snap, config)
    warnings.extend(check_split(split, snap.part_targets()))
    train_p, val_p = split.train, split.val
    rules = learn_rules([snap.views[v].mask for v in snap.view_indices(train_p)], snap.classes)
    try:
        model, history, best_epoch = fit(model, snap, train_p, val_p, config, rules, device, progress, should_stop, t0)
    except Cancelled as exc:
        return TrainResult(None, {}, True, pretrained, warnings=warnings, seconds=time.monotonic() - t0,
                           history=[_epoch_row(h) for h in exc.history])
    if should_stop is not None and should_stop():
        return TrainResult(None, {}, True, pretrained, [_epoch_row(h) for h in history], warnings=warnings,
                           seconds=time.monotonic() - t0)
    probs, _ = predict_probs(model, snap, snap.view_indices(val_p), device, config.batch_size)
    learned = rules
    rules = tune_thresholds(snap, val_p, probs, rules)  # per class: best validation dice
    rules = tune_min_areas(snap, val_p, probs, rules)  # per class: best validation verdict
    ids = [p.part_id for p in snap.parts]
    held = {"val": held_out(evaluate(snap, val_p, probs, rules), [ids[int(i)] for i in val_p])}
    if len(split.test):  # the test parts took no part in any choice (epoch, thresholds): the headline
        if progress is not None:
            progress(Progress("test", 0, 1, "scoring the held-out test parts"))
        probs, _ = predict_probs(model, snap, snap.view_indices(split.test), device, config.batch_size)
        held["test"] = held_out(evaluate(snap, split.test, probs, rules), [ids[int(i)] for i in split.test])
    if progress is not None:
        progress(Progress("save", 1, 1, "saving model"))
    seconds = time.monotonic() - t0
    model = model.to("cpu").eval()
    arch = f"{config.decoder}-{config.encoder}"
    data = to_bytes(model, arch, len(snap.classes))
    rows = [_epoch_row(h) for h in history]
    card = ModelCard(
        id=new_model_id(arch), arch=arch, task="segment", freeze="none", classes=list(snap.classes),
        input_size=tuple(snap.input_size), fit="letterbox", mean=tuple(IMAGENET_MEAN), std=tuple(IMAGENET_STD),
        rois=dict(snap.rois), threshold=0.5, part_rule="max", metrics=held, train_parts=len(train_p),
        history=rows, best_epoch=best_epoch, dataset=snap.meta(), pretrained=pretrained, pretrained_source=source,
        parent=config.warm_start, created=time.time(), timings=Timings(seconds, [h.seconds for h in history]),
        checkpoint_sha256=sha256(data), warnings=warnings, config=config.to_dict(),
        cameras=list(dict.fromkeys(v.camera for v in snap.views)),
        split={**split.ids(ids), "group_by": config.group_by, "val_fraction": config.val_fraction,
               "test_fraction": config.test_fraction, "seed": config.seed},
        extra={"segment": {"decoder": config.decoder, "encoder": config.encoder,
                           "rules": [r.to_dict() for r in rules], "area_units": "model-input pixels",
                           # the percentile rule of the training masks, before validation tuned
                           # thresholds (dice) and minimum areas (verdict)
                           "learned_rules": [r.to_dict() for r in learned],
                           "dice_history": [asdict(h) for h in history]}})
    project = Project.open(project_path)
    project.save_model(card.id, card.to_meta(), data)
    activated = False  # a segmentation model never replaces the active classifier by itself
    metrics: dict[str, Any] = {name: m.report for name, m in held.items()}
    metrics["split"] = {"train_parts": len(train_p), "val_parts": len(val_p), "test_parts": len(split.test),
                        "val_part_ids": held["val"].part_ids,
                        "test_part_ids": held["test"].part_ids if "test" in held else [],
                        "group_by": config.group_by, "headline": "test" if "test" in held else "val"}
    return TrainResult(card.id, metrics, False, pretrained, rows, 0.5, source, activated, seconds, warnings, card)


def _epoch_row(h: Any) -> EpochMetrics:
    return EpochMetrics(h.epoch, h.loss, h.val_loss, h.val_accuracy, h.val_balanced_accuracy, None, h.lr, h.seconds)


def set_rules(project: str | Path | Project, model_id: str, edits: list[dict[str, Any]]) -> ModelCard:
    """Edit rules on a stored card: each edit names a class and sets any of threshold, min_area,
    max_area (None or < 0: no limit). A Project given is written through (the window's store
    writer); a path is opened. The CLI's `okng seg-rule` and the Train view's rule table."""
    import dataclasses

    from ..card import read_card
    from .postprocess import AreaRule
    project = project if isinstance(project, Project) else Project.open(project)
    card = read_card(project, model_id)
    info = seg_info(card)
    rules = [AreaRule.from_dict(r) for r in info["rules"]]
    names = [r.name for r in rules]
    for edit in edits:
        cls = edit["name"]
        if cls not in names:
            raise TrainingError(f"model {model_id} has no class {cls!r} (classes: {', '.join(names)})")
        kw: dict[str, Any] = {}
        if edit.get("threshold") is not None:
            t = float(edit["threshold"])
            if not 0.0 < t < 1.0:
                raise TrainingError(f"class {cls}: threshold must be between 0 and 1, got {t}")
            kw["threshold"] = t
        if edit.get("min_area") is not None:
            kw["min_area"] = max(0, int(edit["min_area"]))
        if "max_area" in edit:
            mx = edit["max_area"]
            kw["max_area"] = None if mx is None or int(mx) < 0 else int(mx)
        i = names.index(cls)
        rules[i] = dataclasses.replace(rules[i], **kw)
    info["rules"] = [r.to_dict() for r in rules]
    project.save_model(card.id, card.to_meta(), project.load_checkpoint(card.id))
    return card


def set_rule(project_path: str | Path, model_id: str, cls: str, threshold: float | None = None,
             min_area: int | None = None, max_area: int | None = None) -> ModelCard:
    """Edit one class's rule on a stored card (`okng seg-rule`); None leaves a value as it is."""
    edit: dict[str, Any] = {"name": cls, "threshold": threshold, "min_area": min_area}
    if max_area is not None:
        edit["max_area"] = max_area
    return set_rules(project_path, model_id, [edit])


def split_positions(snap: Any, config: SegConfig) -> PartSplit:
    """The train/validation/test split by part, groups kept whole (training.splits, as classifiers)."""
    return split_parts(snap.part_targets(), config.val_fraction, config.test_fraction, config.seed,
                       snap.part_groups())
