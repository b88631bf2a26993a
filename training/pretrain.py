"""Self-supervised pretraining on a project's own images, for plants without ImageNet.

Every view of every part counts, labelled or not. Two objectives, chosen by name (METHODS):
- "simclr": two augmented crops of the same view are pulled together and crops of other views
  pushed apart (SimCLR's NT-Xent loss, Chen et al. 2020);
- "mim": hidden patches are rebuilt from the visible ones (SimMIM, training.pretrain_mim), which
  needs no contrast between images (views that all look alike still teach it).
Both are written plainly rather than taken from a library: each is ~40 lines, needs no momentum
encoder or predictor to tune, and adds no dependency to the plant PC.

The run is budgeted in seconds (the LR follows elapsed time: warm-up then cosine), reports
``labeling.progress.Progress`` and stops cleanly on ``should_stop``, returning what it finished.
The encoder (the backbone without its classifier head) is stored in the project's own
``/encoders/<id>`` group (see save_encoder for why not /models); a training run starts from it
with::

    state, meta = load_encoder(project, "latest")           # or an encoder id
    model = training.backbones.build_from_encoder(meta["arch"], num_classes, state)

and its model card's pretrained source reads ``meta["source"]`` ("self-supervised on N images
of this project").
"""
from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from labeling.h5io import transaction
from labeling.progress import Progress, ProgressFn, StopFn, never_stop, no_progress
from labeling.store import Project, ProjectError

from . import core_share
from .backbones import BackboneSpec, encoder_state, get_backbone, single_channel_stem
from .card import read_card
from .errors import TrainingError
from .pretrain_mim import MaskedImage, mean_fill_error, mim_check, mim_crop, random_mask, standardise
from .recipe import project_views, square_size_for

ENCODER_KIND = "encoder"
ENCODER_FORMAT = 1


@dataclass(frozen=True)
class PretrainSpec:
    """What to pretrain. ``short``: the side each view is scaled to before cropping, aspect kept
    (never upscaled); None stretches every view into the square a from-scratch `okng train` uses
    (training.recipe.square_size_for), so the encoder sees a crack at the width the classifier
    will. ``crop`` is the square crop side the encoder sees; ``gray`` None = decide from the
    views (1-channel stem when every view is grayscale)."""

    project: str
    arch: str = "resnet18"
    # A METHODS name. MIM by default: it learned on both development sets (KolektorSDD 7.5-9 %
    # below its no-learning reference, bsdata 61 %) where SimCLR stayed at chance on KolektorSDD.
    method: str = "mim"
    budget_s: float = 1800.0
    short: int | None = None  # None: stretched into okng train's from-scratch square
    crop: int = 96
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    gray: bool | None = None
    seed: int = 0
    num_threads: int = 0  # 0: the fair share of the cores (training.core_share)
    bf16: bool | None = None  # None: bf16 autocast where the CPU has native bf16 (avx512_bf16/amx)
    save: bool = True
    encoder_id: str | None = None  # None: "encoder-<arch>-<timestamp>"
    part_ids: tuple[int, ...] | None = None  # None: every part (labelled or not)
    # A run stopped through should_stop before its budget stores what it learned (a caller that
    # wants the encoder so far); False: a stop stores nothing, as the window's Cancel promises.
    keep_stopped: bool = True


@dataclass
class PretrainResult:
    """What a pretraining run did; ``encoder_id`` is None when nothing was stored."""

    arch: str
    encoder_id: str | None
    n_images: int
    channels: int
    steps: int
    seconds: float
    stopped: bool
    losses: list[float] = field(default_factory=list)
    source: str = ""
    # The loss of an encoder that learned nothing: SimCLR's NT-Xent of embeddings that tell no
    # pair apart, ln(2N - 1); SimMIM's error of filling hidden patches with the image mean.
    chance_loss: float | None = None
    learned: bool | None = None  # None: too few steps to tell
    note: str = ""
    input: str = ""  # how the views were sized before cropping
    method: str = "simclr"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- images

def _scaled(img: np.ndarray, short: int | None, gray: bool, fit: tuple[int, int] | None = None) -> np.ndarray:
    """One view as uint8 (C, H, W): stretched to `fit` (h, w) when given (shrunk sides only),
    else short side `short` (never upscaled)."""
    if img.dtype != np.uint8:  # 16-bit X-ray: stretch its own range into 8 bits
        lo, hi = np.percentile(img, (0.5, 99.5))
        img = np.clip((img.astype(np.float32) - lo) * (255.0 / max(1.0, hi - lo)), 0, 255).astype(np.uint8)
    if img.ndim == 3 and gray:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    elif img.ndim == 2 and not gray:
        img = np.repeat(img[..., None], 3, axis=2)
    h, w = img.shape[:2]
    if fit is not None:
        th, tw = min(h, fit[0]), min(w, fit[1])
        if (th, tw) != (h, w):
            img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
    elif short is not None and short < min(h, w):
        s = short / min(h, w)
        img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return img[None] if img.ndim == 2 else img.transpose(2, 0, 1)


def project_images(project: Project, short: int | None, gray: bool | None = None,
                   part_ids: tuple[int, ...] | None = None,
                   fit: tuple[int, int] | None = None) -> tuple[list[np.ndarray], bool]:
    """Every view of the chosen parts (all by default) as uint8 (C, H, W), inside its camera's
    ROI when one is set; returns the images and whether they were taken as grayscale."""
    parts = project.parts() if part_ids is None else [project.part(i) for i in part_ids]
    rois = project.settings.rois
    if gray is None:
        gray = all(len(v.shape) == 2 for p in parts for v in p.views)
    out = []
    for p in parts:
        for v in p.views:
            out.append(_scaled(project.read_image(p.id, v.index, rois.get(v.camera)), short, gray, fit))
    return out, gray


# ---------------------------------------------------------------- SimCLR

class _Views:
    """Two random augmentations of each image: resized crop, flips, 90-degree turns, brightness
    and contrast, blur. Turns are safe for inspection images (a crack has no up)."""

    def __init__(self, images: list[np.ndarray], crop: int, seed: int) -> None:
        self.images, self.crop = images, crop
        self.rng = np.random.default_rng(seed)
        self.torch_rng = torch.Generator().manual_seed(seed)  # masks, reproducible per seed

    def one(self, img: np.ndarray) -> np.ndarray:
        r = self.rng
        c, h, w = img.shape
        side = int(min(h, w) * math.sqrt(r.uniform(0.2, 1.0)))
        side = max(8, min(side, h, w))
        y, x = int(r.integers(0, h - side + 1)), int(r.integers(0, w - side + 1))
        patch = img[:, y:y + side, x:x + side].transpose(1, 2, 0)
        patch = cv2.resize(patch, (self.crop, self.crop), interpolation=cv2.INTER_AREA)
        patch = patch.reshape(self.crop, self.crop, c).astype(np.float32) / 255.0
        if r.random() < 0.5:
            patch = patch[:, ::-1]
        patch = np.rot90(patch, int(r.integers(0, 4)))
        if r.random() < 0.3:
            patch = cv2.GaussianBlur(np.ascontiguousarray(patch), (0, 0), r.uniform(0.3, 1.5))
            patch = patch.reshape(self.crop, self.crop, c)
        mean = patch.mean()
        patch = (patch - mean) * r.uniform(0.6, 1.4) + mean + r.uniform(-0.2, 0.2)
        return np.ascontiguousarray(patch.transpose(2, 0, 1))

    def _draw(self, n: int) -> np.ndarray:
        return self.rng.choice(len(self.images), size=n, replace=len(self.images) < n)

    def _stack(self, idx: np.ndarray) -> torch.Tensor:
        return _norm(torch.from_numpy(np.stack([self.one(self.images[i]) for i in idx])))

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Two views of each of n images (SimCLR's pairs)."""
        idx = self._draw(n)
        return self._stack(idx), self._stack(idx)

    def single(self, n: int) -> torch.Tensor:
        """One view of each of n images."""
        return self._stack(self._draw(n))


def _norm(x: torch.Tensor) -> torch.Tensor:
    # The same fixed normalisation recipe_scratch and a from-scratch run use (no ImageNet stats).
    return (x - 0.5) / 0.25


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised-temperature cross entropy over 2N embeddings."""
    z = nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / temperature
    n = z1.shape[0]
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return nn.functional.cross_entropy(sim, target)


class _Encoder(nn.Module):
    """The backbone up to its pooled features, plus SimCLR's projection MLP."""

    def __init__(self, model: nn.Module, head: str, dim: int = 128) -> None:
        super().__init__()
        self.model = model
        old = model.get_submodule(head)
        parent, _, name = head.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, name, nn.Identity())
        self.proj = nn.Sequential(nn.Linear(old.in_features, 512), nn.ReLU(), nn.Linear(512, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.model(x))


def cpu_has_bf16() -> bool:
    """True when this CPU computes bf16 natively (avx512_bf16 or AMX): there bf16 autocast
    measured ~25 % faster training steps (with channels_last) than fp32; elsewhere it is emulated."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _lr_factor(frac: float, warmup: float = 0.1) -> float:
    if frac < warmup:
        return 0.1 + 0.9 * frac / warmup
    t = min(1.0, (frac - warmup) / (1 - warmup))
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t))


# A contrastive loss that ends within 3 % of chance has not told the views apart: measured on
# KolektorSDD (commutators that all look alike), SimCLR's loss stayed at 4.12-4.14 against
# ln(63) = 4.14 over 150 steps whatever the temperature (0.1-0.5) or crop range; on bsdata it
# fell to 3.9 in the same time.
LEARNED_BELOW_CHANCE = 0.03


def learning_check(losses: list[float], batch: int) -> tuple[float, bool | None, str]:
    """(chance loss, learned?, a sentence for the user) from a run's losses at this batch size:
    the mean of the last tenth of the steps against ln(2 * batch - 1), the NT-Xent of embeddings
    that tell no pair apart. None when under 20 steps ran (too few to tell)."""
    chance = math.log(2 * batch - 1)
    if len(losses) < 20:
        return chance, None, f"only {len(losses)} steps: too few to tell whether the encoder learned"
    tail = losses[-max(5, len(losses) // 10):]
    end = sum(tail) / len(tail)
    below = 1.0 - end / chance
    if below >= LEARNED_BELOW_CHANCE:
        return chance, True, f"loss ended at {end:.3f}, {below:.0%} below chance ({chance:.3f}): the views were told apart"
    return chance, False, (f"loss ended at {end:.3f}, at chance level ({chance:.3f}): the encoder did not learn to "
                           "tell these views apart (views that all look alike, or too short a run); a model "
                           "started from it starts about as from scratch")


# ---------------------------------------------------------------- methods

@dataclass(frozen=True)
class Method:
    """One self-supervised objective: how it wraps the classifier, the crop side it needs, one
    step's loss with the no-learning reference of that batch, its verdict on a run, and how a
    run that did not learn is named in okng train's warning (one clause: the warning is read
    in a terminal line and in the Train view's outcome box beside the run's other figures)."""

    label: str
    flat: str
    build: Callable[[nn.Module, BackboneSpec, int, int], nn.Module]  # (model, backbone, channels, crop)
    crop: Callable[[int], int]
    step: Callable[[nn.Module, _Views, int, bool], tuple[torch.Tensor, float]]  # (net, views, batch, bf16)
    check: Callable[[list[float], list[float], int], tuple[float, bool | None, str]]  # (losses, refs, batch)


def _simclr_step(net: nn.Module, views: _Views, bs: int, bf16: bool) -> tuple[torch.Tensor, float]:
    a, b = (v.contiguous(memory_format=torch.channels_last) for v in views.batch(bs))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        za, zb = net(a), net(b)
    return nt_xent(za.float(), zb.float(), SIMCLR_TEMPERATURE), math.log(2 * bs - 1)


def _mim_step(net: nn.Module, views: _Views, bs: int, bf16: bool) -> tuple[torch.Tensor, float]:
    x = standardise(views.single(bs))
    mask = random_mask(bs, x.shape[-1], views.torch_rng)
    return net.loss(x.contiguous(memory_format=torch.channels_last), mask, bf16), mean_fill_error(x, mask)


SIMCLR_TEMPERATURE = 0.2  # SimCLR's usual value; 0.1 and 0.5 left KolektorSDD at chance all the same

METHODS: dict[str, Method] = {
    "simclr": Method("SimCLR", "its loss stayed at chance level",
                     lambda model, bb, ch, crop: _Encoder(model, bb.head), lambda c: c,
                     _simclr_step, lambda losses, refs, bs: learning_check(losses, bs)),
    "mim": Method("masked-image (SimMIM)", "its reconstruction was no better than the image mean",
                  MaskedImage, mim_crop, _mim_step, lambda losses, refs, bs: mim_check(losses, refs)),
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise TrainingError(f"unknown pretraining method {name!r} (known: {', '.join(METHODS)})")
    return METHODS[name]


def pretrain_images(images: list[np.ndarray], spec: PretrainSpec, progress: ProgressFn = no_progress,
                    should_stop: StopFn = never_stop) -> tuple[dict[str, torch.Tensor], PretrainResult]:
    """spec.method on in-memory uint8 (C, H, W) images for spec.budget_s seconds: the encoder
    state (backbone without head, keys as in the classifier) and what was done."""
    method = get_method(spec.method)
    if len(images) < 2:
        raise TrainingError(f"self-supervised pretraining needs at least 2 images, got {len(images)}")
    channels = images[0].shape[0]
    if any(im.shape[0] != channels for im in images):
        raise TrainingError("images mix channel counts")
    if spec.num_threads:
        torch.set_num_threads(spec.num_threads)
    torch.manual_seed(spec.seed)
    backbone = get_backbone(spec.arch)
    model = backbone.build(2)
    if channels == 1:
        single_channel_stem(model, backbone)
    crop = method.crop(spec.crop)
    net = method.build(model, backbone, channels, crop).to(memory_format=torch.channels_last)
    bf16 = cpu_has_bf16() if spec.bf16 is None else spec.bf16
    opt = torch.optim.AdamW(net.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    views = _Views(images, crop, spec.seed)
    bs = max(2, min(spec.batch_size, len(images)))
    t0 = time.monotonic()
    progress(Progress("pretrain", 0, int(spec.budget_s), f"{method.label} on {len(images)} images"))
    net.train()
    with core_share.session(spec.num_threads):
        losses, refs, stopped = _steps(method, net, views, opt, spec, bs, bf16, t0, progress, should_stop)
    state = encoder_state(model, backbone)  # without the head (SimCLR's slot holds an Identity)
    chance, learned, note = method.check(losses, refs, bs)
    result = PretrainResult(spec.arch, None, len(images), channels, len(losses),
                            round(time.monotonic() - t0, 1), stopped, losses, "", round(chance, 4), learned, note,
                            method=spec.method)
    return state, result


def _steps(method: Method, net: nn.Module, views: _Views, opt: torch.optim.Optimizer, spec: PretrainSpec,
           bs: int, bf16: bool, t0: float, progress: ProgressFn, should_stop: StopFn,
           ) -> tuple[list[float], list[float], bool]:
    """Optimiser steps until the budget is spent or a stop is asked: (losses, references, stopped)."""
    losses: list[float] = []
    refs: list[float] = []
    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= spec.budget_s:
            return losses, refs, False
        if should_stop():
            return losses, refs, True
        core_share.rebalance()  # another run started or ended on this machine: take the fair share
        for g in opt.param_groups:
            g["lr"] = spec.lr * _lr_factor(elapsed / spec.budget_s)
        loss, ref = method.step(net, views, bs, bf16)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(round(loss.item(), 4))
        refs.append(round(ref, 4))
        done = min(int(spec.budget_s), int(time.monotonic() - t0))
        progress(Progress("pretrain", done, int(spec.budget_s), f"step {len(losses)} loss {losses[-1]:.3f}",
                          {"step": len(losses), "loss": losses[-1]}))


def pretrain(spec: PretrainSpec, progress: ProgressFn = no_progress,
             should_stop: StopFn = never_stop) -> PretrainResult:
    """Pretrain an encoder on every view of the project for spec.budget_s seconds and (unless
    spec.save is False or nothing was learned) store it in the project."""
    project = Project.open(spec.project, readonly=not spec.save)
    progress(Progress("load", 0, None, "reading the project's views"))
    # The encoder learns at the scale the classifier will train at (training.recipe's square
    # rule for a from-scratch run), so the features it finds (a crack's width in px) are the ones
    # the supervised run sees. The rule counts labelled views; a project with none uses them all.
    fit = None
    if not spec.short:
        shapes = project_views(spec.project)()[0] or project_views(spec.project, labelled_only=False)()[0]
        fit = square_size_for(shapes)
    # The parts whose views the encoder sees, kept with it: a model trained from it later says
    # how many of its test parts were among them (encoder_test_overlap).
    seen = spec.part_ids if spec.part_ids is not None else tuple(p.id for p in project.parts())
    images, gray = project_images(project, spec.short, spec.gray, seen, fit)
    progress(Progress("load", len(images), len(images), f"{len(images)} views ({'gray' if gray else 'RGB'})"))
    state, result = pretrain_images(images, spec, progress, should_stop)
    result.source = f"self-supervised on {result.n_images} images of this project"
    result.input = f"{fit[0]}x{fit[1]} stretched" if fit else f"short side {spec.short} (aspect kept)"
    if spec.save and result.steps > 0 and (spec.keep_stopped or not result.stopped):
        result.encoder_id = save_encoder(project, state, result, spec, seen)
        progress(Progress("save", 1, 1, f"stored encoder {result.encoder_id}"))
    return result


# ---------------------------------------------------------------- storage
# Encoders live in their own group, /encoders/<id> (attrs meta JSON, dataset state as torch.save
# bytes), written through the store's own transaction (same lock, same flush). Not under /models:
# every /models entry is read as a classifier's model card (training.card.read_cards), so an
# encoder there would be listed, activated and predicted with. The store's API is untouched.
ENCODERS_GROUP = "encoders"


def save_encoder(project: Project, state: dict[str, torch.Tensor], result: PretrainResult,
                 spec: PretrainSpec, part_ids: tuple[int, ...] | None = None) -> str:
    """Store an encoder in the project's /encoders group, with the ids of the parts it saw
    (a dataset: an attribute's 64 KiB would cap it near 10,000 parts); returns its id."""
    eid = spec.encoder_id or f"encoder-{spec.arch}-{time.strftime('%Y%m%d-%H%M%S')}"
    buf = io.BytesIO()
    torch.save(state, buf)
    meta = {"kind": ENCODER_KIND, "format": ENCODER_FORMAT, "arch": spec.arch, "method": result.method,
            "channels": result.channels, "n_images": result.n_images, "steps": result.steps,
            "seconds": result.seconds, "stopped": result.stopped,
            "final_loss": result.losses[-1] if result.losses else None,
            "source": result.source, "short": spec.short, "crop": spec.crop, "created": time.time(),
            "input": result.input, "chance_loss": result.chance_loss, "learned": result.learned, "note": result.note}
    with transaction(project.path, "a") as f:
        group = f.require_group(ENCODERS_GROUP)
        if eid in group:
            del group[eid]
        g = group.create_group(eid)
        g.create_dataset("state", data=np.frombuffer(buf.getvalue(), dtype=np.uint8))
        if part_ids is not None:
            g.create_dataset("parts", data=np.asarray(part_ids, dtype=np.int64))
        g.attrs["meta"] = json.dumps(meta)
    return eid


def _path(project: Project | str | Path) -> Path:
    return project.path if isinstance(project, Project) else Path(project)


def encoders(project: Project | str | Path) -> list[dict[str, Any]]:
    """The project's encoders' meta (with "id"), oldest first."""
    with transaction(_path(project), "r") as f:
        out = [dict(json.loads(g.attrs["meta"]), id=k) for k, g in f.get(ENCODERS_GROUP, {}).items()]
    return sorted(out, key=lambda m: m.get("created", 0.0))


def resolve_encoder_id(project: Project | str | Path, encoder_id: str, arch: str | None = None) -> str:
    """The id "latest" (of `arch`, when given) stands for now, so a run and its card name the
    encoder it started from even when a newer one is stored meanwhile; an id as it is."""
    if encoder_id != "latest":
        return encoder_id
    found = [m for m in encoders(project) if arch is None or m.get("arch") == arch]
    if not found:
        raise TrainingError(f"no self-supervised encoder{' for ' + arch if arch else ''} in "
                            f"{_path(project).name} (run `okng pretrain`)")
    return str(found[-1]["id"])


def parts_without_test_of(project: Project | str | Path, model_id: str) -> tuple[tuple[int, ...], int]:
    """(every part but the test parts of model `model_id` (its card's split), how many were held
    out): what `okng pretrain --hold-out MODEL` and the Pretrain panel pretrain on, so a model
    trained from the encoder with the same split settings has test figures it never saw.
    TrainingError when there is no such model or it has no test split to hold out."""
    proj = project if isinstance(project, Project) else Project.open(project, readonly=True)
    try:
        test = set(read_card(proj, model_id).split.get("test") or [])
    except ProjectError as exc:
        raise TrainingError(f"{exc} (`okng models` lists them)") from exc
    if not test:
        raise TrainingError(f"model {model_id} has no test split (trained with --test-fraction 0): "
                            "nothing to hold out")
    return tuple(p.id for p in proj.parts() if p.id not in test), len(test)


def encoder_test_overlap(project: Project | str | Path, encoder_id: str, test_ids: list[int]) -> str | None:
    """A warning when the encoder saw views of test parts in pretraining (labels unused): the
    test figures of a model trained from it may then read a little high. None when it saw none,
    or for an encoder stored before the parts were kept (nothing to tell)."""
    with transaction(_path(project), "r") as f:
        g = f.get(ENCODERS_GROUP, {}).get(encoder_id)
        seen = None if g is None or "parts" not in g else set(g["parts"][()].tolist())
    n = len(seen.intersection(test_ids)) if seen else 0
    if not n:
        return None
    return (f"encoder {encoder_id} saw the views of {n} of the {len(test_ids)} test parts in pretraining "
            "(labels unused): the test figures may read a little high; validation and parts captured "
            "after the pretraining are unaffected")


def load_encoder(project: Project | str | Path, encoder_id: str = "latest",
                 arch: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An encoder's state and meta; "latest" = the newest (of `arch`, when given)."""
    path = _path(project)
    encoder_id = resolve_encoder_id(path, encoder_id, arch)
    with transaction(path, "r") as f:
        g = f.get(ENCODERS_GROUP, {}).get(encoder_id)
        if g is None:
            raise TrainingError(f"no encoder {encoder_id!r} in {path.name}")
        meta = dict(json.loads(g.attrs["meta"]), id=encoder_id)
        data = g["state"][()].tobytes()
    state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    return state, meta
