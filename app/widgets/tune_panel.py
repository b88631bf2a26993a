"""The Train view's Tune panel: an Optuna study over the training settings (`okng tune`).

Start runs training.tune.tune (the same job as the CLI) in a child process (app.child.in_child,
like training), relayed by the one Worker; Cancel stops it (the running trial's settings are
queued first for the next Start, which resumes the study). The fixed settings (task, backbone,
batch size, seed, splits) are the Train form's; each trial draws the rest. After every trial the
job sends the study's rows (training.tune.TuneState): the trials table (number, state, value,
settings) and Optuna's two standard plots, drawn with pyqtgraph: the optimisation history (each
trial's validation value and the best so far) and the parameter importances (fANOVA, from two
completed trials on).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyqtgraph as pg
from PyQt6.QtWidgets import (
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.child import TRAIN_NICE, in_child
from app.widgets.job_panel import JobPanel
from labeling.progress import Progress, ProgressFn, StopFn
from training.tune import TrialRow, TuneResult, TuneSpec, TuneState, read_space_file, tune

COLUMNS = ("#", "state", "value", "settings")
# The Train form's values a study keeps fixed (the rest of the form is what a trial draws).
FIXED = ("task", "arch", "batch_size", "seed", "test_fraction", "group_by", "split_field", "encoder")


def tune_in_process(spec: TuneSpec, progress: ProgressFn | None = None,
                    should_stop: StopFn | None = None) -> TuneResult:
    """training.tune.tune in a child process: it imports no Qt."""
    return in_child(tune, spec, nice=TRAIN_NICE, progress=progress, should_stop=should_stop)


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def history_points(rows: list[TrialRow]) -> tuple[list[int], list[float], list[float]]:
    """(trial numbers, values, best so far) of the trials with a value (completed), in order."""
    xs, ys, best = [], [], []
    for r in sorted(rows, key=lambda r: r.number):
        if r.state == "COMPLETE" and r.value is not None:
            xs.append(r.number)
            ys.append(r.value)
            best.append(max(ys))
    return xs, ys, best


class TunePanel(JobPanel):
    """Study settings, Start/Cancel, the trials table, history and importance plots."""

    def __init__(self, values: Callable[[], dict[str, Any]] | None = None,
                 project: Callable[[], str | None] | None = None, parent: Any = None) -> None:
        super().__init__("Tune (Optuna search)", "Tuning", parent)
        self.values = values or dict  # the Train form's settings
        self.project = project or (lambda: None)  # the open project's path
        self.cancel_text = "Cancelling… (the running trial is tried again on the next Start)"
        self.rows: list[TrialRow] = []
        self.importances: dict[str, float] = {}
        self.space: dict[str, Any] = {}  # ranges over the default space (tests; the file field otherwise)
        self.trials = QSpinBox()
        self.trials.setRange(1, 500)
        self.trials.setValue(12)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 200)
        self.epochs.setValue(5)
        self.minutes = QSpinBox()
        self.minutes.setRange(0, 24 * 60)
        self.minutes.setSpecialValueText("no limit")
        self.space_file = QLineEdit()
        self.space_file.setPlaceholderText("default ranges (or a JSON / YAML file)")
        self.storage = QLineEdit()
        self.storage.setPlaceholderText("SQLite next to the project (or postgresql://…)")
        form = QFormLayout()
        form.addRow("Trials", self.trials)
        form.addRow("Epochs per trial", self.epochs)
        form.addRow("Start no trial after (min)", self.minutes)
        form.addRow("Search space", self.space_file)
        form.addRow("Study storage", self.storage)
        buttons = self.job_controls("Start / resume study", "Search learning rate, weight decay, freeze, head, "
                                    "augmentation and input size.", list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.history = pg.PlotWidget(title="Optimisation history")
        self.history.setLabel("bottom", "trial")
        self.history.setLabel("left", "validation")
        self.history.getAxis("left").enableAutoSIPrefix(False)
        self.history.setMinimumHeight(140)
        self.values_item = pg.ScatterPlotItem(size=7)
        self.best_item = pg.PlotDataItem()
        self.history.addItem(self.values_item)
        self.history.addItem(self.best_item)
        self.importance = pg.PlotWidget(title="Parameter importances")
        self.importance.setMinimumHeight(140)
        self.importance_note = QLabel("")
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.state)
        lay.addWidget(self.table)
        lay.addWidget(self.history)
        lay.addWidget(self.importance)
        lay.addWidget(self.importance_note)

    # ------------------------------------------------------------------ the job
    def spec(self) -> TuneSpec:
        form = self.values()
        fixed = {k: form[k] for k in FIXED if form.get(k) is not None}
        fixed["epochs"] = self.epochs.value()
        if self.num_threads:
            fixed["num_threads"] = self.num_threads
        space = dict(self.space)
        if self.space_file.text().strip():
            space = {**read_space_file(self.space_file.text().strip()), **space}
        return TuneSpec(str(self.project()), fixed, trials=self.trials.value(),
                        timeout_s=60.0 * self.minutes.value() if self.minutes.value() else None, space=space,
                        storage=self.storage.text().strip() or None)

    def start(self) -> None:
        if not self.project():
            self.state.setText("Open a project first.")
            return
        if self.is_running():
            return
        try:
            spec = self.spec()
        except Exception as exc:  # noqa: BLE001 - a bad space file, said in the panel
            self.state.setText(f"Search space: {exc}")
            return
        self.run_job(tune_in_process, tune, spec, f"Tuning {spec.values.get('arch', 'resnet18')}: {spec.trials} trials…")

    def _on_progress(self, p: Progress) -> None:
        if isinstance(p.payload, TuneState):
            self.show_trials(p.payload.trials, p.payload.importances)
        super()._on_progress(p)

    def show_result(self, result: TuneResult) -> None:
        self.show_trials(result.trials, result.importances)

    def finished_text(self, result: TuneResult | None, how: str) -> str:
        if how == "done" and result is not None and result.model_id:
            best = result.best
            return f"Study {result.study}: best trial {best.number if best else '-'}; model {result.model_id} registered."
        return f"Study {how}: Start resumes it." if how == "cancelled" else f"Study {how}."

    # ------------------------------------------------------------------ drawing
    def show_trials(self, rows: list[TrialRow], importances: dict[str, float]) -> None:
        self.rows, self.importances = list(rows), dict(importances)
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            cells = (str(r.number), r.state, f"{r.value:.4f}" if r.value is not None else "-",
                     ", ".join(f"{k}={_short(v)}" for k, v in r.params.items()))
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        xs, ys, best = history_points(rows)
        self.values_item.setData(xs, ys)
        self.best_item.setData(xs, best)
        self.importance.clear()
        done = sum(1 for r in rows if r.state == "COMPLETE")
        if not importances:
            self.importance_note.setText("Importances need 2 completed trials." if done < 2 else
                                         "No importances: the completed trials do not differ.")
            return
        self.importance_note.setText("")
        names = list(importances)[::-1]  # the most important on top
        vals = [importances[n] for n in names]
        self.importance.addItem(pg.BarGraphItem(x0=0, y=list(range(len(names))), height=0.6, width=vals))
        axis = self.importance.getAxis("left")
        axis.setTicks([list(enumerate(names))])
        # Room for the longest name: the axis otherwise drops the labels that do not fit.
        axis.setWidth(max(self.fontMetrics().horizontalAdvance(n) for n in names) + 14)
