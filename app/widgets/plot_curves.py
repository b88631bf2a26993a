"""Small pyqtgraph/Qt plots shared by the Train, Explain and Live-sort views.

* CurvePlot: named live series (loss, accuracy, parts/s, latency) that grow point by point.
* RocPrPlot: ROC and PR curves of an evaluation side by side (a class model: one per class too).
* ConfusionMatrix: a coloured count table with class names on both axes.
Widgets only draw what they are given; the numbers come from the engines.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QBrush, QColor
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

PALETTE = ["#4ea1ff", "#ffb347", "#2ecc71", "#ff4d4d", "#c58bff", "#5fd7d7"]


def add_grid(plot: pg.PlotWidget) -> None:
    """A faint grid behind the curves.

    A GridItem, not the axes' grid (showGrid): with it the axes paint the whole plot area
    through a QPicture on every repaint, measured 3x the cost of the whole plot without it
    (7-8 ms vs 2-2.5 ms per repaint on an idle station).
    """
    grid = pg.GridItem(pen=pg.mkPen(255, 255, 255, 40), textPen=None)
    grid.setZValue(-100)
    plot.addItem(grid, ignoreBounds=True)


class CurvePlot(pg.PlotWidget):
    """A plot of named series; `add(name, x, y)` appends a point, keeping at most `keep` points.

    Points are drawn at most every `redraw_ms`: every new point moves the auto-range, which
    regenerates both axes and repaints the whole plot (measured 7-15 ms per plot, several times
    that while training loads the CPU), so a run reporting 30 times a second froze the window.
    """

    redraw_ms = 250
    create_gap_ms = 30  # between creating two series: each new curve item paints in its own pass
    axis_width = 54  # px of the left axis: ticks like "0.125" or "1500" and the label
    symbol_max = 60  # points per series drawn with markers; longer series (per-step loss) as lines

    def __init__(self, title: str = "", y_label: str = "", x_label: str = "", keep: int = 5000,
                 series: Sequence[str] = (), stagger: Any = None, parent: QWidget | None = None) -> None:
        """series: names drawn from the start (see below); stagger: an app.widgets.stagger.Stagger
        shared with the view's other plots, so plots due at the same time paint in turn."""
        super().__init__(parent=parent)
        self.keep = keep
        self.stagger = stagger
        self.setTitle(title)
        self.setLabel("left", y_label)
        self.setLabel("bottom", x_label)
        add_grid(self)
        self._dirty: dict[str, None] = {}  # series to redraw, in the order they were added
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.timeout.connect(self._due)
        self.getAxis("left").enableAutoSIPrefix(False)  # "loss (x0.001)" reads badly
        # A fixed width: tick labels growing by a digit otherwise relayout the plot, which then
        # paints twice (measured: 2 full paints instead of 1 on every other new point).
        self.getAxis("left").setWidth(self.axis_width)
        self.addLegend(offset=(-10, 10))
        self.setMinimumHeight(150)
        self._data: dict[str, tuple[list[float], list[float]]] = {}
        self._items: dict[str, pg.PlotDataItem] = {}
        self._marked: dict[str, bool] = {}  # series drawn with markers now
        # Series known up front get their curve item and legend entry now and keep them: made
        # on the first point, an item and the legend's relayout cost 10-20 ms in a live pass.
        self.declared = tuple(series)
        for name in self.declared:
            self._item(name)

    def series(self, name: str) -> tuple[list[float], list[float]]:
        return self._data.get(name, ([], []))

    def add(self, name: str, x: float, y: float | None) -> None:
        """Append one point to a series (None or NaN values are skipped); drawn within redraw_ms."""
        if self._append(name, x, y):
            self._dirty[name] = None
            if not self._flush_timer.isActive():
                self._flush_timer.start(self.redraw_ms)

    def _append(self, name: str, x: float, y: float | None) -> bool:
        if y is None or not np.isfinite(y):
            return False
        xs, ys = self._data.setdefault(name, ([], []))
        xs.append(float(x))
        ys.append(float(y))
        if len(xs) > self.keep:
            del xs[: len(xs) - self.keep]
            del ys[: len(ys) - self.keep]
        return True

    def _due(self) -> None:
        if self.stagger is not None:
            self.stagger.add(f"plot-{id(self)}", self.flush)
        else:
            self.flush()

    def flush(self) -> None:
        """Draw the points added since the last redraw.

        New series are created one per event loop pass (a curve item with its legend entry
        costs ~10-20 ms on a busy station); the rest follow in the next passes.
        """
        self._flush_timer.stop()
        created = False
        for name in list(self._dirty):
            if name not in self._items:
                if created:
                    continue
                created = True
            del self._dirty[name]
            if self._data.get(name, ([], []))[0] or name in self._items:
                self._draw(name)
        # The new auto-range and view transform now, not in the paint: set there, they make
        # pyqtgraph paint the plot a second time right after the first.
        self.plotItem.vb.updateAutoRange()
        self.plotItem.vb.updateMatrix()
        if self._dirty:
            self._flush_timer.start(self.create_gap_ms)

    def _item(self, name: str) -> pg.PlotDataItem:
        item = self._items.get(name)
        if item is None:
            color = PALETTE[len(self._items) % len(PALETTE)]
            item = self.plot([], [], name=name, pen=pg.mkPen(color, width=2),
                             symbol="o", symbolSize=5, symbolBrush=color)
            self._items[name] = item
            self._marked[name] = True
        return item

    def _draw(self, name: str) -> None:
        xs, ys = self._data.get(name, ([], []))
        item = self._item(name)
        marked = len(xs) <= self.symbol_max
        if marked != self._marked.get(name):
            # A marker per point of a per-step loss curve cost ~30 ms per repaint.
            item.setSymbol("o" if marked else None)
            self._marked[name] = marked
        item.setData(xs, ys)

    def set_series(self, name: str, xs: Sequence[float], ys: Sequence[float]) -> None:
        """Replace a series (e.g. the history of a finished run); drawn in one setData."""
        self._data[name] = ([], [])
        for x, y in zip(xs, ys):
            self._append(name, x, y)
        # Drawn from the event loop like live points, so the series of a stored model (one new
        # curve item each) do not all land in the slot that selected the model.
        self._dirty[name] = None
        if not self._flush_timer.isActive():
            self._flush_timer.start(0)

    def reset(self) -> None:
        """No points; declared series keep their (now empty) items, others are removed."""
        self._flush_timer.stop()
        self._dirty.clear()
        self._data.clear()
        legend = self.plotItem.legend
        for name, item in list(self._items.items()):
            if name in self.declared:
                item.setData([], [])
                continue
            self.removeItem(item)  # also drops its legend entry
            del self._items[name]
        if legend is not None and not self.declared:
            legend.clear()


class RocPrPlot(QWidget):
    """ROC (FPR vs TPR) and precision-recall curves; `show_curves(...)` or `clear()`.

    The curve and note items are made once and only get new data: clearing a plot and adding
    items again re-parents them into the view box (measured up to 60 ms per redraw).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.roc = pg.PlotWidget(title="ROC")
        self.pr = pg.PlotWidget(title="Precision-recall")
        self._curve: dict[str, pg.PlotDataItem] = {}
        self._note: dict[str, pg.TextItem] = {}
        self._classes: dict[tuple[str, str], pg.PlotDataItem] = {}  # (plot, class) -> its curve
        self._legend: dict[str, pg.LegendItem] = {}
        self._missing = {"ROC": False, "PR": False}  # the OK/NG curve has no points
        for name, p, (xl, yl) in (("ROC", self.roc, ("false positive rate", "true positive rate")),
                                  ("PR", self.pr, ("recall", "precision"))):
            p.setLabel("bottom", xl)
            p.setLabel("left", yl)
            p.setXRange(0, 1)
            p.setYRange(0, 1.02)
            p.setMouseEnabled(False, False)
            add_grid(p)
            p.setMinimumHeight(170)
            self._curve[name] = p.plot([], [], pen=pg.mkPen(PALETTE[0], width=2))
            note = pg.TextItem(f"{name} curve not available", color="#8a93a0", anchor=(0.5, 0.5))
            note.setPos(0.5, 0.5)
            note.setVisible(False)
            p.addItem(note)
            self._note[name] = note
            lay.addWidget(p)
        self.roc.plot([0, 1], [0, 1], pen=pg.mkPen("#5a6270", style=Qt.PenStyle.DashLine))

    def clear(self) -> None:
        for name, plot in (("ROC", self.roc), ("PR", self.pr)):
            self._curve[name].setData([], [])
            self._note[name].setVisible(False)
            self._missing[name] = False
            plot.setTitle("ROC" if name == "ROC" else "Precision-recall")

    def show_curves(self, roc: tuple[Sequence[float], Sequence[float]] | None,
                    pr: tuple[Sequence[float], Sequence[float]] | None,
                    roc_auc: float | None = None, pr_auc: float | None = None) -> None:
        """Draw the curves given as (x, y) point lists; a missing curve shows 'not available'."""
        for plot, points, auc, name, title in ((self.roc, roc, roc_auc, "ROC", "ROC"),
                                               (self.pr, pr, pr_auc, "PR", "Precision-recall")):
            missing = points is None or len(points[0]) == 0
            self._curve[name].setData([] if missing else list(points[0]), [] if missing else list(points[1]))
            self._missing[name] = missing
            self._show_note(name)
            plot.setTitle(f"{title}  (AUC {auc:.3f})" if auc is not None and not missing else title)

    def _show_note(self, name: str) -> None:
        """'not available' only on an empty plot: a class model's per-class curves may be there
        without the OK/NG one (a test split with no OK part), and the note sat over them."""
        drawn = any(w == name for w, _ in self._classes)
        self._note[name].setVisible(self._missing[name] and not drawn)

    def curve_points(self, name: str) -> int:
        """How many points the ROC or PR curve shows (tests)."""
        xs = self._curve[name].xData
        return 0 if xs is None else len(xs)

    def show_class_curves(self, curves: Sequence[tuple[str, str, Any, Any, float | None, float | None]]) -> None:
        """One-vs-rest curves of a class or multilabel model, one per class in its colour:
        (name, colour, roc (x, y) or None, pr (x, y) or None, roc_auc, pr_auc). The verdict
        curve drawn by show_curves stays, thin and white, labelled "OK/NG"; [] removes them."""
        for (which, name), item in list(self._classes.items()):
            (self.roc if which == "ROC" else self.pr).removeItem(item)
            del self._classes[(which, name)]
        for which, plot in (("ROC", self.roc), ("PR", self.pr)):
            legend = self._legend.get(which)
            if legend is not None:
                legend.clear()
            self._curve[which].setPen(pg.mkPen(PALETTE[0] if not curves else "#dddddd", width=2 if not curves else 1))
            if not curves:
                continue
            if legend is None:
                legend = self._legend[which] = plot.addLegend(offset=(-8, 8) if which == "PR" else (-8, -8),
                                                             labelTextSize="8pt")
            if not self._missing[which]:  # NEU-DET's test parts are all NG: no OK/NG curve to name
                legend.addItem(self._curve[which], "OK/NG")
            for name, colour, roc, pr, roc_auc, pr_auc in curves:
                points, auc = (roc, roc_auc) if which == "ROC" else (pr, pr_auc)
                if points is None or not len(points[0]):
                    continue
                item = plot.plot(list(points[0]), list(points[1]), pen=pg.mkPen(colour, width=2))
                self._classes[(which, name)] = item
                legend.addItem(item, f"{name} {auc:.2f}" if auc is not None else name)
        for which in ("ROC", "PR"):
            self._show_note(which)

    def class_names(self, which: str = "ROC") -> list[str]:
        """The classes with a curve on the ROC or PR plot (tests)."""
        return [n for w, n in self._classes if w == which]


class ConfusionMatrix(QTableWidget):
    """Rows: true class, columns: predicted class; cells shaded by their share of the row.

    Up to WORDS classes the headers are named ("pred OK", "true NG"); beyond, both are the class's
    number, as the per-class table beside it numbers its rows ("3 inclusion"): seven names across
    two fifths of the Train view were cut to "pred cr…", and seven named rows left room for three
    of the seven columns. Every header and cell says its full meaning as a tooltip.
    """

    WORDS = 3  # most classes whose names fit as column headers

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setMinimumHeight(120)
        self.horizontalHeader().setMinimumSectionSize(24)  # 7 columns of up to 3 digits in ~200 px

    def show_matrix(self, matrix: Any, classes: Sequence[str]) -> None:
        m = np.asarray(matrix if matrix is not None else np.zeros((0, 0)), dtype=float)
        n = m.shape[0] if m.ndim == 2 else 0
        names = list(classes)[:n] + [str(i) for i in range(len(classes), n)]
        numbered = n > self.WORDS
        self.clear()
        self.setRowCount(n)
        self.setColumnCount(n)
        self.setHorizontalHeaderLabels([str(i + 1) if numbered else f"pred {c}" for i, c in enumerate(names)])
        self.setVerticalHeaderLabels([str(i + 1) if numbered else f"true {c}" for i, c in enumerate(names)])
        self.setToolTip("Rows: the true class; columns: the predicted class" + (
            ": " + ", ".join(f"{i + 1} {c}" for i, c in enumerate(names)) if numbered else "."))
        for i, name in enumerate(names):
            self.horizontalHeaderItem(i).setToolTip(f"predicted {name}")
            self.verticalHeaderItem(i).setToolTip(f"true {name}")
        for r in range(n):
            total = max(m[r].sum(), 1.0)
            for c in range(n):
                item = QTableWidgetItem(f"{int(m[r, c])}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                share = m[r, c] / total
                item.setToolTip(f"true {names[r]}, predicted {names[c]}: {int(m[r, c])} ({share:.0%} of the row)")
                good = r == c
                base = QColor(46, 204, 113) if good else QColor(255, 77, 77)
                base.setAlphaF(0.15 + 0.7 * share if m[r, c] else 0.0)
                item.setBackground(QBrush(base))
                self.setItem(r, c, item)
