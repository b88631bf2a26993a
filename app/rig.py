"""Rig: the simulated (or configured) line as the GUI sees it, every device loop in a Worker.

* cameras: a preview loop grabs Captures from ``hardware.sources.make_source(spec)`` at a few
  frames per second; the newest one is what the Capture view shows and what "Capture" stores.
* line scan: a loop runs the X-ray detector (simulator) through calibration and assembly, pushes
  every corrected line into a ring buffer (the waterfall redraws from it ~30 times a second)
  and hands each product cut from the strip over as a part.
* PLC: with ``plc="sim"`` the built-in PlcSimulator (hardware.plc.simulator) is started on a free
  loopback port; a monitor loop reads the PLC block (one FC3 per 100 ms, never writes) to show
  the connection, the heartbeat, and TRIG_SEQ changes (a trigger can capture a part).
A device that is missing or fails shows in the status bar; nothing here raises into a slot.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from hardware import station_check

from .worker import Worker

log = logging.getLogger(__name__)
LINE_SCAN_PARTS_PER_S = 1.0  # the simulated PLC's trigger rate under the simulated X-ray detector
Progress = Callable[[Any], None]
Stop = Callable[[], bool]


class LineRing:
    """The last `capacity` corrected lines, written by the acquisition loop, read by the GUI."""

    def __init__(self, width: int = 640, capacity: int = 2048) -> None:
        self.width, self.capacity = width, capacity
        self._buf = np.zeros((capacity, width), np.float32)
        self._head = 0  # next row to write
        self.total = 0  # lines ever pushed (the waterfall redraws when this moves)
        self._lock = threading.Lock()

    def push(self, lines: np.ndarray) -> None:
        lines = np.asarray(lines, np.float32)[-self.capacity:]
        n = len(lines)
        if n == 0:
            return
        with self._lock:
            end = self._head + n
            if end <= self.capacity:
                self._buf[self._head:end] = lines
            else:
                k = self.capacity - self._head
                self._buf[self._head:] = lines[:k]
                self._buf[:n - k] = lines[k:]
            self._head = end % self.capacity
            self.total += n

    def snapshot(self) -> np.ndarray:
        """Oldest line first, newest last (a copy)."""
        with self._lock:
            return np.concatenate([self._buf[self._head:], self._buf[:self._head]])


def preview_loop(spec: str, options: dict[str, Any], fps: float, progress: Progress, should_stop: Stop) -> None:
    """Open a camera source and emit ("info", SourceInfo) then ("frame", Capture) ~fps per second."""
    from hardware.errors import HardwareError
    from hardware.sources import make_source
    src = make_source(spec, **options)
    src.open()
    try:
        progress(("info", src.info()))
        period = 1.0 / max(fps, 0.1)
        failures = 0
        while not should_stop():
            t0 = time.monotonic()
            try:
                progress(("frame", src.capture(timeout=1.0)))
                failures = 0
            except HardwareError as exc:  # one bad frame: say so, keep going
                failures += 1
                progress(("error", str(exc)))
                if failures > 20:
                    raise
            time.sleep(max(0.0, period - (time.monotonic() - t0)))
    finally:
        src.close()


def linescan_loop(ring: LineRing, seed: int, rate: float, progress: Progress, should_stop: Stop) -> None:
    """Run the simulated X-ray detector: lines into ring, ("product", image) per product cut."""
    from hardware.linescan.calibration import calibrate_detector
    from hardware.linescan.detector import DetectorSimulator
    from hardware.linescan.pipeline import LineScanPipeline
    det = DetectorSimulator(seed=seed, rate=rate)
    det.open()
    try:
        pipe = LineScanPipeline(det, calibrate_detector(det))
        progress(("info", {"width": det.width, "rate": rate}))
        pipe.acquisition.start()
        last_stats = 0.0
        try:
            while not should_stop():
                numbers, raw = pipe.acquisition.read(max_lines=4096, timeout=0.05)
                if len(numbers) == 0:
                    continue
                first, lines = pipe.assembler.push(numbers, raw)
                ring.push(lines)
                for prod in pipe.splitter.feed(first, lines):
                    progress(("product", np.clip(prod.image, 0, 65535).astype(np.uint16)))
                if time.monotonic() - last_stats > 0.5:
                    last_stats = time.monotonic()
                    s = pipe.acquisition.stats
                    progress(("stats", {"lines": ring.total, "dropped": getattr(s, "dropped", 0)}))
        finally:
            pipe.acquisition.stop()
    finally:
        det.close()


def plc_monitor_loop(host: str, port: int, progress: Progress, should_stop: Stop) -> None:
    """Read the PLC block every 100 ms; emit ("plc", dict) with connection, heartbeat, trigger."""
    from hardware.errors import HardwareError
    from hardware.plc.client import PlcClient
    client = PlcClient(host, port)
    beats, last_hb, last_seq = 0, None, None
    try:
        while not should_stop():
            state: dict[str, Any] = {"connected": False, "heartbeats": beats, "endpoint": f"{host}:{port}"}
            if client.ensure_connected():
                try:
                    blk = client.read_plc_block()
                    if last_hb is not None and blk.heartbeat != last_hb:
                        beats += 1
                    last_hb = blk.heartbeat
                    state.update(connected=True, heartbeats=beats, heartbeat=blk.heartbeat,
                                 trig_seq=blk.trig_seq, part_id=blk.part_id, status=int(blk.status))
                    if last_seq is not None and blk.trig_seq != last_seq:
                        state["trigger"] = True
                    last_seq = blk.trig_seq
                except HardwareError as exc:
                    state["error"] = str(exc)
            else:
                state["error"] = client.last_error or "not connected"
            progress(("plc", state))
            time.sleep(0.1)
    finally:
        client.close()


class Rig(QObject):
    """Sources and PLC of the station, running in Workers; state for the status bar."""

    frame = pyqtSignal(object)  # hardware Capture (newest preview)
    product = pyqtSignal(object)  # np.ndarray: one X-ray product cut from the strip
    triggered = pyqtSignal(int, int)  # TRIG_SEQ, PART_ID seen moving on the PLC
    changed = pyqtSignal()  # health or info changed

    def __init__(self, kind: str = "multi-camera", source: str = "sim", plc: str = "sim",
                 source_options: dict[str, Any] | None = None, fps: float = 4.0,
                 line_rate: float = 1250.0, seed: int = 0) -> None:
        super().__init__()
        self.kind, self.source_spec, self.plc_spec = kind, source, plc
        # A real source refuses the simulators' size option: a station set to folder:/genicam:
        # showed "no source" (folder: unknown option(s) ['resolution']) before.
        self.source_options = dict(source_options) if source_options is not None else station_check.source_options(source, seed)
        self.fps, self.line_rate, self.seed = fps, line_rate, seed
        self.ring = LineRing()
        self.latest: Any = None  # newest Capture (or product image for line scan)
        self.info: Any = None
        self.source_error: str | None = None
        self.frames = 0
        self.plc: dict[str, Any] = {"connected": False, "heartbeats": 0}
        self.plc_sim: Any = None
        self.plc_error: str | None = None
        self._workers: list[Worker] = []
        self._preview: Worker | None = None  # the cameras' preview loop (paused while live sort has them)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the camera/line loop and the PLC (simulator + monitor); errors become state."""
        if self.kind == "line-scan":
            self._run(linescan_loop, self.ring, self.seed, self.line_rate)
        else:
            self.resume_preview()
        self._start_plc()

    def pause_preview(self) -> bool:
        """Close the cameras' preview (live sort opens the same cameras in its own process: a
        GenICam camera or a webcam serves one process at a time). True if one was running."""
        w, self._preview = self._preview, None
        if w is None:
            return False
        w.cancel()
        w.wait(5000)
        if w in self._workers:
            self._workers.remove(w)
        return True

    def resume_preview(self) -> None:
        """Open the cameras' preview (at start, or again after pause_preview) unless it runs."""
        if self._preview is None and self.kind != "line-scan" and self.source_spec:
            self._preview = self._run(preview_loop, self.source_spec, dict(self.source_options), self.fps)

    def _start_plc(self) -> None:
        host, port = "127.0.0.1", 0
        if self.plc_spec == "sim":
            try:
                from hardware.plc.simulator import PlcSimulator
                # Simulated X-ray products come at the detector's pace (one is scanned in ~0.6 s
                # here): a conveyor triggering faster makes every other live-sort part an ERROR.
                rate = LINE_SCAN_PARTS_PER_S if self.kind == "line-scan" else 5.0
                self.plc_sim = PlcSimulator(port=0, rate=rate)
                self.plc_sim.start()
                port = self.plc_sim.port
            except Exception as exc:  # noqa: BLE001 - missing module or port: shown, not raised
                self.plc_error = f"PLC simulator: {exc}"
                self.changed.emit()
                return
        elif self.plc_spec:
            try:
                from hardware.plc.client import parse_endpoint
                host, port = parse_endpoint(self.plc_spec)
            except Exception as exc:  # noqa: BLE001
                self.plc_error = str(exc)
                self.changed.emit()
                return
        else:
            return
        self.plc["endpoint"] = f"{host}:{port}"
        self._run(plc_monitor_loop, host, port)

    def _run(self, fn: Callable[..., Any], *args: Any) -> Worker:
        w = Worker(fn, *args)
        w.min_progress_interval_s = 0.0  # frames are already paced by the loops
        w.progress.connect(self._on_progress)
        w.failed.connect(lambda msg, name=fn.__name__: self._on_failed(name, msg))
        self._workers.append(w)
        w.start()
        return w

    def stop(self) -> None:
        for w in self._workers:
            w.cancel()
        for w in self._workers:
            w.wait(3000)
        self._workers.clear()
        self._preview = None
        if self.plc_sim is not None:
            try:
                self.plc_sim.stop()
            except Exception as exc:  # noqa: BLE001 - closing anyway
                log.warning("PLC simulator did not stop cleanly: %s", exc)
            self.plc_sim = None
        self.plc["connected"] = False
        self.changed.emit()

    @property
    def plc_endpoint(self) -> tuple[str, int] | None:
        """(host, port) of the PLC this rig talks to (the built-in simulator's free port)."""
        ep = self.plc.get("endpoint")
        if not ep:
            return None
        host, _, port = ep.rpartition(":")
        return host, int(port)

    # ------------------------------------------------------------------ state
    def cameras_text(self) -> tuple[str, bool]:
        """e.g. ('4/4 cameras', True), ('X-ray detector 1250 lines/s', True), ('no source', False)."""
        if self.kind == "line-scan":
            ok = self.info is not None and self.source_error is None
            return (f"X-ray detector {self.line_rate:.0f} lines/s" if ok else "X-ray: no detector"), ok
        if self.info is None:
            return ("no source" if self.source_error else "cameras starting…"), False
        n = len(self.info.cameras)
        ok = 0 if self.source_error and self.latest is None else n
        return f"{ok}/{n} cameras ({self.info.name})", ok == n

    def _on_progress(self, item: tuple[str, Any]) -> None:
        kind, value = item
        if kind == "frame":
            self.latest, self.source_error = value, None
            self.frames += 1
            self.frame.emit(value)
            if self.frames == 1:
                self.changed.emit()
        elif kind == "product":
            self.latest = value
            self.product.emit(value)
        elif kind == "info":
            self.info = value
            self.changed.emit()
        elif kind == "error":
            self.source_error = value
            self.changed.emit()
        elif kind == "stats":
            self.stats = value
        elif kind == "plc":
            was = self.plc.get("connected")
            self.plc = value
            if value.get("trigger"):
                self.triggered.emit(int(value.get("trig_seq", 0)), int(value.get("part_id", 0)))
            if was != value.get("connected") or value["heartbeats"] % 10 == 0:
                self.changed.emit()

    def _on_failed(self, name: str, msg: str) -> None:
        if name == "plc_monitor_loop":
            self.plc_error = msg
        else:
            self.source_error = msg
        self.changed.emit()
