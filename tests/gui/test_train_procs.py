"""Train view, Processes: N > 1 trains in N torchrun ranks on this PC (the launcher of `okng train
--nproc N`): a tiny run in 2 processes stores one model whose card says world size 2, its
progress reaches the view's curves, and Cancel stops every rank with nothing stored."""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
import torch
from PyQt6.QtCore import Qt

from app.views.train_view import TrainView
from labeling.store import Project
from training.card import read_card

TINY = {"arch": "mobilenet_v3_small", "freeze": "scratch", "epochs": 1, "batch_size": 16,
        "input_size": (32, 32), "folds": 1, "augment": ["hflip"], "nproc": 2}

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed")]


@pytest.fixture
def ctx(demo_context):
    return demo_context("procs.h5", 16)


def _processes_of(path: Path) -> list[int]:
    """Processes whose command line names the project (torchrun and its ranks)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if str(path).encode() in (d / "cmdline").read_bytes():
                    found.append(int(d.name))
            except OSError:
                continue
    return found


def test_processes_choice_is_held_at_one_for_segmentation(qtbot):
    from app.widgets.train_form import TrainForm
    form = TrainForm()
    qtbot.addWidget(form)
    p = form.procs
    assert (p.minimum(), p.maximum(), p.value()) == (1, max(1, os.cpu_count() or 1), 1)
    assert "torchrun" in p.toolTip() and "global" in p.toolTip()
    assert form.processes() == 1 and "nproc" not in form.values()  # not a TrainConfig field
    p.setMaximum(4)  # whatever this machine's cores, the choice itself is what is tested
    form.set_values({"nproc": 3})
    assert form.processes() == 3
    assert form.processes("segment") == 1  # a segment task set past the form (extra_config)
    form.task.setCurrentText("segment")
    assert form.task.currentText() == "segment"
    assert not p.isEnabled() and p.value() == 1 and form.processes() == 1
    form.task.setCurrentText("verdict")
    assert p.isEnabled() and form.processes() == 3  # the user's choice comes back
    form.task.setCurrentText("classes")
    assert p.isEnabled() and form.processes() == 3
    form.run_on.setCurrentIndex(1)  # a Ray cluster decides its own processes
    assert not p.isEnabled() and form.processes() == 1
    form.run_on.setCurrentIndex(0)
    assert p.isEnabled() and form.processes() == 3


def test_two_processes_train_one_model_from_the_view(ctx, qtbot):
    view = TrainView(ctx)
    qtbot.addWidget(view)
    view.form.procs.setMaximum(2)  # a 1-core machine still tests 2 ranks
    view.extra_config = {"num_threads": 1}
    view.form.set_values(TINY)
    assert view.form.processes() == 2
    with qtbot.waitSignal(view.run_finished, timeout=240000) as sig:
        view.start()
        assert "in 2 processes" in view.state.text()
    assert sig.args[0] == "done", view.last_error
    mid = view.last_result.model_id
    proj = Project.open(ctx.project.path, readonly=True)
    assert [m["id"] for m in proj.models()] == [mid]  # rank 0 alone stored it
    card = read_card(proj, mid)
    assert (card.world_size, card.global_batch) == (2, 16)
    assert view.loss_plot.series("train loss")[1]  # rank 0's steps reached the live curve
    qtbot.waitUntil(lambda: any(c.id == mid for c in view.cards), timeout=20000)
    view.shutdown()


def test_cancel_stops_every_rank_and_stores_nothing(ctx, qtbot):
    view = TrainView(ctx)
    qtbot.addWidget(view)
    view.form.procs.setMaximum(2)
    path = ctx.project.path
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    view.extra_config = {"num_threads": 1}
    view.form.set_values({**TINY, "epochs": 200})
    seen = []
    with qtbot.waitSignal(view.run_finished, timeout=240000) as sig:
        view.start()
        view.worker.progress.connect(seen.append)
        qtbot.waitUntil(lambda: bool(seen), timeout=180000)  # the ranks are training
        assert _processes_of(path)
        qtbot.mouseClick(view.cancel_btn, Qt.MouseButton.LeftButton)
    assert sig.args[0] == "cancelled", view.last_error
    assert view.last_result is not None and view.last_result.cancelled and view.last_result.model_id is None
    assert Project.open(path, readonly=True).models() == []
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # not a byte changed
    deadline = time.monotonic() + 30
    while _processes_of(path) and time.monotonic() < deadline:
        qtbot.wait(200)
    assert _processes_of(path) == []  # torchrun and both ranks are gone
    view.shutdown()
