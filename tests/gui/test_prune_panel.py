"""The Train view's Prune panel: prunes the selected model in a child process, shows its
lineage, activates the picked model on the runtime chosen."""
from __future__ import annotations

import pytest

from app.views.train_view import TrainView
from labeling.store import Project
from training.card import read_card

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def ctx(demo_context):
    return demo_context("prune.h5", 16)


def test_prune_from_the_train_view_then_activate_on_onnxruntime(ctx, qtbot):
    from training.config import TrainConfig
    from training.loop import train
    root = train(ctx.project.path, TrainConfig(arch="mobilenet_v3_small", freeze="scratch", epochs=1,
                                               input_size=32, batch_size=16, num_threads=1)).model_id
    view = TrainView(ctx)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: any(c.id == root for c in view.cards), timeout=30000)
    view.results.models.select(root)
    qtbot.waitUntil(lambda: view.prune.model_id == root, timeout=10000)
    assert view.prune.table.rowCount() == 1
    view.prune.rounds.setValue(2)
    view.prune.epochs.setValue(0)  # the job's fine-tuning is tested in tests/training/test_prune.py
    view.prune.num_threads = 1  # one torch thread: the shared 2-core test machine (see one_torch_thread)
    with qtbot.waitSignal(view.prune.run_finished, timeout=300000) as sig:
        view.prune.start_btn.click()
    assert sig.args[0] == "done", view.prune.last_error
    kids = view.prune.last_result.model_ids
    assert len(kids) == 2
    qtbot.waitUntil(lambda: len(view.cards) == 3, timeout=30000)
    view.results.models.select(kids[0])
    qtbot.waitUntil(lambda: view.prune.table.rowCount() == 3, timeout=10000)  # the whole family
    assert [r["id"] for r in view.prune.rows] == [root, *kids]
    assert view.prune.rows[2]["flops_x"] > 2
    row = [r["id"] for r in view.prune.rows].index(kids[1])
    view.prune.table.selectRow(row)
    view.prune.runtime.setCurrentText("onnxruntime")
    view.prune.activate_btn.click()
    qtbot.waitUntil(lambda: Project.open(ctx.project.path, readonly=True).active_model_id == kids[1], timeout=30000)
    assert read_card(Project.open(ctx.project.path, readonly=True), kids[1]).runtime == "onnxruntime"
    view.shutdown()
