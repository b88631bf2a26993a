"""Train view: settings, augmentation preview, live curves, Cancel, results and "Make active".

Start runs training.loop.train(project_path, config, progress, should_stop) in the one Worker;
its Progress reports become points on the loss and accuracy curves. When the run ends the
view reloads the project's models (also in a Worker) and shows the metrics of the new model;
a cancelled run leaves the project and its registry as they were (the engine's promise).

Run alone for a look: ``python -m app.views.train_view PROJECT.h5``
"""
from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.child import TRAIN_NICE, in_child, start_child_server
from app.widgets.plot_curves import CurvePlot
from app.widgets.qimage import to_pixmap
from app.widgets.train_form import TrainForm
from app.widgets.train_results import ResultsTabs, curve, metrics_of, pretrained_text
from app.worker import Worker

PREVIEW_N = 6
# per-epoch figures of the engine's "eval" progress and history rows -> (plot, series name)
EPOCH_SERIES = (("val_loss", "loss", "val loss"), ("val_accuracy", "acc", "val accuracy"),
                ("val_balanced_accuracy", "acc", "val balanced accuracy"))
# a stored model's history also has the epoch's mean training loss
HISTORY_SERIES = (("loss", "loss", "train loss"),) + EPOCH_SERIES


# ---------------------------------------------------------------------- functions run in Workers
# name in the form -> AugmentConfig fields and the strength used when it is ticked
AUG_SETTINGS: dict[str, dict[str, float]] = {
    "hflip": {"hflip": 0.5}, "vflip": {"vflip": 0.5}, "rotate": {"rotate": 15.0}, "crop": {"crop": 0.1},
    "brightness_contrast": {"brightness": 0.15, "contrast": 0.15},
    "hsv": {"hue": 10.0, "saturation": 0.2, "value": 0.15}, "noise": {"noise": 0.02}, "clahe": {"clahe": 0.3},
}


def make_config(values: dict[str, Any]) -> Any:
    """A training TrainConfig from the form's values (fields it does not have are dropped)."""
    from training.config import AugmentConfig, TrainConfig
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    kw = {k: v for k, v in values.items() if k in names}
    if "augment" in kw:
        aug: dict[str, float] = {}
        for name in kw["augment"]:
            aug.update(AUG_SETTINGS.get(name, {}))
        kw["augment"] = dataclasses.replace(AugmentConfig.none(), **aug)
    if "folds" in kw and kw["folds"] <= 1:
        kw["folds"] = 0  # one stratified split
    return TrainConfig(**kw).validate()


def run_training(project_path: str, values: dict[str, Any], progress: Callable[[Any], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> Any:
    """Build the config and train (runs in the Worker)."""
    from training.loop import train
    return train(project_path, make_config(values), progress=progress, should_stop=should_stop)


def train_in_process(project_path: str, values: dict[str, Any], progress: Callable[[Any], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> Any:
    """run_training in a child process (see in_child)."""
    return in_child(run_training, project_path, values, nice=TRAIN_NICE, progress=progress, should_stop=should_stop)


def curves_in_process(project_path: str, meta: dict[str, Any], progress: Any = None, should_stop: Any = None) -> Any:
    """held_out_curves in a child process (it loads and runs the model)."""
    return in_child(held_out_curves_path, project_path, meta, nice=TRAIN_NICE, progress=progress,
                    should_stop=should_stop)


def held_out_curves_path(project_path: str, meta: dict[str, Any], progress: Any = None,
                         should_stop: Any = None) -> dict[str, Any]:
    from labeling.store import Project
    return held_out_curves(Project.open(project_path, readonly=True), meta, progress, should_stop)


def load_models(project: Any, progress: Any = None, should_stop: Any = None) -> tuple[list[dict], str | None]:
    """The project's model metadata and the active id (HDF5 reads: Worker)."""
    project.reload()
    return project.models(), project.active_model_id


def _preview_fn() -> Callable[..., Any] | None:
    for mod in ("training.preview", "training.augment", "training.transforms", "training.loop"):
        try:
            m = __import__(mod, fromlist=["preview_augmentations"])
        except ImportError:
            continue
        fn = getattr(m, "preview_augmentations", None)
        if fn is not None:
            return fn
    return None


def run_preview(project: Any, values: dict[str, Any], n: int = PREVIEW_N, progress: Any = None,
                should_stop: Any = None) -> list[np.ndarray]:
    """Augmented samples of a labelled part through the engine's preview function (Worker)."""
    fn = _preview_fn()
    if fn is None:
        raise RuntimeError("the training package has no augmentation preview")
    parts = [p for p in project.parts() if p.views and p.label is not None] or \
        [p for p in project.parts() if p.views]
    if not parts:
        return []
    return [np.asarray(a) for a in fn(project, parts[0].id, make_config(values), n)]


def held_out_curves(project: Any, meta: dict[str, Any], progress: Any = None,
                    should_stop: Any = None) -> dict[str, Any]:
    """ROC and PR points of a model on its held-out parts (Worker).

    Used only when the stored metrics carry no curve points: the model scores its validation
    parts again (part score = max view P(NG), the engine's rule) and the curves are swept over
    every threshold.
    """
    from labeling.types import Verdict
    from training.inference import aggregate, load_model
    ids = [int(i) for i in ((meta.get("metrics") or {}).get("split") or {}).get("val_part_ids", [])]
    if not ids:
        return {}
    loaded = load_model(project, str(meta["id"]))
    ys, ss = [], []
    for pid in ids:
        if should_stop is not None and should_stop():
            return {}
        part = project.part(pid)
        if part.verdict not in (Verdict.OK, Verdict.NG) or not part.views:
            continue
        dec = loaded.predict_views(project.read_views(pid), [v.camera for v in part.views])
        ys.append(int(part.verdict == Verdict.NG))
        ss.append(float(aggregate(dec.view_scores)))
    return {"model_id": str(meta["id"]), **curve_points(np.asarray(ys), np.asarray(ss))}


def curve_points(y: np.ndarray, s: np.ndarray) -> dict[str, Any]:
    """{'roc': (fpr, tpr), 'pr': (recall, precision)} swept over every score as threshold."""
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    if pos == 0 or neg == 0:
        return {}
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(y[order] == 1)
    fp = np.cumsum(y[order] == 0)
    tpr, fpr = np.r_[0.0, tp / pos], np.r_[0.0, fp / neg]
    precision = np.r_[1.0, tp / np.maximum(tp + fp, 1)]
    return {"roc": (fpr.tolist(), tpr.tolist()), "pr": (tpr.tolist(), precision.tolist())}


def _field(p: Any, name: str, default: Any = None) -> Any:
    if isinstance(p, dict):
        return p.get(name, default)
    return getattr(p, name, default)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def preload() -> None:
    """Import the training code now (at window start): a first import in the Worker would run
    C-extension initialisers holding the GIL long enough to freeze the GUI. Start the fork
    server that training and scoring processes come from."""
    importlib.import_module("training.loop")
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
        self.last_result: Any = None
        self.last_error = ""
        self.metas: list[dict[str, Any]] = []
        self._epoch_points: set[tuple[str, int]] = set()

        self.form = TrainForm()
        self.start_btn = QPushButton("Start training")
        self.start_btn.setObjectName("captureButton")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.preview_btn = QPushButton("Preview augmentations")
        self.preview_btn.clicked.connect(self.refresh_preview)
        self.preview_row = QGridLayout()  # 3 per row: the column stays narrow
        self.preview_note = QLabel("Augmented samples of a labelled part appear here.")
        self.preview_note.setObjectName("muted")
        self.preview_note.setWordWrap(True)
        pbox = QGroupBox("Augmentation preview")
        pl = QVBoxLayout(pbox)
        pl.addWidget(self.preview_btn)
        pl.addLayout(self.preview_row)
        pl.addWidget(self.preview_note)
        left_inner = QWidget()
        ll = QVBoxLayout(left_inner)
        ll.addWidget(self.form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_btn, 2)
        buttons.addWidget(self.cancel_btn, 1)
        ll.addLayout(buttons)
        ll.addWidget(pbox)
        ll.addStretch(1)
        left = QScrollArea()
        left.setWidgetResizable(True)
        left.setWidget(left_inner)
        left.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left.setMinimumWidth(left_inner.minimumSizeHint().width() + 20)

        self.state = QLabel("Idle.")
        self.state.setWordWrap(True)
        self.scratch = QLabel("")
        self.scratch.setObjectName("pillWarn")
        self.scratch.setWordWrap(True)
        # Fixed room (three lines, two lines): text appearing at a run's end (the model saved,
        # the from-scratch warning) otherwise shrank the plots below, and resizing them re-laid
        # out and repainted every axis (a 200-290 ms stall on a busy station).
        line = self.state.fontMetrics().lineSpacing()
        self.state.setFixedHeight(3 * line + 4)
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
        ml.addWidget(self.state)
        ml.addWidget(self.scratch)
        ml.addWidget(self.loss_plot, 1)
        ml.addWidget(self.acc_plot, 1)

        self.results = ResultsTabs()
        # One queue for every redraw of this view: plots, tables and curves due at the same
        # time paint in turn, one per event-loop pass (see app.widgets.stagger).
        self.stagger = self.results.metrics.stagger
        self.loss_plot.stagger = self.acc_plot.stagger = self.stagger
        self.results.models.activate.connect(self.make_active)
        self.results.models.selected.connect(self._curves_of)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(mid)
        split.addWidget(self.results)
        split.setSizes([380, 560, 660])
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(split)
        ctx.project_changed.connect(lambda _p: self.refresh_models())
        ctx.models_changed.connect(self.refresh_models)
        self.refresh_models()

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
        self.last_result, self.last_error = None, ""
        self.worker = Worker(train_in_process if self.use_process else run_training, str(proj.path), values)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_done)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self.start_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self._say(f"Training {values['arch']} ({values['freeze']}), {values['epochs']} epoch(s)…")
        self.worker.start()

    def cancel(self) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.cancel()
            self.cancel_btn.setEnabled(False)
            self._say("Cancelling… (the current step finishes, nothing is saved)")

    def is_running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def _on_progress(self, p: Any) -> None:
        epoch, epochs = _field(p, "epoch", 0) or 0, _field(p, "epochs", 0) or 0
        step, steps = _field(p, "step", 0) or 0, _field(p, "steps", 0) or 0
        x = (epoch - 1 + (step / steps if steps else 1.0)) if epoch else 0.0
        if epochs:
            self.bar.setValue(int(1000 * min(1.0, max(0.0, x / epochs))))
        loss = _field(p, "loss")
        phase = str(_field(p, "phase", "") or "")
        if _is_num(loss) and phase in ("", "train", "step"):
            self.loss_plot.add("train loss", x, float(loss))
        metrics = _field(p, "metrics") or {}
        if isinstance(metrics, dict):
            for key, which, name in EPOCH_SERIES:
                v = metrics.get(key)
                plot = self.loss_plot if which == "loss" else self.acc_plot
                if _is_num(v) and (name, int(epoch)) not in self._epoch_points:
                    self._epoch_points.add((name, int(epoch)))
                    plot.add(name, float(epoch), float(v))
        eta = _field(p, "eta_s")
        msg = _field(p, "message") or ""
        parts = [f"{phase or 'training'}"]
        if epochs:
            parts.append(f"epoch {epoch}/{epochs}")
        if steps:
            parts.append(f"step {step}/{steps}")
        if _is_num(loss):
            parts.append(f"loss {loss:.4f}")
        if _is_num(eta):
            parts.append(f"ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        self.state.setText(" · ".join(parts) + (f" — {msg}" if msg else ""))

    def _on_done(self, result: Any) -> None:
        self.last_result = result
        self._idle()
        mid = _field(result, "model_id")
        if _field(result, "cancelled", False) or not mid:
            self._say("Training stopped: no model was saved.")
            self.run_finished.emit("cancelled")
            return
        self.bar.setValue(1000)
        self._history(_field(result, "history") or [])
        note = "" if _field(result, "pretrained", True) else " — TRAINED FROM SCRATCH (no ImageNet weights found)"
        self._say(f"Model {mid} saved{note}. Select it and press Make active to sort with it.")
        self._select_next = str(mid)
        self._live_model = str(mid)
        self.ctx.models_changed.emit()  # this view and the others reload the model list once
        self.run_finished.emit("done")

    def _on_failed(self, msg: str) -> None:
        self.last_error = msg
        self._idle()
        self._say(f"Training failed: {msg}")
        self.run_finished.emit("failed")

    def _on_cancelled(self) -> None:
        self._idle()
        self._say("Training cancelled: the project and its models are unchanged.")
        self.run_finished.emit("cancelled")

    def _idle(self) -> None:
        self.start_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)

    def _history(self, history: Any, live: bool = True) -> None:
        """Draw the per-epoch history of a run (live: the run just finished, its per-step
        training loss stays; else a stored model's curves replace what is shown)."""
        if not isinstance(history, list) or not history or not isinstance(history[0], dict):
            return
        epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
        for key, which, name in (EPOCH_SERIES if live else HISTORY_SERIES):
            ys = [h.get(key) for h in history]
            plot = self.loss_plot if which == "loss" else self.acc_plot
            if any(_is_num(y) for y in ys):
                plot.set_series(name, epochs, [y if _is_num(y) else float("nan") for y in ys])

    # ------------------------------------------------------------------ models
    def refresh_models(self, select: str | None = None) -> None:
        """Reload the model list in a Worker; show the newest (or `select`) model's metrics."""
        select = select or self._select_next
        self._select_next = None
        proj = self.ctx.project
        if proj is None:
            self.results.models.show_models([], None)
            return
        w = Worker(load_models, proj)
        w.finished.connect(lambda res, s=select: self._show_models(res, s))
        w.failed.connect(lambda m: self._say(f"Could not read the models: {m}"))
        self._keep(w)

    def _show_models(self, res: tuple[list[dict], str | None], select: str | None) -> None:
        metas, active = res
        self._shown_list += 1
        self.results.models.show_models(metas, active)
        target = select or active or (str(metas[-1].get("id")) if metas else None)
        # Selecting a model redraws its metrics, curves and history: in the next event-loop
        # pass, so the list and the model's panels are not one 70-110 ms block at a run's end.
        QTimer.singleShot(0, lambda n=self._shown_list: self._select_shown(metas, target, n))

    _live_model: str | None = None  # the model whose run's live curves are on the plots
    _shown_list = 0  # model lists shown so far (a newer one supersedes a pending selection)

    def _select_shown(self, metas: list[dict[str, Any]], target: str | None, n: int) -> None:
        if self._closed or n != self._shown_list:
            return  # closing, or a newer list replaced this one (it selects for itself)
        self.metas = metas  # set once the list is shown and its model selected (tests wait on it)
        if target:
            self.results.models.select(target)  # its curves and metrics follow (selected signal)
            meta = next((m for m in metas if str(m.get("id")) == target), None)
            text, pre = pretrained_text(meta or {})
            self.scratch.setText("" if pre or meta is None else
                                 f"⚠ Model {target} was {text}: no ImageNet weights were available.")
        self.models_loaded.emit()

    def _curves_of(self, meta: dict[str, Any]) -> None:
        """A stored model's training curves (unless a run is drawing live); ROC/PR points
        computed on its held-out parts when the stored metrics have none."""
        proj = self.ctx.project
        m = metrics_of(meta)
        if proj is not None and curve(m, "roc") is None and meta.get("id"):
            w = Worker(curves_in_process, str(proj.path), meta)
            w.finished.connect(self._show_curves)
            self._keep(w)
        if self.is_running():
            return
        if meta.get("id") is not None and str(meta.get("id")) == self._live_model:
            self._live_model = None  # the run that just made it drew these curves live
            return
        # After the model's panels (one queue: each redraw gets its own paint pass)
        self.stagger.add("history", lambda: self._stored_history(meta))

    def _stored_history(self, meta: dict[str, Any]) -> None:
        if self.is_running():
            return  # a run started meanwhile: its live curves own the plots
        self.loss_plot.reset()
        self.acc_plot.reset()
        self._history(meta.get("history") or [], live=False)

    def _show_curves(self, res: dict[str, Any]) -> None:
        if res and res.get("model_id") == self.results.models.current_id():
            meta = self.results.models.metas.get(res["model_id"], {})
            m = metrics_of(meta)
            self.results.metrics.show_curves(res.get("roc"), res.get("pr"), m.get("roc_auc"), m.get("pr_auc"))

    def make_active(self, model_id: str) -> None:
        """Make a model the project's active one (queued on the window's store writer)."""
        proj = self.ctx.project
        if proj is None:
            return
        self.ctx.writer.submit("make model active", proj.set_active_model, model_id, user=self.ctx.user)
        self._say(f"Model {model_id} is now active for live sorting; Label → 'Predict parts' pre-labels the "
                  "parts with it.")

    # ------------------------------------------------------------------ augmentation preview
    def refresh_preview(self) -> None:
        proj = self.ctx.project
        if proj is None:
            return
        w = Worker(run_preview, proj, self.form.values())
        w.finished.connect(self._show_preview)
        w.failed.connect(lambda m: self.preview_note.setText(f"No preview: {m}"))
        self.preview_note.setText("Making augmented samples…")
        self._keep(w)

    def _show_preview(self, images: list[np.ndarray]) -> None:
        while self.preview_row.count():
            item = self.preview_row.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for i, img in enumerate(images):
            lab = QLabel()
            lab.setPixmap(to_pixmap(_display(img), 100))
            self.preview_row.addWidget(lab, i // 3, i % 3)
        self.preview_note.setText(f"{len(images)} augmented samples of one labelled part."
                                  if images else "No labelled part to preview.")

    # ------------------------------------------------------------------ plumbing
    def _keep(self, w: Worker) -> None:
        if self._closed:
            return  # the window is closing: start nothing new
        self._side = [x for x in self._side if x.is_running()]
        self._side.append(w)
        w.start()

    def _say(self, text: str) -> None:
        self.state.setText(text)
        self.ctx.status.emit(text)

    _closed = False

    def shutdown(self) -> None:
        """Window closing: cancel a run and wait a little for it to stop."""
        self._closed = True
        if self.worker is not None and self.worker.is_running():
            self.worker.cancel()
            self.worker.wait(10000)
        for w in self._side:
            w.cancel()
            w.wait(10000)


def _display(img: np.ndarray) -> np.ndarray:
    """A preview sample as an 8-bit image (CHW float tensors and [0,1] floats allowed)."""
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
        lo, hi = float(a.min()), float(a.max())
        a = ((a - lo) / (hi - lo + 1e-8) * 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return np.ascontiguousarray(a)


if __name__ == "__main__":  # pragma: no cover
    import sys

    from app.widgets.standalone import run_standalone
    sys.exit(run_standalone(TrainView))
