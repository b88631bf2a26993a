"""The part index and the audit trail read past a last chunk that a killed writer tore.

How a log gets torn: appending rewrites the log's last 64 KiB chunk in place, in one pwrite at
flush, before the metadata (extent, `journal_seq`) is written. Linux checks for a fatal signal
between the pages of a buffered write, so SIGKILL inside it leaves the chunk's first pages new
and the rest old, the fletcher32 checksum (at its end) included: the whole log fails to read.

The logs are append-only, so the old content of that chunk is still there, unchanged, and the
old checksum proves which prefix it is: the rows up to the old end, followed by zeros, match it.
Exactly those verified bytes are kept; the newly appended rows are dropped, since their
bytes are unverified and were never acknowledged (a journalled change is replayed, an add_part
had not returned). A chunk no prefix of which matches, or a bad chunk before the last, is other
damage and stays ProjectDamaged (`okng check`, `okng salvage`). Keeping whatever still parses
instead would give a flipped byte a fresh checksum on repair.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import journal
from .h5io import ProjectDamaged, append_rows, damaged_message, parse_json_rows, read_json_rows, transaction

# (group, dataset, what the user calls it)
LOGS = (("index", "parts", "part index"), ("events", "log", "audit trail"))
UNREPAIRED = ("the file is unchanged until the project is next opened for writing, which repairs it "
              "and replays the journal")


@dataclass(frozen=True)
class TornLog:
    """A log read as far as its torn last chunk verifies."""

    where: str  # "/events/log"
    what: str
    kept: bytes
    rows: list[dict[str, Any]]
    dropped: int  # bytes of the extent left out: the torn, never acknowledged rows

    def message(self, project: str, outcome: str) -> str:
        size = f" ({self.dropped:,} bytes)" if self.dropped else ""
        return (f"{project}: {self.what} ({self.where}): a writer killed while appending tore its last "
                f"chunk; the {len(self.rows):,} rows before that append are kept (their checksum holds), "
                f"the append is dropped{size}; {outcome}")


def _matches(data: bytes, stored: bytes) -> bool:
    """Whether `stored` (4 bytes, as HDF5 appends them to a chunk) is the fletcher32 of `data`.

    Both sums are compared modulo 65535: HDF5 reduces them lazily and may store 0xffff for 0."""
    w = np.frombuffer(data, dtype=">u2").astype(np.int64)
    sum1, sum2 = int(w.sum()), int((w * np.arange(len(w), 0, -1, dtype=np.int64)).sum())
    v = int.from_bytes(stored, "little")
    return ((v >> 16) - sum2) % 65535 == 0 and ((v & 0xFFFF) - sum1) % 65535 == 0


def salvage(ds: h5py.Dataset, what: str) -> TornLog | None:
    """The log up to where its torn last chunk verifies; None when the damage is anything else."""
    n, step = ds.shape[0], (ds.chunks or (0,))[0]
    if not (step and n and ds.fletcher32) or ds.compression or ds.shuffle or ds.dtype != np.uint8:
        return None  # a raw chunk is then not simply its data followed by the checksum
    last = (n - 1) // step * step
    try:
        kept = b"".join(ds[lo:lo + step].tobytes() for lo in range(0, last, step))  # each verified
    except OSError:
        return None  # a bad chunk before the last: not a torn append
    try:
        ds[last:n]
        return None  # the last chunk verifies: the failure was elsewhere
    except OSError:
        pass
    try:
        mask, raw = ds.id.read_direct_chunk((last,))
    except (OSError, RuntimeError, ValueError):
        return None
    if mask or len(raw) != step + 4:
        return None
    body, stored = bytes(raw[:step]), bytes(raw[step:])
    # The old end is a row end (or the chunk start, for a chunk that had no old version).
    newlines = np.flatnonzero(np.frombuffer(body, dtype=np.uint8)[:n - last] == 0x0A) + 1
    for end in [*reversed(newlines.tolist()), 0]:
        if _matches(body[:end] + bytes(step - end), stored):
            kept += body[:end]
            break
    else:
        return None
    try:
        rows = parse_json_rows(kept)
    except ValueError:
        return None
    return TornLog(ds.name, what, kept, rows, n - len(kept))


def read_log(group: h5py.Group, name: str, what: str) -> tuple[list[dict[str, Any]], TornLog | None]:
    """A log's rows, with the TornLog when they were salvaged; raises as read_json_rows otherwise."""
    try:
        return read_json_rows(group, name), None
    except OSError:
        torn = salvage(group[name], what)
        if torn is None:
            raise
        return torn.rows, torn


def torn_logs(f: h5py.File) -> list[tuple[h5py.Dataset, str]]:
    """The logs (and what each is) whose last chunk fails its checksum. Only that chunk is read:
    every writable open asks. Other trouble is left for the full read, which names it."""
    out = []
    for group, name, what in LOGS:
        try:
            ds = f[group][name]
            n, step = ds.shape[0], ds.chunks[0]
        except (KeyError, OSError, RuntimeError, TypeError):
            continue
        try:
            if n:
                ds[(n - 1) // step * step:n]
        except OSError:
            out.append((ds, what))
    return out


def repair(f: h5py.File) -> list[TornLog]:
    """Rewrite each torn log with its verified rows, inside the caller's exclusive transaction.

    The audit trail's lost events come back through the journal: `journal_seq` is set back to
    the last event kept. The journal still holds the records after it, because checkpoint
    deletes the journal only after a completed flush, and the killed flush had not completed."""
    torn = []
    for ds, what in torn_logs(f):  # all salvaged before anything is written
        t = salvage(ds, what)
        if t is None:
            raise ProjectDamaged(damaged_message(Path(f.filename), OSError(f"{what}: checksum mismatch")))
        torn.append(t)
    for t in torn:
        del f[t.where]
        group, name = t.where.strip("/").split("/")
        append_rows(f[group], name, np.frombuffer(t.kept, dtype=np.uint8), np.uint8)
        if name == "log":
            top = max((e["seq"] for e in t.rows if isinstance(e.get("seq"), int)), default=0)
            f.attrs["journal_seq"] = min(int(f.attrs.get("journal_seq", 0)), top)
        else:  # a row kept must never have its id handed out again
            top = max((r["id"] for r in t.rows if isinstance(r.get("id"), int)), default=0)
            f.attrs["next_part_id"] = max(int(f.attrs.get("next_part_id", 1)), top + 1)
    return torn


def repair_and_replay(f: h5py.File, project_path: Path) -> list[str]:
    """Inside the caller's exclusive transaction: repair a torn log, then replay the journal;
    the messages. Every writing transaction runs it first, not only the writable open: a window
    that kept the project open while another process was killed mid-append would otherwise fail
    every later write with "damaged project" (the append reads the torn chunk) and send the user
    to `okng salvage` for a file the next open repairs in a second. Cheap when nothing is torn:
    only each log's last chunk is read."""
    fixed = repair(f)
    start = int(f.attrs.get("journal_seq", 0))
    warnings = journal.replay_pending(f, project_path)
    if not fixed:
        return warnings
    end = int(f.attrs.get("journal_seq", 0))
    span = f"record {end}" if end == start + 1 else f"records {start + 1}-{end}"
    done = (f"the file was repaired and the journal replayed ({span})" if end > start
            else "the file was repaired; the journal had nothing to replay")
    return [t.message(project_path.name, done) for t in fixed] + warnings


def replay_repairing(project_path: Path) -> list[str]:
    """journal.replay for a writable open, with a torn log repaired first in the same exclusive
    transaction (replay appends to the audit trail, which fails on a torn chunk)."""
    with transaction(project_path, "r") as f:
        torn = bool(torn_logs(f))
    if not torn:
        return journal.replay(project_path)
    with transaction(project_path, "a") as f:
        messages = repair_and_replay(f, project_path)
        journal.checkpoint(f, project_path)
    return messages
