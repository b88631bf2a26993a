"""Label view: the labeling queue, a canvas with all views of a part, and the labeling keys.

Keys: app/widgets/label_keys.py (O/N label, 1-9 class, A accept, B E P F H tools, M proposal).
Every change goes to the store at once, through the window's serial writer (never in a slot).

Run alone for a look: ``python -m app.views.label_view PROJECT.h5``
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QScrollArea, QSplitter, QVBoxLayout, QWidget

from app.child import TRAIN_NICE, in_child
from app.views.label_check import LabelCheckRunner
from app.widgets.canvas import MaskCanvas
from app.widgets.keys import ViewKeys
from app.widgets.label_keys import label_keymap
from app.widgets.label_panel import LabelPanel
from app.widgets.part_list import PartList
from app.widgets.review_panel import ReviewPanel
from app.widgets.view_strip import ViewStrip
from app.worker import Worker
from labeling.masktools import MaskEditor
from labeling.store import Project
from labeling.types import Part, Role, Verdict
from training.predict_session import PredictSpec, load_part, run_session


def predict_in_process(spec: PredictSpec, progress: Any = None, should_stop: Any = None) -> dict[str, Any]:
    """training.predict_session.run_session in a niced child process (no Qt imported there)."""
    return in_child(run_session, spec, nice=TRAIN_NICE, progress=progress, should_stop=should_stop)


class LabelView(QWidget):
    """Labeling mode: part list | views + canvas | verdict, tools, model, review, audit."""

    part_loaded = pyqtSignal(int)  # a part's pixels are on screen (tests and status wait on it)
    predicted = pyqtSignal(object)  # a pre-labeling run ended: its summary ({} when stopped)

    def __init__(self, ctx: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.part_id: int | None = None
        self.view_index = 0
        self.current_class = 0
        self.editors: list[MaskEditor] = []
        self.images: list[np.ndarray] = []
        self.heatmaps: list[np.ndarray | None] = []
        self.proposals: list[np.ndarray | None] = []  # a segmentation model's masks, apart from the drawn ones
        self.hidden_proposal_classes: set[int] = set()  # Ctrl+Shift+digit toggles a class of the proposal
        self._loader: Worker | None = None
        self._predictor: Worker | None = None
        self._rows_seen = -1  # rows when the view was last hidden (showEvent re-sorts if they changed)
        # labels queued but maybe not yet written: part -> (verdict, classes, main first)
        self._issued: dict[int, tuple[Verdict, tuple[int, ...]]] = {}
        self.parts = PartList(ctx, self)
        self.strip = ViewStrip(self)
        self.canvas = MaskCanvas(self)
        self.panel = LabelPanel(self)
        self.review = ReviewPanel(self)
        center = QWidget()
        cl = QVBoxLayout(center)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.strip)
        cl.addWidget(self.canvas, 1)
        inner = QWidget()
        rl = QVBoxLayout(inner)
        rl.setContentsMargins(0, 0, 6, 0)
        rl.addWidget(self.panel)
        rl.addWidget(self.review, 1)
        right = QScrollArea()  # on small screens the column scrolls instead of squashing buttons
        right.setWidget(inner)
        right.setWidgetResizable(True)
        right.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        right.setMinimumWidth(400)
        right.setFrameShape(QScrollArea.Shape.NoFrame)
        split = QSplitter(Qt.Orientation.Horizontal)
        for w, stretch in ((self.parts, 0), (center, 1), (right, 0)):
            split.addWidget(w)
            split.setStretchFactor(split.indexOf(w), stretch)
        split.setSizes([360, 820, 420])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(split)
        self.label_check = LabelCheckRunner(ctx, self.panel.check_btn, self.parts.set_filter, self)
        self.keys = ViewKeys(self, label_keymap(self))
        self._wire()
        self.set_tool("brush")
        self.panel.show_tool("brush", self.canvas.brush_radius, self.canvas.opacity)
        self._project_changed(ctx.project)

    # ------------------------------------------------------------------ wiring
    def _wire(self) -> None:
        self.parts.part_selected.connect(self.load)
        self.strip.view_clicked.connect(self.show_view)
        self.canvas.mask_edited.connect(lambda _diff: self.save_mask())
        p = self.panel
        p.verdict_clicked.connect(self.label)
        p.class_clicked.connect(self.pick_class)
        p.also_toggled.connect(self.toggle_class)
        p.tool_clicked.connect(self.set_tool)
        p.radius_changed.connect(self.set_radius)
        p.opacity_changed.connect(self.canvas.set_opacity)
        p.undo_clicked.connect(self.undo)
        p.redo_clicked.connect(self.redo)
        p.accept_model_clicked.connect(self.accept_model)
        p.predict_clicked.connect(self.predict)
        p.heatmap_toggled.connect(lambda on: self._show_heatmap())
        self.review.review_requested.connect(self.set_review)
        self.ctx.project_changed.connect(self._project_changed)
        self.ctx.part_event.connect(self._part_event)
        self.ctx.parts_reloaded.connect(self._parts_reloaded)
        self.ctx.settings_changed.connect(lambda: self._project_changed(self.ctx.project, keep=True))

    # ------------------------------------------------------------------ project and parts
    @property
    def project(self) -> Project | None:
        return self.ctx.project

    def _project_changed(self, project: Project | None, keep: bool = False) -> None:
        if not keep:
            self.part_id = None
        classes = project.settings.classes if project else []
        self.panel.set_classes(classes)
        if self.current_class > len(classes):
            self.current_class = 0
        if self.current_class == 0 and classes:
            self.pick_class(1)
        self.canvas.value = self._brush_value()
        if not keep:
            self._clear()
            self.parts.refresh()
            if self.parts.current_part_id() is None:
                self.parts.select_row(0)
            pid = self.parts.current_part_id()
            if pid is not None and pid != self.part_id:
                self.load(pid)

    def part(self) -> Part | None:
        return self.project.part(self.part_id) if self.project and self.part_id is not None else None

    def load(self, part_id: int) -> None:
        """Show a part: its pixels are read in a worker, then put on screen (part_loaded)."""
        if self.project is None:
            return
        if self.canvas.editor is not None and self.canvas.editor.in_stroke:
            self.canvas.end_stroke()
        if self._loader is not None and self._loader.is_running():
            self._loader.cancel()  # its result is dropped (cancelled, not finished)
        self.part_id = int(part_id)
        part = self.part()
        if part is not None and part.label is not None and part.label.defect_class:
            self.current_class = part.label.defect_class  # brush paints this part's defect
            self.canvas.value = self._brush_value()
            self.panel.show_class(self.current_class)
        self._show_part_info()
        # an immutable snapshot of the part: the Worker never reads the window's changing Project
        self._loader = Worker(load_part, self.project.snapshot([self.part_id]), self.part_id)
        self._loader.finished.connect(self._loaded)
        self._loader.failed.connect(lambda m: self.ctx.status.emit(f"Cannot show part {part_id}: {m}"))
        self._loader.start()

    def _loaded(self, data: dict[str, Any]) -> None:
        if data["part"] != self.part_id:
            return
        self.images = data["images"]
        self.editors = [MaskEditor(m.copy() if m is not None else np.zeros(im.shape[:2], np.uint8), depth=100)
                        for im, m in zip(self.images, data["masks"])]
        self.heatmaps = data["heatmaps"]
        self.proposals = list(data.get("proposals") or [None] * len(self.images))
        part = self.part()
        self.strip.set_views(data["thumbs"], [v.camera for v in part.views] if part else [])
        self.show_view(0)
        self.part_loaded.emit(self.part_id)

    def _clear(self) -> None:
        self.images, self.editors, self.heatmaps, self.proposals = [], [], [], []
        self.canvas.set_view(None, None)
        self.strip.set_views([], [])
        self._show_part_info()

    def show_view(self, index: int) -> None:
        if not 0 <= index < len(self.images):
            return
        if self.canvas.editor is not None and self.canvas.editor.in_stroke:
            self.canvas.end_stroke()
        self.view_index = index
        classes = self.project.settings.classes if self.project else []
        self.canvas.set_view(self.images[index], self.editors[index], [c.color for c in classes])
        self.strip.show_current(index)
        self._show_heatmap()
        self._show_proposal()

    def _show_proposal(self) -> None:
        p = self.proposals[self.view_index] if self.view_index < len(self.proposals) else None
        shown = set(range(1, 256)) - self.hidden_proposal_classes if self.hidden_proposal_classes else None
        self.canvas.set_proposal(p, shown)

    def toggle_proposal_class(self, index: int) -> None:
        """Ctrl+Shift+digit: show (and accept) the proposal's class `index` or not."""
        self.hidden_proposal_classes ^= {index}
        self._show_proposal()

    def accept_proposal(self) -> None:
        """M: the shown proposal into the mask where it is empty (Ctrl+Z takes it back)."""
        if self.canvas.accept_proposal():
            self.ctx.status.emit("Proposal accepted into the mask (Ctrl+Z to undo)")

    def _show_heatmap(self) -> None:
        h = self.heatmaps[self.view_index] if self.view_index < len(self.heatmaps) else None
        self.canvas.set_heatmap(h, visible=self.panel.heatmap.isChecked())

    def _part_event(self, event: dict[str, Any]) -> None:
        pid = event.get("part")
        if event.get("op") == "label" and pid in self._issued and self.project is not None:
            lab = self.project.part(pid).label
            if lab is not None and (lab.verdict, lab.classes) == self._issued[pid]:
                del self._issued[pid]  # the store has caught up
        if event.get("part") == self.part_id and event.get("op") != "mask":
            self._show_part_info()

    def _show_part_info(self) -> None:
        part = self.part()
        classes = self.project.settings.classes if self.project else []
        self.panel.show_part(part, classes, self.project.active_model_id if self.project else None)
        events = self.project.events(self.part_id) if part else []
        self.review.show_part(part, events, [c.name for c in classes])

    # ------------------------------------------------------------------ labeling actions
    def _write(self, name: str, fn: Callable[..., Any], *args: Any, key: Any = None, **kw: Any) -> None:
        self.ctx.writer.submit(name, fn, *args, key=key, **kw)

    def label(self, verdict: Verdict, advance: bool = True,
              defect_class: int | Sequence[int] | None = None) -> None:
        """Label the current part (NG carries the selected defect class, or the classes given,
        main first) and go to the next one."""
        if self.project is None or self.part_id is None:
            return
        if verdict != Verdict.NG:
            classes: tuple[int, ...] = ()
        elif defect_class is None:
            classes = (self.current_class,) if self.current_class else ()
        elif isinstance(defect_class, int):
            classes = (defect_class,) if defect_class else ()
        else:
            classes = tuple(defect_class)
        self._write(f"label part {self.part_id}", self.project.set_label, self.part_id, verdict, list(classes),
                    user=self.ctx.user)
        self._issued[self.part_id] = (verdict, classes)  # what the store will say once the write lands
        if advance:
            self.parts.select_next()

    def _held(self, part: Part) -> tuple[Verdict, tuple[int, ...]]:
        """The part's verdict and classes as they will be once the queued writes land."""
        return self._issued.get(part.id) or (part.verdict, part.label.classes if part.label else ())

    def pick_class(self, index: int) -> None:
        """The brush's class; on an NG part also its main class (the other classes it holds stay)."""
        classes = self.project.settings.classes if self.project else []
        if not 1 <= index <= len(classes):
            return
        self.current_class = index
        self.canvas.value = self._brush_value()
        self.panel.show_class(index)
        part = self.part()
        if part is None:
            return
        verdict, held = self._held(part)
        if verdict == Verdict.NG and (held[:1] != (index,)):
            self.label(Verdict.NG, advance=False, defect_class=(index, *(c for c in held[1:] if c != index)))

    def toggle_class(self, index: int) -> None:
        """Add a class to the part's label, or take it off (not the main one: pick another first).
        An OK or unlabeled part becomes NG with that class."""
        classes = self.project.settings.classes if self.project else []
        part = self.part()
        if part is None or not 1 <= index <= len(classes) or classes[index - 1].retired:
            return
        verdict, held = self._held(part)
        if verdict != Verdict.NG or not held:
            self.label(Verdict.NG, advance=False, defect_class=index)
        elif index in held[1:]:
            self.label(Verdict.NG, advance=False, defect_class=tuple(c for c in held if c != index))
        elif index not in held:
            self.label(Verdict.NG, advance=False, defect_class=(*held, index))

    def _brush_value(self) -> int:
        has_classes = bool(self.project and self.project.settings.classes)
        return self.current_class if has_classes and self.current_class else (1 if has_classes else 255)

    def accept_model(self) -> None:
        part = self.part()
        if part is None or part.prediction is None:
            self.ctx.status.emit("No model prediction for this part to accept.")
            return
        pred = part.prediction
        # verdict and class together (a class model names the defect; a verdict model gives 0)
        self.label(pred.verdict, defect_class=pred.defect_class if pred.verdict == Verdict.NG else 0)

    # ------------------------------------------------------------------ pre-labeling
    def predict(self) -> bool:
        """Pre-label the parts the active model has not seen (child process, in a Worker)."""
        proj = self.project
        if proj is None:
            return False
        if not proj.active_model_id:
            self.ctx.status.emit("No active model: train one and press 'Make active' (Train) first.")
            return False
        if self._predictor is not None and self._predictor.is_running():
            self._predictor.cancel()  # a second press stops the run (what it finished is kept)
            return False
        self._predictor = Worker(predict_in_process, PredictSpec(str(proj.path)))
        self._predictor.progress.connect(
            lambda p: self.panel.predict_btn.setText(f"Predicting… {p.done}/{p.total} (press to stop)"))
        self._predictor.finished.connect(self._predicted)
        self._predictor.cancelled.connect(lambda _finished: self._predicted(None))
        self._predictor.failed.connect(lambda m: self._predicted({"error": m}))
        self.panel.predict_btn.setText("Predicting… (press to stop)")
        self.ctx.status.emit(f"Predicting parts with model {proj.active_model_id}…")
        self._predictor.start()
        return True

    def _predicted(self, out: dict[str, Any] | None) -> None:
        self.panel.predict_btn.setText("Predict parts with the active model")
        if out is None:
            self.ctx.status.emit("Prediction stopped: the parts already predicted keep their predictions.")
            self.ctx.reload_project()
        elif "error" in out:
            self.ctx.status.emit(f"Prediction failed: {out['error']}")
        else:
            v = out.get("verdicts", {})
            self.ctx.status.emit(f"Model {out.get('model_id')}: {out.get('predicted', 0)} parts predicted "
                                 f"(OK {v.get('OK', 0)}, NG {v.get('NG', 0)}); the queue is ordered by uncertainty.")
            self.ctx.reload_project()
        self.predicted.emit(out or {})

    def showEvent(self, ev: Any) -> None:
        """Coming to the Label view re-sorts the queue: parts captured meanwhile (appended while
        rows stay put during labelling) take their place, unlabelled and most uncertain first."""
        super().showEvent(ev)
        if self.project is not None and self.parts.model.rowCount() != self._rows_seen:
            self.parts.refresh()  # only when parts came meanwhile: a re-sort costs a repaint

    def hideEvent(self, ev: Any) -> None:
        super().hideEvent(ev)
        self._rows_seen = self.parts.model.rowCount()

    def _parts_reloaded(self) -> None:
        """Parts or predictions written by another process: re-sort the queue, show the current
        part again (its prediction and heatmap may be new)."""
        self.parts.refresh()
        if self.part_id is not None and self.project is not None and self.part_id in self.project.part_ids():
            self.load(self.part_id)

    def shutdown(self) -> None:
        """Window closing: stop a pre-labeling run (what it finished is stored) and a label check
        (nothing recorded)."""
        if self._predictor is not None and self._predictor.is_running():
            self._predictor.cancel()
            self._predictor.wait(15000)
        self.label_check.shutdown()

    def set_review(self, status: str, comment: str) -> None:
        if self.project is None or self.part_id is None:
            return
        if not self.ctx.require_role(Role.LAB_EXPERT, Role.SUPERVISOR):
            return
        self._write(f"review part {self.part_id}", self.project.set_review, self.part_id, status,
                    comment, user=self.ctx.user)

    # ------------------------------------------------------------------ mask tools
    def set_tool(self, tool: str) -> None:
        self.canvas.set_tool(tool)
        self.panel.show_tool(tool, self.canvas.brush_radius, self.canvas.opacity)

    def set_radius(self, r: int) -> None:
        self.canvas.set_brush_radius(r)
        self.panel.show_tool(self.canvas.tool, self.canvas.brush_radius, self.canvas.opacity)

    def undo(self) -> None:
        self.canvas.undo()

    def redo(self) -> None:
        self.canvas.redo()

    def save_mask(self) -> None:
        """Queue the current view's mask for the store (coalesced per view; the copy is ~2 ms)."""
        ed = self.canvas.editor
        if self.project is None or self.part_id is None or ed is None:
            return
        mask = ed.mask.copy() if ed.mask.any() else None
        self._write(f"mask part {self.part_id}", self.project.set_mask, self.part_id, self.view_index,
                    mask, user=self.ctx.user, key=("mask", self.part_id, self.view_index))


if __name__ == "__main__":  # pragma: no cover - a look at the view alone
    import sys

    from app.widgets.standalone import run_standalone
    sys.exit(run_standalone(LabelView))
