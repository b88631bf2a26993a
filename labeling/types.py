"""Domain types of a project: small typed dataclasses, no I/O.

A Part has Views; a View is one camera's image (or one X-ray strip) with an optional
class-index mask. Labels and reviews are immutable events; the current label of a part is
the newest event, and the store keeps every older one (audit trail).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Verdict(enum.IntEnum):
    """Part verdict. Values are stored in the file: never renumber."""

    UNLABELED = 0
    OK = 1
    NG = 2

    @classmethod
    def parse(cls, text: str | int | Verdict) -> Verdict:
        if isinstance(text, (int, Verdict)):
            return cls(int(text))
        key = str(text).strip().upper()
        aliases = {"": cls.UNLABELED, "UNLABELED": cls.UNLABELED, "NONE": cls.UNLABELED,
                   "OK": cls.OK, "GOOD": cls.OK, "PASS": cls.OK,
                   "NG": cls.NG, "NOK": cls.NG, "BAD": cls.NG, "DEFECT": cls.NG, "FAIL": cls.NG}
        if key not in aliases:
            raise ValueError(f"unknown verdict {text!r} (expected OK, NG or unlabeled)")
        return aliases[key]


class Role(str, enum.Enum):
    INSPECTOR = "inspector"
    LAB_EXPERT = "lab_expert"
    SUPERVISOR = "supervisor"


class ProjectKind(str, enum.Enum):
    MULTI_CAMERA = "multi-camera"
    LINE_SCAN = "line-scan"


class ReviewStatus(str, enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class PartSource(str, enum.Enum):
    CAPTURE = "capture"
    IMPORT = "import"
    SORT = "sort"
    DEMO = "demo"


@dataclass(frozen=True)
class User:
    name: str
    role: Role = Role.INSPECTOR

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role.value}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> User:
        return cls(str(d.get("name", "unknown")), Role(d.get("role", Role.INSPECTOR.value)))


SYSTEM_USER = User("okng", Role.SUPERVISOR)


# Distinct colours for defect classes (Sasha Trubetskoy's list): the n-th class of a project
# gets CLASS_PALETTE[n % 14] wherever its colour is not given (added in the window, learnt by an
# importer, named in a sidecar without colours), so masks and per-class curves stay apart.
CLASS_PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
                 "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3")


def class_color(n: int) -> str:
    """The default colour of a project's class at 0-based position n."""
    return CLASS_PALETTE[n % len(CLASS_PALETTE)]


@dataclass(frozen=True)
class DefectClass:
    """A defect class; its 1-based position in Settings.classes is its mask value.

    A retired class keeps its position (so mask values and old labels keep their meaning) but
    takes no new labels; labeling/classes.py retires the class merged away."""

    name: str
    color: str = "#ff0000"  # "#rrggbb"
    hotkey: str = ""
    retired: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "color": self.color, "hotkey": self.hotkey}
        if self.retired:  # only when set: an older okng reading the file sees its own keys
            d["retired"] = True
        return d


@dataclass(frozen=True)
class ROI:
    """Axis-aligned region of interest in full-image pixel coordinates."""

    x: int
    y: int
    w: int
    h: int

    def __post_init__(self) -> None:
        if self.w <= 0 or self.h <= 0 or self.x < 0 or self.y < 0:
            raise ValueError(f"invalid ROI {self}: needs x,y >= 0 and w,h > 0")

    def clip(self, width: int, height: int) -> ROI:
        x = min(self.x, max(width - 1, 0))
        y = min(self.y, max(height - 1, 0))
        return ROI(x, y, max(1, min(self.w, width - x)), max(1, min(self.h, height - y)))

    def to_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


@dataclass
class Settings:
    name: str = "project"
    kind: ProjectKind = ProjectKind.MULTI_CAMERA
    cameras: list[str] = field(default_factory=lambda: ["cam0", "cam1", "cam2", "cam3"])
    classes: list[DefectClass] = field(default_factory=list)
    rois: dict[str, ROI] = field(default_factory=dict)  # camera name -> ROI
    extra: dict[str, Any] = field(default_factory=dict)  # free-form (station settings etc.)

    def class_index(self, name: str) -> int:
        """1-based index of a defect class by name (case-insensitive)."""
        for i, c in enumerate(self.classes, start=1):
            if c.name.lower() == name.strip().lower():
                return i
        known = ", ".join(c.name for c in self.classes) or "none"
        raise KeyError(f"unknown defect class {name!r} (known: {known})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "cameras": list(self.cameras),
            "classes": [c.to_dict() for c in self.classes],
            "rois": {k: v.to_list() for k, v in self.rois.items()},
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Settings:
        return cls(
            name=d.get("name", "project"),
            kind=ProjectKind(d.get("kind", ProjectKind.MULTI_CAMERA.value)),
            cameras=list(d.get("cameras", ["cam0", "cam1", "cam2", "cam3"])),
            classes=[DefectClass(**c) for c in d.get("classes", [])],
            rois={k: ROI(*v) for k, v in d.get("rois", {}).items()},
            extra=dict(d.get("extra", {})),
        )


BOLT_CLASSES = [
    DefectClass("insufficient coating", "#e6194b", "1"),
    DefectClass("no coating", "#f58231", "2"),
    DefectClass("short coating", "#ffe119", "3"),
    DefectClass("foreign substance", "#911eb4", "4"),
]
XRAY_CLASSES = [
    DefectClass("D1 melt drop", "#e6194b", "1"),
    DefectClass("D2 binder lump", "#3cb44b", "2"),
    DefectClass("D3 shot cluster", "#4363d8", "3"),
    DefectClass("D6 dirt", "#f032e6", "4"),
]


@dataclass(frozen=True)
class Label:
    """One labeling event. defect_class is 1-based (0 = none).

    classes holds every defect class of the part (a steel sheet may show scratches and
    inclusions at once), 1-based, the main one first: defect_class is always classes[0], so
    code that knows one class per part keeps working. Given only one of the two, the other is
    derived; events written before multi-class labels have no "classes" key and read as
    (defect_class,)."""

    verdict: Verdict
    defect_class: int = 0
    user: User = SYSTEM_USER
    time: float = 0.0
    comment: str = ""
    classes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        seen: list[int] = []
        for c in (self.defect_class, *self.classes) if self.defect_class else self.classes:
            if int(c) and int(c) not in seen:
                seen.append(int(c))
        object.__setattr__(self, "classes", tuple(seen))
        object.__setattr__(self, "defect_class", seen[0] if seen else 0)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": int(self.verdict), "defect_class": self.defect_class,
                "classes": list(self.classes),
                "user": self.user.to_dict(), "time": self.time, "comment": self.comment}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Label:
        return cls(Verdict(int(d["verdict"])), int(d.get("defect_class", 0)),
                   User.from_dict(d.get("user", {})), float(d.get("time", 0.0)),
                   str(d.get("comment", "")), tuple(int(c) for c in d.get("classes", ())))


@dataclass(frozen=True)
class Review:
    status: ReviewStatus
    comment: str = ""
    user: User = SYSTEM_USER
    time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "comment": self.comment,
                "user": self.user.to_dict(), "time": self.time}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Review:
        return cls(ReviewStatus(d["status"]), str(d.get("comment", "")),
                   User.from_dict(d.get("user", {})), float(d.get("time", 0.0)))


@dataclass(frozen=True)
class Prediction:
    """A model's decision on a part (scores are per view: P(NG))."""

    model_id: str
    verdict: Verdict
    scores: tuple[float, ...] = ()
    confidence: float = 0.0
    defect_class: int = 0
    time: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "verdict": int(self.verdict),
                "scores": list(self.scores), "confidence": self.confidence,
                "defect_class": self.defect_class, "time": self.time, "extra": self.extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prediction:
        return cls(str(d["model_id"]), Verdict(int(d["verdict"])),
                   tuple(float(s) for s in d.get("scores", ())), float(d.get("confidence", 0.0)),
                   int(d.get("defect_class", 0)), float(d.get("time", 0.0)),
                   dict(d.get("extra", {})))


@dataclass(frozen=True)
class LabelCheck:
    """An out-of-fold label check's finding on one part (training/label_issues.py): the other
    folds confidently say the label should be `verdict`/`defect_class`. Stale once the part is
    relabelled after `time` (labeling/queue.py)."""

    verdict: Verdict  # the suggested verdict
    defect_class: int = 0  # the suggested 1-based class (0: none / a verdict model)
    self_confidence: float = 0.0  # out-of-fold P(given label): low = more likely wrong
    time: float = 0.0
    run: str = ""  # which check found it (model or run id)
    classes: tuple[int, ...] = ()  # a multilabel check: every class the part should hold (1-based)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": int(self.verdict), "defect_class": self.defect_class,
                "self_confidence": self.self_confidence, "time": self.time, "run": self.run,
                "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelCheck:
        # Checks recorded before multilabel checks have no "classes": they read as ().
        return cls(Verdict(int(d["verdict"])), int(d.get("defect_class", 0)),
                   float(d.get("self_confidence", 0.0)), float(d.get("time", 0.0)), str(d.get("run", "")),
                   tuple(int(c) for c in d.get("classes", ())))


@dataclass(frozen=True)
class ViewInfo:
    index: int
    camera: str
    shape: tuple[int, ...]  # (H, W) or (H, W, 3)
    dtype: str  # "uint8" | "uint16"
    has_mask: bool = False
    # 1 - IoU of the stored proposal against the mask (masktools.disagreement), kept current as
    # either changes; None: no proposal (or one stored before this was recorded)
    disagreement: float | None = None


@dataclass
class Part:
    id: int
    name: str
    created: float
    source: PartSource
    views: list[ViewInfo] = field(default_factory=list)
    label: Label | None = None
    review: Review | None = None
    prediction: Prediction | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    label_check: LabelCheck | None = None  # the latest out-of-fold check's finding, if any

    @property
    def verdict(self) -> Verdict:
        return self.label.verdict if self.label else Verdict.UNLABELED

    @property
    def fields(self) -> dict[str, str]:
        """Extra columns the part was imported with (item, fold, ...): meta["fields"].

        Kept under one key so a source column can never clobber okng's own meta keys
        ("file", "deleted", ...); a split can group by them (all parts of one item together)."""
        f = self.meta.get("fields")
        return dict(f) if isinstance(f, dict) else {}
