"""Where the sort process's threads run: the engine on its own core, everything else beside it.

A live-sort process holds, besides the engine thread (poll, capture, preprocess, the batched
forward, the result write: the critical path), the heartbeat thread (three Modbus exchanges every
100 ms), the log thread (Grad-CAM, handing parts to the writer), the writer PROCESS (HDF5
compression of ~15 MB of views per part), the session's reporting loop and, without a PLC, the
PLC simulator. Left to the scheduler on a 2-core line PC they land on the engine's core in bursts,
and a forward that asked for two intra-op threads waits for the one that was preempted. So:

* ``auto`` with >= 2 CPUs: the engine thread gets the LAST CPU of the process's affinity set (CPU 0
  is where the kernel's housekeeping and unbound interrupts, e.g. the loopback softirqs of the
  Modbus traffic, tend to land); every other Python thread of the process and the writer process
  get the other CPUs ("service"). The forward's intra-op threads (torch.set_num_threads, ONNX
  Runtime's intra_op_num_threads) = the engine's CPU count, so on 2 cores the forward runs on the
  engine thread itself: no pool wake-ups, nothing to wait for.
* The preprocessing pool (four ROI crops + resizes per part, cv2/numpy release the GIL) is the
  engine thread plus helpers. With ONE engine CPU (a 2-core PC) the helper is pinned to the service
  CPU, where it preempts the writer and the log thread (nice 10) at once: left free to run on any
  CPU, the scheduler often woke it on the engine's busy core, where it only time-sliced with the
  engine (bench/sort.py, 200 parts, ONNX Runtime: preprocessing p50 1.9 -> 1.6 ms, forward p50
  7.1 -> 4.0 ms). With more engine CPUs the helpers span every CPU. OpenCV's own threads are set
  to 1 (the pool already parallelises across views).
* The forward, where it runs one intra-op thread, is cut into one slice of the part's views per
  pool thread, run at once by the engine thread and the same helper
  (training.inference.batch_slices): one hand-off per slice, each call releasing the GIL, where an
  intra-op pool of two syncs once per operator and lost on the busy service CPU.
* The log thread (a part's Grad-CAM, the hand-off to the writer) runs at niceness 10 on the
  service CPU, so the preprocessing helper and the heartbeat preempt it at once.
* The GIL switch interval drops from 5 ms to 0.5 ms for the run: a thread coming back from a
  GIL-free forward or resize otherwise waits up to the whole interval for a Python-busy thread
  (the log thread, the heartbeat's Modbus framing) to give the GIL back, straight onto p99.
* ``off``, a single CPU, or no ``os.sched_setaffinity`` (macOS, Windows): nothing is pinned, one
  intra-op thread (one core: more threads only time-slice), preprocessing inline on the engine
  thread (a pool on one core adds two hand-offs per view and no parallelism).
* An explicit CPU list (``"3"``, ``"2,3"``): those CPUs are the engine's, the rest of the set the
  service's.

``Pinning`` applies a layout and undoes it (restore): tests and the window's sort child run
several sorts in one process, and a pytest thread left on one CPU would slow every later test.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

PIN_MODES = ("auto", "off")
SWITCH_INTERVAL_S = 0.0005
PREPROCESS_THREAD_PREFIX = "okng-pre"  # training.inference's pool: pinned by its own initializer
# Threads that are never urgent: run below the rest of the process on the service CPU, so the
# preprocessing helper and the heartbeat preempt them at once (a part's Grad-CAM and its hand-off
# to the writer can wait milliseconds; the trigger-to-write path cannot).
BACKGROUND_THREADS = {"okng-sort-log": 10}
MAX_INTRA_OP = 4  # beyond this a batch of four small views gains nothing on a CPU forward


@dataclass(frozen=True)
class ThreadLayout:
    """The chosen layout (recorded in the sort summary)."""

    mode: str  # "auto", "off" or the explicit engine CPU list as given
    cpus: tuple[int, ...]  # the process's affinity set when planned
    engine_cpus: tuple[int, ...]
    service_cpus: tuple[int, ...]
    intra_op: int  # torch / ONNX Runtime intra-op threads of the forward
    preprocess_workers: int  # 1: inline on the engine thread
    preprocess_cpus: tuple[int, ...]  # where the pool's helpers run (the engine thread is the first worker)
    switch_interval_ms: float
    pinned: bool  # affinities are set (False: the scheduler decides)
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def available_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on (its affinity set where the OS has one)."""
    get = getattr(os, "sched_getaffinity", None)
    if get is not None:
        try:
            return tuple(sorted(get(0)))
        except OSError:
            pass
    return tuple(range(os.cpu_count() or 1))


def can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")


def _parse_cpus(text: str, allowed: Iterable[int]) -> tuple[int, ...]:
    allowed = set(allowed)
    try:
        cpus = tuple(sorted({int(t) for t in text.replace(";", ",").split(",") if t.strip()}))
    except ValueError:
        raise ValueError(f"pin {text!r}: expected auto, off or a CPU list such as 1 or 2,3") from None
    if not cpus:
        raise ValueError(f"pin {text!r}: no CPU given")
    bad = [c for c in cpus if c not in allowed]
    if bad:
        raise ValueError(f"pin {text!r}: CPU {bad} not available to this process (it may use {sorted(allowed)})")
    return cpus


def plan_layout(pin: str = "auto", threads: int | None = None, cpus: Iterable[int] | None = None,
                pinnable: bool | None = None) -> ThreadLayout:
    """The layout for `pin` ("auto", "off", or the engine's CPU list) on `cpus` (default: this
    process's affinity set); `threads` forces the intra-op thread count."""
    cpus = tuple(sorted(set(cpus))) if cpus is not None else available_cpus()
    if not cpus:
        cpus = (0,)
    pinnable = can_pin() if pinnable is None else pinnable
    mode = str(pin or "auto").strip().lower()
    explicit = mode not in PIN_MODES
    engine = _parse_cpus(mode, cpus) if explicit else ()
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if mode == "off" or not pinnable or (len(cpus) < 2 and not explicit):
        why = ("pinning off" if mode == "off" else
               "this OS cannot pin threads" if not pinnable else "one CPU: nothing to separate")
        n = int(threads or 1)
        return ThreadLayout(mode, cpus, cpus, cpus, n, 1 if len(cpus) < 2 else min(4, len(cpus)), cpus,
                            SWITCH_INTERVAL_S * 1000, False, why)
    if not explicit:
        engine = (cpus[-1],) if len(cpus) == 2 else cpus[1:]
        why = (f"engine on CPU {engine[0]}, log/writer/heartbeat/simulator on CPU {cpus[0]}" if len(cpus) == 2
               else f"engine on CPUs {list(engine)}, log/writer/heartbeat/simulator on CPU {cpus[0]}")
    else:
        why = f"engine on CPUs {list(engine)} as configured"
    service = tuple(c for c in cpus if c not in engine) or engine
    intra = int(threads or min(len(engine), MAX_INTRA_OP))
    workers = min(4, len(cpus))
    # One engine CPU: the engine thread is the pool's first worker, its helpers belong beside it.
    helpers = service if len(engine) == 1 else cpus
    return ThreadLayout(mode, cpus, engine, service, intra, workers, helpers, SWITCH_INTERVAL_S * 1000, True, why)


class Pinning:
    """Applies a ThreadLayout in the sort process and undoes it (`restore`)."""

    def __init__(self, layout: ThreadLayout) -> None:
        self.layout = layout
        self._saved_affinity: dict[int, set[int]] = {}  # native thread id / pid -> its old set
        self._saved: dict[str, Any] = {}
        self.pinned_threads: list[str] = []
        self.niced_threads: list[str] = []
        self.pinned_pids: list[int] = []
        self.errors: list[str] = []

    def _set(self, tid: int, cpus: Iterable[int], what: str) -> bool:
        try:
            if tid not in self._saved_affinity:
                self._saved_affinity[tid] = set(os.sched_getaffinity(tid))
            os.sched_setaffinity(tid, set(cpus))
            return True
        except OSError as exc:  # a thread that just ended, a container that forbids it
            self.errors.append(f"{what}: {exc}")
            return False

    def apply_engine(self) -> None:
        """On the ENGINE thread, before its warm-up: its CPU, the intra-op threads, OpenCV's
        threads, the GIL switch interval and the preprocessing pool."""
        lay = self.layout
        if lay.pinned:
            self._set(threading.get_native_id(), lay.engine_cpus, "engine thread")
        import cv2
        import torch  # here, not at the top: the window imports this room without torch

        from training import inference
        self._saved.update(torch=torch.get_num_threads(), cv2=cv2.getNumThreads(),
                           switch=sys.getswitchinterval(), pool=inference.preprocess_pool_setting())
        torch.set_num_threads(lay.intra_op)
        cv2.setNumThreads(1)
        sys.setswitchinterval(lay.switch_interval_ms / 1000.0)
        inference.set_preprocess_pool(lay.preprocess_workers, lay.preprocess_cpus if lay.pinned else None)

    def pin_services(self, pids: Iterable[int] = ()) -> None:
        """Every other Python thread of the process (heartbeat, log thread, reporting loop,
        simulator, main) and the given processes (the part writer) onto the service CPUs."""
        if not self.layout.pinned:
            return
        me = threading.get_native_id()
        for t in threading.enumerate():
            tid = t.native_id
            if tid is None or tid == me or t.name.startswith(PREPROCESS_THREAD_PREFIX):
                continue
            if self._set(tid, self.layout.service_cpus, f"thread {t.name}"):
                self.pinned_threads.append(t.name)
            if t.name in BACKGROUND_THREADS:
                self._nice(tid, BACKGROUND_THREADS[t.name], t.name)
        for pid in pids:
            if pid and self._set(int(pid), self.layout.service_cpus, f"process {pid}"):
                self.pinned_pids.append(int(pid))

    def _nice(self, tid: int, nice: int, name: str) -> None:
        """Raise a thread's niceness (Linux: per thread). Not undone: lowering it again needs
        privileges, and these threads end with the run."""
        try:
            os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))
            self.niced_threads.append(name)
        except (AttributeError, OSError) as exc:
            self.errors.append(f"nice {name}: {exc}")

    def restore(self) -> None:
        """Put back what apply_engine/pin_services changed (threads that ended are skipped)."""
        for tid, cpus in self._saved_affinity.items():
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass
        self._saved_affinity.clear()
        if self._saved:
            import cv2
            import torch

            from training import inference
            torch.set_num_threads(self._saved["torch"])
            cv2.setNumThreads(self._saved["cv2"])
            sys.setswitchinterval(self._saved["switch"])
            inference.set_preprocess_pool(*self._saved["pool"])
            self._saved.clear()

    def report(self, runtime_threads: int | None = None) -> dict[str, Any]:
        """The layout and what was really done (for the summary and the log)."""
        out = self.layout.to_dict()
        out["pinned_threads"] = sorted(set(self.pinned_threads))
        out["pinned_pids"] = list(self.pinned_pids)
        out["niced_threads"] = sorted(set(self.niced_threads))
        if runtime_threads is not None:
            out["ort_intra_op"] = runtime_threads
        if self.errors:
            out["errors"] = self.errors[:5]
        return out
