"""Training results: metrics table, confusion matrix, ROC/PR curves and the model comparison.

Everything here reads model cards (training.card.ModelCard) and shows them, the held-out ROC/PR
curves as stored: nothing is scored again. "Make active" only emits `activate(model_id)`, the
view does the store call.
"""
from __future__ import annotations

import datetime as _dt
import html
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.widgets.plot_curves import PALETTE, ConfusionMatrix, CurvePlot, RocPrPlot
from app.widgets.seg_rule_panel import SegRulePanel
from app.widgets.stagger import Stagger
from training.card import Curve, ModelCard
from training.metrics import verdict_figures

SUMMARY_KEYS = [("accuracy", "accuracy"), ("balanced_accuracy", "balanced accuracy"),
                ("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"), ("kappa", "Cohen's kappa"),
                ("threshold", "threshold"), ("ng_recall", "NG recall"), ("macro_f1", "macro F1"),
                ("weighted_f1", "weighted F1"), ("exact_match", "exact match"), ("hamming_loss", "hamming loss")]
# Verdict figures of a class model are its derived OK/NG's, so every row compares; macro F1 is
# the task's own (sort by task to compare like with like).
# dice: a segmentation model's pooled mask dice (mean over classes), on the same held-out parts.
# The figures come right after the model: on NEU-DET at 1600x1000 the long "from" text ("trained
# from scratch: no ImageNet weights ...") pushed every figure out of view.
# The active model is the one marked "●" (bold) in the model column: no column of its own.
COMPARE_COLS = ["model", "task", "on", "bal. acc.", "macro F1", "accuracy", "F1 (NG)", "ROC-AUC",
                "dice", "val bal. acc.", "arch", "freeze", "from", "created"]
COMPARE_TIPS = {"bal. acc.": "balanced accuracy of the OK/NG verdict ('—': the parts were all NG or all OK)",
                "macro F1": "the task's own: mean F1 over OK and the defect classes (classes), over the classes "
                            "(multilabel), over OK and NG (verdict)",
                "on": "test: the held-out parts; val: a model from before the test split (optimistic)"}


def _num(v: Any) -> str:
    if isinstance(v, dict) and "mean" in v:  # k-fold: mean +- std
        std = v.get("std")
        return f"{_num(v['mean'])} ± {_num(std)}" if std is not None else _num(v["mean"])
    if isinstance(v, float):
        return f"{v:.3f}"
    return "—" if v is None else str(v)


def _scalar(v: Any) -> float | None:
    if isinstance(v, dict):
        v = v.get("mean")
    return float(v) if isinstance(v, (int, float)) else None


def _points(c: Curve | None) -> tuple[list[float], list[float]] | None:
    return (c.x, c.y) if c is not None else None


class MetricsPanel(QWidget):
    """Metrics table, confusion matrix and ROC/PR of one model."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("No model yet: start a training run.")
        self.title.setObjectName("tileTitle")
        self.title.setWordWrap(True)
        self.origin = QLabel("")
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["class", "precision", "recall", "F1", "n"])
        self.table.horizontalHeaderItem(4).setToolTip("support: the parts of this class")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # "precision" stays whole
        # The class column takes what is left (a long name is elided, whole in its tooltip): with
        # seven classes every figure column stays in view, not behind a scroll bar.
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.verticalHeader().setVisible(False)  # the class column names the rows
        # Seven classes (NEU-DET: OK + six) fit without scrolling at 1600x1000: rows of one text line.
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # A class model's figures, recipe and guide notes run to 6-8 lines: they scroll rather
        # than being cut off under the table (seen on NEU-DET at 1600x1000).
        summary_box = QScrollArea()
        summary_box.setWidget(self.summary)
        summary_box.setWidgetResizable(True)
        summary_box.setFrameShape(QFrame.Shape.NoFrame)
        summary_box.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.confusion = ConfusionMatrix()
        self.curves = RocPrPlot()
        self.rule = SegRulePanel()  # a segmentation model's area rule (hidden for classifiers)
        self.stagger = Stagger(self)
        self.class_colors: dict[str, str] = {}  # class name -> colour (the view sets the project's)
        top = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(self.table)
        left.addWidget(summary_box, 1)
        left.addWidget(self.rule)
        top.addLayout(left, 3)
        top.addWidget(self.confusion, 2)
        lay = QVBoxLayout(self)
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.origin)
        lay.addLayout(head)
        lay.addLayout(top, 2)
        lay.addWidget(self.curves, 3)

    def show_model(self, card: ModelCard | None) -> None:
        """Show a model: its text and table, then its confusion matrix, then its held-out
        curves, each in its own event-loop pass (see Stagger: all at once was one ~90 ms paint)."""
        if card is None:
            return
        val = card.headline  # the test split's; validation's on a card from before the test split
        self.stagger.add("text", lambda: self._show_text(card))
        self.stagger.add("rule", lambda: self.rule.show_model(card))
        self.stagger.add("confusion", lambda: self.confusion.show_matrix(val.get("confusion_matrix"), _verdict_names(card)))
        self.show_curves(_points(val.roc), _points(val.pr), val.get("roc_auc"), val.get("pr_auc"))
        per_class = class_curves(card, self.class_colors)
        self.stagger.add("class curves", lambda: self.curves.show_class_curves(per_class))

    def show_curves(self, roc: Any, pr: Any, roc_auc: float | None, pr_auc: float | None) -> None:
        """ROC and PR curves in their own pass; a newer call replaces a pending one."""
        self.stagger.add("curves", lambda: self.curves.show_curves(roc, pr, roc_auc, pr_auc))

    def _show_text(self, card: ModelCard) -> None:
        m = card.headline
        self.title.setText(f"Model {card.id} · {card.task} · {card.arch} · freeze {card.freeze} · figures on "
                           f"{card.headline_name} parts ({len(m.part_ids)})")
        pre = card.imagenet or card.start == "parent"
        self.origin.setText(card.origin if pre else f"⚠ {card.origin.upper()}")
        self.origin.setObjectName("pillOK" if pre else "pillWarn")
        self.origin.style().unpolish(self.origin)
        self.origin.style().polish(self.origin)
        rows = list((m.get("per_class") or {}).items())
        predicted = _predicted_counts(m.get("confusion_matrix"), len(rows))
        numbered = len(rows) > ConfusionMatrix.WORDS  # the matrix beside numbers its classes: so do the rows
        self.table.setRowCount(len(rows))
        for r, (name, v) in enumerate(rows):
            # A class with no parts (NEU-DET has no OK part) has no recall or F1, and no precision
            # when nothing was called it: "—", not a 0.000 that reads as a class never found.
            absent, never = not v.get("support"), predicted is not None and predicted[r] == 0
            cells = [f"{r + 1} {name}" if numbered else name, None if absent and never else v.get("precision"),
                     None if absent else v.get("recall"),
                     None if absent else v.get("f1"), v.get("support")]
            for c, val in enumerate(cells):
                item = QTableWidgetItem(_num(val))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if c == 0:
                    item.setToolTip(name)
                if absent and c in (1, 2, 3):
                    item.setToolTip(f"no {card.headline_name} part is {name}" + (" and none was called it" if never else ""))
                self.table.setItem(r, c, item)
        text = f"<b>{card.headline_name}</b>: " + "   ".join(
            f"<b>{label}</b> {_num(m.get(key))}" for key, label in SUMMARY_KEYS if key in m.report)
        if m.get("seg_per_class"):  # a segmentation model: its masks' figures, per class
            text += "<br><b>dice / IoU</b> " + "   ".join(
                f"{name} {_num(v.get('dice'))} / {_num(v.get('iou'))}" for name, v in m.get("seg_per_class").items())
        if card.headline_split == "test":  # validation chose the epoch and threshold: optimistic
            text += f"<br>validation (chose epoch and threshold): balanced accuracy {_num(card.val.get('balanced_accuracy'))}"
        elif card.metrics:
            text += "<br>⚠ a model from before the test split: these validation figures chose its epoch and threshold"
        recipe = card.extra.get("recipe") or {}
        # The recipe's notes are plain text ("< 300 steps"): escaped, or rich text reads a tag there
        # and swallows the note up to the next line's "<br>".
        if recipe.get("side_why", "").startswith("fitted"):  # the budget, not the data, set the side
            text += f"<br><b>input side</b> {html.escape(recipe['side_why'])}"
        if recipe.get("augment_why"):  # e.g. a budgeted scratch run that kept flips only
            text += f"<br><b>augmentation</b> {html.escape(recipe['augment_why'])}"
        if recipe.get("ema_why"):
            text += f"<br><b>weights</b> {html.escape(recipe['ema_why'])}"
        if recipe.get("mask_guide", "").startswith("on"):  # the inspectors' masks steered the training
            text += f"<br><b>mask guide</b> {html.escape(recipe['mask_guide'])}"
        cv = card.cv or {}
        if isinstance(cv.get("summary"), dict) and cv["summary"]:
            text += f"<br><b>{cv.get('folds', '?')}-fold CV</b> " + "   ".join(
                f"{label} {_num(cv['summary'].get(key))}" for key, label in SUMMARY_KEYS if key in cv["summary"])
        self.summary.setText(text)


def _predicted_counts(matrix: Any, n: int) -> list[int] | None:
    """Parts predicted as each class (the confusion matrix's column sums), None without one."""
    try:
        cm = [[int(x) for x in row] for row in matrix]
    except (TypeError, ValueError):
        return None
    if len(cm) != n or any(len(row) != n for row in cm):
        return None
    return [sum(row[c] for row in cm) for c in range(n)]


class ModelsTable(QWidget):
    """All models of the project side by side; select one and make it active."""

    activate = pyqtSignal(str)
    selected = pyqtSignal(object)  # ModelCard

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(COMPARE_COLS))
        self.table.setHorizontalHeaderLabels(COMPARE_COLS)
        for c, tip in COMPARE_TIPS.items():
            self.table.horizontalHeaderItem(COMPARE_COLS.index(c)).setToolTip(tip)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.make_active = QPushButton("Make active")
        self.make_active.setToolTip("Use the selected model for live sorting and pre-labeling")
        self.make_active.setEnabled(False)
        self.make_active.clicked.connect(self._activate)
        self.table.itemSelectionChanged.connect(self._selection)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.table)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.make_active)
        lay.addLayout(row)
        self.cards: dict[str, ModelCard] = {}

    def show_models(self, cards: list[ModelCard], active: str | None) -> None:
        self.cards = {c.id: c for c in cards}
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(cards))
        for r, card in enumerate(cards):
            m = card.headline
            # a class model: its derived verdict (figures that need OK and NG parts both: None
            # where a split had one verdict only, as in `okng models`)
            v = verdict_figures(m.report.get("verdict") or m.report)
            # a segment model's verdict names are its own (its classes are mask channels)
            ng = (v.get("per_class") or {}).get(_verdict_names(card)[-1] if card.task == "segment" else "NG", {})
            vv = verdict_figures(card.val.report.get("verdict") or card.val.report)
            when = _dt.datetime.fromtimestamp(card.created).strftime("%Y-%m-%d %H:%M") if card.created else ""
            by_col = {"model": f"● {card.id}" if card.id == active else card.id, "task": card.task,
                      "on": card.headline_split, "accuracy": v.get("accuracy"),
                      "bal. acc.": v.get("balanced_accuracy"), "macro F1": m.get("macro_f1"),
                      "F1 (NG)": ng.get("f1"), "ROC-AUC": v.get("roc_auc"), "dice": m.get("dice"),
                      "val bal. acc.": vv.get("balanced_accuracy"), "arch": card.arch, "freeze": card.freeze,
                      "from": card.origin, "created": when}
            values = [by_col[c] for c in COMPARE_COLS]
            for c, v in enumerate(values):
                item = QTableWidgetItem(_num(v))
                num = _scalar(v)
                if num is not None:
                    item.setData(Qt.ItemDataRole.DisplayRole, round(num, 3))
                item.setData(Qt.ItemDataRole.UserRole, card.id)
                if c == 0 and card.id == active:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                    item.setToolTip("the active model: live sort and pre-labeling use it")
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)

    def current_id(self) -> str | None:
        items = self.table.selectedItems()
        return str(items[0].data(Qt.ItemDataRole.UserRole)) if items else None

    def select(self, model_id: str) -> None:
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == model_id:
                self.table.clearSelection()  # so selecting always signals, even the same row
                self.table.selectRow(r)
                return

    def _selection(self) -> None:
        mid = self.current_id()
        self.make_active.setEnabled(mid is not None)
        if mid in self.cards:
            self.selected.emit(self.cards[mid])

    def _activate(self) -> None:
        mid = self.current_id()
        if mid:
            self.activate.emit(mid)


class ResultsTabs(QTabWidget):
    """Metrics of the selected model | comparison of all models."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.metrics = MetricsPanel()
        self.models = ModelsTable()
        self.addTab(self.metrics, "Metrics")
        self.addTab(self.models, "Compare models")
        self.models.selected.connect(self.metrics.show_model)


def class_curves(card: ModelCard, colors: dict[str, str]) -> list[tuple[str, str, Any, Any, Any, Any]]:
    """A class or multilabel model's one-vs-rest curves on its headline split, each class in the
    project's colour (a class the project no longer has: the palette's); [] for a verdict model."""
    m = card.headline
    if card.task not in ("classes", "multilabel") or not m.classes:
        return []
    aucs = m.get("one_vs_rest") or m.get("per_class") or {}
    out = []
    for k, (name, cs) in enumerate(m.classes.items()):
        colour = colors.get(name) or ("#eeeeee" if name == "OK" else PALETTE[k % len(PALETTE)])
        a = aucs.get(name) or {}
        out.append((name, colour, _points(cs.get("roc")), _points(cs.get("pr")), a.get("roc_auc"), a.get("pr_auc")))
    return out


def _verdict_names(card: ModelCard) -> list[str]:
    """The rows of a model's verdict figures: a segmentation card's classes are its defect
    classes (mask channels), its verdict report is OK/NG like a classifier's."""
    return ["OK", "NG"] if card.task == "segment" else list(card.classes)


# per-epoch figures of the loop's epoch-end payload and of a card's history -> (plot, series name)
EPOCH_SERIES = (("val_loss", "loss", "val loss"), ("val_accuracy", "acc", "val accuracy"),
                ("val_balanced_accuracy", "acc", "val balanced accuracy"))
# a stored model's history also has the epoch's mean training loss
HISTORY_SERIES = (("loss", "loss", "train loss"),) + EPOCH_SERIES


def draw_history(loss_plot: CurvePlot, acc_plot: CurvePlot, history: list[Any], live: bool = True) -> None:
    """Draw the per-epoch history of a run (live: the run just finished, its per-step
    training loss stays; else a stored model's curves replace what is shown)."""
    if not history:
        return
    epochs = [h.epoch for h in history]
    for key, which, name in (EPOCH_SERIES if live else HISTORY_SERIES):
        plot = loss_plot if which == "loss" else acc_plot
        plot.set_series(name, epochs, [float(getattr(h, key)) for h in history])


def draw_dice_history(plot: CurvePlot, card: ModelCard) -> None:
    """A stored segmentation model's validation dice per epoch (and per class when it has several)."""
    seg = card.extra.get("segment") if card.task == "segment" else None
    if not isinstance(seg, dict) or not seg.get("dice_history"):
        return
    rows = seg["dice_history"]
    epochs = [float(r["epoch"]) for r in rows]
    plot.set_series("val dice", epochs, [float(r["dice"]) for r in rows])
    names = list(rows[0].get("dice_per_class") or {})
    for name in names if len(names) > 1 else []:
        plot.set_series(f"dice {name}", epochs, [float(r["dice_per_class"][name]) for r in rows])


def start_warning(card: Any, run: bool = False) -> str:
    """A loud line under the results when a model (a ModelCard), or the run now training
    (run=True: training.start.RunStart), did not start from verified ImageNet weights."""
    if card is None or card.start in ("imagenet", "parent"):
        return ""
    who, was, started = ("This run", "is", "starts") if run else (f"Model {card.id}", "was", "started")
    if card.start == "custom":
        return f"⚠ {who} {started} from {card.origin}: not torchvision's ImageNet weights."
    if card.start == "unchecked":
        return f"⚠ {who}: {card.origin}."
    if card.start == "encoder":
        return f"⚠ {who} {started} from {card.origin}: no ImageNet weights."
    return f"⚠ {who} {was} {card.origin}: no ImageNet weights were available for {card.arch}."