"""Write-ahead journal of small changes (labels, masks, reviews, predictions, settings).

Why a journal beside the HDF5 file: HDF5 updates its metadata in several writes, so a
process killed inside a flush can leave a half-updated object. A change is therefore first
appended to `<project>.h5.journal` and fsync'd (the acknowledgement point: it survives kill -9
and power loss), then applied to the HDF5 file, whose root attribute `journal_seq` records the
last applied record. Opening the project for writing replays records newer than that, so an
interrupted apply is finished on the next start. A torn last line (killed mid-append) was never
acknowledged and is ignored. The journal is truncated once everything in it is applied.
"""
from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .h5io import fsync_append


def journal_path(project_path: Path) -> Path:
    return project_path.with_name(project_path.name + ".journal")


def encode_array(arr: np.ndarray) -> dict[str, Any]:
    return {"shape": list(arr.shape), "dtype": str(arr.dtype),
            "z": base64.b64encode(zlib.compress(np.ascontiguousarray(arr).tobytes(), 1)).decode("ascii")}


def decode_array(d: dict[str, Any]) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(d["z"]))
    return np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy()


def append(project_path: Path, record: dict[str, Any]) -> None:
    fsync_append(journal_path(project_path), json.dumps(record, separators=(",", ":")) + "\n")


def read(project_path: Path) -> Iterator[dict[str, Any]]:
    """Complete records in order; a torn trailing line (never acknowledged) is skipped."""
    path = journal_path(project_path)
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                return
            try:
                yield json.loads(raw)
            except json.JSONDecodeError:
                return


def truncate(project_path: Path) -> None:
    journal_path(project_path).unlink(missing_ok=True)


def size(project_path: Path) -> int:
    # Checked outside the project lock: another process may drop the journal meanwhile.
    try:
        return journal_path(project_path).stat().st_size
    except FileNotFoundError:
        return 0
