"""The window's Project is shared safely: only the store-writer thread reloads it, Workers read
through handles or snapshots of their own, and no slot reads the HDF5 file."""
from __future__ import annotations

import threading

import numpy as np

from app.context import AppContext
from app.station import StationSettings
from app.views.explain_view import ExplainView
from app.views.label_view import LabelView
from labeling.store import Project
from labeling.types import Prediction, Settings, Verdict

FILE_READS = ("reload", "read_views", "read_mask", "read_image")


def test_only_the_writer_thread_reloads_and_no_one_else_reads_the_windows_project(tmp_path, qtbot):
    path = tmp_path / "shared.h5"
    proj = Project.create(path, Settings(name="s", cameras=["cam0"]))
    for i in range(3):
        proj.add_part([np.full((24, 32), 40 * i, np.uint8)], cameras=["cam0"], name=f"p{i}")
    ctx = AppContext(StationSettings.load())
    ctx.open_project(path)
    shared = ctx.project
    calls: list[tuple[str, str]] = []
    for name in FILE_READS:
        original = getattr(shared, name)

        def spy(*args, _original=original, _name=name, **kw):
            calls.append((_name, threading.current_thread().name))
            return _original(*args, **kw)
        setattr(shared, name, spy)
    label = LabelView(ctx)
    explain = ExplainView(ctx)
    for w in (label, explain):
        qtbot.addWidget(w)
    qtbot.waitUntil(lambda: label.canvas.image is not None, timeout=5000)  # a part's pixels, read
    qtbot.waitUntil(lambda: "No model" in explain.state.text(), timeout=5000)  # the model list, read
    # another process writes (as a sort run or pre-labeling does); the window reloads
    Project.open(path).add_prediction(shared.part_ids()[0], Prediction("m", Verdict.NG, (0.9,), 0.9))
    with qtbot.waitSignal(ctx.parts_reloaded, timeout=5000):
        ctx.reload_project()
    assert shared.part(shared.part_ids()[0]).prediction is not None
    label.load(shared.part_ids()[1])
    qtbot.waitUntil(lambda: label.part_id == shared.part_ids()[1] and label.canvas.image is not None, timeout=5000)
    assert ("reload", "okng-store-writer") in calls
    assert all(thread == "okng-store-writer" for _name, thread in calls), calls
    ctx.shutdown()


def test_a_snapshot_is_a_copy_the_windows_changes_do_not_reach(tmp_path):
    proj = Project.create(tmp_path / "snap.h5", Settings(name="s", cameras=["cam0"]))
    pid = proj.add_part([np.zeros((8, 8), np.uint8)], cameras=["cam0"])
    snap = proj.snapshot([pid])
    proj.set_label(pid, Verdict.NG)
    assert snap.part(pid).label is None and proj.part(pid).verdict == Verdict.NG
    assert snap.readonly and snap.read_views(pid)[0].shape == (8, 8)
