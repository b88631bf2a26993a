"""The project's model registry: stores each model with its card, compares them.

Models live inside the project file (store.save_model): checkpoint bytes + the model card
(training.card.ModelCard as JSON). The card is everything needed to use and to judge a model
later; readers get it back with training.card.read_card / read_cards.
"""
from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from labeling.store import Project

from .backbones import BackboneSpec, GrayConv2d, Head, first_conv_name, single_channel_stem
from .card import EpochMetrics, ModelCard, SplitMetrics, Timings
from .checkpoint import sha256, to_bytes
from .config import TrainConfig
from .data import IMAGENET_MEAN, IMAGENET_STD
from .errors import TrainingError
from .metrics import column_width, verdict_figures
from .snapshot import Snapshot


def new_model_id(arch: str) -> str:
    """Readable and unique: arch, UTC time, 4 random hex digits."""
    return f"{arch}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def register_model(project_path: str | Path, model: nn.Module, spec: BackboneSpec, config: TrainConfig,
                   snap: Snapshot, metrics: dict[str, SplitMetrics], cv: dict[str, Any] | None, train_parts: int,
                   history: list[EpochMetrics], best_epoch: int, pretrained: bool, source: str | None,
                   seconds: float, warnings: Sequence[str], split: dict[str, Any] | None = None,
                   extra: dict[str, Any] | None = None, world_size: int = 1,
                   global_batch: int = 0) -> tuple[ModelCard, bool]:
    """Store a trained model; it becomes active if the project has none. Returns (card, activated).

    ``split`` is training.splits' record (part ids per set, group_by, fractions, seed);
    ``world_size`` the processes that trained it (training.distributed), ``global_batch`` the
    views of one step over all of them."""
    from .pruning import structure_of
    # A model warm-started from a pruned one keeps its channel counts: store them with it
    n_out = len(snap.output_names)
    own = structure_of(model)
    head = config.head()
    ref = spec.build_meta(n_out, head)
    if isinstance(model.get_submodule(first_conv_name(model)), GrayConv2d):
        single_channel_stem(ref, spec)  # a gray stem alone is no pruned structure (build_for_state knows it)
    data = to_bytes(model, spec.name, n_out, own if own != structure_of(ref) else None, head)
    val = metrics.get("val")
    extra = dict(extra or {})
    if val is not None and val.get("thresholds"):
        extra["thresholds"] = list(val.get("thresholds"))  # multilabel: per class, from validation
    card = ModelCard(
        id=new_model_id(spec.name), arch=spec.name, task=snap.task, freeze=config.freeze,
        classes=list(snap.output_names), input_size=tuple(snap.input_size), fit=snap.fit,
        mean=tuple(IMAGENET_MEAN), std=tuple(IMAGENET_STD), rois=dict(snap.rois),
        threshold=float(val.get("threshold", 0.5)) if val else 0.5, part_rule="max", metrics=dict(metrics),
        cv=cv, train_parts=train_parts, history=list(history), best_epoch=best_epoch, dataset=snap.meta(),
        pretrained=bool(pretrained), pretrained_source=source, parent=config.warm_start, created=time.time(),
        timings=Timings(float(seconds), [h.seconds for h in history]), target_layer=spec.target_layer,
        checkpoint_sha256=sha256(data), warnings=list(warnings), config=config.to_dict(),
        split=dict(split or {}), cameras=snap.cameras(), extra=extra, world_size=int(world_size),
        global_batch=int(global_batch))
    project = Project.open(project_path)
    project.save_model(card.id, card.to_meta(), data)
    activated = not project.active_model_id
    if activated:
        project.set_active_model(card.id)
    return card, activated


def register_pruned(project_path: str | Path, model: nn.Module, parent: ModelCard, structure: dict[str, list[int]],
                    metrics: dict[str, SplitMetrics], history: list[EpochMetrics], best_epoch: int,
                    threshold: float, seconds: float, extra: dict[str, Any]) -> ModelCard:
    """Store a pruned model as a child of `parent` (same data, ROIs, input; its own weights,
    channel counts, metrics and recipe in ``extra``). Never made active by itself: the user
    picks the trade-off from the lineage table."""
    data = to_bytes(model, parent.arch, len(parent.classes), structure, Head.of_config(parent.config))
    card = dataclasses.replace(
        parent, id=new_model_id(parent.arch), metrics=dict(metrics), threshold=float(threshold), cv=None,
        history=list(history), best_epoch=best_epoch, parent=parent.id, created=time.time(),
        timings=Timings(float(seconds), [h.seconds for h in history]), checkpoint_sha256=sha256(data),
        extra=dict(extra), warnings=[])
    Project.open(project_path).save_model(card.id, card.to_meta(), data)
    return card


def _fmt(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def comparison_rows(cards: list[ModelCard], active: str | None) -> list[dict[str, Any]]:
    """One flat row per model: the figures the studies compare backbones by.

    The verdict figures (accuracy, NG recall, AUC, ...) of a class or multilabel model are those
    of its derived OK/NG verdict, so any two models can be compared on them; macro F1 is the
    task's own (classes: over OK + defect classes; multilabel: over the classes). Where a split
    has parts of one verdict only, the figures that need both are left out (None)."""
    rows = []
    for c in cards:
        val = c.headline  # the test split's figures; validation for a card from before the test split
        v = verdict_figures(val.report.get("verdict") or val.report)  # a class model: its derived verdict
        cv = (c.cv or {}).get("summary", {})
        vv = verdict_figures(c.val.report.get("verdict") or c.val.report)
        rows.append({
            "id": c.id, "active": c.id == active, "task": c.task, "arch": c.arch, "freeze": c.freeze,
            "pretrained": c.pretrained, "imagenet": c.imagenet, "start": c.start, "split": c.headline_split,
            "val_balanced_accuracy": vv.get("balanced_accuracy"),
            "input": "x".join(str(x) for x in c.input_size),
            "parts": c.dataset.get("n_parts"), "accuracy": v.get("accuracy"),
            "balanced_accuracy": v.get("balanced_accuracy"), "ng_recall": v.get("ng_recall"),
            "ng_precision": v.get("ng_precision"), "roc_auc": v.get("roc_auc"), "pr_auc": v.get("pr_auc"),
            "kappa": v.get("kappa"), "macro_f1": val.get("macro_f1"), "threshold": c.threshold,
            "dice": val.get("dice"),
            "cv_balanced_accuracy": cv.get("balanced_accuracy"), "created": c.created, "parent": c.parent,
        })
    return rows


def comparison_table(cards: list[ModelCard], active: str | None) -> str:
    """A text table across the project's models (the corrosion/X-ray/steel studies' layout), one
    block per task: models are ranked against models of their own task."""
    rows = comparison_rows(cards, active)
    if not rows:
        return "no models yet: run `okng train PROJECT`"
    # Ids are arch + time + hex (mobilenet_v3_small-...: 38 characters): the column fits the
    # longest one plus a gap, so an id never runs into the arch column.
    idw = max(len("id"), *(len(r["id"]) for r in rows)) + 2
    archw = max(len("arch"), *(len(str(r["arch"])) for r in rows)) + 2
    # ... and so do the other text columns (an input of 1263x500 is 8 characters).
    fw, sw, iw = (column_width(k, *(r[k] for r in rows), gap=1) for k in ("freeze", "start", "input"))
    head = f"{'':2}{'id':<{idw}}{'arch':<{archw}}{'freeze':<{fw}}{'start':<{sw}}{'input':<{iw}}{'parts':>6} {'on':<5}" \
           f"{'acc':>7}{'bal':>7}{'NGrec':>7}{'NGprec':>7}{'AUC':>7}{'PR-AUC':>7}{'kappa':>7}{'thr':>6}" \
           f"{'mF1':>7}{'val bal':>9}{'dice':>7}  cv bal acc"
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    lines = []
    for task in tasks:
        if len(tasks) > 1 or task != "verdict":
            lines.append(f"task {task}" + ("" if task == "verdict" else " (verdict figures: its derived OK/NG)"))
        lines.append(head)
        for r in (r for r in rows if r["task"] == task):
            cv = r["cv_balanced_accuracy"]
            cvs = f"{cv['mean']:.3f} +- {cv['std']:.3f}" if cv else "-"
            lines.append(f"{'*' if r['active'] else ' ':2}{r['id']:<{idw}}{r['arch']!s:<{archw}}{r['freeze']!s:<{fw}}"
                         f"{r['start']:<{sw}}{r['input']:<{iw}}{r['parts']!s:>6} {r['split']:<5}"
                         f"{_fmt(r['accuracy']):>7}{_fmt(r['balanced_accuracy']):>7}{_fmt(r['ng_recall']):>7}"
                         f"{_fmt(r['ng_precision']):>7}{_fmt(r['roc_auc']):>7}{_fmt(r['pr_auc']):>7}"
                         f"{_fmt(r['kappa']):>7}{_fmt(r['threshold'], 2):>6}{_fmt(r['macro_f1']):>7}"
                         f"{_fmt(r['val_balanced_accuracy']):>9}{_fmt(r['dice']):>7}  {cvs}")
    lines.append("figures on the held-out TEST parts ('on' test); 'on' val: a model from before the "
                 "test split, scored on the validation parts that chose its epoch (optimistic)")
    if any(r["balanced_accuracy"] is None and r["accuracy"] is not None for r in rows):
        lines.append("'-' in bal/AUC/kappa: its parts were all NG (or all OK), so those verdict figures "
                     "do not exist; compare such models by mF1")
    return "\n".join(lines)


def activate(project_path: str | Path, model_id: str, runtime: str | None = None) -> None:
    """Make a model the one live sort uses (and, when given, the runtime it runs on)."""
    if runtime is not None:
        set_runtime(project_path, model_id, runtime)
    Project.open(project_path).set_active_model(model_id)


def set_runtime(project_path: str | Path | Project, model_id: str, runtime: str) -> ModelCard:
    """Record on the card which runtime live sort and prediction use for this model (the
    checkpoint is stored again unchanged: the card lives next to it). A Project given is
    written through (the window's, from its store writer)."""
    from .card import read_card
    from .runtime import RUNTIMES
    if runtime not in RUNTIMES:
        raise TrainingError(f"unknown runtime {runtime!r} (expected {', '.join(RUNTIMES)})")
    project = project_path if isinstance(project_path, Project) else Project.open(project_path)
    card = dataclasses.replace(read_card(project, model_id), runtime=runtime)
    project.save_model(model_id, card.to_meta(), project.load_checkpoint(model_id))
    return card
