"""Explain view: where the selected model looks, compared with the inspectors' masks or with a
segmentation model's ("Compare with": the reference masks, training.explain.reference).

Top: model, Grad-CAM layer, Guided Grad-CAM toggle, Explain / Cancel. Left: the sortable table
of views (IoU, energy in mask, pointing). Right: the picked view side by side (view, mask,
Grad-CAM overlay, agreement), the dataset summary and the shortcut alarm, whose suggested ROI
is applied per camera in one click (project.set_roi through the window's store writer).
Loading the model, Grad-CAM over the dataset and each view's heatmaps run in Workers; the
training.explain functions do all the work, this view only shows their output.

Run alone for a look: ``python -m app.views.explain_view PROJECT.h5``
"""
from __future__ import annotations

import threading
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.widgets.explain_panels import ShortcutPanel, SideBySide, summary_html
from app.widgets.explain_table import LIFT_COLUMN, AgreementTable
from app.worker import Worker
from labeling.progress import Progress
from labeling.types import ROI
from training.card import ModelCard, project_cards
from training.explain.reference import INSPECTOR
from training.explain.session import explain_all, explain_one, load_explainer


def preload() -> None:
    """Import the explain code at window start, not first in a Worker (GIL-holding init)."""
    import torchvision.models  # noqa: F401  - model loading builds networks with it (see sort_view.preload)

    import training.explain.dataset
    import training.explain.overlay
    import training.inference  # noqa: F401


# ---------------------------------------------------------------------- the view
class ExplainView(QWidget):
    """Explain mode: agreement table | side-by-side view, summary and shortcut alarm."""

    report_ready = pyqtSignal()
    view_ready = pyqtSignal()
    model_ready = pyqtSignal(str)
    roi_applied = pyqtSignal(str)

    def __init__(self, ctx: Any, parent: Any = None) -> None:
        super().__init__(parent)
        preload()
        self.ctx = ctx
        self.lock = threading.Lock()
        self.loaded: Any = None
        self.loaded_id: str | None = None
        self.report: dict[str, Any] | None = None
        self.last_view: dict[str, Any] | None = None
        self.last_error = ""
        self.worker: Worker | None = None
        self._side: list[Worker] = []
        self._view_token = 0

        self.model_box = QComboBox()
        self.model_box.setMinimumWidth(260)
        self.model_box.currentIndexChanged.connect(self._model_picked)
        self.layer_box = QComboBox()
        self.layer_box.setToolTip("Grad-CAM target layer: deeper = coarser but more class-specific")
        self.layer_box.currentIndexChanged.connect(lambda _i: self._refresh_view())
        self.class_box = QComboBox()
        self.class_box.setToolTip("The class Grad-CAM explains: each part's own (NG, or its defect class for a "
                                  "class model), the predicted one, or any class of the model")
        self.class_box.currentIndexChanged.connect(lambda _i: self._refresh_view())
        self.ref_box = QComboBox()
        self.ref_box.setToolTip("The masks Grad-CAM is compared with: the inspectors', or a segmentation "
                                "model's (its stored proposals, else proposed on the spot)")
        self.ref_box.addItem("inspector's masks", INSPECTOR)
        self.ref_box.currentIndexChanged.connect(self._reference_picked)
        self.guided = QCheckBox("Guided Grad-CAM")
        self.guided.toggled.connect(lambda _b: self._refresh_view())
        self.run_btn = QPushButton("Explain dataset")
        self.run_btn.setObjectName("captureButton")
        self.run_btn.clicked.connect(self.run)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(260)
        self.state = QLabel("Pick a model and press Explain dataset.")
        self.state.setWordWrap(True)
        top = QHBoxLayout()
        for label, w in (("Model", self.model_box), ("Layer", self.layer_box), ("Class", self.class_box),
                         ("Compare with", self.ref_box)):
            top.addWidget(QLabel(label))
            top.addWidget(w)
        top.addWidget(self.guided)
        top.addWidget(self.run_btn)
        top.addWidget(self.cancel_btn)
        top.addWidget(self.bar)
        top.addStretch(1)

        self.table = AgreementTable()
        self.table.row_selected.connect(self._row_picked)
        self.side = SideBySide()
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.alarm = ShortcutPanel()
        self.alarm.apply_roi.connect(self.apply_roi)
        lower = QWidget()
        lw = QVBoxLayout(lower)
        lw.addWidget(self.summary)
        lw.addWidget(self.alarm)
        lw.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(lower)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.side)
        right.addWidget(scroll)
        right.setSizes([430, 330])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(right)
        split.setSizes([720, 880])  # nine columns, "pointing" unclipped at 1600 px
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addLayout(top)
        lay.addWidget(self.state)
        lay.addWidget(split, 1)
        ctx.project_changed.connect(lambda _p: self.refresh_models())
        ctx.models_changed.connect(self.refresh_models)
        self.refresh_models()

    # ------------------------------------------------------------------ models
    def refresh_models(self) -> None:
        proj = self.ctx.project
        if proj is None:
            self.model_box.clear()
            return
        w = Worker(project_cards, proj.path)
        w.finished.connect(self._fill_models)
        self._keep(w)

    def _fill_models(self, res: tuple[list[ModelCard], str | None]) -> None:
        cards, active = res
        self._fill_references([c for c in cards if c.task == "segment"])
        cards = [c for c in cards if c.task != "segment"]  # Grad-CAM explains classifiers
        current = self.model_box.currentData() or active
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for card in reversed(cards):
            star = " (active)" if card.id == active else ""
            scratch = "" if card.pretrained else " · scratch"
            self.model_box.addItem(f"{card.id} · {card.arch}{scratch}{star}", card.id)
        idx = self.model_box.findData(current) if current else -1
        self.model_box.setCurrentIndex(max(idx, 0) if cards else -1)
        self.model_box.blockSignals(False)
        if not cards:
            self.state.setText("No model in this project yet: train one in the Train view.")
        self._model_picked()

    def _fill_references(self, seg_cards: list[ModelCard]) -> None:
        current = self.ref_box.currentData()
        self.ref_box.blockSignals(True)
        while self.ref_box.count() > 1:  # the inspector's masks stay first
            self.ref_box.removeItem(1)
        for card in reversed(seg_cards):
            self.ref_box.addItem(f"{card.id} · {card.arch} (segmentation)", card.id)
        self.ref_box.setCurrentIndex(max(0, self.ref_box.findData(current)))
        self.ref_box.blockSignals(False)

    def reference(self) -> str:
        return self.ref_box.currentData() or INSPECTOR

    def _reference_picked(self, *_: Any) -> None:
        self._refresh_view()
        if self.report is not None:
            self.state.setText("Reference masks changed: press Explain dataset to score the table against them.")

    def _model_picked(self, *_: Any) -> None:
        mid = self.model_box.currentData()
        proj = self.ctx.project
        if not mid or proj is None or mid == self.loaded_id:
            return
        self.loaded, self.loaded_id = None, None
        self.run_btn.setEnabled(False)
        self.state.setText(f"Loading model {mid}…")
        w = Worker(load_explainer, proj.path, mid)
        w.finished.connect(self._model_loaded)
        w.failed.connect(self._failed)
        self._keep(w)

    def _model_loaded(self, res: dict[str, Any]) -> None:
        if res["model_id"] != self.model_box.currentData():
            return  # the user picked another model meanwhile
        self.loaded, self.loaded_id = res["loaded"], res["model_id"]
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        self.layer_box.addItems(res["layers"])
        if res["default"] in res["layers"]:
            self.layer_box.setCurrentText(res["default"])
        self.layer_box.blockSignals(False)
        self.class_box.blockSignals(True)
        self.class_box.clear()
        self.class_box.addItem("each part's own", "ng")
        self.class_box.addItem("predicted", "predicted")
        for i, name in enumerate(getattr(self.loaded, "class_names", [])):
            self.class_box.addItem(name, i)
        self.class_box.blockSignals(False)
        self.run_btn.setEnabled(True)
        self.state.setText(f"Model {self.loaded_id} loaded; press Explain dataset.")
        self.model_ready.emit(self.loaded_id)

    # ------------------------------------------------------------------ dataset run
    def run(self) -> None:
        """Explain every labelled part with the selected model and layer (Worker)."""
        proj = self.ctx.project
        if proj is None or self.loaded is None:
            self.state.setText("Load a model first.")
            return
        if self.worker is not None and self.worker.is_running():
            return
        self.worker = Worker(explain_all, proj.path, self.loaded, self.loaded_id, self.layer_box.currentText(), self.lock,
                             target_class=self.target_class(), reference=self.reference())
        self.worker.progress.connect(self._progress)
        self.worker.finished.connect(self._report)
        self.worker.failed.connect(self._failed)
        self.worker.cancelled.connect(lambda _finished: self._idle("Explanation cancelled."))
        self.run_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.state.setText(f"Grad-CAM over the dataset with {self.loaded_id}, layer {self.layer_box.currentText()}, "
                           f"against {self.ref_box.currentText()}…")
        self.worker.start()

    def target_class(self) -> str | int:
        data = self.class_box.currentData()
        return "ng" if data is None else data

    def cancel(self) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.cancel()

    def _progress(self, p: Progress) -> None:
        self.bar.setMaximum(max(1, p.total or 0))
        self.bar.setValue(p.done)

    def _report(self, rep: dict[str, Any]) -> None:
        self.report = rep
        self.table.set_rows(rep["rows"])
        # least looked-at defect first: the lift compares thin cracks and large spots alike (IoU does not)
        self.table.sortByColumn(LIFT_COLUMN, Qt.SortOrder.AscendingOrder)
        self.summary.setText(summary_html(rep))
        self.alarm.show_alarms(rep.get("shortcut") or [])
        flagged = " · SHORTCUT ALARM" if rep.get("shortcut_flagged") else ""
        self._idle(f"{len(rep['rows'])} views explained in {rep.get('elapsed_s', 0):.1f} s{flagged}.")
        if rep["rows"]:
            self.table.select_row(0)
        self.report_ready.emit()

    def _idle(self, text: str) -> None:
        self.run_btn.setEnabled(self.loaded is not None)
        self.cancel_btn.setEnabled(False)
        self.state.setText(text)

    def _failed(self, msg: str) -> None:
        self.last_error = msg
        self._idle(f"Explain failed: {msg}")

    # ------------------------------------------------------------------ one view
    def _row_picked(self, row: Any) -> None:
        self._current_row = row
        self._refresh_view()

    def _refresh_view(self) -> None:
        row = getattr(self, "_current_row", None)
        proj = self.ctx.project
        if row is None or proj is None or self.loaded is None:
            return
        self._view_token += 1
        token = self._view_token
        w = Worker(explain_one, proj.snapshot([int(row.part_id)]), self.loaded, int(row.part_id), int(row.view),
                   self.layer_box.currentText(), self.guided.isChecked(), self.lock,
                   target_class=self.target_class(), reference=self.reference())
        w.finished.connect(lambda res, t=token: self._show_view(res, t))
        w.failed.connect(self._failed)
        self._keep(w)

    def _show_view(self, res: dict[str, Any], token: int) -> None:
        if token != self._view_token:
            return  # an older request: a newer one is on its way
        self.last_view = res
        self.side.show_images(res["images"], res["captions"])
        self.view_ready.emit()

    # ------------------------------------------------------------------ shortcut ROI
    def apply_roi(self, camera: str, roi: list[int]) -> None:
        """Set the suggested ROI of a camera in the project (retrain to use it)."""
        proj = self.ctx.project
        if proj is None:
            return
        value = ROI(*[int(v) for v in roi])
        self.ctx.writer.submit(f"ROI of {camera}", proj.set_roi, camera, value, user=self.ctx.user)
        self.state.setText(f"ROI of {camera} set to {value.to_list()}: retrain the model to use it.")
        self.ctx.status.emit(f"ROI of {camera} set to {value.to_list()}")
        self.roi_applied.emit(camera)

    # ------------------------------------------------------------------ plumbing
    def _keep(self, w: Worker) -> None:
        if self._closed:
            return  # the window is closing: start nothing new
        self._side = [x for x in self._side if x.is_running()]
        self._side.append(w)
        w.start()

    _closed = False

    def shutdown(self) -> None:
        """Window closing: cancel the dataset run, let short jobs end (a running QThread must
        not be destroyed)."""
        self._closed = True
        if self.worker is not None and self.worker.is_running():
            self.worker.cancel()
            self.worker.wait(10000)
        for w in self._side:
            w.cancel()
            w.wait(10000)


if __name__ == "__main__":  # pragma: no cover
    import sys

    from app.widgets.standalone import run_standalone
    sys.exit(run_standalone(ExplainView))
