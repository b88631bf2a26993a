"""What a training run starts from, read from the project before the first step: the network's
starting weights (parent model, self-supervised encoder, ImageNet, or random init), the config
the recipe resolves, and the snapshot of the labelled parts.

In a data-parallel run (training.distributed) rank 0 alone calls ``prepare``; the other ranks
receive its ``Start`` (plain data) and never open the project.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from labeling.progress import Progress, ProgressFn, StopFn

from .backbones import BackboneSpec, get_backbone
from .card import origin_of, start_kind
from .config import TrainConfig
from .errors import TrainingError
from .recipe import Views, input_size_why, once, project_views, resolve, training_views
from .snapshot import CLASS_NAMES, Snapshot, load_snapshot
from .tasks import get_task


@dataclass(frozen=True)
class RunStart:
    """Payload of prepare's Progress("start"), sent once the run knows its starting weights
    (before the first step): the Train view then speaks of this run, not of the model before it."""

    arch: str
    pretrained: bool
    source: str | None

    @property
    def start(self) -> str:
        return start_kind(self.pretrained, self.source)

    @property
    def origin(self) -> str:
        return origin_of(self.start, self.source)


@dataclass
class Start:
    """What rank 0 reads from the project before training (all of it, in a single run): shared
    with the other ranks of a data-parallel run, which never open the project."""

    config: TrainConfig
    note: dict
    pretrained: bool
    source: str | None
    warnings: list[str]
    snap: Snapshot | None  # None: stopped while reading
    init: Callable[[], nn.Module] | None = None  # rank 0's only (a closure is not shared)
    template: nn.Module | None = None  # the network's structure for the other ranks (DDP copies rank 0's weights)


def prepare(project_path: Path, config: TrainConfig, progress: ProgressFn | None, should_stop: StopFn | None,
             world_size: int) -> Start:
    spec = get_backbone(config.arch)
    warnings: list[str] = []
    # The task's output count comes from the project's classes (what the snapshot will name):
    # the initializer runs first, as the recipe needs to know whether weights were found.
    n_outputs = task_outputs(project_path, config.task)
    if config.encoder:  # the card names the encoder that trained, not "latest"
        from .pretrain import resolve_encoder_id
        config = dataclasses.replace(config, encoder=resolve_encoder_id(project_path, config.encoder, config.arch))
    init, pretrained, source = initializer(spec, config, project_path, warnings, n_outputs)
    views = once(project_views(project_path))
    config, note = resolve(config, pretrained, views, warnings)
    if affords_probe(config, note):
        config, note = fit_side(config, note, init, views, n_outputs, world_size)
    # The card's "pretrained": the network did not start from random init (ImageNet, a parent
    # model or this project's self-supervised encoder; pretrained_source says which).
    pretrained = pretrained or bool(config.encoder)
    snap = load_snapshot(project_path, config.input_hw(spec.input_size), config.fit, progress, should_stop,
                         task=config.task, group_by=config.group_by)
    if snap is not None and snap.skipped:
        warnings.append(f"{snap.skipped} NG parts without a defect class left out (a {config.task} model "
                        "learns classes)")
    if snap is not None and len(snap.output_names) != n_outputs:
        raise TrainingError("the project's defect classes changed while training started: train again")
    if progress is not None and snap is not None:
        began = RunStart(config.arch, pretrained, source)
        progress(Progress("start", 1, 1, f"{config.arch}: {began.origin}", began))
    template = init() if world_size > 1 and snap is not None else None
    return Start(config, note, pretrained, source, warnings, snap, init, template)


def affords_probe(config: TrainConfig, note: dict) -> bool:
    """A budgeted run whose side the recipe picked (not the user, not a tuner), on a CPU: its
    side is fitted to the steps the budget buys (training.side_probe)."""
    from .inference import resolve_device
    return (bool(note.get("input_size_why")) and bool(config.budget_s) and config.epochs is None
            and config.task != "segment" and resolve_device(config.device).type == "cpu")


def fit_side(config: TrainConfig, note: dict, init: Callable[[], nn.Module], views: Views, n_outputs: int,
             world_size: int) -> tuple[TrainConfig, dict]:
    """The recipe's square side, shrunk where too few steps of it fit the budget on this machine."""
    from .side_probe import choose_side, time_step
    full = config.input_hw(224)[0]
    n = len(views()[0])
    n_train = max(1, training_views(n, config))
    t0 = time.monotonic()
    per_view = time_step(init, config, full, n_outputs)
    probe_s = time.monotonic() - t0  # before the run's clock starts, as the snapshot's reading is
    choice = choose_side(per_view, full, config.batch_size, float(config.budget_s or 0), n_train,
                         int(n * config.val_fraction), world_size)
    note = {**note, "side_why": choice.why(float(config.budget_s or 0)), "side_probe_ms": round(per_view * 1e3, 2),
            "side_probe_s": round(probe_s, 1)}
    if choice.side != full:
        note["input_size_why"] = input_size_why(views()[0], (choice.side, choice.side))
    return dataclasses.replace(config, input_size=(choice.side, choice.side)), note


def initializer(spec: BackboneSpec, config: TrainConfig, project_path: Path,
                 warnings: list[str], n_outputs: int = len(CLASS_NAMES)) -> tuple[Callable[[], nn.Module], bool, str | None]:
    """How to build the starting network: parent model, self-supervised encoder, ImageNet
    weights, or random init. The bool says: pretrained features (ImageNet, or the parent's)."""
    head = config.head()  # a warm start keeps its parent's head (its checkpoint says which)
    if config.warm_start:
        from labeling.store import Project

        from .card import read_card
        from .checkpoint import build_model, from_bytes
        proj = Project.open(project_path, readonly=True)
        parent = read_card(proj, config.warm_start)
        if parent.arch != config.arch:
            raise TrainingError(f"warm start from {config.warm_start} needs --arch {parent.arch}")
        ckpt = from_bytes(proj.load_checkpoint(config.warm_start), parent.checkpoint_sha256,
                          f"model {config.warm_start}")
        state = ckpt["state_dict"]
        if parent.task != config.task:
            raise TrainingError(f"warm start from {config.warm_start} needs --task {parent.task}")
        # build_model: a pruned parent rebuilds with its own channel counts
        return (lambda: build_model({**ckpt, "state_dict": copy.deepcopy(state)}),
                parent.pretrained, f"model:{config.warm_start}")
    if config.encoder:
        from .backbones import build_from_encoder
        from .pretrain import METHODS, load_encoder
        enc, meta = load_encoder(project_path, config.encoder, arch=config.arch)
        if meta.get("arch") != config.arch:
            raise TrainingError(f"encoder {config.encoder} is a {meta.get('arch')}: train with --arch {meta.get('arch')}")
        if meta.get("learned") is False:
            # Short (the encoder's meta, okng pretrain's output, holds the figures). Encoders
            # stored before methods had names are SimCLR's.
            method = METHODS.get(str(meta.get("method", "simclr")))
            why = method.flat if method else "its loss stayed at its no-learning level"
            warnings.append(f"encoder {meta['id']} did not learn in pretraining ({why}): "
                            "expect no gain over training from scratch")
        return (lambda: build_from_encoder(config.arch, n_outputs, enc, head)), False, str(meta["source"])
    if config.freeze == "scratch":
        return (lambda: spec.build(n_outputs, head=head)), False, None
    from .weights import find_pretrained
    state, source = find_pretrained(config.arch)
    if state is None:
        warnings.append(f"trained from scratch: no ImageNet weights found for {config.arch} "
                        f"(install a file with `okng weights import FILE --arch {config.arch}`)")
        return (lambda: spec.build(n_outputs, head=head)), False, None
    if source and not source.startswith("ImageNet"):
        warnings.append(f"started from {source}: its SHA-256 matches none of torchvision's {config.arch} "
                        "weights, so it is not called ImageNet")
    return (lambda: spec.build(n_outputs, copy.deepcopy(state), head)), True, source


def task_outputs(project_path: str | Path, task: str) -> int:
    """How many outputs a model of this task has on this project (its classes)."""
    from labeling.store import Project
    classes = [c.name for c in Project.open(project_path, readonly=True).settings.classes]
    return len(get_task(task).output_names(classes))
