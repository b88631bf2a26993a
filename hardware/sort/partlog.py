"""Logs sorted parts into the project OFF the critical path.

The engine hands each inspected part to `PartLogger.submit`, which never blocks. A background
thread computes Grad-CAM for NG parts (when asked; stored like pre-labeling's heatmaps) and passes the part on to a WRITER PROCESS
with its own Project handle, which stores the views (source "sort"), the decision, the scores
and the per-stage timings, then the prediction. A process, not a thread: h5py keeps the GIL
while it compresses and writes ~15 MB of views per part, which would stall the sort loop's
Python for tens of milliseconds on every part. (process=False writes from the thread, for
callers that cannot spawn.) The views travel to the writer in shared memory (a ring of slots,
`_Slots`): pickling ~15 MB into the pipe held the sort process's GIL for milliseconds on every
part, right when the engine went back to polling for the next trigger; np.copyto into a slot
releases the GIL and the pipe only carries the part's metadata. If logging cannot keep up, parts are not waited for: they are
counted as dropped, because a late result on the belt costs more than a missing log entry.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labeling.types import PartSource, Prediction, Verdict
from training.explain.heatmaps import HEATMAP_KEY, encode

log = logging.getLogger(__name__)


@dataclass
class PartRecord:
    """One inspected part as the engine saw it."""

    images: Sequence[np.ndarray]
    cameras: Sequence[str]
    trig_seq: int
    part_id: int
    verdict: str  # "OK" | "NG" | "ERROR"
    confidence: float = 0.0
    defect_class: int = 0
    scores: list[float] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    shadow: bool = False
    answered: bool = False
    error: str = ""
    truth: Any = None
    time: float = field(default_factory=time.time)


Explainer = Callable[[Sequence[np.ndarray], Sequence[str], int], list[np.ndarray]]


SLOTS = 4  # parts in flight between the log thread and the writer process
SLOT_WAIT_S = 10.0  # a writer that acknowledges nothing this long is not waited for again


class _Slots:
    """Shared-memory slots for the views of one part each; made on the first part (their size is
    the first part's views), freed by the writer's acks. Used from the log thread only."""

    def __init__(self, n: int = SLOTS) -> None:
        self.n = n
        self.size = 0
        self.shms: list[Any] = []
        self.free: list[int] = []

    def ensure(self, need: int) -> bool:
        """Slots exist and one holds `need` bytes (a bigger part than the first: False, pickled)."""
        if not self.shms:
            from multiprocessing import shared_memory
            self.size = need
            self.shms = [shared_memory.SharedMemory(create=True, size=max(1, need)) for _ in range(self.n)]
            self.free = list(range(self.n))
        return need <= self.size

    def fill(self, index: int, images: Sequence[np.ndarray]) -> list[tuple[tuple[int, ...], str, int]]:
        """Copy the views into slot `index`; (shape, dtype, offset) of each."""
        buf, metas, off = self.shms[index].buf, [], 0
        for im in images:
            im = np.asarray(im)
            dst = np.ndarray(im.shape, im.dtype, buffer=buf, offset=off)
            np.copyto(dst, im)  # a plain memcpy that releases the GIL (the engine keeps running)
            del dst  # no export of the buffer may outlive the copy (close() refuses otherwise)
            metas.append((tuple(im.shape), im.dtype.str, off))
            off += im.nbytes
        return metas

    def close(self) -> None:
        for shm in self.shms:
            try:
                shm.close()
                shm.unlink()
            except (OSError, BufferError):
                pass
        self.shms, self.free = [], []


class PartLogger:
    """Background writer of PartRecords into a project file (its own store handle)."""

    def __init__(self, project_path: str | Path, model_id: str = "", maxsize: int = 64,
                 explainer: Explainer | None = None, process: bool = True) -> None:
        self.path = Path(project_path)
        self.model_id = model_id
        self.explainer = explainer
        self.process = process
        self._proc: Any = None
        self._req: Any = None
        self._ack: Any = None
        self._sent = 0
        self._slots = _Slots()
        self._q: queue.Queue[PartRecord | None] = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.logged = 0
        self.dropped = 0
        self.failed = 0
        self.gradcams = 0
        self.last_error = ""
        self.part_ids: list[int] = []

    def start(self) -> None:
        if self.process and self._proc is None:
            import multiprocessing as mp
            ctx = mp.get_context("spawn")  # never fork a process that runs torch threads
            self._req, self._ack = ctx.Queue(maxsize=8), ctx.Queue()
            self._proc = ctx.Process(target=_writer_main, args=(str(self.path), self._req, self._ack),
                                     name="okng-sort-writer", daemon=True)
            self._proc.start()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="okng-sort-log", daemon=True)
            self._thread.start()

    @property
    def writer_pid(self) -> int | None:
        """The writer process's pid (None when writing from the thread)."""
        return self._proc.pid if self._proc is not None else None

    def submit(self, record: PartRecord) -> bool:
        """Queue a part for logging; never blocks. False if it had to be dropped."""
        try:
            self._q.put_nowait(record)
            return True
        except queue.Full:
            with self._lock:
                self.dropped += 1
            return False

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._q.put(None, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._thread = None
        if self._proc is not None:
            self._proc.join(max(0.5, deadline - time.monotonic()))
            self._drain_acks()
            if self._proc.is_alive():
                self._proc.terminate()
            self._proc = None
        self._slots.close()

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {"logged": self.logged, "log_dropped": self.dropped, "log_failed": self.failed,
                    "gradcams": self.gradcams, "queued": self._q.qsize()}

    def _run(self) -> None:
        project = None
        while True:
            rec = self._q.get()
            if rec is None:
                if self._req is not None:
                    self._req.put(None)
                return
            try:
                job = self._job(rec)
                if self._req is not None:
                    self._send(job)
                    continue
                if project is None:
                    from labeling.store import Project
                    project = Project.open(self.path)
                self._count(("ok", write_job(project, job)))
            except Exception as exc:  # noqa: BLE001 - a logging failure must never stop sorting
                self._count(("fail", f"seq {rec.trig_seq}: {exc}"))

    def _send(self, job: dict[str, Any]) -> None:
        """Hand a job to the writer process: its views in a free shared-memory slot (waiting
        for one off the critical path), the rest through the pipe."""
        images = job["images"]
        need = sum(int(np.asarray(im).nbytes) for im in images)
        self._drain_acks()
        if self._slots.ensure(need):
            deadline = time.monotonic() + SLOT_WAIT_S
            while not self._slots.free and time.monotonic() < deadline:
                self._drain_acks(wait=0.05)
            if not self._slots.free:
                raise RuntimeError("the part writer acknowledged nothing for "
                                   f"{SLOT_WAIT_S:.0f} s (is it alive?)")
            index = self._slots.free.pop()
            try:
                metas = self._slots.fill(index, images)
            except Exception:
                self._slots.free.append(index)
                raise
            job = {**job, "images": None, "shm": (self._slots.shms[index].name, index, metas)}
        self._req.put(job)  # a view bigger than the slots: pickled whole, as before

    def _drain_acks(self, wait: float = 0.0) -> None:
        import queue as q
        while True:
            try:
                ack = self._ack.get(timeout=wait) if wait else self._ack.get_nowait()
            except (q.Empty, OSError, ValueError):
                return
            wait = 0.0
            self._count(ack)

    def _count(self, ack: tuple[Any, ...]) -> None:
        if len(ack) > 2 and ack[2] is not None:
            self._slots.free.append(int(ack[2]))  # the writer is done with that slot
        with self._lock:
            if ack[0] == "ok":
                self.logged += 1
                self.part_ids.append(int(ack[1]))
            else:
                log.warning("could not log a sorted part: %s", ack[1])
                self.failed += 1
                self.last_error = str(ack[1])

    def _job(self, rec: PartRecord) -> dict[str, Any]:
        """Everything the writer needs, as plain picklable data."""
        meta = {"trig_seq": rec.trig_seq, "part_id": rec.part_id, "verdict": rec.verdict,
                "confidence": round(rec.confidence, 4), "defect_class": rec.defect_class,
                "scores": [round(s, 5) for s in rec.scores], "shadow": rec.shadow,
                "answered": rec.answered, "model_id": self.model_id,
                "timings_ms": {k: round(v * 1000.0, 3) for k, v in rec.timings.items()},
                "time": rec.time}
        if rec.error:
            meta["error"] = rec.error
        if rec.truth is not None:
            meta["truth"] = _jsonable(rec.truth)
        job: dict[str, Any] = {"images": [np.asarray(im) for im in rec.images], "cameras": list(rec.cameras),
                               "name": f"sort-{rec.part_id}-{rec.trig_seq}", "meta": meta, "prediction": None}
        if rec.verdict in ("OK", "NG"):
            extra: dict[str, Any] = {"source": "sort", "trig_seq": rec.trig_seq, "part_id": rec.part_id,
                                     "shadow": rec.shadow}
            if rec.verdict == "NG" and self.explainer is not None:
                maps, error = self._gradcam(rec)
                if maps is not None:
                    extra[HEATMAP_KEY] = maps
                else:
                    extra["heatmap_error"] = error
            job["prediction"] = Prediction(self.model_id, Verdict[rec.verdict], tuple(rec.scores),
                                           float(rec.confidence), int(rec.defect_class), rec.time,
                                           extra).to_dict()
        return job

    def _gradcam(self, rec: PartRecord) -> tuple[list[list[list[int]]] | None, str]:
        """Per-view heatmaps in the one stored convention (training/explain/heatmaps.py), or the error."""
        try:
            maps = self.explainer(rec.images, rec.cameras, max(rec.defect_class, 1))  # type: ignore[misc]
            out = [encode(m) for m in maps]
            with self._lock:
                self.gradcams += 1
            return out, ""
        except Exception as exc:  # noqa: BLE001 - Grad-CAM is a nicety, never a failure
            return None, str(exc)


def write_job(project: Any, job: dict[str, Any]) -> int:
    """Store one logged part (views, meta, then its prediction); returns the part id."""
    pid = project.add_part(job["images"], cameras=job["cameras"], name=job["name"],
                           source=PartSource.SORT, meta=job["meta"])
    if job["prediction"] is not None:
        project.add_prediction(pid, Prediction.from_dict(job["prediction"]))
    return pid


def _writer_main(path: str, requests: Any, acks: Any) -> None:
    """The writer process: one Project handle, one part per request, an ack per part (with the
    shared-memory slot it may now reuse)."""
    import os

    from labeling.store import Project
    try:
        os.nice(10)  # logging may lag; the sort loop on the same CPU must not
    except (AttributeError, OSError):
        pass
    project = Project.open(path)
    shms: dict[str, Any] = {}
    try:
        while True:
            job = requests.get()
            if job is None:
                return
            slot = None
            try:
                if job.get("shm"):
                    name, slot, metas = job["shm"]
                    if name not in shms:
                        from multiprocessing import shared_memory
                        shms[name] = shared_memory.SharedMemory(name=name)
                    buf = shms[name].buf
                    job["images"] = [np.ndarray(shape, np.dtype(dt), buffer=buf, offset=off)
                                     for shape, dt, off in metas]
                pid = write_job(project, job)
                job["images"] = None  # no view of the slot outlives this part
                _sync(path)
                acks.put(("ok", pid, slot))
            except Exception as exc:  # noqa: BLE001 - reported back, the writer goes on
                job["images"] = None
                acks.put(("fail", f"{job.get('name')}: {exc}", slot))
    finally:
        for shm in shms.values():
            try:
                shm.close()
            except BufferError:
                pass


def _sync(path: str) -> None:
    """The part's bytes onto the disk before its ack, in the writer's own time right after the
    part. Two reasons: a logged part survives a power cut of the line PC (the ack means stored),
    and the ~15 MB of dirty pages a part leaves are written back here, on the service CPU in the
    quiet gap after a part, instead of by the kernel's flusher threads at any moment on any CPU
    (the engine's included): in bench/sort.py the Modbus write's p99 rose to 5 ms in runs where
    the writeback landed on a part. An fsync of another descriptor of the same file flushes the
    file's pages (h5py keeps its descriptor to itself)."""
    import os
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "value"):
        return obj.value
    if hasattr(obj, "__dict__"):
        return _jsonable(vars(obj))
    return obj if isinstance(obj, (str, int, float, bool)) or obj is None else str(obj)
