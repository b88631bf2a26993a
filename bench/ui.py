"""GUI responsiveness: the longest event-loop stall while training, capturing and sorting, and
the repaint time of a brush stroke on a 3264x2448 image. Prints ONE JSON line.

Stall: a QTimer fires every 5 ms in the GUI thread; the longest gap between two firings, minus
the 5 ms period, is how long the GUI was blocked (target < 50 ms). Each scenario drives the real
view on a demo project: Train runs a small training through the Worker, Capture runs the
simulated rig and stores a part every 300 ms, X-ray runs the simulated line-scan detector
(1250 lines/s) into the waterfall of an X-ray project, Live sort runs the engine (in its own
process, as the window does) against the built-in PLC simulator (live mode, with the model just
trained) and then stops it. Tabs (not a target: what clicking through the modes feels like)
switches the real main window through every mode. Before the scenarios the views' modules are loaded and the heap
frozen, as app.main.build does once the window is built (app.heap).
Each view is shown and painted once before its meter starts (see settle). --trace FILE dumps
every thread's stack at each stall (see StallMeter.trace_file).
Brush: one stroke of 120 mouse moves on the label canvas; each move's edit + synchronous
repaint of the canvas is timed (target <= 16 ms).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/ui.py [--quick]
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PyQt6.QtCore import QElapsedTimer, QTimer
from PyQt6.QtWidgets import QApplication

PERIOD_MS = 5


class StallMeter:
    """Records the gaps between firings of a 5 ms timer in the GUI thread."""

    #: --trace FILE: a C watchdog (faulthandler, needs no GIL) dumps every thread's stack into
    #: FILE whenever the timer is TRACE_MS late, so a stall shows what the GUI thread waited on
    #: and which thread held the GIL meanwhile.
    trace_file: Any = None
    TRACE_MS = 40

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.timer = QTimer()
        self.timer.setInterval(PERIOD_MS)
        self.timer.timeout.connect(self._tick)
        self.clock = QElapsedTimer()
        self.gaps: list[float] = []
        self.at: list[float] = []
        self.cpu: list[float] = []  # GUI thread CPU time (ms) within each gap: own work vs. waiting
        self._last = 0.0
        self._last_cpu = 0.0

    def start(self) -> None:
        self.gaps.clear()
        self.at.clear()
        self.cpu.clear()
        self.clock.start()
        self._last = 0.0
        self._last_cpu = time.thread_time() * 1000
        self.timer.start()
        self._arm()

    def _arm(self) -> None:
        if self.trace_file is not None:
            faulthandler.dump_traceback_later(self.TRACE_MS / 1000, file=self.trace_file)

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed() / 1e6
        cpu = time.thread_time() * 1000
        self.gaps.append(now - self._last)
        self.at.append(now)
        self.cpu.append(cpu - self._last_cpu)
        self._last_cpu = cpu
        if self.trace_file is not None:
            if now - self._last > self.TRACE_MS + PERIOD_MS:
                self.trace_file.write(f"=== {self.name} stall {now - self._last:.0f} ms ending at "
                                      f"{now / 1000:.2f} s (the dump above)\n")
                self.trace_file.flush()
            self._arm()
        self._last = now

    def stop(self) -> dict[str, Any]:
        self.timer.stop()
        if self.trace_file is not None:
            faulthandler.cancel_dump_traceback_later()
        g = np.asarray(self.gaps[1:] or [0.0])
        return {"max_stall_ms": round(max(0.0, float(g.max()) - PERIOD_MS), 1),
                "p99_gap_ms": round(float(np.percentile(g, 99)), 1),
                "ticks": int(g.size), "seconds": round(self._last / 1000, 1),
                # [when (s), gap (ms), GUI thread CPU in the gap (ms)]: CPU << gap means the GUI
                # thread waited (GIL, scheduler), CPU ~ gap means its own work (painting) was long
                "worst": [[round(self.at[i] / 1000, 2), round(self.gaps[i], 1), round(self.cpu[i], 1)]
                          for i in sorted(np.argsort(self.gaps[1:])[-3:] + 1)] if len(self.gaps) > 3 else []}


def pump_until(app: QApplication, done: Callable[[], bool], timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > end:
            return False
        app.processEvents()
        time.sleep(0.001)
    return True


def settle(app: QApplication, seconds: float = 1.0) -> None:
    """Let a just-shown view paint once before its meter starts: the user sees the view before
    pressing Start, and the stall measured is the run's, not the view's first paint."""
    pump_until(app, lambda: False, seconds)


def bench_train(app: QApplication, ctx: Any, quick: bool) -> dict[str, Any]:
    from app.views.train_view import TrainView
    view = TrainView(ctx)
    view.resize(1500, 900)
    view.show()
    view.form.set_values({"arch": "mobilenet_v3_small", "freeze": "scratch", "epochs": 1 if quick else 3,
                          "batch_size": 16, "input_size": (96, 96), "folds": 1,
                          "augment": ["hflip", "vflip", "brightness_contrast"]})
    settle(app)
    state: dict[str, str] = {}
    view.run_finished.connect(lambda s: state.setdefault("end", s))
    # the model list reloaded after the run, its new model selected and drawn
    view.models_loaded.connect(lambda: "end" in state and state.setdefault("models", "loaded"))
    meter = StallMeter("train")
    meter.start()
    view.start()
    pump_until(app, lambda: "end" in state, 600)
    pump_until(app, lambda: "models" in state, 30)
    pump_until(app, lambda: False, 0.5)  # the selected model's curves are drawn a few passes later
    out = meter.stop()
    out["result"] = state.get("end", "timeout")
    out["model_id"] = getattr(view.last_result, "model_id", None)
    view.shutdown()
    view.close()
    return out


def bench_capture(app: QApplication, ctx: Any, seconds: float) -> dict[str, Any]:
    from app.main import sync_rig
    from app.views.capture_view import CaptureView
    view = CaptureView(ctx)
    view.resize(1500, 900)
    view.show()
    sync_rig(ctx)
    pump_until(app, lambda: ctx.rig is not None and ctx.rig.latest is not None, 60)
    shots = QTimer()
    shots.setInterval(300)
    shots.timeout.connect(lambda: view.capture())
    meter = StallMeter("capture")
    meter.start()
    shots.start()
    pump_until(app, lambda: False, seconds)
    shots.stop()
    ctx.writer.flush(30)
    out = meter.stop()
    out["captured"] = view.count
    out["frames_shown"] = ctx.rig.frames if ctx.rig is not None else 0
    ctx.set_rig(None)
    view.close()
    return out


def bench_xray(app: QApplication, tmp: Path, seconds: float) -> dict[str, Any]:
    """Capture on an X-ray line-scan project: the simulated 640-px detector at 1250 lines/s into
    the waterfall (redrawn ~30 times a second), products cut from the strip as they pass."""
    from app.context import AppContext
    from app.main import sync_rig
    from app.views.capture_view import CaptureView
    from labeling.demo import make_demo_project
    ctx = AppContext()
    ctx.set_project(make_demo_project(tmp / "xray.h5", "xray", parts=4))
    view = CaptureView(ctx)
    view.resize(1500, 900)
    view.show()
    sync_rig(ctx)
    pump_until(app, lambda: ctx.rig is not None and ctx.rig.ring.total > 0, 60)
    settle(app)
    meter = StallMeter("xray")
    lines0 = ctx.rig.ring.total
    redraws0 = view.waterfall.redraws
    meter.start()
    pump_until(app, lambda: False, seconds)
    out = meter.stop()
    stats = getattr(ctx.rig, "stats", None) or {}
    out.update(lines=ctx.rig.ring.total - lines0, lines_per_s=round((ctx.rig.ring.total - lines0) / seconds),
               dropped=stats.get("dropped"), redraws_per_s=round((view.waterfall.redraws - redraws0) / seconds, 1))
    ctx.set_rig(None)
    view.close()
    ctx.shutdown()
    return out


def bench_tabs(app: QApplication, tmp: Path) -> dict[str, Any]:
    """The real main window (app.main.build, simulated rig running): the longest stall in the
    1.5 s after switching to each mode (first shows included: what a user clicking through sees)."""
    from app.main import build
    from app.main_window import VIEWS
    from labeling.demo import make_demo_project
    make_demo_project(tmp / "tabs.h5", "bolts", parts=24, size=(640, 480))
    _app, ctx, win = build(tmp / "tabs.h5", rig=True)
    win.resize(1600, 1000)
    pump_until(app, lambda: ctx.rig is not None and ctx.rig.frames > 0, 60)
    settle(app, 2.0)
    out: dict[str, Any] = {}
    for title in [t for t, _c in VIEWS] + ["Label", "Capture"]:
        meter = StallMeter(f"tab {title}")
        meter.start()
        win.show_view(title)
        pump_until(app, lambda: False, 1.5)
        key = title if title not in out else f"{title} again"
        out[key] = meter.stop()["max_stall_ms"]
    win.close()
    return {"max_stall_ms": max(out.values()), "per_tab": out}


def bench_sort(app: QApplication, ctx: Any, seconds: float) -> dict[str, Any]:
    from app.views.sort_view import SortView
    from labeling.types import Role
    ctx.switch_role(Role.SUPERVISOR, "4321")
    view = SortView(ctx)
    view.resize(1500, 900)
    view.show()
    view.shadow.setChecked(False)
    view.sim_rate = 5.0
    events: dict[str, Any] = {}
    view.started.connect(lambda: events.setdefault("started", True))
    view.stopped.connect(lambda s: events.setdefault("summary", s))
    view.start_failed.connect(lambda m: events.setdefault("error", m))
    # The PLC is another device on the line: its simulator runs in its own process here, as
    # `okng plc-sim`, so the GUI process holds only what it holds in production.
    plc = _plc_subprocess(rate=5.0)
    view.plc_override = ("127.0.0.1", plc.port)  # type: ignore[attr-defined]
    settle(app)
    meter = StallMeter("sort")
    meter.start()
    view.start()
    pump_until(app, lambda: "started" in events or "error" in events, 120)
    pump_until(app, lambda: False, seconds)
    view.stop()
    pump_until(app, lambda: "summary" in events, 60)
    out = meter.stop()
    plc.proc.terminate()
    plc.proc.wait(10)
    s = events.get("summary") or {}
    out.update(error=events.get("error"), triggers=s.get("triggers"), verdicts=s.get("verdicts"),
               latency_ms=s.get("latency_ms"), parts_per_s=s.get("parts_per_s"))
    view.close()
    return out


class _PlcProcess:
    def __init__(self, proc: Any, port: int) -> None:
        self.proc, self.port = proc, port


def _plc_subprocess(rate: float) -> _PlcProcess:
    """`okng plc-sim` on a free loopback port, in a child process; waits until it listens."""
    import socket
    import subprocess
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "plc-sim", "--port", str(port), "--rate", str(rate)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=str(Path(__file__).resolve().parents[1]))
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return _PlcProcess(proc, port)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("okng plc-sim did not start")


def bench_brush(app: QApplication, moves: int = 120) -> dict[str, Any]:
    from app.widgets.canvas import MaskCanvas
    from labeling.masktools import MaskEditor
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (2448, 3264, 3), dtype=np.uint8)
    editor = MaskEditor(np.zeros((2448, 3264), np.uint8))
    canvas = MaskCanvas()
    canvas.resize(1400, 1000)
    canvas.show()
    canvas.set_view(image, editor, ["#ff4d4d", "#ffb347"])
    canvas.set_tool("brush")
    canvas.set_brush_radius(24)
    app.processEvents()
    times: list[float] = []
    xs = np.linspace(400, 2900, moves)
    ys = 1200 + 500 * np.sin(np.linspace(0, 3 * np.pi, moves))
    canvas.begin_stroke(float(xs[0]), float(ys[0]))
    for x, y in zip(xs[1:], ys[1:]):
        t0 = time.perf_counter()
        canvas.stroke_to(float(x), float(y))
        canvas.viewport().repaint()  # synchronous: the move is on screen when this returns
        times.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    canvas.end_stroke()
    end_ms = (time.perf_counter() - t0) * 1000
    canvas.close()
    a = np.asarray(times)
    return {"image": "3264x2448", "moves": int(a.size), "median_ms": round(float(np.median(a)), 2),
            "p95_ms": round(float(np.percentile(a, 95)), 2), "max_ms": round(float(a.max()), 2),
            "end_stroke_ms": round(end_ms, 2), "painted_px": int((editor.mask > 0).sum())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="shorter scenarios")
    ap.add_argument("--trace", metavar="FILE", help="dump all threads' stacks into FILE at each stall > 40 ms")
    ap.add_argument("--only", nargs="+", choices=("train", "capture", "xray", "sort", "tabs", "brush"),
                    help="run only these scenarios (sort needs a trained model: keep train)")
    args = ap.parse_args(argv)
    if args.trace:
        StallMeter.trace_file = open(args.trace, "w")  # noqa: SIM115 - open for the whole run
    tmp = Path(tempfile.mkdtemp(prefix="okng-bench-ui-"))
    os.environ.setdefault("OKNG_HOME", str(tmp / "home"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from app.context import AppContext
    from app.theme import apply_theme
    from labeling.demo import make_demo_project
    apply_theme(app)
    project = make_demo_project(tmp / "bench.h5", "bolts", parts=24, size=(320, 240))
    ctx = AppContext()
    ctx.set_project(project)
    # As app.main.build does once the window is built: the views' modules (and what their
    # preload() imports) loaded, then the heap frozen (app.heap).
    from app.heap import freeze_heap
    from app.main_window import VIEWS
    for _title, cls in VIEWS:
        preload = getattr(sys.modules[cls.__module__], "preload", None)
        if callable(preload):
            preload()
    freeze_ms = freeze_heap()
    secs = 4.0 if args.quick else 10.0
    idle = StallMeter("idle")
    idle.start()
    pump_until(app, lambda: False, 1.0)
    out: dict[str, Any] = {"bench": "ui", "platform": app.platformName(), "cpus": os.cpu_count(),
                           "freeze_heap_ms": round(freeze_ms, 1), "idle": idle.stop()}
    only = set(args.only or ("train", "capture", "xray", "sort", "tabs", "brush"))
    if "train" in only:
        out["train"] = bench_train(app, ctx, args.quick)
        if out["train"].get("model_id"):
            project.set_active_model(out["train"]["model_id"])
    if "capture" in only:
        out["capture"] = bench_capture(app, ctx, secs)
    if "xray" in only:
        out["xray"] = bench_xray(app, tmp, secs)
    if "sort" in only:
        out["sort"] = bench_sort(app, ctx, secs)
    if "tabs" in only:
        out["tabs"] = bench_tabs(app, tmp)
    if "brush" in only:
        out["brush"] = bench_brush(app)
    stalls = [out[k]["max_stall_ms"] for k in ("train", "capture", "xray", "sort") if k in out]
    out["targets"] = {"stall_ms": 50, "brush_ms": 16,
                      "stall_ok": max(stalls) < 50 if stalls else None,
                      "brush_ok": out["brush"]["p95_ms"] <= 16 if "brush" in out else None}
    ctx.shutdown()
    print(json.dumps(out), flush=True)
    # Qt deleted in order now, not by PyQt's atexit walk (which segfaulted: see app.teardown);
    # it also unfreezes the heap, whose frozen objects extension modules would report as leaks.
    from app.teardown import release_qt
    del ctx, project
    release_qt()
    return 0


if __name__ == "__main__":
    sys.exit(main())
