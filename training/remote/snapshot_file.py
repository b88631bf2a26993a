"""The dataset snapshot a remote run trains from: one self-contained HDF5 file.

It is a small okng project file (the same format, so the cluster runs the unchanged training
session on it and `okng info` can open it): the project's settings (classes, cameras, ROIs) and
every labelled part with its views, masks, current label and fields, under the project's own
part ids, so the model card it yields names the project's parts and its dataset hash is the one
a local run would record. It holds no audit trail beyond each current label, no unlabelled
parts and no models but a warm start's parent (and a self-supervised encoder when one is
asked for). Its SHA-256 goes with it and is checked on arrival.

Which labelled parts a task uses, and how they split, is decided on the cluster by the same
code as on the PC (training.snapshot / training.splits: deterministic by seed), so the snapshot
carries every labelled part rather than guessing the split here.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeling.h5io import transaction
from labeling.progress import Progress, ProgressFn, StopFn
from labeling.store import Project
from labeling.types import Verdict

from ..weights import file_sha256  # one file hash for weights files and snapshots

SNAPSHOT_ATTR = "okng_training_snapshot"  # root attribute: where the snapshot came from (JSON)


@dataclass(frozen=True)
class SnapshotFile:
    """A written snapshot: where it is, its checksum and what it holds."""

    path: str
    sha256: str
    parts: int
    views: int
    size: int  # bytes


def write_snapshot(project_path: str | Path, dest: str | Path, values: dict[str, Any],
                   progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> SnapshotFile | None:
    """Write the snapshot of the project's labelled parts to `dest` (a new file); None when
    stopped (the partial file is removed). `values` are the run's form values: a warm start's
    parent model and a self-supervised encoder are copied along."""
    src = Project.open(project_path, readonly=True)
    dest = Path(dest)
    out = Project.create(dest, src.settings)
    labelled = [p for p in src.parts() if p.verdict in (Verdict.OK, Verdict.NG) and p.views]
    views = 0
    for i, p in enumerate(labelled):
        if should_stop is not None and should_stop():
            dest.unlink(missing_ok=True)
            return None
        masks = [src.read_mask(p.id, k) if v.has_mask else None for k, v in enumerate(p.views)]
        out.add_part(src.read_views(p.id), cameras=[v.camera for v in p.views], name=p.name, source=p.source,
                     masks=masks, meta=dict(p.meta), label=p.label, part_id=p.id)
        views += len(p.views)
        if progress is not None:
            progress(Progress("snapshot", i + 1, len(labelled), "writing the dataset snapshot"))
    if values.get("warm_start"):
        mid = str(values["warm_start"])
        out.save_model(mid, src.model_meta(mid), src.load_checkpoint(mid))
    if values.get("encoder"):
        _copy_encoder(Path(project_path), dest, str(values["encoder"]), values.get("arch"))
    with transaction(dest, "a") as f:
        f.attrs[SNAPSHOT_ATTR] = json.dumps({"project": str(project_path), "project_id": src.project_id,
                                             "created": time.time(), "parts": len(labelled), "views": views})
    return SnapshotFile(str(dest), file_sha256(dest), len(labelled), views, dest.stat().st_size)


def _copy_encoder(src: Path, dest: Path, encoder: str, arch: Any) -> None:
    """The self-supervised encoder a run starts from ("latest" is resolved here, for the arch)."""
    from training.pretrain import ENCODERS_GROUP, encoders
    if encoder == "latest":
        found = [m for m in encoders(src) if arch is None or m.get("arch") == arch]
        if not found:
            return  # the cluster's run says so, in the words a local run would use
        encoder = str(found[-1]["id"])
    with transaction(src, "r") as s, transaction(dest, "a") as d:
        if encoder in s.get(ENCODERS_GROUP, {}):
            s.copy(s[ENCODERS_GROUP][encoder], d.require_group(ENCODERS_GROUP), name=encoder)
