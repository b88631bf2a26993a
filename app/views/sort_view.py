"""Live sort view: a supervisor switches the sort engine on (shadow mode first), watches it, stops it.

The work is hardware.sort.SortEngine's: it runs in its own thread (poll the PLC, capture, one
batched forward, one Modbus write, log the part into the project). This view only
* prepares a run in a Worker (load the active model, open the source, start the built-in PLC
  simulator when the station has no PLC and no rig runs one) and starts the engine,
* polls engine.snapshot() with a QTimer (counters, last decision, parts/s, latency, PLC link),
* stops it in a Worker: engine.stop() clears SORT_MODE_ON and READY first, then the heartbeat.
Closing the window stops the engine synchronously (shutdown) for the same reason.
Only a supervisor may switch sorting on (ctx.require_role); the refusal is a clear message.

Run alone for a look: ``python -m app.views.sort_view PROJECT.h5``
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any

import numpy as np
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.widgets.plot_curves import CurvePlot
from app.widgets.qimage import thumbnail
from app.widgets.sort_indicator import CounterTiles, VerdictIndicator
from app.worker import Worker
from hardware.sort.config import parse_host_port
from labeling.types import Role

POLL_MS = 200


class TapSource:
    """Wraps a hardware Source and keeps a reference to the last capture (for the views shown).

    Keeping a reference costs nothing on the engine's critical path; thumbnails are made in the
    GUI thread from the timer, a few times a second.
    """

    def __init__(self, source: Any) -> None:
        self.source = source
        self.last: Any = None
        self.count = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        # Anything else (seed, resolution, ...) is the wrapped source's: the engine may ask.
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)

    def open(self) -> None:
        """Pay the source's one-off first-frame cost, then open it (it may start prefetching).

        In this order the cost is paid once: the engine's own warm-up (now warm_up below) ran
        while the sim source's prefetch thread rendered its first part, both filling the same
        layer cache at once - two GIL-bound threads that stalled the GUI 70-140 ms.
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
        cap = self.source.capture(timeout=timeout)
        with self._lock:
            self.last, self.count = cap, self.count + 1
        return cap

    def latest(self) -> tuple[int, Any]:
        with self._lock:
            return self.count, self.last


def prepare_sort(project: Any, plc: tuple[str, int] | None, source_spec: str, shadow: bool,
                 sim_rate: float, progress: Any = None, should_stop: Any = None) -> dict[str, Any]:
    """Load the model, open the source, start a PLC simulator if needed, start the engine."""
    from hardware.sort.config import SortConfig
    from hardware.sort.engine import SortEngine
    from hardware.sort.models import load_classifier, untrained_classifier
    from hardware.sources import make_source
    if project.active_model_id:
        classifier, info = load_classifier(project, "active")
    else:
        classifier, info = untrained_classifier(project)
    sim = None
    if plc is None:
        from hardware.plc.simulator import PlcSimulator
        sim = PlcSimulator(host="127.0.0.1", port=0, rate=sim_rate)
        sim.start()
        plc = ("127.0.0.1", sim.port)
    source = TapSource(make_source(source_spec, seed=7))
    try:
        source.open()
        cfg = SortConfig(plc_host=plc[0], plc_port=plc[1], shadow=shadow, log_parts=True,
                         model_id=str(info.get("model_id", "")), threads=engine_threads())
        engine = SortEngine(project, classifier, source, cfg)
        engine.start()
    except BaseException:
        source.close()
        if sim is not None:
            sim.stop()
        raise
    return {"engine": engine, "source": source, "sim": sim, "info": info, "plc": plc, "shadow": shadow}


def engine_threads() -> int:
    """torch/OpenCV threads of the engine in the window's process: one core stays for the GUI.

    Measured on a busy 2-core station: with torch on both cores its spinning threads starved the
    GUI thread (stalls 130-190 ms) and each other (decision latency p50 ~800 ms, a third of the
    parts answered ERROR); with one thread p50 was ~36 ms, no ERROR, stalls under ~130 ms.
    """
    return max(1, (os.cpu_count() or 2) - 1)


def stop_sort(run: dict[str, Any], project: Any = None, progress: Any = None, should_stop: Any = None) -> dict[str, Any]:
    """Stop the engine (SORT_MODE_ON and READY cleared first), close the source and simulator."""
    summary = None
    try:
        summary = run["engine"].stop()
    finally:
        try:
            run["source"].close()
        finally:
            if run.get("sim") is not None:
                run["sim"].stop()
    if project is not None:
        project.reload()  # the engine logged parts through its own handle
    return summary.to_dict() if summary is not None else {}


def preload() -> None:
    """Import the engine's modules now (at window start): a first import in a worker thread
    runs C-extension initialisers that hold the GIL for hundreds of ms, freezing the GUI."""
    # Loading a model builds its network through torchvision (training.backbones imports it
    # lazily): ~1,100 modules (torch._dynamo, sympy...), 2-3 s of imports that froze the window
    # in 150-250 ms stretches while the sort engine started.
    import torchvision.models  # noqa: F401

    import hardware.plc.client
    import hardware.plc.simulator
    import hardware.sort.engine
    import hardware.sort.models
    import hardware.sources.sim  # noqa: F401
    import training.inference  # noqa: F401


class SortView(QWidget):
    """Live sort mode: controls and PLC | big verdict with views | counters and plots."""

    started = pyqtSignal()
    stopped = pyqtSignal(object)  # summary dict
    start_failed = pyqtSignal(str)

    def __init__(self, ctx: Any, parent: Any = None) -> None:
        super().__init__(parent)
        preload()
        self.ctx = ctx
        self.run: dict[str, Any] | None = None
        self.plc_override: tuple[str, int] | None = None  # tests / a configured PLC
        self.source_spec = "sim:640x480"
        self.sim_rate = 4.0  # parts/s of the built-in simulator's conveyor
        self.last_summary: dict[str, Any] | None = None
        self.last_snapshot: dict[str, Any] = {}
        self._busy: Worker | None = None
        self._t0 = 0.0
        self._shown_capture = -1
        self._shown: dict[str, Any] = {}  # what the screen shows now (redraw only changes)

        self.shadow = QCheckBox("Shadow mode: decide and log, do not actuate the gate")
        self.shadow.setChecked(True)
        self.shadow.setToolTip("Run the model beside the line's current sorting first (VERDICT stays 0, "
                               "SORT_MODE_ON clear); compare, then switch shadow off to hand it the gate.")
        self.start_btn = QPushButton("Switch live sort on (supervisor)")
        self.start_btn.setObjectName("captureButton")
        self.start_btn.clicked.connect(self.start)
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setObjectName("ngButton")
        self.stop_btn.setEnabled(False)
        self.stop_btn.clicked.connect(self.stop)
        self.mode = QLabel("Sorting is off.")
        self.mode.setStyleSheet("font-size:14pt; font-weight:bold;")
        self.model_label = QLabel("")
        self.model_label.setWordWrap(True)
        self.plc_label = QLabel("PLC: —")
        self.plc_label.setWordWrap(True)
        self.log_label = QLabel("")
        self.log_label.setObjectName("muted")
        self.log_label.setWordWrap(True)
        ctrl = QGroupBox("Live sort")
        cl = QVBoxLayout(ctrl)
        cl.addWidget(self.mode)
        cl.addWidget(self.shadow)
        row = QHBoxLayout()
        row.addWidget(self.start_btn, 2)
        row.addWidget(self.stop_btn, 1)
        cl.addLayout(row)
        cl.addWidget(self.model_label)
        plc_box = QGroupBox("PLC")
        pl = QVBoxLayout(plc_box)
        pl.addWidget(self.plc_label)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(ctrl)
        ll.addWidget(plc_box)
        ll.addWidget(self.log_label)
        ll.addStretch(1)

        self.indicator = VerdictIndicator()
        self.tiles = CounterTiles()
        self.rate_plot = CurvePlot("Parts per second", "parts/s", "time (s)", keep=3000)
        self.lat_plot = CurvePlot("Trigger-to-write latency", "ms", "time (s)", keep=3000)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addWidget(self.tiles)
        rl.addWidget(self.rate_plot, 1)
        rl.addWidget(self.lat_plot, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.indicator)
        split.addWidget(right)
        split.setSizes([360, 620, 620])
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(split)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)

    # ------------------------------------------------------------------ on / off
    def is_on(self) -> bool:
        return self.run is not None

    def start(self) -> bool:
        """Switch sorting on (supervisor only); False if refused or not possible now."""
        if not self.ctx.require_role(Role.SUPERVISOR):
            return False
        proj = self.ctx.project
        if proj is None:
            self.mode.setText("Open a project first.")
            return False
        if self.run is not None or (self._busy is not None and self._busy.is_running()):
            return False
        plc = self.plc_override
        rig = getattr(self.ctx, "rig", None)
        if plc is None and rig is not None and getattr(rig, "plc_sim", None) is not None:
            plc = rig.plc_endpoint  # the rig's built-in simulator: the line the window shows
        station_plc = str(getattr(self.ctx.station, "plc", "sim") or "sim")
        if plc is None and station_plc != "sim":
            try:
                plc = parse_host_port(station_plc)
            except ValueError as exc:
                self.mode.setText(f"PLC address in the station settings: {exc}")
                return False
        shadow = self.shadow.isChecked()
        self._busy = Worker(prepare_sort, proj, plc, self.source_spec, shadow, self.sim_rate)
        self._busy.finished.connect(self._on_started)
        self._busy.failed.connect(self._on_start_failed)
        self.start_btn.setEnabled(False)
        self.shadow.setEnabled(False)
        self.mode.setText("Starting: loading the model, connecting to the PLC…")
        self._busy.start()
        return True

    def _on_started(self, run: dict[str, Any]) -> None:
        self.run = run
        self._t0 = time.monotonic()
        self._shown = {}
        self.rate_plot.reset()
        self.lat_plot.reset()
        info = run["info"]
        trained = info.get("trained", True)
        self.model_label.setText(f"Model: {info.get('model_id')} ({info.get('arch', '')})" +
                                 ("" if trained else "\n⚠ " + info.get("note", "UNTRAINED model")))
        self.model_label.setStyleSheet("" if trained else "color:#ffb347; font-weight:bold;")
        shadow = run["shadow"]
        self.mode.setText("SHADOW mode: deciding and logging, the gate is not driven" if shadow
                          else "LIVE: the model drives the gate")
        self.mode.setStyleSheet("font-size:14pt; font-weight:bold; color:%s;" % ("#ffb347" if shadow else "#2ecc71"))
        self.stop_btn.setEnabled(True)
        self.timer.start()
        self.ctx.status.emit(f"Live sort on ({'shadow' if shadow else 'live'}) with {info.get('model_id')}")
        self.started.emit()

    def _on_start_failed(self, msg: str) -> None:
        self.start_btn.setEnabled(True)
        self.shadow.setEnabled(True)
        self.mode.setText(f"Could not start: {msg}")
        self.ctx.status.emit(f"Live sort could not start: {msg}")
        self.start_failed.emit(msg)

    def stop(self) -> None:
        """Switch sorting off in a Worker (the engine clears SORT_MODE_ON and READY first)."""
        if self.run is None:
            return
        run, self.run = self.run, None
        self.timer.stop()
        self.stop_btn.setEnabled(False)
        self.mode.setText("Stopping: clearing SORT_MODE_ON and READY…")
        self._busy = Worker(stop_sort, run, self.ctx.project)
        self._busy.finished.connect(self._on_stopped)
        self._busy.failed.connect(lambda m: self._on_stopped({"error": m}))
        self._busy.start()

    def _on_stopped(self, summary: dict[str, Any]) -> None:
        self.last_summary = summary
        self.start_btn.setEnabled(True)
        self.shadow.setEnabled(True)
        self.mode.setStyleSheet("font-size:14pt; font-weight:bold;")
        if "error" in summary:
            self.mode.setText(f"Sorting is off (stop reported: {summary['error']})")
        else:
            v = summary.get("verdicts", {})
            self.mode.setText(f"Sorting is off. {summary.get('triggers', 0)} parts: OK {v.get('OK', 0)}, "
                              f"NG {v.get('NG', 0)}, ERROR {v.get('ERROR', 0)}; logged to the project.")
        self.ctx.parts_changed.emit()
        self.ctx.status.emit("Live sort off")
        self.stopped.emit(summary)

    # ------------------------------------------------------------------ polling
    def poll(self) -> None:
        """Show the engine's snapshot (cheap: counters under a lock, no I/O).

        Only what changed is redrawn, plots and PLC text once a second and the views at most
        twice a second: with the engine's threads busy, every Qt call from Python waits for the
        GIL, so fewer calls per tick keep the event loop's gaps short.
        """
        run = self.run
        if run is None:
            return
        snap = run["engine"].snapshot()
        self.last_snapshot = snap
        now = time.monotonic()
        t = now - self._t0
        last = snap.get("last") or {}
        seq = last.get("trig_seq")
        if snap.get("triggers") != self._shown.get("triggers"):
            self.tiles.show_snapshot(snap)
            self._shown["triggers"] = snap.get("triggers")
        if last and seq != self._shown.get("seq"):
            self._shown["seq"] = seq
            detail = (f"seq {seq} · part {last.get('part_id')} · confidence "
                      f"{float(last.get('confidence', 0)):.2f} · {last.get('total_ms', 0):.0f} ms"
                      + (" · not actuated (shadow)" if snap.get("shadow") else "")
                      + (f" · {last['error']}" if last.get("error") else ""))
            self.indicator.set_verdict(str(last.get("verdict", "")), detail)
        if now - self._shown.get("views_t", 0.0) >= 0.5:
            count, cap = run["source"].latest()
            if cap is not None and count != self._shown_capture:
                self._shown_capture = count
                self._shown["views_t"] = now
                self.indicator.set_views([thumbnail(np.asarray(v), 240) for v in cap.views],
                                         list(cap.cameras), last.get("scores") or [])
        if now - self._shown.get("slow_t", 0.0) >= 1.0:
            self._shown["slow_t"] = now
            self.rate_plot.add("parts/s", t, float(snap.get("parts_per_s") or 0.0))
            lat = snap.get("latency_ms") or {}
            for key in ("p50", "p99"):
                if isinstance(lat.get(key), (int, float)):
                    self.lat_plot.add(key, t, float(lat[key]))
            self._show_plc(snap.get("plc") or {}, snap)

    def _show_plc(self, plc: dict[str, Any], snap: dict[str, Any]) -> None:
        host = f"{plc.get('host', '?')}:{plc.get('port', '?')}"
        ok = plc.get("connected")
        hb = plc.get("heartbeat") or {}
        colour = "#2ecc71" if ok else "#ff4d4d"
        text = (f"<span style='color:{colour}'><b>{'connected' if ok else 'NOT connected'}</b></span> {host}"
                f"<br>heartbeat ticks {hb.get('ticks', '—')} · PLC alive {hb.get('plc_alive', '—')} · "
                f"healthy {snap.get('healthy')}<br>writes {plc.get('writes', 0)} · reconnects "
                f"{plc.get('reconnects', 0)} · missed {plc.get('missed', 0)}")
        if plc.get("last_error"):
            text += f"<br><span style='color:#ffb347'>{plc['last_error']}</span>"
        self.plc_label.setText(text)
        log = snap.get("log") or {}
        if log:
            self.log_label.setText("Parts logged to the project: " +
                                   ", ".join(f"{k} {v}" for k, v in log.items() if isinstance(v, (int, float))))

    # ------------------------------------------------------------------ closing
    def shutdown(self) -> None:
        """Window closing: stop the engine now (clears SORT_MODE_ON and READY first)."""
        self.timer.stop()
        if self._busy is not None and self._busy.is_running():
            self._busy.wait(30000)
            if self.run is None and self._busy.result is not None and isinstance(self._busy.result, dict) \
                    and "engine" in self._busy.result:
                self.run = self._busy.result  # started while we were closing
        if self.run is not None:
            run, self.run = self.run, None
            try:
                stop_sort(run)
            except Exception as exc:  # noqa: BLE001 - closing anyway; say why
                self.ctx.status.emit(f"Live sort stop: {exc}")


if __name__ == "__main__":  # pragma: no cover
    import sys

    from app.widgets.standalone import run_standalone
    sys.exit(run_standalone(SortView))
