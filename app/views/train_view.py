"""Train view: settings, augmentation preview, live curves, Cancel, results and "Make active".

Start runs training.session.run_session (as `okng train` does; in N torchrun ranks when
Processes > 1, Ray's driver when "Run on" names a cluster: app.cli.train_ranks) in a child process
relayed by the one Worker; its Progress reports become points on the loss and accuracy curves.
When the run ends the view reloads the project's model cards (also in a Worker) and shows the
new model's stored metrics and held-out ROC/PR curves; nothing is scored again. A cancelled run
leaves the project and its registry as they were (the engine's promise).

Run alone for a look: ``python -m app.views.train_view PROJECT.h5``
"""
from __future__ import annotations

from typing import Any

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.child import start_child_server
from app.cli.train_ranks import run_spec, run_train, train_in_process
from app.widgets.plot_curves import CurvePlot
from app.widgets.pretrain_panel import PretrainPanel
from app.widgets.prune_panel import PrunePanel
from app.widgets.train_form import TrainForm
from app.widgets.train_preview import PREVIEW_N, AugmentPreview
from app.widgets.train_results import EPOCH_SERIES, ResultsTabs, draw_dice_history, draw_history, start_warning
from app.widgets.tune_panel import TunePanel
from app.worker import Worker
from labeling.progress import Progress
from training.card import EpochMetrics, ModelCard, project_cards
from training.grouping import suggest
from training.loop import TrainResult, TrainStep  # torch & co. imported at window start: see preload
from training.recipe import frozen_warning, planned_length
from training.segment.loop import SegEpoch
from training.session import TrainSpec, preview
from training.start import RunStart


def preload() -> None:
    """Start the fork server that training processes come from (the training code itself is
    imported with this module, at window start: a first import in the Worker would run
    C-extension initialisers holding the GIL long enough to freeze the GUI)."""
    start_child_server()


# ---------------------------------------------------------------------- the view
class TrainView(QWidget):
    """Training mode: settings | live curves | results and model comparison."""

    run_finished = pyqtSignal(str)  # "done", "cancelled" or "failed" (tests and status wait on it)
    models_loaded = pyqtSignal()

    def __init__(self, ctx: Any, parent: Any = None) -> None:
        super().__init__(parent)
        preload()
        self.ctx = ctx
        self.use_process = True  # train in a child process (see train_in_process)
        self.extra_config: dict[str, Any] = {}  # TrainConfig fields the form does not show
        self._select_next: str | None = None  # the model to show once the list is reloaded
        self.worker: Worker | None = None
        self._side: list[Worker] = []
        self.last_result: TrainResult | None = None  # also a cancelled run's (its finished epochs)
        self.last_error = ""
        self.cards: list[ModelCard] = []
        self._epoch_points: set[tuple[str, int]] = set()

        self.form = TrainForm()
        self.start_btn = QPushButton("Start training")
        self.start_btn.setObjectName("captureButton")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.preview = AugmentPreview()
        self.preview.requested.connect(self.refresh_preview)
        left_inner = QWidget()
        ll = QVBoxLayout(left_inner)
        ll.addWidget(self.form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_btn, 2)
        buttons.addWidget(self.cancel_btn, 1)
        ll.addLayout(buttons)
        ll.addWidget(self.preview)
        # okng pretrain: an encoder learned from the project's own views, which Start training
        # then starts from (the form's Encoder field): before a run, so above Prune and Tune
        self.pretrain = PretrainPanel(lambda: self.form.arch.currentText(),
                                      lambda: str(self.ctx.project.path) if self.ctx.project else None)
        self.pretrain.encoders_listed.connect(self.form.set_encoders)
        self.pretrain.encoder_stored.connect(self.form.encoder.setCurrentText)
        ll.addWidget(self.pretrain)
        self.prune = PrunePanel()  # prunes the selected model; its lineage table; activate on a runtime
        self.prune.activate.connect(self.make_active)
        self.prune.run_finished.connect(lambda how: how != "failed" and self.ctx.models_changed.emit())
        ll.addWidget(self.prune)
        self.tune = TunePanel(lambda: {**self.form.values(), **self.extra_config},  # okng tune: an Optuna study
                              lambda: str(self.ctx.project.path) if self.ctx.project else None)
        self.tune.run_finished.connect(lambda how: how != "failed" and self.ctx.models_changed.emit())
        ll.addWidget(self.tune)
        ll.addStretch(1)
        left = QScrollArea()
        left.setWidgetResizable(True)
        left.setWidget(left_inner)
        left.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left.setMinimumWidth(left_inner.minimumSizeHint().width() + 20)

        self.state = QLabel("Idle.")
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.scratch = QLabel("")
        self.scratch.setObjectName("pillWarn")
        self.scratch.setWordWrap(True)
        # Fixed room (three lines, two lines): text appearing at a run's end (the model saved,
        # the from-scratch warning) otherwise shrank the plots below, and resizing them re-laid
        # out and repainted every axis (a 200-290 ms stall on a busy station). The run's outcome
        # scrolls inside its three lines: a warning after "Model N saved" was cut off at ~460 px.
        line = self.state.fontMetrics().lineSpacing()
        self.state_box = QScrollArea()
        self.state_box.setWidget(self.state)
        self.state_box.setWidgetResizable(True)
        self.state_box.setFrameShape(QScrollArea.Shape.NoFrame)
        self.state_box.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.state_box.setFixedHeight(3 * line + 6)
        self.scratch.setFixedHeight(2 * line + 4)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.loss_plot = CurvePlot("Loss", "loss", "epoch", series=("train loss", "val loss"))
        self.acc_plot = CurvePlot("Accuracy", "accuracy", "epoch", series=("val accuracy", "val balanced accuracy"))
        self.acc_plot.setYRange(0, 1.02)
        mid = QWidget()
        ml = QVBoxLayout(mid)
        ml.addWidget(self.bar)
        ml.addWidget(self.state_box)
        ml.addWidget(self.scratch)
        ml.addWidget(self.loss_plot, 1)
        ml.addWidget(self.acc_plot, 1)

        self.results = ResultsTabs()
        # One queue for every redraw of this view: plots, tables and curves due at the same
        # time paint in turn, one per event-loop pass (see app.widgets.stagger).
        self.stagger = self.results.metrics.stagger
        self.loss_plot.stagger = self.acc_plot.stagger = self.stagger
        self.results.models.activate.connect(self.make_active)
        self.results.metrics.rule.save.connect(self._save_rule)
        self.results.models.selected.connect(self._history_of)
        self.results.models.selected.connect(lambda c: self.prune.show_model(
            self.cards, c.id, self._active, str(self.ctx.project.path) if self.ctx.project else None))
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(mid)
        split.addWidget(self.results)
        split.setSizes([380, 560, 660])
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(split)
        ctx.project_changed.connect(lambda _p: self.refresh_models())
        ctx.project_changed.connect(lambda _p: self._group_fields())
        ctx.project_changed.connect(lambda _p: self.pretrain.refresh())
        ctx.models_changed.connect(self.refresh_models)
        self.refresh_models()
        self._group_fields()
        self.pretrain.refresh()

    def _group_fields(self) -> None:
        """Offer the imported part fields (item, ...) to group the split by (the Project's
        in-memory part index: no HDF5 read here)."""
        proj = self.ctx.project
        names = sorted({k for p in proj.parts() for k in p.fields}) if proj is not None else []
        self.form.set_group_fields(names, suggest(names))  # an item field groups by default

    # ------------------------------------------------------------------ training run
    def start(self) -> None:
        """Start a run with the form's settings (one at a time)."""
        proj = self.ctx.project
        if proj is None:
            self._say("Open a project first.")
            return
        if self.worker is not None and self.worker.is_running():
            return
        values = {**self.form.values(), **self.extra_config}
        self.loss_plot.reset()
        self.acc_plot.reset()
        self._epoch_points.clear()
        self.bar.setValue(0)
        self.scratch.setText("")  # it spoke of the model shown before; the run says where it starts (RunStart)
        self.last_result, self.last_error = None, ""
        address, nproc = self.form.cluster(), self.form.processes(values.get("task"))  # nproc 1 with Ray
        spec = run_spec(TrainSpec(str(proj.path), values), address, nproc)
        self.worker = Worker(train_in_process if self.use_process else run_train, spec)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_done)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self._idle(False)
        # a classifier left at "auto" length: the one its start gives (10 min scratch, 10 epochs ImageNet)
        budget, epochs = ((values.get("time_budget_s"), values.get("epochs")) if "time_budget_s" in values
                          else planned_length(values))
        length = [f"{budget / 60:g} min"] if budget else []
        length += [f"{epochs} epoch(s)"] if epochs else []
        warn = frozen_warning(values)
        self._say(f"Training {self.form.summary()}, {' or '.join(length) or 'default length'}"
                  + (f" on the Ray cluster at {address}" if address else "")
                  + (f" in {nproc} processes" if nproc > 1 else "") + "…" + (f"  ⚠ {warn}" if warn else ""))
        self.worker.start()

    def cancel(self) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.cancel()
            self.cancel_btn.setEnabled(False)
            self._say("Cancelling… (the current step finishes, nothing is saved)")

    def is_running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def _on_progress(self, p: Progress) -> None:
        """Draw a report of the loop: a training step (TrainStep) or an epoch's end (EpochMetrics)."""
        if p.stage in ("train", "eval") and p.fraction is not None:
            self.bar.setValue(int(1000 * p.fraction))
        text = f"{p.stage} · {p.message}" if p.message else p.stage
        if isinstance(p.payload, RunStart):
            self.scratch.setText(start_warning(p.payload, run=True))
        if isinstance(p.payload, TrainStep):
            t = p.payload
            self.loss_plot.add("train loss", t.epoch - 1 + (t.step / t.steps if t.steps else 1.0), t.loss)
            eta = int(t.eta_s)
            text = f"{text} · step {t.step}/{t.steps} · loss {t.loss:.4f} · ETA {eta // 60}:{eta % 60:02d}"
        elif isinstance(p.payload, EpochMetrics):
            e = p.payload
            for key, which, name in EPOCH_SERIES:
                plot = self.loss_plot if which == "loss" else self.acc_plot
                if (name, e.epoch) not in self._epoch_points:
                    self._epoch_points.add((name, e.epoch))
                    plot.add(name, float(e.epoch), float(getattr(e, key)))
            text = f"{text} · val balanced accuracy {e.val_balanced_accuracy:.3f}"
        elif isinstance(p.payload, SegEpoch):  # a segmentation run: its val loss and dice per epoch
            e = p.payload
            self.loss_plot.add("val loss", float(e.epoch), e.val_loss)
            self.acc_plot.add("val dice", float(e.epoch), e.dice)
            for name, d in e.dice_per_class.items():
                if len(e.dice_per_class) > 1:
                    self.acc_plot.add(f"dice {name}", float(e.epoch), d)
            text = f"{text} · val dice {e.dice:.3f}"
        self.state.setText(text)

    def _on_done(self, result: TrainResult) -> None:
        self.last_result = result
        self._idle()
        if result.cancelled or not result.model_id:
            self._say("Training stopped: no model was saved.")
            self.run_finished.emit("cancelled")
            return
        self.bar.setValue(1000)
        draw_history(self.loss_plot, self.acc_plot, result.history)
        if (result.pretrained_source or "").startswith("self-supervised"):
            note = " — started from a self-supervised encoder, no ImageNet weights"
        else:
            note = "" if result.pretrained else " — TRAINED FROM SCRATCH (no ImageNet weights found)"
        test = result.metrics.get("test")
        score = (f" Test balanced accuracy {test['balanced_accuracy']:.3f} on {result.metrics['split']['test_parts']}"
                 " held-out parts." if test else "")
        # The warnings that change what the model is worth (the rest are in the card and the log).
        warns = [w for w in result.warnings if w.startswith(("freeze policy", "encoder "))]
        self._say(f"Model {result.model_id} saved{note}.{score} Select it and press Make active to sort with it."
                  + "".join(f"  ⚠ {w}" for w in warns))
        self._select_next = self._live_model = result.model_id
        self.ctx.models_changed.emit()  # this view and the others reload the model list once
        self.run_finished.emit("done")

    def _on_failed(self, msg: str) -> None:
        self.last_error = msg
        self._idle()
        self._say(f"Training failed: {msg}")
        self.run_finished.emit("failed")

    def _on_cancelled(self, result: TrainResult | None) -> None:
        self.last_result = result
        self._idle()
        self._say("Training cancelled: the project and its models are unchanged.")
        self.run_finished.emit("cancelled")

    def _idle(self, idle: bool = True) -> None:
        self.start_btn.setEnabled(idle)
        self.cancel_btn.setEnabled(not idle)

    # ------------------------------------------------------------------ models
    def refresh_models(self, select: str | None = None) -> None:
        """Reload the model list in a Worker; show the newest (or `select`) model's metrics."""
        select = select or self._select_next
        self._select_next = None
        proj = self.ctx.project
        if proj is None:
            self.results.models.show_models([], None)
            return
        # Per-class curves in the project's class colours (its settings are in memory).
        self.results.metrics.class_colors = {c.name: c.color for c in proj.settings.classes}
        w = Worker(project_cards, proj.path)
        w.finished.connect(lambda res, s=select: self._show_models(res, s))
        w.failed.connect(lambda m: self._say(f"Could not read the models: {m}"))
        self._keep(w)

    def _show_models(self, res: tuple[list[ModelCard], str | None], select: str | None) -> None:
        cards, active = res
        self._active = active
        self._shown_list += 1
        self.results.models.show_models(cards, active)
        target = select or active or (cards[-1].id if cards else None)
        # Selecting a model redraws its metrics, curves and history: in the next event-loop
        # pass, so the list and the model's panels are not one 70-110 ms block at a run's end.
        QTimer.singleShot(0, lambda n=self._shown_list: self._select_shown(cards, target, n))

    _active: str | None = None  # the project's active model when the list was read
    _live_model: str | None = None  # the model whose run's live curves are on the plots
    _shown_list = 0  # model lists shown so far (a newer one supersedes a pending selection)

    def _select_shown(self, cards: list[ModelCard], target: str | None, n: int) -> None:
        if self._closed or n != self._shown_list:
            return  # closing, or a newer list replaced this one (it selects for itself)
        self.cards = cards  # set once the list is shown and its model selected (tests wait on it)
        self.pretrain.set_models(cards)
        if target:
            self.results.models.select(target)  # its curves and metrics follow (selected signal)
            card = next((c for c in cards if c.id == target), None)
            self.scratch.setText(start_warning(card))
        self.models_loaded.emit()

    def _history_of(self, card: ModelCard) -> None:
        """A stored model's training curves, unless a run is drawing live (the metrics panel
        draws its stored ROC/PR curves itself)."""
        if self.is_running():
            return
        if card.id == self._live_model:
            self._live_model = None  # the run that just made it drew these curves live
            return
        # After the model's panels (one queue: each redraw gets its own paint pass)
        self.stagger.add("history", lambda: self._stored_history(card))

    def _stored_history(self, card: ModelCard) -> None:
        if self.is_running():
            return  # a run started meanwhile: its live curves own the plots
        self.loss_plot.reset()
        self.acc_plot.reset()
        draw_history(self.loss_plot, self.acc_plot, card.history, live=False)
        draw_dice_history(self.acc_plot, card)  # a segmentation model's dice curves

    def _save_rule(self, model_id: str, rules: list[dict[str, Any]]) -> None:
        """The edited area rule onto the card, on the store writer (the saved card reloads the list)."""
        from training.segment.train import set_rules
        if self.ctx.project is not None:
            self._select_next = model_id
            self.ctx.writer.submit("segment rule", set_rules, self.ctx.project, model_id, rules)
            self._say(f"Area rule of {model_id} saved: sorting and proposals use it from now on.")

    def make_active(self, model_id: str, runtime: str | None = None) -> None:
        """Make a model the project's active one (queued on the window's store writer), on a
        runtime when one is given (the Prune panel's choice, recorded on its card)."""
        proj = self.ctx.project
        if proj is None:
            return
        if runtime:
            from training.registry import set_runtime
            self.ctx.writer.submit("model runtime", set_runtime, proj, model_id, runtime)
        self.ctx.writer.submit("make model active", proj.set_active_model, model_id, user=self.ctx.user)
        self._say(f"Model {model_id} is now active for live sorting; Label → 'Predict parts' pre-labels the "
                  "parts with it.")

    # ------------------------------------------------------------------ augmentation preview
    def refresh_preview(self) -> None:
        proj = self.ctx.project
        if proj is None:
            return
        w = Worker(preview, proj, self.form.classifier_values(), PREVIEW_N)
        w.finished.connect(self.preview.show_images)
        w.failed.connect(self.preview.show_error)
        self.preview.busy()
        self._keep(w)

    # ------------------------------------------------------------------ plumbing
    def _keep(self, w: Worker) -> None:
        if self._closed:
            return  # the window is closing: start nothing new
        self._side = [x for x in self._side if x.is_running()]
        self._side.append(w)
        w.start()

    def _say(self, text: str) -> None:
        self.state.setText(text)
        self.state.setToolTip(text)
        self.state_box.verticalScrollBar().setValue(0)  # a new outcome is read from its start
        self.ctx.status.emit(text)

    _closed = False

    def shutdown(self) -> None:
        """Window closing: cancel a run and wait a little for it to stop."""
        self._closed = True
        self.prune.shutdown()
        self.tune.shutdown()
        self.pretrain.shutdown()
        if self.worker is not None and self.worker.is_running():
            self.worker.cancel()
            self.worker.wait(10000)
        for w in self._side:
            w.cancel()
            w.wait(10000)


if __name__ == "__main__":  # pragma: no cover
    import sys

    from app.widgets.standalone import run_standalone
    sys.exit(run_standalone(TrainView))

