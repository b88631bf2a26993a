"""Live sort view: a supervisor switches the sort engine on (shadow mode first), watches it, stops it.

The work is hardware.sort.session.run_session's, in a child process (app.child.in_child, relayed
by the one Worker): load the active model, open the source, start the built-in PLC simulator when
the station has no PLC and no rig runs one, run the SortEngine (poll the PLC, capture, one batched
forward, one Modbus write, log the part into the project), and report a snapshot five times a
second (counters, parts/s, latency, PLC link) with, for each newly decided part, that part's
record and thumbnails of its own views: verdict, views and per-view P(NG) always show ONE part.
In the window's process the engine's threads shared the GUI's GIL and froze it 60-130 ms.
This view keeps the newest snapshot and a QTimer draws what changed. Stop cancels the Worker: the
run ends (the engine clears SORT_MODE_ON and READY first, then the heartbeat) and its summary
comes back as the cancelled run's result. Closing the window does the same and waits for it; if
the window dies, the run notices and stops the same way.
Only a supervisor may switch sorting on (ctx.require_role); the refusal is a clear message.

Run alone for a look: ``python -m app.views.sort_view PROJECT.h5``
"""
from __future__ import annotations

import os
import time
from typing import Any

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.child import in_child, start_child_server
from app.rig import LINE_SCAN_PARTS_PER_S
from app.widgets.plot_curves import CurvePlot
from app.widgets.sort_indicator import CounterTiles, VerdictIndicator
from app.widgets.stagger import Stagger
from app.worker import Worker
from hardware.sort.config import parse_host_port
from hardware.sort.session import SessionSpec, run_session
from hardware.sort.summary import SortStarted, SortTick
from labeling.progress import Progress, ProgressFn, StopFn
from labeling.types import ProjectKind, Role
from training.cameras import parse_camera_map

POLL_MS = 200
CAPACITY_COLOURS = {"tight": "#ffb347", "over": "#ff4d4d"}  # "ok"/"unknown": the theme's text colour


def engine_threads() -> int:
    """torch/OpenCV threads of the engine: one core stays for the window.

    Measured on a busy 2-core station: with torch on both cores its spinning threads starved the
    GUI (stalls 130-190 ms) and each other (decision latency p50 ~800 ms, a third of the parts
    answered ERROR); with one thread p50 was ~36 ms and no part was answered ERROR.
    """
    return max(1, (os.cpu_count() or 2) - 1)


def sort_in_process(spec: SessionSpec, progress: ProgressFn | None = None,
                    should_stop: StopFn | None = None) -> dict[str, Any]:
    """hardware.sort.session.run_session in a child process until should_stop() (the run logs
    its parts through its own handles; the window reloads its Project on the writer thread)."""
    return in_child(run_session, spec, progress=progress, should_stop=should_stop)


def preload() -> None:
    """Start the fork server the sort process comes from now (window start), not on Start."""
    start_child_server()


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
        # The cameras to sort from: None takes the station's source (Station settings, the one the
        # Capture view shows); a spec here overrides it (tests, a look at one folder).
        self.source_spec: str | None = None
        self._paused_preview = False  # the rig's preview was closed for this run (same cameras)
        self.sim_rate = 4.0  # parts/s of the built-in simulator's conveyor
        self.last_summary: dict[str, Any] | None = None
        self.last_snapshot: dict[str, Any] = {}
        self._busy: Worker | None = None
        self._t0 = 0.0
        self._part: dict[str, Any] | None = None  # the newest decided part (record + its views), not drawn yet
        self._shown: dict[str, Any] = {}  # what the screen shows now (redraw only changes)

        self.shadow = QCheckBox("Shadow mode: decide and log, do not actuate the gate")
        self.shadow.setChecked(True)
        self.shadow.setToolTip("Run the model beside the line's current sorting first (VERDICT stays 0, "
                               "SORT_MODE_ON clear); compare, then switch shadow off to hand it the gate.")
        self.camera_map = QLineEdit()
        self.camera_map.setPlaceholderText("camera map, e.g. Viky-0=cam0,Viky-1=cam1 (empty: names must match)")
        self.camera_map.setToolTip("A source whose cameras are not the model's (names or count) does not start: "
                                   "map each source camera onto the model camera whose ROI it should get.")
        self.start_btn = QPushButton("Switch live sort on (supervisor)")
        self.start_btn.setObjectName("captureButton")
        self.start_btn.clicked.connect(self.start)
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setObjectName("ngButton")
        self.stop_btn.setEnabled(False)
        self.stop_btn.clicked.connect(self.stop)
        self.mode = QLabel("Sorting is off.")
        self.mode.setWordWrap(True)  # a long state text must not widen the column (relayout of the plots)
        self.mode.setStyleSheet("font-size:14pt; font-weight:bold;")
        self.model_label = QLabel("")
        self.model_label.setWordWrap(True)
        # Can the model keep up with the line (hardware.sort.capacity)? Said in shadow mode, kept
        # after the run: that is when a supervisor decides to hand it the gate.
        self.capacity_label = QLabel("")
        self.capacity_label.setWordWrap(True)
        self.capacity_label.setToolTip("Time per part against the line's trigger rate. A part that triggers while "
                                       "two are still being decided is missed and rejected (fail-safe).")
        self.plc_label = QLabel("PLC: —")
        self.plc_label.setWordWrap(True)
        self.log_label = QLabel("")
        self.log_label.setObjectName("muted")
        self.log_label.setWordWrap(True)
        ctrl = QGroupBox("Live sort")
        cl = QVBoxLayout(ctrl)
        cl.addWidget(self.mode)
        cl.addWidget(self.shadow)
        cl.addWidget(self.camera_map)
        row = QHBoxLayout()
        row.addWidget(self.start_btn, 2)
        row.addWidget(self.stop_btn, 1)
        cl.addLayout(row)
        cl.addWidget(self.model_label)
        cl.addWidget(self.capacity_label)
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
        self.rate_plot = CurvePlot("Parts per second", "parts/s", "time (s)", keep=3000, series=("parts/s",))
        self.lat_plot = CurvePlot("Trigger-to-write latency", "ms", "time (s)", keep=3000, series=("p50", "p99"))
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
        self.stagger = Stagger(self)
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
        if self._busy is not None and self._busy.is_running():
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
        try:
            mapping = tuple(parse_camera_map(self.camera_map.text()).items())
        except ValueError as exc:
            self.mode.setText(str(exc).replace("--map-cameras", "Camera map"))
            return False
        source = self.sort_source()
        # X-ray products come at the detector's pace (a product takes ~0.5 s to scan here): the
        # simulated conveyor is not set to trigger faster than the line can deliver them.
        rate = min(self.sim_rate, LINE_SCAN_PARTS_PER_S) if source.startswith("xray") else self.sim_rate
        spec = SessionSpec(str(proj.path), plc, source, self.shadow.isChecked(), rate,
                           threads=engine_threads(), parent_pid=os.getpid(), camera_map=mapping)
        self._busy = Worker(sort_in_process, spec)
        self._busy.min_progress_interval_s = 0.0  # the run paces its reports (5 per second)
        self._busy.progress.connect(self._on_report)
        self._busy.finished.connect(self._on_stopped)
        self._busy.failed.connect(self._on_failed)
        self._busy.cancelled.connect(self._on_cancelled)
        self.start_btn.setEnabled(False)
        self.shadow.setEnabled(False)
        self.mode.setText(f"Starting: loading the model, opening {source}, connecting to the PLC…")
        if not source.startswith("sim") and rig is not None and hasattr(rig, "pause_preview"):
            # the sort process opens these cameras itself: the preview lets go of them first
            self._paused_preview = rig.pause_preview()
        self._busy.start()
        return True

    def sort_source(self) -> str:
        """The source spec this view sorts from: its override, else the station's source (its
        simulated cameras at the rig's 640x480 for "sim"). Before this, the window sorted the
        simulator's images whatever cameras the station had."""
        if self.source_spec:
            return self.source_spec
        proj = self.ctx.project
        if proj is not None and proj.settings.kind == ProjectKind.LINE_SCAN:
            return "xray"  # the X-ray detector (simulated: the one the Capture view's waterfall shows)
        station = str(getattr(self.ctx.station, "source", "sim") or "sim")
        return "sim:640x480" if station == "sim" else station

    def _on_report(self, p: Progress) -> None:
        if isinstance(p.payload, SortTick):
            self.last_snapshot = p.payload.snapshot
            if p.payload.part is not None:
                self._part = p.payload.part
        elif isinstance(p.payload, SortStarted):
            self._on_started(p.payload)

    def _on_started(self, started: SortStarted) -> None:
        run = {"info": started.info, "plc": started.plc, "shadow": started.shadow, "pid": started.pid}
        self.run = run
        self._t0 = time.monotonic()
        self._shown = {}
        self._part = None
        self.rate_plot.reset()
        self.lat_plot.reset()
        self._show_capacity({"text": "Speed: timing the model's forward…", "level": "unknown"})
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

    def _on_failed(self, msg: str) -> None:
        if self.run is None:
            self._on_start_failed(msg)
        else:
            self._on_stopped({"error": msg})

    def _resume_preview(self) -> None:
        rig = getattr(self.ctx, "rig", None)
        if self._paused_preview and rig is not None:
            rig.resume_preview()
        self._paused_preview = False

    def _on_start_failed(self, msg: str) -> None:
        self._resume_preview()
        self.start_btn.setEnabled(True)
        self.shadow.setEnabled(True)
        self.mode.setText(f"Could not start: {msg}")
        self.ctx.status.emit(f"Live sort could not start: {msg}")
        self.start_failed.emit(msg)

    def stop(self) -> None:
        """Ask the run to end (the engine clears SORT_MODE_ON and READY first); its summary
        arrives as the Worker's result."""
        if self._busy is None or not self._busy.is_running():
            return
        self._busy.cancel()  # the summary comes back with Worker.cancelled
        self.stop_btn.setEnabled(False)
        self.mode.setText("Stopping: clearing SORT_MODE_ON and READY…")

    def _on_cancelled(self, summary: dict[str, Any] | None) -> None:
        """The run stopped on request: its summary, or why it ended without one."""
        busy = self._busy
        self._on_stopped(summary if summary is not None else
                         {"error": (busy.error if busy is not None else None) or "the run ended without a summary"})

    def _on_stopped(self, summary: dict[str, Any]) -> None:
        self.run = None
        self.timer.stop()
        self._resume_preview()
        self.last_summary = summary
        self.stop_btn.setEnabled(False)
        self.start_btn.setEnabled(True)
        self.shadow.setEnabled(True)
        self.mode.setStyleSheet("font-size:14pt; font-weight:bold;")
        if "error" in summary:
            self.mode.setText(f"Sorting is off (stop reported: {summary['error']})")
        else:
            v = summary.get("verdicts", {})
            self.mode.setText(f"Sorting is off. {summary.get('triggers', 0)} parts: OK {v.get('OK', 0)}, "
                              f"NG {v.get('NG', 0)}, ERROR {v.get('ERROR', 0)}; logged to the project.")
            self._show_capacity(summary.get("capacity") or {}, "Last run: ")
        self.ctx.reload_project()  # the sorted parts (also those logged before an error)
        self.ctx.status.emit("Live sort off")
        self.stopped.emit(summary)

    # ------------------------------------------------------------------ polling
    def poll(self) -> None:
        """Draw the newest snapshot: only what changed, plots and PLC text once a second, the
        views at most twice a second, each group in its own event-loop pass (self.stagger): one
        paint pass of everything at once froze the window ~70 ms on a 2-core station."""
        if self.run is None or not self.last_snapshot:
            return
        snap = self.last_snapshot
        now = time.monotonic()
        t = now - self._t0
        if snap.get("triggers") != self._shown.get("triggers"):
            self._shown["triggers"] = snap.get("triggers")
            self.stagger.add("tiles", lambda: self.tiles.show_snapshot(snap))
        if self._part is not None:
            part, self._part = self._part, None
            # verdict, views and scores of ONE part record, drawn in one pass (views are already
            # thumbnails, SessionSpec.thumb_px: made by the run, not in this thread)
            self.stagger.add("part", lambda: self._show_part(part, bool(snap.get("shadow"))))
        if now - self._shown.get("slow_t", 0.0) >= 1.0:
            self._shown["slow_t"] = now
            self.rate_plot.add("parts/s", t, float(snap.get("parts_per_s") or 0.0))
            lat = snap.get("latency_ms") or {}
            for key in ("p50", "p99"):
                if isinstance(lat.get(key), (int, float)):
                    self.lat_plot.add(key, t, float(lat[key]))
            # drawn now, each plot in its own pass (not by their own timers, in one pass)
            self.stagger.add("rate", self.rate_plot.flush)
            self.stagger.add("latency", self.lat_plot.flush)
            self.stagger.add("plc", lambda: self._show_plc(snap.get("plc") or {}, snap))
            self.stagger.add("capacity", lambda: self._show_capacity(snap.get("capacity") or {}))

    def _show_part(self, payload: dict[str, Any], shadow: bool) -> None:
        rec = payload["part"]
        dc = int(rec.get("defect_class") or 0)
        classes = self.ctx.project.settings.classes if self.ctx.project is not None else []
        named = f" ({classes[dc - 1].name})" if 0 < dc <= len(classes) else ""
        detail = ((f"DEFECT_CLASS {dc}{named} · " if dc else "")
                  + f"seq {rec.get('trig_seq')} · part {rec.get('part_id')} · confidence "
                  f"{float(rec.get('confidence', 0)):.2f} · {rec.get('total_ms', 0):.0f} ms"
                  + (" · not actuated (shadow)" if shadow else "")
                  + (f" · {rec['error']}" if rec.get("error") else ""))
        self.indicator.show_part(rec, list(payload["views"]), list(payload["cameras"]), detail)

    def _show_capacity(self, capacity: dict[str, Any], prefix: str = "") -> None:
        if not capacity.get("text"):
            return
        colour = CAPACITY_COLOURS.get(str(capacity.get("level")), "")
        self.capacity_label.setText(prefix + str(capacity["text"]))
        self.capacity_label.setStyleSheet(f"color:{colour}; font-weight:bold;" if colour else "")
        self.capacity_label.setProperty("level", capacity.get("level"))

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
        """Window closing: end the run now and wait for it (SORT_MODE_ON and READY cleared first)."""
        self.timer.stop()
        busy = self._busy
        if busy is not None and busy.is_running():
            busy.cancel()
            if not busy.wait(30000):
                self.ctx.status.emit("Live sort did not stop within 30 s")
        self.run = None


if __name__ == "__main__":  # pragma: no cover
    import sys

    from app.widgets.standalone import run_standalone
    sys.exit(run_standalone(SortView))
