"""The model card: what a stored model is, what it was trained on, how it scored.

The registry writes one ``ModelCard`` per model (as JSON in the project file) and every reader
— inference, evaluate, the Train view, the status bar, ``okng models`` / ``info`` — reads this
one typed record instead of guessing keys of a dict. ``schema`` says which shape was written:
a project from before the card (a plain dict, no ``schema``) is migrated on read
(``ModelCard.from_meta``), and a card from a newer okng is refused with a clear message.

``task`` is "verdict" today (OK/NG per part); the next model kinds ("classes", "multilabel",
"segment") add their values here and carry what only they need in ``extra``.

No torch import here: the GUI and the CLI read cards cheaply.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from labeling.types import ROI

from .errors import TrainingError

SCHEMA = 1
TASKS = ("verdict", "classes", "multilabel", "segment")
DEFAULT_MEAN = (0.485, 0.456, 0.406)  # ImageNet (training.data.IMAGENET_MEAN, kept torch-free here)
DEFAULT_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Curve:
    """Points of a curve swept over every threshold: ROC (x = FPR, y = TPR) or PR (x = recall,
    y = precision)."""

    x: list[float]
    y: list[float]


@dataclass
class SplitMetrics:
    """A model's figures on one split of parts: "val" (chose the epoch and the threshold) and
    "test" (held out from every choice: the headline figures).

    ``report`` is training.metrics.binary_report's record (accuracy, balanced_accuracy, roc_auc,
    pr_auc, kappa, ng_recall, per_class, confusion_matrix, threshold, views ...); the part ids,
    targets and part scores are kept so curves and later thresholds need no re-scoring.
    """

    report: dict[str, Any] = field(default_factory=dict)
    part_ids: list[int] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    roc: Curve | None = None
    pr: Curve | None = None
    # A class or multilabel model: per output name, its one-vs-rest {"roc": Curve, "pr": Curve}.
    classes: dict[str, dict[str, Curve]] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        """One figure of the report (None when the split had one class only, e.g. ROC-AUC)."""
        return self.report.get(key, default)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SplitMetrics:
        def _curve(c: Any) -> Curve | None:
            return Curve(list(c["x"]), list(c["y"])) if isinstance(c, dict) else None
        return cls(dict(d.get("report") or {}), [int(i) for i in d.get("part_ids") or []],
                   [int(t) for t in d.get("targets") or []], [float(s) for s in d.get("scores") or []],
                   _curve(d.get("roc")), _curve(d.get("pr")),
                   {str(n): {k: c for k, c in ((k, _curve(v)) for k, v in (cs or {}).items()) if c is not None}
                    for n, cs in (d.get("classes") or {}).items()})


@dataclass(frozen=True)
class EpochMetrics:
    """One epoch of a run: a history row of the card and the payload of the loop's epoch-end
    Progress."""

    epoch: int
    loss: float
    val_loss: float
    val_accuracy: float
    val_balanced_accuracy: float
    val_roc_auc: float | None
    lr: float
    seconds: float
    val_macro_f1: float | None = None  # class models pick their epoch by it (None: older cards)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EpochMetrics:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw.setdefault("val_roc_auc", None)
        kw.setdefault("val_macro_f1", None)
        for k in names - set(kw):
            kw[k] = 0.0 if k != "epoch" else 0
        return cls(**kw)


@dataclass(frozen=True)
class Timings:
    train_seconds: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)


def start_kind(pretrained: bool, source: str | None) -> str:
    """Where a model's weights started: imagenet (sha256 verified), custom, parent, encoder,
    scratch, or unchecked (a card from before training.weights checked provenance). A card and a
    run that has not stored one yet (training.start.RunStart) answer alike."""
    src = source or ""
    if not pretrained and not src.startswith("model:"):
        return "scratch"
    for prefix, name in (("ImageNet", "imagenet"), ("custom weights", "custom"), ("model:", "parent"),
                         ("self-supervised", "encoder")):
        if src.startswith(prefix):
            return name
    return "unchecked"


def origin_of(kind: str, source: str | None) -> str:
    """The words for a start_kind (the CLI, status bar and Train view)."""
    src = source or ""
    return {"imagenet": src, "custom": src, "parent": f"warm start from {src.removeprefix('model:')}",
            "scratch": "trained from scratch", "encoder": src,
            "unchecked": f"weights {src or '?'} (provenance not checked)"}[kind]


@dataclass
class ModelCard:
    """Everything needed to use and to judge a stored model later."""

    id: str
    arch: str
    task: str = "verdict"
    freeze: str = ""
    classes: list[str] = field(default_factory=lambda: ["OK", "NG"])
    input_size: tuple[int, int] = (224, 224)  # (h, w) of the model input
    fit: str = "letterbox"
    mean: tuple[float, ...] = DEFAULT_MEAN
    std: tuple[float, ...] = DEFAULT_STD
    rois: dict[str, list[int]] = field(default_factory=dict)  # camera -> ROI as recorded at training
    threshold: float = 0.5
    part_rule: str = "max"
    metrics: dict[str, SplitMetrics] = field(default_factory=dict)  # split name ("val", "test") -> figures
    cv: dict[str, Any] | None = None  # k-fold: {"folds", "summary", "per_fold"}
    train_parts: int = 0
    history: list[EpochMetrics] = field(default_factory=list)
    best_epoch: int = 0
    dataset: dict[str, Any] = field(default_factory=dict)  # the snapshot: part ids + labels + hash
    pretrained: bool = False
    pretrained_source: str | None = None
    parent: str | None = None  # the model this one was warm-started from
    created: float = 0.0
    timings: Timings = field(default_factory=Timings)
    target_layer: str = ""
    checkpoint_sha256: str | None = None
    warnings: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # TrainConfig.to_dict()
    extra: dict[str, Any] = field(default_factory=dict)  # what a later task needs (recipe, lineage)
    runtime: str = "torch"  # inference runtime of live sort / prediction: torch | onnxruntime (training.runtime)
    # training.splits' record: part ids per set ("train", "val", "test"), group_by, fractions, seed
    # (empty on a card from before the test split)
    split: dict[str, Any] = field(default_factory=dict)
    cameras: list[str] = field(default_factory=list)  # cameras of the training views, in order
    # Data-parallel training (training.distributed): the processes that trained the model, and
    # the views of one optimiser step summed over them (0: not recorded, a card from before)
    world_size: int = 1
    global_batch: int = 0
    schema: int = SCHEMA

    # ------------------------------------------------------------------ reading
    @property
    def val(self) -> SplitMetrics:
        """The held-out split's figures (empty when the model has none)."""
        return self.metrics.get("val") or SplitMetrics()

    @property
    def test(self) -> SplitMetrics:
        """The held-out test split's figures (empty on a card from before the test split)."""
        return self.metrics.get("test") or SplitMetrics()

    @property
    def headline_split(self) -> str:
        """"test" when the model has test figures, else "val" (an old card: say "validation")."""
        return "test" if self.metrics.get("test") is not None and self.test.report else "val"

    @property
    def headline(self) -> SplitMetrics:
        """The figures to show first everywhere: the test split's, or validation's on old cards."""
        return self.metrics.get(self.headline_split) or SplitMetrics()

    @property
    def headline_name(self) -> str:
        """How a reader names the headline split."""
        return "test (held out)" if self.headline_split == "test" else "validation"

    @property
    def val_part_ids(self) -> list[int]:
        return list(self.val.part_ids)

    @property
    def held_out_part_ids(self) -> list[int]:
        """Parts no choice was made on: the test parts (validation's on an old card)."""
        return list(self.headline.part_ids)

    @property
    def model_cameras(self) -> list[str]:
        """The cameras the model was trained on (an older card: those with a recorded ROI)."""
        return list(self.cameras) or sorted(self.rois)

    @property
    def seen_part_ids(self) -> set[int]:
        """Parts of the training snapshot (training and validation)."""
        return {int(r[0]) for r in self.dataset.get("parts", [])}

    @property
    def ng_index(self) -> int:
        return self.classes.index("NG") if "NG" in self.classes else len(self.classes) - 1

    def roi(self, camera: str) -> ROI | None:
        r = self.rois.get(camera)
        return ROI(*r) if r is not None else None

    @property
    def start(self) -> str:
        """Where the weights started (start_kind)."""
        return start_kind(self.pretrained, self.pretrained_source)

    @property
    def imagenet(self) -> bool:
        """Started from torchvision ImageNet weights whose SHA-256 was verified."""
        return self.start == "imagenet"

    @property
    def origin(self) -> str:
        """What the CLI, status bar and Train view say about the starting weights."""
        return origin_of(self.start, self.pretrained_source)

    # ------------------------------------------------------------------ storing
    def to_meta(self) -> dict[str, Any]:
        """The JSON-able dict stored in the project (store.save_model)."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_meta(cls, meta: dict[str, Any], model_id: str | None = None) -> ModelCard:
        """Read a stored record: a card of this schema, or an old dict migrated."""
        schema = int(meta.get("schema", 0) or 0)
        if schema > SCHEMA:
            raise TrainingError(f"model {model_id or meta.get('id')}: written by a newer okng "
                                f"(model card schema {schema}, this okng reads up to {SCHEMA})")
        d = dict(meta) if schema else _migrate_v0(meta)
        if model_id is not None:
            d["id"] = model_id
        if "arch" not in d or "id" not in d:
            raise TrainingError(f"model {d.get('id', '?')}: the stored record has no architecture")
        if d.get("task", "verdict") not in TASKS:
            raise TrainingError(f"model {d['id']}: unknown task {d['task']!r} (known: {', '.join(TASKS)})")
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["input_size"] = tuple(int(v) for v in kw.get("input_size", (224, 224)))
        kw["mean"] = tuple(float(v) for v in kw.get("mean", DEFAULT_MEAN))
        kw["std"] = tuple(float(v) for v in kw.get("std", DEFAULT_STD))
        kw["rois"] = {str(k): [int(x) for x in v] for k, v in (kw.get("rois") or {}).items()}
        kw["metrics"] = {str(k): SplitMetrics.from_dict(v) for k, v in (kw.get("metrics") or {}).items()}
        kw["history"] = [EpochMetrics.from_dict(h) for h in kw.get("history") or []]
        t = kw.get("timings") or {}
        kw["timings"] = Timings(float(t.get("train_seconds", 0.0)), [float(s) for s in t.get("epoch_seconds", [])])
        kw["schema"] = SCHEMA
        return cls(**kw)


def _migrate_v0(meta: dict[str, Any]) -> dict[str, Any]:
    """The untyped dict the registry wrote before the card (no "schema") -> card fields.

    Old keys: class_names, normalization {mean, std}, metrics {val, split {train_parts,
    val_parts, val_part_ids}, cv}, train_seconds, history rows with per-epoch seconds,
    cancelled. Old records kept no part scores or curves: they stay empty (nothing is re-scored).
    """
    m = dict(meta)
    old_metrics = m.pop("metrics", None) or {}
    split = old_metrics.get("split") or {}
    metrics = {}
    if isinstance(old_metrics.get("val"), dict):
        metrics["val"] = {"report": old_metrics["val"], "part_ids": split.get("val_part_ids", [])}
    norm = m.pop("normalization", None) or {}
    history = m.get("history") or []
    warnings = list(m.get("warnings") or [])
    if m.pop("cancelled", False):
        warnings.append("stored by a cancelled run")
    return {
        **m, "schema": SCHEMA, "task": "verdict",
        "classes": list(m.pop("class_names", None) or ["OK", "NG"]),
        "mean": norm.get("mean", DEFAULT_MEAN), "std": norm.get("std", DEFAULT_STD),
        "fit": m.get("fit") or (m.get("config") or {}).get("fit", "letterbox"),
        "freeze": m.get("freeze") or (m.get("config") or {}).get("freeze", ""),
        "metrics": metrics, "cv": old_metrics.get("cv"), "train_parts": int(split.get("train_parts", 0) or 0),
        "timings": {"train_seconds": m.pop("train_seconds", 0.0) or 0.0,
                    "epoch_seconds": [float(h.get("seconds", 0.0)) for h in history if isinstance(h, dict)]},
        "warnings": warnings,
    }


# ---------------------------------------------------------------------- the project's cards
def read_card(project: Any, model_id: str) -> ModelCard:
    """One model's card (an HDF5 read: call it off the GUI thread)."""
    return ModelCard.from_meta(project.model_meta(model_id), model_id)


def read_cards(project: Any) -> list[ModelCard]:
    """Every model's card, oldest first."""
    return [ModelCard.from_meta(m, str(m["id"])) for m in project.models()]


def project_cards(path: str | Path, progress: Any = None, should_stop: Any = None) -> tuple[list[ModelCard], str | None]:
    """The project's cards and its active model id, read through a handle of our own (a Worker
    function: the Train and Explain views list models with it; the window's Project is only
    touched by its writer thread)."""
    from labeling.store import Project
    project = Project.open(path, readonly=True)
    return read_cards(project), project.active_model_id
