"""`okng sort`: headless live sorting against a PLC (or the built-in simulator), and `--demo`."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from labeling.home import okng_home
from labeling.progress import Progress

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the sort command."""
    p = subparsers.add_parser(
        "sort", help="live sorting: PLC trigger -> capture -> model -> verdict to the PLC",
        description="Polls the PLC block (docs/plc-register-map.md); on each new TRIG_SEQ captures "
                    "all views, decides the part with one batched forward (NG if any view is NG) "
                    "and writes the result with one FC16 request; logs every part into the project. "
                    "Without --plc the built-in PLC/conveyor simulator runs on a free loopback port. "
                    "Prints a JSON summary at the end.")
    p.add_argument("project", nargs="?", help="project file (not needed with --demo)")
    p.add_argument("--demo", action="store_true",
                   help="end to end on the simulated rig and the built-in PLC simulator "
                        "(demo project and model built in $OKNG_HOME when missing)")
    p.add_argument("--model", default="active",
                   help="model id, or 'active' (default); with --demo a model of the demo project (e.g. a "
                        "segmentation model: okng train DEMO --task segment)")
    p.add_argument("--source", default="sim",
                   help="sim | sim:WxH | folder:DIR | opencv:SPEC | genicam:CTI (default sim)")
    p.add_argument("--plc", default=None, help="HOST:PORT of the PLC (default: built-in simulator)")
    p.add_argument("--parts", type=int, default=None, help="stop after N triggers")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.add_argument("--rate", type=float, default=5.0, help="built-in simulator: parts per second")
    p.add_argument("--shadow", action="store_true",
                   help="decide and log every part but answer nothing (VERDICT stays 0)")
    p.add_argument("--no-log", action="store_true", help="do not store sorted parts in the project")
    p.add_argument("--gradcam", action="store_true", help="Grad-CAM for NG parts (off the critical path)")
    p.add_argument("--poll-ms", type=float, default=3.0, help="PLC poll period in ms (default 3)")
    p.add_argument("--unit-id", type=int, default=1, help="Modbus unit id")
    p.add_argument("--plc-base", type=int, default=0, help="PLC block base address")
    p.add_argument("--pc-base", type=int, default=10, help="PC block base address")
    p.add_argument("--word-order", choices=("big", "little"), default="big", help="u32 word order")
    p.add_argument("--threads", type=int, default=1,
                   help="torch/OpenCV threads (default 1: steadiest latency on a small CPU; 0 leaves them)")
    p.add_argument("--runtime", choices=("torch", "onnxruntime"), default=None,
                   help="inference runtime for this run (default: the model's, okng activate --runtime); "
                        "ONNX Runtime is used only after its export matched torch on stored parts")
    p.add_argument("--pin", default="auto", metavar="auto|off|CPUS",
                   help="thread layout: auto pins the engine to its own CPU and the log writer, heartbeat "
                        "and simulator beside it (>= 2 CPUs); off leaves it to the OS; 2,3 names the "
                        "engine's CPUs (default auto; the layout is in the summary's 'threads')")
    p.add_argument("--map-cameras", default=None, metavar="SRC=MODEL,...",
                   help="map the source's cameras onto the model's (e.g. Viky-0=cam0,Viky-1=cam1): without "
                        "it, a source whose camera names or count differ from the model's is an error")
    p.add_argument("--json", action="store_true", help="JSON on stdout; progress lines on stderr")
    p.set_defaults(func=cmd_sort)


def cmd_sort(args: argparse.Namespace) -> int:
    """Run the sort engine until --parts/--duration/Ctrl-C and print the summary."""
    # Ctrl-C / SIGTERM end a run cleanly (SORT_MODE_ON and READY cleared, summary printed); a
    # second one interrupts at once, and one during start-up ends it before sorting begins.
    args.stop_event = stop = threading.Event()
    previous = {}

    def on_signal(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _sort(args)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _sort(args: argparse.Namespace) -> int:
    from app.cli.common import ProgressBar, print_json
    from hardware.plc.registers import RegisterMap
    from hardware.sort.config import SortConfig, parse_host_port

    if args.parts is not None and args.parts <= 0:
        raise ValueError("--parts must be positive")
    if args.duration is not None and args.duration <= 0:
        raise ValueError("--duration must be positive")
    if args.rate <= 0:
        raise ValueError("--rate must be positive")
    if not args.demo and not args.project:
        raise ValueError("give a PROJECT file, or --demo")
    regmap = RegisterMap(plc_base=args.plc_base, pc_base=args.pc_base, unit_id=args.unit_id,
                         word_order=args.word_order)
    cfg = SortConfig(regmap=regmap, poll_period=args.poll_ms / 1000.0, shadow=args.shadow,
                     log_parts=not args.no_log, gradcam_ng=args.gradcam, threads=args.threads or None,
                     pin=args.pin)
    from hardware.sort.threads import plan_layout
    # Planned before the model loads: ONNX Runtime's intra-op threads are fixed in its session.
    args.intra_op = plan_layout(cfg.pin, cfg.threads).intra_op
    if args.plc:
        cfg.plc_host, cfg.plc_port = parse_host_port(args.plc)
    if args.demo and args.plc is None and args.parts is None and args.duration is None:
        args.parts = 20
    bar = ProgressBar("sort", args.parts, quiet=args.json)
    project, classifier, model_info = _project_and_model(args, bar)
    from hardware.sort.models import bind_cameras
    from training.cameras import parse_camera_map
    mapping = parse_camera_map(args.map_cameras)
    source = _make_source(args)
    source.open()
    try:
        cams = bind_cameras(classifier, list(source.info().cameras), mapping)
        model_info["cameras"] = cams
        result = _run(args, cfg, project, classifier, source, bar)
    finally:
        source.close()
        bar.close()
    result["model"] = model_info
    result["project"] = str(project.path)
    if not args.json:
        note = model_info.get("note")
        if note:
            print(f"okng sort: {note}", file=sys.stderr)
        capacity = (result.get("capacity") or {}).get("text")
        if capacity:
            print(f"okng sort: {capacity}", file=sys.stderr)
    print_json(result)
    return 0


def _project_and_model(args: argparse.Namespace, bar) -> tuple:
    from hardware.sort.models import load_classifier
    from labeling.store import Project
    if args.demo:
        project = _demo_project(Path(args.project) if args.project else None, quiet=args.json)
        if args.model not in ("", "active"):  # a model of the demo project asked for: a segmentation model too
            return project, *load_classifier(project, args.model, args.runtime, args.intra_op)
        classifier, info = demo_classifier(project, runtime=args.runtime, threads=args.intra_op)
        return project, classifier, info
    path = Path(args.project)
    if not path.exists():
        raise FileNotFoundError(f"no project file {path}")
    project = Project.open(path)
    classifier, info = load_classifier(project, args.model, args.runtime, args.intra_op)
    return project, classifier, info


def demo_classifier(project, progress=None, runtime: str | None = None, threads: int | None = None) -> tuple:
    """The project's active model; else a quickly trained small one; else an untrained one."""
    from hardware.sort.models import load_classifier, untrained_classifier
    from training.quick import quick_train
    if project.active_model_id:
        try:
            return load_classifier(project, "active", runtime, threads)
        except Exception as exc:  # noqa: BLE001 - the demo goes on with what it can get
            log.warning("active model unusable (%s): training a new one", exc)
    try:
        model_id = quick_train(project, progress)
    except Exception as exc:  # noqa: BLE001 - a demo without a model still shows the loop
        log.warning("quick training failed: %s", exc)
        return untrained_classifier(project)
    clf, info = load_classifier(project, model_id, runtime, threads)
    info["quick_trained"] = True
    return clf, info


def _demo_project(path: Path | None, quiet: bool):
    from labeling.store import Project
    path = path or okng_home() / "demo" / "sort-demo.okng"
    if path.exists():
        return Project.open(path)
    from labeling.demo import make_demo_project
    if not quiet:
        print(f"okng sort: building the demo project {path}", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_demo_project(path, "bolts", parts=32, seed=0, size=(320, 240))


def _make_source(args: argparse.Namespace):
    from hardware.sources import make_source
    spec = args.source
    if args.demo and spec == "sim":
        # The demo rig renders at 640x480: the full 1280x960 is the benchmark's job.
        return make_source("sim:640x480", seed=7)
    return make_source(spec)


def _run(args: argparse.Namespace, cfg, project, classifier, source, bar) -> dict:
    from hardware.sort.engine import SortEngine
    from hardware.sort.rig import run_on_simulator

    def progress(p: Progress) -> None:
        bar.update(p.done, p.total, f"{p.payload.snapshot.get('verdicts', '')}")

    stop = args.stop_event
    if stop.is_set():  # interrupted while loading: nothing was sorted
        raise KeyboardInterrupt
    if args.plc is None:
        parts = args.parts or (int(args.duration * args.rate) if args.duration else 20)
        res = run_on_simulator(project, classifier, source, parts=parts, rate=args.rate, config=cfg,
                               progress=progress, should_stop=stop.is_set)
        return res.to_dict()
    engine = SortEngine(project, classifier, source, cfg)
    summary = engine.run(parts=args.parts, duration=args.duration, progress=progress,
                         should_stop=stop.is_set)
    return summary.to_dict()
