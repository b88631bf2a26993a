"""The Train view's Prune panel: prune the selected model in rounds, compare its lineage, activate.

Start runs training.prune.prune (the same job as `okng prune`) in a child process (app.child
.in_child, like training), relayed by the one Worker. The lineage table (training.lineage: the
X-ray wool study's Table III: params / FLOPs / latency / held-out balanced accuracy, with how
many times smaller and faster than the root) is drawn from the cards the Train view already
loaded: no HDF5 read and no torch here. "Make active" activates the row picked, on the runtime
chosen next to it (torch, or ONNX Runtime from the model's checked export).
"""
from __future__ import annotations

from typing import Any

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.child import TRAIN_NICE, in_child
from app.widgets.job_panel import JobPanel
from labeling.progress import ProgressFn, StopFn
from training.card import ModelCard
from training.lineage import lineage_rows
from training.prune import PruneResult, PruneSpec, prune

COLUMNS = (("id", "model"), ("method", "method"), ("round", "round"), ("params", "params"),
           ("flops", "FLOPs"), ("flops_x", "FLOPs x"), ("latency_ms", "latency ms"),
           ("latency_ms_x", "speed x"), ("val_balanced_accuracy", "val bal acc"),
           ("test_balanced_accuracy", "test bal acc"))


def prune_in_process(spec: PruneSpec, progress: ProgressFn | None = None,
                     should_stop: StopFn | None = None) -> PruneResult:
    """training.prune.prune in a child process: it imports no Qt."""
    return in_child(prune, spec, nice=TRAIN_NICE, progress=progress, should_stop=should_stop)


def _cell(key: str, v: Any) -> str:
    if v is None:
        return "-"
    if key in ("params", "flops"):
        return f"{v / 1e6:.2f}M"
    if key.endswith("_x"):
        return f"{v:.1f}x"
    if key == "latency_ms":
        return f"{v:.1f}"
    if key.endswith("accuracy"):
        return f"{v:.3f}"
    return str(v)


class PrunePanel(JobPanel):
    """Settings, Start/Cancel, the lineage table and Make active."""

    activate = pyqtSignal(str, str)  # model id, runtime

    def __init__(self, parent: Any = None) -> None:
        super().__init__("Prune", "Pruning", parent)
        self.project_path: str | None = None
        self.model_id: str | None = None
        self.rows: list[dict[str, Any]] = []
        self.rounds = QSpinBox()
        self.rounds.setRange(1, 10)
        self.rounds.setValue(3)
        self.rate = QDoubleSpinBox()
        self.rate.setRange(0.05, 0.9)
        self.rate.setSingleStep(0.05)
        self.rate.setValue(0.3)
        self.norm = QComboBox()
        self.norm.addItems(["l1", "l2"])
        self.method = QComboBox()
        self.method.addItems(["l1", "asfp"])
        self.method.setToolTip("l1: hard rounds of prune + fine-tune; asfp: soft pruning with a growing "
                               "rate, filters removed at the end (for comparison)")
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 100)
        self.epochs.setValue(2)
        form = QFormLayout()
        form.addRow("Rounds", self.rounds)
        form.addRow("Rate per round", self.rate)
        form.addRow("Filter norm", self.norm)
        form.addRow("Method", self.method)
        form.addRow("Fine-tune epochs", self.epochs)
        buttons = self.job_controls("Prune selected model", "Select a model to prune.", [c[1] for c in COLUMNS])
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runtime = QComboBox()
        self.runtime.addItems(["torch", "onnxruntime"])
        self.activate_btn = QPushButton("Make active")
        self.activate_btn.clicked.connect(self._activate)
        act = QHBoxLayout()
        act.addWidget(QLabel("Runtime"))
        act.addWidget(self.runtime)
        act.addWidget(self.activate_btn)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.state)
        lay.addWidget(self.table)
        lay.addLayout(act)

    # ------------------------------------------------------------------ lineage
    def show_model(self, cards: list[ModelCard], model_id: str | None, active: str | None,
                   project_path: str | None) -> None:
        """The selected model and its lineage (from cards already read)."""
        self.project_path, self.model_id = project_path, model_id
        self.rows = lineage_rows(cards, model_id, active) if model_id and any(c.id == model_id for c in cards) else []
        self.table.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            for j, (key, _) in enumerate(COLUMNS):
                text = _cell(key, r[key]) + (" *" if key == "id" and r["active"] else "")
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.select(self.best_tradeoff())
        if not self.is_running():
            self.state.setText(f"{model_id}: {len(self.rows)} model(s) in its lineage." if model_id
                               else "Select a model to prune.")

    def best_tradeoff(self) -> str | None:
        """The fastest model of the lineage within 1 point of the root's held-out balanced
        accuracy (the study's criterion); selected in the table when the lineage is shown."""
        if not self.rows:
            return None
        key = "test_balanced_accuracy" if self.rows[0]["test_balanced_accuracy"] is not None else "val_balanced_accuracy"
        base = self.rows[0][key] or 0.0
        ok = [r for r in self.rows if r[key] is not None and r[key] >= base - 0.01 and r["latency_ms"]]
        return min(ok, key=lambda r: r["latency_ms"])["id"] if ok else self.rows[0]["id"]

    def select(self, model_id: str | None) -> None:
        for i, r in enumerate(self.rows):
            if r["id"] == model_id:
                self.table.selectRow(i)

    def _activate(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.activate.emit(self.rows[rows[0].row()]["id"], self.runtime.currentText())

    # ------------------------------------------------------------------ the job
    def spec(self) -> PruneSpec:
        return PruneSpec(str(self.project_path), str(self.model_id), self.rounds.value(), round(self.rate.value(), 3),
                         self.norm.currentText(), self.method.currentText(), self.epochs.value(),
                         num_threads=self.num_threads)

    def start(self) -> None:
        if not self.project_path or not self.model_id:
            self.state.setText("Select a model to prune first.")
            return
        if not self.is_running():
            self.run_job(prune_in_process, prune, self.spec(), f"Pruning {self.model_id}…")

    def finished_text(self, result: PruneResult | None, how: str) -> str:
        n = len(result.rounds) if result is not None else 0
        return f"Pruning {how}: {n} model(s) registered."
