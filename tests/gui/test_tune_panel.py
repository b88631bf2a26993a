"""The Train view's Tune panel: an Optuna study run from the window (child process), its
trials table and plots; Cancel stops it and Start resumes it."""
from __future__ import annotations

import pytest

from app.views.train_view import TrainView
from training.tune import TrialRow


@pytest.fixture
def ctx(demo_context):
    return demo_context("tune.h5", 16)


def _small(view: TrainView, trials: int) -> None:
    view.form.arch.setCurrentText("mobilenet_v3_small")
    view.form.batch.setValue(8)
    view.tune.trials.setValue(trials)
    view.tune.epochs.setValue(2)  # Cancel lands at trial 0's first epoch end: three epochs before the study ends
    view.tune.space = {"input_short": 32}
    view.tune.num_threads = 1  # the shared 2-core test machine


def test_tune_panel_runs_a_study_cancels_and_resumes(ctx, qtbot):
    view = TrainView(ctx)
    qtbot.addWidget(view)
    _small(view, 2)
    epochs = []
    with qtbot.waitSignal(view.tune.run_finished, timeout=300000) as sig:
        view.tune.start_btn.click()
        view.tune.worker.progress.connect(lambda p: p.stage == "eval" and epochs.append(p))
        qtbot.waitUntil(lambda: bool(epochs), timeout=240000)
        view.tune.cancel_btn.click()
    assert sig.args[0] == "cancelled", view.tune.last_error
    assert view.tune.start_btn.isEnabled() and "resume" in view.tune.state.text().lower()
    with qtbot.waitSignal(view.tune.run_finished, timeout=300000) as sig:
        view.tune.start_btn.click()
    assert sig.args[0] == "done", view.tune.last_error
    res = view.tune.last_result
    assert res.model_id and res.study == "tune-verdict"
    states = [view.tune.table.item(i, 1).text() for i in range(view.tune.table.rowCount())]
    assert states.count("COMPLETE") + states.count("PRUNED") == 2 and "FAIL" in states  # the cancelled one
    xs, _ = view.tune.values_item.getData()
    assert len(xs) == states.count("COMPLETE")
    qtbot.waitUntil(lambda: any(c.id == res.model_id for c in view.cards), timeout=30000)
    card = next(c for c in view.cards if c.id == res.model_id)
    assert card.extra["tune"]["study"] == "tune-verdict" and card.extra["tune"]["trial"] == res.best.number
    view.shutdown()


def test_importances_wait_for_two_completed_trials(qtbot):
    from app.widgets.tune_panel import TunePanel
    panel = TunePanel()
    qtbot.addWidget(panel)
    panel.show_trials([TrialRow(0, "COMPLETE", 0.8, {"lr": 0.001}), TrialRow(1, "PRUNED", None, {"lr": 0.01})], {})
    assert "2 completed trials" in panel.importance_note.text()
    assert panel.table.rowCount() == 2 and panel.table.item(1, 2).text() == "-"
    panel.show_trials([TrialRow(0, "COMPLETE", 0.8, {"lr": 0.001}), TrialRow(1, "COMPLETE", 0.9, {"lr": 0.01})],
                      {"lr": 1.0})
    import pyqtgraph as pg
    assert panel.importance_note.text() == ""
    assert sum(isinstance(i, pg.BarGraphItem) for i in panel.importance.getPlotItem().items) == 1
    xs, _ = panel.values_item.getData()
    assert list(xs) == [0, 1] and list(panel.best_item.getData()[1]) == [0.8, 0.9]


def test_the_panel_passes_the_forms_split_field_to_the_study(qtbot, tmp_path):
    from app.widgets.tune_panel import TunePanel
    form = {"task": "verdict", "arch": "resnet18", "split_field": "split", "group_by": None}
    panel = TunePanel(values=lambda: form, project=lambda: str(tmp_path / "p.okng"))
    qtbot.addWidget(panel)
    spec = panel.spec()
    assert spec.values["split_field"] == "split" and "group_by" not in spec.values
