"""A whole live-sort run for a UI, as one plain long function: start, report, stop.

``run_session(spec, progress, should_stop)`` loads the project's model, opens the source, starts
a PLC simulator when no PLC is given, runs the SortEngine and, every `spec.period` seconds,
reports Progress("sort", payload=SortTick(snap, part)): the engine's counters, rate, latency
and PLC link, plus, when a new part was decided (at most every `spec.views_period`), that ONE
part: its record (verdict, confidence, per-view P(NG)) with small thumbnails of its own views, so
a panel never shows one part's verdict above another part's views. The first report is
Progress("started", payload=SortStarted). When should_stop() turns True
the engine is stopped (SORT_MODE_ON and READY cleared first) and the summary dict returned.

The workstation runs this in a child process (app.child.in_child): the engine's poll loop,
forwards, Modbus traffic and heartbeat then never share the window's GIL (in the window's
process they stalled its event loop 60-130 ms). The child watches the window's process: if it
disappears (crash, kill), the run stops the same orderly way, so a line never keeps a PC whose
supervisor can no longer switch it off.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hardware.sort.summary import SortStarted, SortTick
from labeling.images import thumbnail
from labeling.progress import Progress, ProgressFn, StopFn

log = logging.getLogger(__name__)


@dataclass
class SessionSpec:
    """What to sort with: everything a child process needs, picklable."""

    project_path: str
    plc: tuple[str, int] | None = None  # None: start a PlcSimulator on a free loopback port
    source: str = "sim:640x480"
    shadow: bool = True
    sim_rate: float = 4.0  # parts/s of that simulator's conveyor
    threads: int | None = None  # intra-op threads of the forward (None: the thread layout's)
    pin: str = "auto"  # thread layout (hardware.sort.threads): auto | off | the engine's CPUs
    runtime: str | None = None  # torch | onnxruntime for this run (None: the model's card)
    period: float = 0.2  # s between snapshots
    views_period: float = 0.5  # s between thumbnails of the views
    thumb_px: int = 240  # longer side of a thumbnail
    parent_pid: int | None = None  # stop when this process is gone (the window)
    seed: int = 7
    camera_map: tuple[tuple[str, str], ...] = ()  # (source camera, model camera) pairs, explicit


class TapSource:
    """Wraps a hardware Source so its one-off first-frame cost is paid before sorting starts."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def __getattr__(self, name: str) -> Any:
        # Anything else (seed, resolution, ...) is the wrapped source's: the engine may ask.
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)

    def open(self) -> None:
        """Pay the source's one-off first-frame cost, then open it (it may start prefetching).

        In this order the cost is paid once: the engine's warm-up running while the sim source's
        prefetch thread renders its first part fills the same layer cache twice at once.
        """
        from hardware.sort.engine import SOURCE_WARMERS
        try:
            warm = SOURCE_WARMERS.get(self.source.info().name)
        except Exception:  # noqa: BLE001 - info is descriptive; open() reports real problems
            warm = None
        if warm is not None:
            warm(self.source)
        self.source.open()

    def warm_up(self) -> None:
        """The engine's warm-up hook: already done in open()."""

    def close(self) -> None:
        self.source.close()

    def info(self) -> Any:
        return self.source.info()

    def capture(self, timeout: float = 1.0) -> Any:
        return self.source.capture(timeout=timeout)


def part_view(engine: Any, thumb_px: int) -> dict[str, Any] | None:
    """The last decided part as the panel shows it: its record and thumbnails of its own views
    (dtype kept: 16-bit X-ray stays 16-bit)."""
    record, images, cameras = engine.last_part()
    if not record or not images:
        return None
    return {"part": record, "views": [thumbnail(v, thumb_px) for v in images], "cameras": cameras}


def _load(project: Any, spec: SessionSpec) -> tuple[Any, dict[str, Any]]:
    from hardware.sort.models import load_classifier, untrained_classifier
    from hardware.sort.threads import plan_layout
    if project.active_model_id:
        # ONNX Runtime's intra-op threads are fixed in its session: the layout decides them now.
        threads = plan_layout(spec.pin, spec.threads).intra_op
        return load_classifier(project, "active", spec.runtime, threads)
    return untrained_classifier(project)


def parent_watch(parent_pid: int | None) -> Callable[[], bool]:
    """A check that is True while the watched process (and our own parent) still exist.

    Two signs, because a child of a fork server is not the window's child: the window's pid is
    gone, or our parent changed (the fork server exits when the window's end of its pipe closes).
    """
    if parent_pid is None:
        return lambda: True
    ppid = os.getppid()

    def alive() -> bool:
        if os.getppid() != ppid:
            return False
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # exists, owned by someone else
        return True
    return alive


def run_session(spec: SessionSpec, progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> dict[str, Any]:
    """Sort until should_stop() (or the watched process is gone); returns the summary dict."""
    from hardware.sort.config import SortConfig
    from hardware.sort.engine import SortEngine
    from hardware.sort.models import bind_cameras
    from hardware.sources import make_source
    from labeling.store import Project

    report = progress or (lambda _item: None)
    stop = should_stop or (lambda: False)
    alive = parent_watch(spec.parent_pid)
    project = Project.open(spec.project_path)
    classifier, info = _load(project, spec)
    sim, plc = None, spec.plc
    if plc is None:
        from hardware.plc.simulator import PlcSimulator
        sim = PlcSimulator(host="127.0.0.1", port=0, rate=spec.sim_rate)
        sim.start()
        plc = ("127.0.0.1", sim.port)
    source = TapSource(make_source(spec.source, seed=spec.seed))
    engine = None
    try:
        source.open()
        # Before the engine starts: a model whose cameras the source does not have stops here.
        bind_cameras(classifier, list(source.info().cameras), dict(spec.camera_map))
        cfg = SortConfig(plc_host=plc[0], plc_port=plc[1], shadow=spec.shadow, log_parts=True,
                         model_id=str(info.get("model_id", "")), threads=spec.threads, pin=spec.pin,
                         line_rate=spec.sim_rate if sim is not None else None)
        engine = SortEngine(project, classifier, source, cfg)
        engine.start()
        report(Progress("started", payload=SortStarted(info, list(plc), spec.shadow, os.getpid())))
        shown, views_t = None, 0.0
        while not stop() and engine.running and alive():
            now = time.monotonic()
            part = None
            if now - views_t >= spec.views_period:
                part = part_view(engine, spec.thumb_px)
                if part is not None and part["part"].get("trig_seq") != shown:
                    shown, views_t = part["part"].get("trig_seq"), now
                else:
                    part = None
            snap = engine.snapshot()
            report(Progress("sort", int(snap.get("triggers", 0)), None, "", SortTick(snap, part)))
            time.sleep(spec.period)
        summary = engine.stop()  # clears SORT_MODE_ON and READY first; re-raises the loop's error
        out = summary.to_dict()
        if not alive():
            out["stop_reason"] = "the workstation window is gone"
        return out
    finally:
        if engine is not None and engine.running:
            try:
                engine.stop()
            except Exception as exc:  # noqa: BLE001 - already leaving on an error
                log.warning("sort engine stop after an error: %s", exc)
        try:
            source.close()
        finally:
            if sim is not None:
                sim.stop()
