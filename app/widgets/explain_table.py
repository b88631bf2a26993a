"""The agreement table of the Explain view: one row per view (part, camera, IoU, energy, lift, pointing).

A thin QAbstractTableModel over the report's rows (training.explain ViewRow objects or dicts),
behind a QSortFilterProxyModel so every column sorts numerically; missing values sort last.
"""
from __future__ import annotations

from typing import Any

from PyQt6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    pyqtSignal,
)
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

COLUMNS = [("part", "part_id"), ("view", "view"), ("camera", "camera"), ("class", "cls"),
           ("score", "score"), ("IoU", "iou"), ("energy", "energy"), ("lift", "lift"), ("pointing", "pointing")]
LIFT_COLUMN = [key for _title, key in COLUMNS].index("lift")  # the view starts sorted on it, least looked-at first
TIPS = {
    "score": "The model's probability for the class explained",
    "IoU": "Overlap of the highlighted (thresholded) heatmap with the mask. Small for thin defects even when "
           "the model looks at them: the map is as coarse as the layer's cells",
    "energy": "Share of the heatmap's heat inside the mask",
    "lift": "Energy in the mask over the mask's share of the view: 1 = no more heat on the defect than a flat "
            "map puts there, 3 = three times. Comparable between thin cracks and large spots",
    "pointing": "hit: the heatmap's peak lies in the mask or within half a cell of the layer's map of it "
                "(the finest place the map can point at)",
}
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


def _get(row: Any, key: str) -> Any:
    return row.get(key) if isinstance(row, dict) else getattr(row, key, None)


class AgreementModel(QAbstractTableModel):
    """Rows of an ExplainReport; read-only."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[Any] = []

    def set_rows(self, rows: list[Any]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        if role == Qt.ItemDataRole.ToolTipRole:
            return TIPS.get(COLUMNS[section][0])
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        value = _get(row, COLUMNS[index.column()][1])
        if role == Qt.ItemDataRole.DisplayRole:
            if value is None:
                return "—"
            if isinstance(value, bool):
                return "hit" if value else "miss"
            if isinstance(value, float):
                return f"{value:.3f}"
            return str(value)
        if role == SORT_ROLE:
            if value is None:
                return None
            return float(value) if isinstance(value, (int, float, bool)) else str(value)
        if role == Qt.ItemDataRole.ToolTipRole and isinstance(value, str):
            return value  # a long class name the column cuts short
        if role == Qt.ItemDataRole.ForegroundRole and isinstance(value, bool):
            return QColor("#2ecc71" if value else "#ff4d4d")
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        return None

    def row_at(self, source_row: int) -> Any:
        return self.rows[source_row]


class _Proxy(QSortFilterProxyModel):
    def lessThan(self, left: QModelIndex, right: QModelIndex) -> bool:
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        # Views without a value (no mask) go after the others in ascending order, so sorting
        # by IoU puts the NG views where the model looks away from the defect on top.
        if a is None or b is None:
            return a is not None and b is None
        if type(a) is not type(b):
            return str(a) < str(b)
        return a < b


class AgreementTable(QTableView):
    """Sortable view of the agreement rows; `row_selected(row)` when the user picks one."""

    row_selected = pyqtSignal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = AgreementModel(self)
        self.proxy = _Proxy(self)
        self.proxy.setSourceModel(self.source)
        self.proxy.setSortRole(SORT_ROLE)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # The class column takes the room left (defect names are long); the others are as wide as
        # their title or a figure ("0.000"), plus room for the sort arrow. ResizeToContents gave
        # each the theme's padding and left the class column a few pixels.
        header = self.horizontalHeader()
        fm = header.fontMetrics()
        for i, (title, key) in enumerate(COLUMNS):
            if key == "cls":
                header.setSectionResizeMode(i, QHeaderView.ResizeMode.Stretch)
                continue
            header.setSectionResizeMode(i, QHeaderView.ResizeMode.Fixed)
            header.resizeSection(i, max(fm.horizontalAdvance(title), fm.horizontalAdvance("0.000")) + 28)
        self.verticalHeader().setVisible(False)
        self.selectionModel().currentRowChanged.connect(self._current)

    def set_rows(self, rows: list[Any]) -> None:
        self.source.set_rows(rows)

    def rows(self) -> list[Any]:
        return self.source.rows

    def select_row(self, view_row: int) -> None:
        self.selectRow(view_row)

    def _current(self, current: QModelIndex, _prev: QModelIndex) -> None:
        if current.isValid():
            self.row_selected.emit(self.source.row_at(self.proxy.mapToSource(current).row()))
