"""Small pyqtgraph/Qt plots shared by the Train, Explain and Live-sort views.

* CurvePlot: named live series (loss, accuracy, parts/s, latency) that grow point by point.
* RocPrPlot: ROC and PR curves of an evaluation side by side.
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

    def __init__(self, title: str = "", y_label: str = "", x_label: str = "", keep: int = 5000,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.keep = keep
        self.setTitle(title)
        self.setLabel("left", y_label)
        self.setLabel("bottom", x_label)
        add_grid(self)
        self._dirty: dict[str, None] = {}  # series to redraw, in the order they were added
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.timeout.connect(self.flush)
        self.getAxis("left").enableAutoSIPrefix(False)  # "loss (x0.001)" reads badly
        self.addLegend(offset=(-10, 10))
        self.setMinimumHeight(150)
        self._data: dict[str, tuple[list[float], list[float]]] = {}
        self._items: dict[str, pg.PlotDataItem] = {}

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
        if self._dirty:
            self._flush_timer.start(0)

    def _draw(self, name: str) -> None:
        xs, ys = self._data[name]
        item = self._items.get(name)
        if item is None:
            color = PALETTE[len(self._items) % len(PALETTE)]
            item = self.plot([], [], name=name, pen=pg.mkPen(color, width=2),
                             symbol="o" if self.keep < 1000 else None, symbolSize=5, symbolBrush=color)
            self._items[name] = item
        item.setData(xs, ys)

    def set_series(self, name: str, xs: Sequence[float], ys: Sequence[float]) -> None:
        """Replace a series (e.g. the history of a finished run); drawn in one setData."""
        self._data[name] = ([], [])
        for x, y in zip(xs, ys):
            self._append(name, x, y)
        # Drawn from the event loop like live points, so the series of a stored model (one new
        # curve item each) do not all land in the slot that selected the model.
        self._dirty[name] = None
        self._flush_timer.start(0)

    def reset(self) -> None:
        self._flush_timer.stop()
        self._dirty.clear()
        self._data.clear()
        for item in self._items.values():
            self.removeItem(item)
        self._items.clear()
        legend = self.plotItem.legend
        if legend is not None:
            legend.clear()


class RocPrPlot(QWidget):
    """ROC (FPR vs TPR) and precision-recall curves; `show_curves(metrics)` or `clear()`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.roc = pg.PlotWidget(title="ROC")
        self.pr = pg.PlotWidget(title="Precision-recall")
        for p, (xl, yl) in ((self.roc, ("false positive rate", "true positive rate")),
                            (self.pr, ("recall", "precision"))):
            p.setLabel("bottom", xl)
            p.setLabel("left", yl)
            p.setXRange(0, 1)
            p.setYRange(0, 1.02)
            add_grid(p)
            p.setMinimumHeight(170)
            lay.addWidget(p)

    def clear(self) -> None:
        for p in (self.roc, self.pr):
            p.clear()
            add_grid(p)  # clear() removed it

    def show_curves(self, roc: tuple[Sequence[float], Sequence[float]] | None,
                    pr: tuple[Sequence[float], Sequence[float]] | None,
                    roc_auc: float | None = None, pr_auc: float | None = None) -> None:
        """Draw the curves given as (x, y) point lists; a missing curve shows 'not available'."""
        self.clear()
        self.roc.plot([0, 1], [0, 1], pen=pg.mkPen("#5a6270", style=Qt.PenStyle.DashLine))
        for plot, curve, auc, name in ((self.roc, roc, roc_auc, "ROC"), (self.pr, pr, pr_auc, "PR")):
            if curve is None or len(curve[0]) == 0:
                text = pg.TextItem(f"{name} curve not available", color="#8a93a0", anchor=(0.5, 0.5))
                text.setPos(0.5, 0.5)
                plot.addItem(text)
                continue
            plot.plot(list(curve[0]), list(curve[1]), pen=pg.mkPen(PALETTE[0], width=2))
            if auc is not None:
                plot.setTitle(f"{name}  (AUC {auc:.3f})")


class ConfusionMatrix(QTableWidget):
    """Rows: true class, columns: predicted class; cells shaded by their share of the row."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setMinimumHeight(120)

    def show_matrix(self, matrix: Any, classes: Sequence[str]) -> None:
        m = np.asarray(matrix if matrix is not None else np.zeros((0, 0)), dtype=float)
        n = m.shape[0] if m.ndim == 2 else 0
        names = list(classes)[:n] + [str(i) for i in range(len(classes), n)]
        self.clear()
        self.setRowCount(n)
        self.setColumnCount(n)
        self.setHorizontalHeaderLabels([f"pred {c}" for c in names])
        self.setVerticalHeaderLabels([f"true {c}" for c in names])
        for r in range(n):
            total = max(m[r].sum(), 1.0)
            for c in range(n):
                item = QTableWidgetItem(f"{int(m[r, c])}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                share = m[r, c] / total
                good = r == c
                base = QColor(46, 204, 113) if good else QColor(255, 77, 77)
                base.setAlphaF(0.15 + 0.7 * share if m[r, c] else 0.0)
                item.setBackground(QBrush(base))
                self.setItem(r, c, item)
