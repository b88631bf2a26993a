"""Screenshots of every mode of the real main window, for the README: docs/screenshots/*.png.

Builds a demo bolt project in a temp dir, trains a small model on it (so Train and Explain have
something to show), opens the workstation with the simulated rig and the built-in PLC
simulator, drives each mode a little (capture parts, open a part, explain the dataset, sort
live as a supervisor) and grabs the window. Runs under Xvfb: when $DISPLAY is not set it
starts one itself (apt-get install xvfb libxcb-cursor0 ...).

    .venv/bin/python tools/screenshots.py [--out docs/screenshots] [--only label-proposal,train-segment]

--only takes just the segmentation shots (no classifier is trained: minutes less on a busy machine).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SIZE = (1600, 1000)


def start_xvfb() -> subprocess.Popen | None:
    """A virtual X display when none is set; returns the process to stop, or None."""
    if os.environ.get("DISPLAY"):
        return None
    if shutil.which("Xvfb") is None:
        raise SystemExit("no $DISPLAY and no Xvfb: apt-get install -y xvfb libxcb-cursor0 libxcb-icccm4 "
                         "libxcb-keysyms1 libxkbcommon-x11-0")
    for n in range(90, 110):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24", "-nolisten", "tcp"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.environ["DISPLAY"] = f":{n}"
            for _ in range(100):
                if Path(f"/tmp/.X11-unix/X{n}").exists():
                    return proc
                time.sleep(0.05)
            proc.kill()
    raise SystemExit("could not start Xvfb")


def pump(app: Any, seconds: float, until: Callable[[], bool] | None = None) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        if until is not None and until():
            return True
        time.sleep(0.01)
    return until is None


def prepare_project(path: Path) -> str:
    """Demo bolts project + a small trained model (active) that pre-labeled the parts; its id."""
    import torch

    from labeling.demo import make_demo_project
    from training.config import AugmentConfig, TrainConfig
    from training.loop import train
    torch.set_num_threads(1)  # steadier on a shared 2-core machine
    project = make_demo_project(path, "bolts", parts=24, seed=0, size=(640, 480))
    cfg = TrainConfig(arch="resnet18", freeze="scratch", epochs=4, batch_size=16, input_size=(128, 128),
                      augment=AugmentConfig(hflip=0.5, vflip=0.5), patience=0)
    res = train(path, cfg)
    project.reload()
    project.set_active_model(res.model_id)
    from training.predict import predict_parts
    predict_parts(path)  # pre-labeled: the Label view shows the model's verdict and heatmap
    return str(res.model_id)


def prepare_segment(path: Path) -> tuple[str, int, int]:
    """A small segmentation model from the demo's generated masks, its proposals stored;
    (model id, an NG part and a view of it with a non-empty proposal)."""
    from labeling.store import Project
    from training.segment.propose import propose_parts
    from training.session import TrainSpec, run_session
    res = run_session(TrainSpec(str(path), {"task": "segment", "encoder": "resnet18", "epochs": 8,
                                            "input_size": 128, "batch_size": 8, "num_threads": 1}))
    propose_parts(path, res.model_id)
    project = Project.open(path, readonly=True)
    from training.card import read_card
    card = read_card(project, res.model_id)
    test = card.headline
    print(f"segmentation model {res.model_id} on its {card.headline_name} parts: verdict balanced accuracy "
          f"{test.get('balanced_accuracy')}, dice {test.get('dice')}; rule {card.extra['segment']['rules']}")
    best = None  # the NG view whose proposal has the most pixels: an outline worth looking at
    for p in project.parts():
        for k in range(len(p.views)):
            prop = project.read_proposal(p.id, k)
            n = int((prop[0] > 0).sum()) if prop is not None else 0
            if p.verdict.name == "NG" and n and (best is None or n > best[0]):
                best = (n, p.id, k)
    if best is None:  # said, not hidden: the Label shot would show no outline
        print("WARNING: no NG view has a non-empty proposal; the label-proposal shot shows none")
        return str(res.model_id), project.part_ids()[0], 0
    print(f"proposal shot: part {best[1]} view {best[2]} ({best[0]} proposed pixels)")
    return str(res.model_id), best[1], best[2]


SEGMENT_SHOTS = {"label-proposal", "train-segment"}


def segment_shots(app: Any, win: Any, out: Path, only: set[str], seg_id: str, seg_part: int, seg_view: int) -> None:
    """The segmentation shots alone (--only): the Label view with a proposal, the Train view with
    the segment form, dice curves and area rule."""
    if "label-proposal" in only:
        label = win.show_view("Label")
        pump(app, 10.0, lambda: getattr(label, "part_id", None) is not None)
        label.parts.set_filter("Proposal disagreement")
        pump(app, 1.0)
        loaded: list[int] = []
        label.part_loaded.connect(loaded.append)
        label.parts.select_part(seg_part)
        # Wait for THIS part's pixels: the previous part's image satisfied a check on the canvas,
        # and the view chosen then was replaced by view 0 when the part arrived (no outline).
        pump(app, 30.0, lambda: seg_part in loaded)
        label.show_view(seg_view)
        pump(app, 1.5)
        shoot(win, out, "label-proposal")
    if "train-segment" in only:
        trainv = win.show_view("Train")
        pump(app, 10.0, lambda: bool(trainv.cards))
        trainv.form.set_values({"task": "segment"})
        trainv.results.models.select(seg_id)
        pump(app, 10.0, lambda: trainv.results.metrics.rule.isVisible())
        pump(app, 2.0)
        shoot(win, out, "train-segment")


def shoot(win: Any, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    if not win.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    print(f"wrote {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--only", default="", help="comma-separated shots; only label-proposal and train-segment "
                                                "can be taken alone")
    args = ap.parse_args(argv)
    only = set(filter(None, args.only.split(",")))
    if only - SEGMENT_SHOTS:
        raise SystemExit(f"--only takes {', '.join(sorted(SEGMENT_SHOTS))}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="okng-shots-"))
    os.environ["OKNG_HOME"] = str(tmp / "home")
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    xvfb = start_xvfb()
    try:
        project = tmp / "bolt-line.h5"
        if only:
            from labeling.demo import make_demo_project
            make_demo_project(project, "bolts", parts=24, seed=0, size=(640, 480))
        else:
            print("building the demo project and a small model…")
            prepare_project(project)
        print("training a small segmentation model and storing its proposals…")
        seg_id, seg_part, seg_view = prepare_segment(project)
        from PyQt6.QtWidgets import QApplication

        from app.main import build
        from labeling.types import Role
        app, ctx, win = build(project, rig=True)
        win.resize(*SIZE)
        win.move(0, 0)
        pump(app, 3.0)

        if only:
            segment_shots(app, win, out, only, seg_id, seg_part, seg_view)
            win.close()
            QApplication.processEvents()
            return 0
        cap = win.show_view("Capture")
        pump(app, 8.0, lambda: ctx.rig is not None and ctx.rig.frames >= 3)
        for _ in range(3):
            cap.capture()
            pump(app, 0.4)
        pump(app, 1.0)
        shoot(win, out, "capture")

        label = win.show_view("Label")
        pump(app, 10.0, lambda: getattr(label, "part_id", None) is not None)
        pump(app, 1.5)
        shoot(win, out, "label")
        label.parts.set_filter("Proposal disagreement")  # the queue order by proposal vs mask
        pump(app, 1.0)
        loaded: list[int] = []
        label.part_loaded.connect(loaded.append)
        label.parts.select_part(seg_part)
        pump(app, 30.0, lambda: seg_part in loaded)  # this part's pixels, not the previous one's
        label.show_view(seg_view)
        label.panel.heatmap.setChecked(False)  # the proposal's outline, not the classifier's heatmap
        pump(app, 1.5)
        shoot(win, out, "label-proposal")
        label.panel.heatmap.setChecked(True)

        trainv = win.show_view("Train")
        pump(app, 10.0, lambda: bool(trainv.cards))
        trainv.refresh_preview()
        pump(app, 15.0, lambda: trainv.preview.grid.count() > 0)
        pump(app, 10.0, lambda: trainv.results.metrics.curves.curve_points("ROC") > 1)  # the card's stored curves
        pump(app, 1.0)
        shoot(win, out, "train")
        trainv.form.set_values({"task": "segment"})  # the form's encoder/decoder rows
        trainv.results.models.select(seg_id)  # its stored dice curves, verdict figures and area rule
        pump(app, 10.0, lambda: trainv.results.metrics.rule.isVisible())
        pump(app, 2.0)
        shoot(win, out, "train-segment")

        explain = win.show_view("Explain")
        pump(app, 60.0, lambda: explain.loaded is not None)
        explain.run()
        got: dict[str, bool] = {}
        explain.view_ready.connect(lambda: got.setdefault("view", True))
        pump(app, 180.0, lambda: "view" in got)
        pump(app, 1.0)
        shoot(win, out, "explain")

        ctx.switch_role(Role.SUPERVISOR, "4321")
        sort = win.show_view("Live sort")
        sort.shadow.setChecked(False)
        sort.start()
        pump(app, 60.0, lambda: sort.is_on())
        pump(app, 8.0)
        shoot(win, out, "live-sort")
        sort.stop()
        pump(app, 30.0, lambda: sort.last_summary is not None)
        win.close()
        QApplication.processEvents()
        # Qt deleted in order while the X server still runs, not by PyQt's atexit walk (which
        # segfaulted after the last shot: see app.teardown).
        from app.teardown import release_qt
        release_qt()
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
