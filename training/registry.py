"""The project's model registry: what each model is, what it was trained on, how it scores.

Models live inside the project file (store.save_model): checkpoint bytes + JSON meta. The meta
is everything needed to use and to judge a model later: arch, freeze policy, config, class
names, input size, normalisation, ROIs, metrics, ImageNet start or not, parent model, created
time, and the dataset snapshot (part ids with their labels, and a hash of them).
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from labeling.store import Project

from .backbones import BackboneSpec
from .checkpoint import sha256, to_bytes
from .config import TrainConfig
from .data import IMAGENET_MEAN, IMAGENET_STD
from .snapshot import CLASS_NAMES, Snapshot


def new_model_id(arch: str) -> str:
    """Readable and unique: arch, UTC time, 4 random hex digits."""
    return f"{arch}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def register_model(project_path: str | Path, model: nn.Module, spec: BackboneSpec, config: TrainConfig,
                   snap: Snapshot, metrics: dict[str, Any], history: list[dict], best_epoch: int,
                   pretrained: bool, source: str | None, threshold: float, seconds: float,
                   warnings: Sequence[str]) -> tuple[str, bool]:
    """Store a trained model; it becomes active if the project has none. Returns (id, activated)."""
    data = to_bytes(model, spec.name, len(CLASS_NAMES))
    model_id = new_model_id(spec.name)
    meta = {
        "arch": spec.name, "freeze": config.freeze, "config": config.to_dict(),
        "class_names": list(CLASS_NAMES), "input_size": list(snap.input_size), "fit": snap.fit,
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "rois": snap.rois, "metrics": metrics, "threshold": float(threshold), "part_rule": "max",
        "pretrained": bool(pretrained), "pretrained_source": source, "parent": config.warm_start,
        "created": time.time(), "dataset": snap.meta(), "history": history, "best_epoch": best_epoch,
        "target_layer": spec.target_layer, "checkpoint_sha256": sha256(data), "train_seconds": seconds,
        "warnings": list(warnings), "cancelled": False,
    }
    project = Project.open(project_path)
    project.save_model(model_id, meta, data)
    activated = False
    if not project.active_model_id:
        project.set_active_model(model_id)
        activated = True
    return model_id, activated


def _fmt(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def comparison_rows(models: list[dict[str, Any]], active: str | None) -> list[dict[str, Any]]:
    """One flat row per model: the figures the studies compare backbones by."""
    rows = []
    for m in models:
        val = m.get("metrics", {}).get("val", {})
        cv = m.get("metrics", {}).get("cv", {}).get("summary", {})
        rows.append({
            "id": m["id"], "active": m["id"] == active, "arch": m.get("arch"), "freeze": m.get("freeze"),
            "pretrained": m.get("pretrained"), "input": "x".join(str(v) for v in m.get("input_size", [])),
            "parts": m.get("dataset", {}).get("n_parts"), "accuracy": val.get("accuracy"),
            "balanced_accuracy": val.get("balanced_accuracy"), "ng_recall": val.get("ng_recall"),
            "ng_precision": val.get("ng_precision"), "roc_auc": val.get("roc_auc"), "pr_auc": val.get("pr_auc"),
            "kappa": val.get("kappa"), "threshold": m.get("threshold"),
            "cv_balanced_accuracy": cv.get("balanced_accuracy"), "created": m.get("created"),
            "parent": m.get("parent"),
        })
    return rows


def comparison_table(models: list[dict[str, Any]], active: str | None) -> str:
    """A text table across the project's models (the corrosion/X-ray/steel studies' layout)."""
    rows = comparison_rows(models, active)
    if not rows:
        return "no models yet: run `okng train PROJECT`"
    head = f"{'':2}{'id':<36}{'arch':<20}{'freeze':<11}{'imgnet':<7}{'input':<8}{'parts':>6}" \
           f"{'acc':>7}{'bal':>7}{'NGrec':>7}{'NGprec':>7}{'AUC':>7}{'PR-AUC':>7}{'kappa':>7}{'thr':>6}  cv bal acc"
    lines = [head]
    for r in rows:
        cv = r["cv_balanced_accuracy"]
        cvs = f"{cv['mean']:.3f} +- {cv['std']:.3f}" if cv else "-"
        lines.append(f"{'*' if r['active'] else ' ':2}{r['id']:<36}{r['arch']!s:<20}{r['freeze']!s:<11}"
                     f"{'yes' if r['pretrained'] else 'no':<7}{r['input']:<8}{r['parts']!s:>6}"
                     f"{_fmt(r['accuracy']):>7}{_fmt(r['balanced_accuracy']):>7}{_fmt(r['ng_recall']):>7}"
                     f"{_fmt(r['ng_precision']):>7}{_fmt(r['roc_auc']):>7}{_fmt(r['pr_auc']):>7}"
                     f"{_fmt(r['kappa']):>7}{_fmt(r['threshold'], 2):>6}  {cvs}")
    return "\n".join(lines)


def activate(project_path: str | Path, model_id: str) -> None:
    """Make a model the one live sort uses."""
    Project.open(project_path).set_active_model(model_id)
