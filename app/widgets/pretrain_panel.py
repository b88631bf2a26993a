"""The Train view's Pretrain panel: self-supervised pretraining on the project's own views (`okng pretrain`).

Start runs training.pretrain.pretrain (the same job as the CLI) in a child process
(app.child.in_child, like training), relayed by the one Worker, for the minutes given; the
backbone is the Train form's. Every view of every part is used (labels unused), or every part but
a model's test parts ("Hold out"), so a model trained from the encoder with that model's split
settings has test figures the encoder never saw. Cancel stores nothing, as every Cancel in the
window promises. The table lists the project's encoders and whether each learned; a stored
encoder becomes the Train form's Encoder, so the next Start training starts from it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QProgressBar,
    QSpinBox,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.child import TRAIN_NICE, in_child
from app.widgets.job_panel import JobPanel
from app.worker import Worker
from labeling.progress import Progress, ProgressFn, StopFn
from training.card import ModelCard
from training.pretrain import METHODS, PretrainResult, PretrainSpec, encoders, parts_without_test_of, pretrain

COLUMNS = ("encoder", "backbone", "method", "images", "minutes", "learned")
LEARNED = {True: "yes", False: "NO", None: "too short to tell"}
EVERY_PART = "none: every part"


@dataclass(frozen=True)
class PretrainRequest:
    """What Start asks for: the run's fields and the model whose test parts to hold out (None:
    every part). Resolved into a PretrainSpec in the Worker's thread: finding a model's test
    parts opens the project, which the GUI thread must not wait on."""

    project: str
    held: str | None
    fields: dict[str, Any] = field(default_factory=dict)


def _resolve(req: PretrainRequest, progress: ProgressFn | None) -> PretrainSpec:
    spec = hold_out_spec(req.project, req.held, **req.fields)
    if progress is not None and spec.part_ids is not None:
        progress(Progress("hold-out", message=f"{len(spec.part_ids)} parts (test of {req.held} held out)"))
    return spec


def pretrain_in_process(req: PretrainRequest, progress: ProgressFn | None = None,
                        should_stop: StopFn | None = None) -> PretrainResult:
    """training.pretrain.pretrain in a child process: it imports no Qt."""
    return in_child(pretrain, _resolve(req, progress), nice=TRAIN_NICE, progress=progress, should_stop=should_stop)


def pretrain_in_thread(req: PretrainRequest, progress: ProgressFn | None = None,
                       should_stop: StopFn | None = None) -> PretrainResult:
    """The same job in the Worker's thread (tests: JobPanel.use_process off)."""
    return pretrain(_resolve(req, progress), progress=progress, should_stop=should_stop)


def list_encoders(path: str, progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                  ) -> list[dict[str, Any]]:
    """The project's encoders (a Worker function: the window's Project is its writer's)."""
    return encoders(path)


def hold_out_spec(project: str, model_id: str | None, **fields: Any) -> PretrainSpec:
    """The run's spec: every part, or every part but `model_id`'s test parts (TrainingError
    when that model has none to hold out)."""
    parts = parts_without_test_of(project, model_id)[0] if model_id else None
    return PretrainSpec(project=project, part_ids=parts, keep_stopped=False, **fields)


class PretrainPanel(JobPanel):
    """Minutes, method, hold-out, Start/Cancel, a progress bar and the project's encoders."""

    encoder_stored = pyqtSignal(str)  # the id of an encoder a finished run stored
    encoders_listed = pyqtSignal(list)  # the project's encoder ids, oldest first (on every reload)

    def __init__(self, arch: Callable[[], str] | None = None, project: Callable[[], str | None] | None = None,
                 parent: Any = None) -> None:
        super().__init__("Pretrain (self-supervised, no labels)", "Pretraining", parent)
        self.arch = arch or (lambda: "resnet18")  # the Train form's backbone
        self.project = project or (lambda: None)  # the open project's path
        self.cancel_text = "Cancelling… (the current step finishes, nothing is stored)"
        self.fields: dict[str, Any] = {}  # PretrainSpec fields the form does not show (tests: tiny sizes)
        self.minutes = QSpinBox()
        self.minutes.setRange(1, 24 * 60)
        self.minutes.setValue(30)
        self.minutes.setSuffix(" min")
        self.method = QComboBox()
        self.method.addItems(list(METHODS))
        self.method.setCurrentText(PretrainSpec.method)  # the measured default (mim), not the registry's first
        self.method.setToolTip("mim: masked-image reconstruction (learns even where every part looks alike; "
                               "measured on KolektorSDD, bsdata and NEU-DET). simclr: contrastive.")
        self.hold_out = QComboBox()
        self.hold_out.setToolTip("Leave out the views of this model's test parts, so a model trained from the "
                                 "encoder with the same split settings is tested on parts the encoder never saw")
        self.hold_out.addItem(EVERY_PART)
        form = QFormLayout()
        form.addRow("Train for", self.minutes)
        form.addRow("Method", self.method)
        form.addRow("Hold out test of", self.hold_out)
        buttons = self.job_controls("Start pretraining", "Learn this project's surfaces from every view, "
                                    "labelled or not; Start training then starts from the encoder.",
                                    list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(90)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.bar)
        lay.addWidget(self.state)
        lay.addWidget(self.table)
        self.rows: list[dict[str, Any]] = []
        self.scope = ""  # the parts the last run pretrains on ("every part", or the count held out)
        self._readers: list[Worker] = []  # kept until they end (a Worker dropped mid-run would take its thread)

    # ------------------------------------------------------------------ models and encoders
    def set_models(self, cards: list[ModelCard]) -> None:
        """Offer the models that have a test split to hold out (the Train view's model list)."""
        keep = self.hold_out.currentText()
        self.hold_out.clear()
        self.hold_out.addItem(EVERY_PART)
        for c in cards:
            n = len(c.split.get("test") or [])
            if n:
                self.hold_out.addItem(c.id)
                self.hold_out.setItemData(self.hold_out.count() - 1, f"{n} test parts",
                                          Qt.ItemDataRole.ToolTipRole)
        i = self.hold_out.findText(keep)
        self.hold_out.setCurrentIndex(max(0, i))

    def refresh(self) -> None:
        """Reload the encoders table (an HDF5 read: in a Worker)."""
        path = self.project()
        if not path:
            self.show_encoders([])
            return
        w = Worker(list_encoders, path)
        w.finished.connect(self.show_encoders)
        w.failed.connect(lambda m: self.state.setText(f"Could not read the encoders: {m}"))
        self._readers = [r for r in self._readers if r.is_running()] + [w]
        w.start()

    def show_encoders(self, rows: list[dict[str, Any]]) -> None:
        self.rows = list(rows)
        self.table.setRowCount(len(rows))
        for i, m in enumerate(reversed(rows)):  # newest on top
            cells = (m["id"], str(m.get("arch")), str(m.get("method", "simclr")), str(m.get("n_images")),
                     f"{m.get('seconds', 0) / 60:.1f}", LEARNED[m.get("learned")])
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(str(m.get("note") or ""))
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self.encoders_listed.emit([m["id"] for m in rows])

    # ------------------------------------------------------------------ the job
    def start(self) -> None:
        path = self.project()
        if not path:
            self.state.setText("Open a project first.")
            return
        if self.is_running():
            return
        held = None if self.hold_out.currentIndex() <= 0 else self.hold_out.currentText()
        fields = {"arch": self.arch(), "method": self.method.currentText(),
                  "budget_s": 60.0 * self.minutes.value(), **self.fields}
        self.bar.setValue(0)
        self.scope = "every part" if held is None else ""
        # A model that is gone or has no test split fails the run with TrainingError's words
        # ("Pretraining failed: …"); nothing is stored.
        parts = "every part" if held is None else f"every part but the test parts of {held}"
        self.run_job(pretrain_in_process, pretrain_in_thread, PretrainRequest(path, held, fields),
                     f"Pretraining {fields['arch']} ({fields['method']}) on {parts} for "
                     f"{fields['budget_s'] / 60:g} min…")

    def _on_progress(self, p: Progress) -> None:
        if p.stage == "hold-out":  # the parts the run pretrains on, once the Worker has found them
            self.scope = p.message
        if p.stage == "pretrain" and p.total:
            self.bar.setValue(int(1000 * p.done / p.total))
        super()._on_progress(p)

    def show_result(self, result: PretrainResult) -> None:
        self.refresh()
        if result.encoder_id:
            self.bar.setValue(1000)
            self.encoder_stored.emit(result.encoder_id)

    def finished_text(self, result: PretrainResult | None, how: str) -> str:
        if result is None or not result.encoder_id:
            return "Pretraining cancelled: nothing was stored." if how == "cancelled" else "Pretraining stopped: nothing was stored."
        warn = "⚠ " if result.learned is False else ""
        return (f"Encoder {result.encoder_id} stored: {result.source}, {result.steps} steps in "
                f"{result.seconds / 60:.1f} min. {warn}{result.note.rstrip('.')}. The Train form's Encoder is set to it: "
                "Start training starts from it.")

    def shutdown(self) -> None:
        super().shutdown()
        for r in self._readers:
            r.wait(10000)
