"""Write-ahead journal of small changes (labels, masks, reviews, predictions, settings).

Why a journal beside the HDF5 file: HDF5 updates its metadata in several writes, so a
process killed inside a flush can leave a half-updated object. A change is therefore first
appended to `<project>.h5.journal` and fsync'd (the acknowledgement point: it survives kill -9
and power loss), then applied to the HDF5 file, whose root attribute `journal_seq` records the
last applied record. Opening the project for writing replays records newer than that, so an
interrupted apply is finished on the next start. A torn last line (killed mid-append) was never
acknowledged and is ignored. The journal is truncated once everything in it is applied.

Bound to its project: every record carries the project's id (root attribute `project_id`) and
a CRC-32 of its own bytes. A journal whose records name another project (a stray file copied
beside this one) or fail their checksum is never replayed: `verify` says why and `quarantine`
moves it aside, so the file it damaged is kept for a look and the project opens.

Replay (the second half of this module) is what a record does: `apply_record` to the HDF5 file,
`apply_event` to a handle's cached parts and settings. The store calls both for a new change;
opening for writing calls `replay` for what an interrupted process left.
"""
from __future__ import annotations

import base64
import json
import os
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .h5io import append_json, fsync_append, transaction, write_array
from .types import Label, LabelCheck, Part, Prediction, Review, Settings, ViewInfo


def journal_path(project_path: Path) -> Path:
    return project_path.with_name(project_path.name + ".journal")


def encode_array(arr: np.ndarray) -> dict[str, Any]:
    return {"shape": list(arr.shape), "dtype": str(arr.dtype),
            "z": base64.b64encode(zlib.compress(np.ascontiguousarray(arr).tobytes(), 1)).decode("ascii")}


def decode_array(d: dict[str, Any]) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(d["z"]))
    return np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy()


class JournalRejected(Exception):
    """The journal belongs to another project or is damaged: it must not be replayed."""


def _crc(body: dict[str, Any]) -> int:
    return zlib.crc32(json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8"))


def seal(record: dict[str, Any], project_id: str) -> str:
    """The journal line of `record`: bound to `project_id`, with a CRC-32 over the rest."""
    body = {k: v for k, v in record.items() if k != "crc"}
    body["pid"] = project_id
    return json.dumps(dict(body, crc=_crc(body)), separators=(",", ":")) + "\n"


def append(project_path: Path, record: dict[str, Any], project_id: str = "") -> None:
    fsync_append(journal_path(project_path), seal(record, project_id) if project_id
                 else json.dumps(record, separators=(",", ":")) + "\n")


def read(project_path: Path) -> Iterator[dict[str, Any]]:
    """Complete records in order; a torn trailing line (never acknowledged) is skipped.

    Unchecked: use `verify` for a journal about to be replayed."""
    path = journal_path(project_path)
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                return
            try:
                yield json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return


def verify(project_path: Path, project_id: str) -> list[dict[str, Any]]:
    """Every complete record, checked; JournalRejected (with the reason) when any is bad.

    A project without an id (written before ids existed) accepts records without one, so an
    old interrupted journal is still finished; records naming some other project never are."""
    path = journal_path(project_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    out: list[dict[str, Any]] = []
    for n, raw in enumerate(lines[:-1], 1):  # lines[-1]: torn tail or b"" after the last newline
        try:
            rec = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            rec = None
        if not isinstance(rec, dict):
            raise JournalRejected(f"line {n} is not a readable record")
        pid = rec.get("pid")
        if pid is None and not project_id:
            out.append(rec)
            continue
        if pid != project_id:
            raise JournalRejected(f"it belongs to another project (id {str(pid)[:12] or 'none'}, "
                                  f"this project {project_id[:12] or 'none'})")
        body = {k: v for k, v in rec.items() if k != "crc"}
        if rec.get("crc") != _crc(body):
            raise JournalRejected(f"line {n} fails its checksum")
        if not isinstance(rec.get("seq"), int) or not isinstance(rec.get("op"), str):
            raise JournalRejected(f"line {n} has no sequence number or operation")
        out.append(body)
    return out


def quarantine(project_path: Path) -> Path | None:
    """Move the journal aside (`<project>.journal.rejected-<time>`); returns its new path."""
    src = journal_path(project_path)
    if not src.exists():
        return None
    dst = src.with_name(f"{src.name}.rejected-{time.strftime('%Y%m%d-%H%M%S')}")
    k = 1
    while dst.exists():
        dst = dst.with_name(f"{src.name}.rejected-{time.strftime('%Y%m%d-%H%M%S')}-{k}")
        k += 1
    os.replace(src, dst)
    return dst


def truncate(project_path: Path) -> None:
    journal_path(project_path).unlink(missing_ok=True)


def size(project_path: Path) -> int:
    # Checked outside the project lock: another process may drop the journal meanwhile.
    try:
        return journal_path(project_path).stat().st_size
    except FileNotFoundError:
        return 0


# ---------------------------------------------------------------- replay
def checkpoint(f: h5py.File, project_path: Path) -> None:
    """Drop the journal once its records are in the file, still under the exclusive lock.

    Under the lock, because another writer process (a training job saving its model, the
    sort logger) appends its own records inside its transactions: truncating after our
    lock is released could delete a record it has just journalled. Flushed first, so the
    applied changes are in the file before their journal entries go."""
    f.flush()
    truncate(project_path)


def replay(project_path: Path) -> list[str]:
    """Finish what an interrupted writer journalled (one exclusive transaction); the warnings."""
    if size(project_path) == 0:
        return []
    with transaction(project_path, "a") as f:
        warnings = replay_pending(f, project_path)
        checkpoint(f, project_path)
    return warnings


def replay_pending(f: h5py.File, project_path: Path) -> list[str]:
    """Apply the records newer than the file's `journal_seq`; one warning line per record left out.

    A rejected journal (another project's, or damaged) is quarantined and nothing is applied."""
    name = project_path.name
    done = int(f.attrs.get("journal_seq", 0))
    try:
        records = verify(project_path, str(f.attrs.get("project_id", "")))
    except JournalRejected as exc:
        moved = quarantine(project_path)
        return [f"{name}: journal not replayed, {exc}; moved aside to {moved.name if moved else '(gone)'}"]
    warnings: list[str] = []
    parts = f["parts"]
    for rec in records:
        seq = int(rec["seq"]) if isinstance(rec.get("seq"), int) else 0
        if seq <= done:
            continue
        pid = rec.get("part")
        if pid is not None and str(pid) not in parts:
            warnings.append(f"{name}: journal record {seq} ({rec.get('op')}) skipped: "
                            f"part {pid} is not in the file")
        else:
            try:
                apply_record(f, rec)
            except (KeyError, ValueError, TypeError) as exc:
                warnings.append(f"{name}: journal record {seq} ({rec.get('op')}) skipped: "
                                f"cannot apply it ({type(exc).__name__}: {exc})")
        done = seq
        f.attrs["journal_seq"] = done
    return warnings


def event_of(record: dict[str, Any]) -> dict[str, Any]:
    """The audit-trail event of a record: without its pixels and journal seal."""
    return {k: v for k, v in record.items() if k not in ("pixels", "pid", "crc")}


def apply_record(f: h5py.File, rec: dict[str, Any]) -> None:
    """Write one record's change into the open project file and append its event."""
    if rec["op"] == "mask" and "pixels" in rec:
        write_array(f[f"parts/{rec['part']}/v{rec['view']}"], "mask", decode_array(rec["pixels"]), "lzf")
    elif rec["op"] == "proposal":
        vg = f[f"parts/{rec['part']}/v{rec['view']}"]
        write_array(vg, "proposal", decode_array(rec["pixels"]), "lzf")
        vg["proposal"].attrs["model"] = rec["model"]
    elif rec["op"] == "mask" and not rec.get("has_mask"):
        vg = f[f"parts/{rec['part']}/v{rec['view']}"]
        if "mask" in vg:
            del vg["mask"]
    elif rec["op"] == "settings":
        f.attrs["settings"] = json.dumps(rec["settings"])
    elif rec["op"] == "active_model":
        f.attrs["active_model"] = rec.get("model") or ""
    append_json(f["events"], "log", [event_of(rec)])


def apply_event(ev: dict[str, Any], parts: dict[int, Part], settings: Settings,
                active_model_id: str | None) -> tuple[Settings, str | None]:
    """Bring cached parts up to date with one event (in place); the settings and active model after it."""
    op, pid = ev["op"], ev.get("part")
    part = parts.get(pid) if pid is not None else None
    if op == "label" and part:
        part.label = Label.from_dict(ev["label"])
    elif op == "review" and part:
        part.review = Review.from_dict(ev["review"])
    elif op == "prediction" and part:
        part.prediction = Prediction.from_dict(ev["prediction"])
    elif op == "delete" and part:
        part.meta["deleted"] = True
    elif op == "label_check":
        found = ev.get("findings", {})
        for p in parts.values():
            f = found.get(str(p.id))
            p.label_check = LabelCheck.from_dict(f) if f else None
    elif op == "mask" and part:
        v = part.views[ev["view"]]
        part.views[ev["view"]] = ViewInfo(v.index, v.camera, v.shape, v.dtype, bool(ev.get("has_mask")),
                                          ev.get("disagreement", v.disagreement))
    elif op == "proposal" and part and "disagreement" in ev:
        v = part.views[ev["view"]]
        part.views[ev["view"]] = ViewInfo(v.index, v.camera, v.shape, v.dtype, v.has_mask, ev["disagreement"])
    elif op == "settings":
        settings = Settings.from_dict(ev["settings"])
    elif op == "active_model":
        active_model_id = ev.get("model") or None
    return settings, active_model_id
