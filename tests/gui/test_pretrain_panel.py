"""The Train view's Pretrain panel: `okng pretrain` from the window (child process), holding out a
model's test parts, Cancel storing nothing, the stored encoder becoming the Train form's Encoder."""
from __future__ import annotations

import pytest

from labeling.store import Project
from training.card import read_card
from training.config import TrainConfig
from training.loop import train
from training.pretrain import encoders

# Tiny sizes for the shared 2-core test machine (the bolts demo's views are 64x48 px).
TINY = {"short": 32, "crop": 24, "batch_size": 8, "num_threads": 1}


def _with_model(path):
    """A tiny model with a test split (its test parts are what the panel can hold out)."""
    return train(path, TrainConfig(arch="resnet18", epochs=1, input_size=32, batch_size=8,
                                   test_fraction=0.25, num_threads=1)).model_id


@pytest.fixture
def ctx(demo_context):
    return demo_context("pretrain.h5", 16, _with_model)


def _view(ctx, qtbot):
    from app.views.train_view import TrainView
    view = TrainView(ctx)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: bool(view.cards), timeout=30000)
    return view


def test_pretrain_holding_out_a_models_test_parts_sets_the_train_forms_encoder(ctx, qtbot):
    view = _view(ctx, qtbot)
    panel = view.pretrain
    model = ctx.model_id
    assert [panel.hold_out.itemText(i) for i in range(panel.hold_out.count())][1:] == [model]
    panel.hold_out.setCurrentText(model)
    panel.fields = {**TINY, "budget_s": 3.0, "encoder_id": "enc-held"}
    with qtbot.waitSignal(panel.run_finished, timeout=120000) as sig:
        panel.start_btn.click()
        assert "every part but the test parts of " + model in panel.state.text()
    assert sig.args[0] == "done", panel.last_error
    proj = Project.open(ctx.project.path, readonly=True)
    test = set(read_card(proj, model).split["test"])
    kept = [p for p in proj.parts() if p.id not in test]
    (meta,) = encoders(proj)
    assert meta["id"] == "enc-held" and meta["n_images"] == sum(len(p.views) for p in kept)
    # the test parts are found in the Worker's thread (an HDF5 read), then named
    assert panel.scope == f"{len(kept)} parts (test of {model} held out)"
    assert "enc-held stored" in panel.state.text() and panel.bar.value() == 1000
    assert view.form.encoder.currentText() == "enc-held"  # Start training now starts from it
    qtbot.waitUntil(lambda: panel.table.rowCount() == 1, timeout=30000)
    assert panel.table.item(0, 0).text() == "enc-held" and panel.table.item(0, 3).text() == str(meta["n_images"])
    assert "enc-held" in [view.form.encoder.itemText(i) for i in range(view.form.encoder.count())]
    view.shutdown()


def test_cancel_stores_no_encoder(ctx, qtbot):
    view = _view(ctx, qtbot)
    panel = view.pretrain
    panel.fields = {**TINY, "budget_s": 600.0}
    steps = []
    with qtbot.waitSignal(panel.run_finished, timeout=120000) as sig:
        panel.start_btn.click()
        panel.worker.progress.connect(lambda p: p.stage == "pretrain" and p.payload and steps.append(p))
        qtbot.waitUntil(lambda: bool(steps), timeout=90000)
        panel.cancel_btn.click()
    assert sig.args[0] == "cancelled", panel.last_error
    assert encoders(ctx.project.path) == []
    assert "nothing was stored" in panel.state.text() and panel.start_btn.isEnabled()
    assert view.form.encoder.currentText() == ""
    view.shutdown()


def test_a_model_without_a_test_split_is_not_offered_and_a_gone_one_is_refused(ctx, qtbot, tmp_path):
    from app.widgets.pretrain_panel import PretrainPanel
    cards = [read_card(Project.open(ctx.project.path, readonly=True), ctx.model_id)]
    no_test = train(ctx.project.path, TrainConfig(arch="resnet18", epochs=1, input_size=32, batch_size=8,
                                                  test_fraction=0.0, num_threads=1)).model_id
    cards.append(read_card(Project.open(ctx.project.path, readonly=True), no_test))
    panel = PretrainPanel(project=lambda: str(ctx.project.path))
    qtbot.addWidget(panel)
    panel.set_models(cards)
    assert [panel.hold_out.itemText(i) for i in range(panel.hold_out.count())] == ["none: every part", ctx.model_id]
    gone = read_card(Project.open(ctx.project.path, readonly=True), ctx.model_id)
    gone.id = "removed-model"
    panel.set_models([gone])
    panel.hold_out.setCurrentText("removed-model")
    with qtbot.waitSignal(panel.run_finished, timeout=30000) as sig:
        panel.start_btn.click()
    assert sig.args[0] == "failed"
    assert "Pretraining failed" in panel.state.text() and "no model 'removed-model'" in panel.state.text()
    assert panel.start_btn.isEnabled()
    assert encoders(ctx.project.path) == []
