"""Low-level HDF5 access shared by the store: locked transactions and extendable tables.

Concurrency model (documented here because every other module relies on it):

* The project file is never held open between operations. Each read or write is one short
  transaction: open, do the work, flush, close. HDF5's own file locking (flock) gives writers
  an exclusive lock and readers a shared one, so a reader in another process (a training job)
  always sees the file as of a completed transaction: a consistent snapshot, never a
  half-written one.
* A process that finds the file locked by another one retries with a short back-off for up to
  `LOCK_TIMEOUT_S`; the GUI keeps labelling while training reads, each waiting at most for
  the other's transaction (milliseconds).
* Inside one process, threads (GUI, sort logger, workers) serialise on a per-path RLock,
  because HDF5 refuses to open one file twice in one process with different modes.
"""
from __future__ import annotations

import errno
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

LOCK_TIMEOUT_S = 30.0
_locks: dict[str, threading.RLock] = {}
_locks_guard = threading.Lock()


class ProjectLocked(RuntimeError):
    """Another process held the project file for longer than LOCK_TIMEOUT_S."""


class ProjectError(Exception):
    """A clear, user-facing problem with a project file or an operation on it.

    Defined here (and re-exported by store) so the lowest layer can already name a damaged
    file as such."""


class ProjectDamaged(ProjectError):
    """The file (or one object in it) cannot be read: truncated, overwritten, checksum failed."""


# HDF5 says "unable to lock file, errno = 11, ..." when another process holds the lock. Matching
# "lock" alone also matched "sblock" in a truncated file's message and made it wait 30 s.
_LOCK_TEXT = re.compile(r"unable to lock file|resource temporarily unavailable|errno = 11\b")
# Trouble with the machine, not the file: reported as it is, never as damage.
_ENVIRONMENT = re.compile(r"no space left|disk quota|read-only file system|permission denied", re.IGNORECASE)
_TRUNCATED = re.compile(r"truncated file: eof = (\d+).*stored_eof = (\d+)")


def _path_lock(path: Path) -> threading.RLock:
    key = str(path.resolve())
    with _locks_guard:
        return _locks.setdefault(key, threading.RLock())


def _is_lock_error(exc: OSError) -> bool:
    return getattr(exc, "errno", None) in (errno.EAGAIN, errno.EWOULDBLOCK) \
        or bool(_LOCK_TEXT.search(str(exc).lower()))


def truncation(exc: BaseException) -> tuple[int, int] | None:
    """(bytes present, bytes HDF5 expects) when `exc` says the file was cut short."""
    m = _TRUNCATED.search(str(exc))
    return (int(m.group(1)), int(m.group(2))) if m else None


def damaged_message(path: Path, exc: BaseException) -> str:
    """One line naming `path` as damaged, with the reason in words (not HDF5's stack)."""
    cut = truncation(exc)
    if cut is not None:
        have, want = cut
        why = f"truncated: {have:,} of {want:,} bytes present"
    else:
        text = str(exc)
        low = text.lower()
        if "file signature not found" in low:
            why = "not an HDF5 file, or its header was overwritten"
        elif "checksum" in low or "fletcher32" in low or "filter returned failure" in low:
            why = "checksum mismatch: the stored bytes were changed"
        else:
            # HDF5 messages are "Unable to ... (detail)": the detail is the useful part.
            m = re.search(r"\(([^()]*)\)\s*$", text)
            why = "corrupt: " + (m.group(1) if m else text.splitlines()[0] if text else type(exc).__name__)
    return f"{path.name}: damaged project file ({why}); `okng check` lists what is readable, " \
           f"`okng salvage` copies it to a new file"


@contextmanager
def transaction(path: Path, mode: str = "r", timeout: float = LOCK_TIMEOUT_S) -> Iterator[h5py.File]:
    """Open `path` for one transaction; retries while another process holds the lock."""
    lock = _path_lock(path)
    with lock:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                f = h5py.File(path, mode)
                break
            except (OSError, BlockingIOError) as exc:
                if not _is_lock_error(exc):
                    if isinstance(exc, FileNotFoundError) or not Path(path).exists() \
                            or _ENVIRONMENT.search(str(exc)):
                        raise
                    raise ProjectDamaged(damaged_message(Path(path), exc)) from exc
                if time.monotonic() > deadline:
                    raise ProjectLocked(f"{path}: held by another process for over {timeout:.0f} s") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        try:
            yield f
            if mode != "r":
                f.flush()
        except ProjectLocked:
            raise
        except (OSError, RuntimeError) as exc:
            # HDF5 reports damaged metadata met mid-transaction (a bad B-tree or symbol table
            # node, a failed filter) as OSError/RuntimeError: name the file as damaged.
            if _ENVIRONMENT.search(str(exc)):
                raise
            raise ProjectDamaged(damaged_message(Path(path), exc)) from exc
        finally:
            f.close()


def append_rows(group: h5py.Group, name: str, values: Any, dtype: Any) -> int:
    """Append values to an extendable 1-D dataset, creating it on first use; returns first row."""
    if name not in group:
        # fletcher32: the part index and the audit trail (labels) are as precious as pixels;
        # a flipped digit in a label must fail on read, not change the label.
        group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(65536,),
                             fletcher32=True)
    ds = group[name]
    start = ds.shape[0]
    ds.resize((start + len(values),))
    ds[start:] = np.asarray(values, dtype=dtype)
    return start


def append_json(group: h5py.Group, name: str, records: list[dict[str, Any]]) -> int:
    """Append records to a JSON-lines byte log (one uint8 dataset).

    Why bytes and not a vlen-string table: a 10,000-row log then reads with one contiguous
    read and parses with one json.loads, which keeps opening a big project well under 1 s.
    """
    blob = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode("utf-8")
    return append_rows(group, name, np.frombuffer(blob, dtype=np.uint8), np.uint8)


def read_json_rows(group: h5py.Group, name: str) -> list[dict[str, Any]]:
    return parse_json_rows(group[name][()].tobytes()) if name in group else []


def parse_json_rows(blob: bytes) -> list[dict[str, Any]]:
    text = blob.decode("utf-8").strip()
    return json.loads("[" + text.replace("\n", ",") + "]") if text else []


def image_chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """~256 KiB chunks of whole rows: a full-view read touches few chunks, a strip scrolls well."""
    h, w = shape[0], shape[1]
    per_row = w * (shape[2] if len(shape) == 3 else 1) * itemsize
    # Rows split evenly: an uncompressed last chunk is stored whole, so a ragged split wastes space.
    n_chunks = -(-h * per_row // (256 * 1024))
    rows = int(max(1, -(-h // max(n_chunks, 1))))
    return (rows, w, shape[2]) if len(shape) == 3 else (rows, w)


def write_array(group: h5py.Group, name: str, arr: np.ndarray, compression: str | None,
                level: int | None = None) -> None:
    """Store pixels in a chunked dataset with a fletcher32 checksum per chunk.

    Why the checksum: HDF5 reads flipped bytes back silently otherwise; with it, a damaged
    chunk fails on read and the store names the part. Datasets of older files (without the
    filter) are rewritten in place as they were and still read."""
    if name in group and group[name].shape == arr.shape and group[name].dtype == arr.dtype:
        group[name][...] = arr
        return
    if name in group:
        del group[name]
    group.create_dataset(name, data=arr, chunks=image_chunks(arr.shape, arr.dtype.itemsize),
                         compression=compression, compression_opts=level,
                         shuffle=compression is not None and arr.dtype.itemsize > 1, fletcher32=True)


def fsync_append(path: Path, line: str) -> None:
    """Append one line and fsync: the acknowledgement point of a journalled change."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
