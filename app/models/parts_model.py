"""PartsModel: a table over the project's parts; PartsFilter: filters and the labeling queue order.

The model is an adapter (architecture practice 3): it keeps only the list of part ids, reads
everything else from the store's cache, and turns store events (relayed by AppContext into the
GUI thread) into beginInsertRows / dataChanged.
"""
from __future__ import annotations

import time
from typing import Any

from PyQt6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PyQt6.QtGui import QColor

from labeling.queue import FILTERS, ORDERS, queue_key, uncertainty
from labeling.store import Project
from labeling.types import Part, Verdict

PART_ID_ROLE = Qt.ItemDataRole.UserRole + 1
QUEUE_ROLE = Qt.ItemDataRole.UserRole + 2
VERDICT_COLORS = {Verdict.OK: QColor("#2ecc71"), Verdict.NG: QColor("#ff4d4d"),
                  Verdict.UNLABELED: QColor("#8a93a0")}


def _fmt_time(t: float) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(t))


class PartsModel(QAbstractTableModel):
    """One row per part: id, name, verdict, defect, review, model verdict, uncertainty, source."""

    COLUMNS = ("#", "Part", "Verdict", "Defect", "Review", "Model", "Unc.", "Source", "Created")

    def __init__(self, ctx: Any = None, parent: Any = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.project: Project | None = None
        self._ids: list[int] = []
        self._row: dict[int, int] = {}
        if ctx is not None:
            ctx.project_changed.connect(self.set_project)
            ctx.part_event.connect(self.on_event)
            ctx.settings_changed.connect(self._all_changed)
            ctx.parts_reloaded.connect(self.reload_rows)
            self.set_project(ctx.project)

    # ------------------------------------------------------------------ store adapter
    def set_project(self, project: Project | None) -> None:
        self.beginResetModel()
        self.project = project
        self._ids = _part_ids(project) if project is not None else []
        self._row = {pid: i for i, pid in enumerate(self._ids)}
        self.endResetModel()

    def on_event(self, event: dict[str, Any]) -> None:
        """Apply one store event: a new row, a changed row, or a removed row."""
        if self.project is None:
            return
        op, pid = event.get("op"), event.get("part")
        if op == "part_added" and pid not in self._row:
            n = len(self._ids)
            self.beginInsertRows(QModelIndex(), n, n)
            self._ids.append(pid)
            self._row[pid] = n
            self.endInsertRows()
        elif op == "delete" and pid in self._row:
            r = self._row[pid]
            self.beginRemoveRows(QModelIndex(), r, r)
            self._ids.pop(r)
            self._row = {p: i for i, p in enumerate(self._ids)}
            self.endRemoveRows()
        elif pid in self._row:
            r = self._row[pid]
            self.dataChanged.emit(self.index(r, 0), self.index(r, len(self.COLUMNS) - 1))

    def reload_rows(self) -> None:
        """After the project was reloaded: new rows (a reset when the ids changed), else every
        row's values (their predictions may be new)."""
        if self.project is None:
            return
        ids = _part_ids(self.project)
        if ids != self._ids:
            self.set_project(self.project)
        else:
            self._all_changed()

    def _all_changed(self) -> None:
        if self._ids:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._ids) - 1, len(self.COLUMNS) - 1))

    # ------------------------------------------------------------------ Qt model API
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.COLUMNS[section]
        return None

    def part_at(self, row: int) -> Part | None:
        if self.project is None or not 0 <= row < len(self._ids):
            return None
        return self.project.part(self._ids[row])

    def row_of(self, part_id: int) -> int:
        return self._row.get(part_id, -1)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        p = self.part_at(index.row()) if index.isValid() else None
        if p is None:
            return None
        col = index.column()
        if role == PART_ID_ROLE:
            return p.id
        if role == QUEUE_ROLE:
            return queue_key(p)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(p, col)
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == 2:
                return VERDICT_COLORS[p.verdict]
            if col == 5 and p.prediction is not None:
                return VERDICT_COLORS[p.prediction.verdict]
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (0, 6):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and p.label is not None:
            return f"{p.label.verdict.name} by {p.label.user.name} ({p.label.user.role.value}) at {_fmt_time(p.label.time)}"
        return None

    def _text(self, p: Part, col: int) -> str:
        classes = self.project.settings.classes if self.project else []
        if col == 0:
            return str(p.id)
        if col == 1:
            return p.name
        if col == 2:
            return "—" if p.verdict == Verdict.UNLABELED else p.verdict.name
        if col == 3:
            held = p.label.classes if p.label else ()
            return " + ".join(classes[c - 1].name for c in held if c <= len(classes))
        if col == 4:
            return p.review.status.value if p.review else ""
        if col == 5:
            return p.prediction.verdict.name if p.prediction else ""
        if col == 6:
            u = uncertainty(p)
            return "" if u is None else f"{u:.2f}"
        if col == 7:
            return p.source.value
        return _fmt_time(p.created)


def _part_ids(project: Project) -> list[int]:
    # A capture worker may add a part while we list them: retry instead of failing.
    for _ in range(5):
        try:
            return sorted(project.part_ids())
        except RuntimeError:
            continue
    return sorted(project.part_ids())


class PartsFilter(QSortFilterProxyModel):
    """Filter by one of FILTERS (plus a text search) and sort by the labeling queue (or, for a
    filter that has an order of its own in ORDERS, by that: likely label errors worst first)."""

    def __init__(self, source: PartsModel, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSourceModel(source)
        self._filter = "All"
        self._order = queue_key
        self._text = ""
        self.queue_order = True
        self.setDynamicSortFilter(False)  # rows stay put while you label; re-sorted on refresh

    @property
    def filter_name(self) -> str:
        return self._filter

    def set_filter(self, name: str) -> None:
        if name not in FILTERS:
            raise KeyError(f"unknown filter {name!r}; known: {', '.join(FILTERS)}")
        self._filter = name
        self._order = ORDERS.get(name, queue_key)
        self.invalidate()
        self.resort()

    def set_text(self, text: str) -> None:
        self._text = text.strip().lower()
        self.invalidate()

    def resort(self) -> None:
        if self.queue_order:
            self.sort(0, Qt.SortOrder.AscendingOrder)

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:
        p = self.sourceModel().part_at(row)
        if p is None:
            return False
        if self._text and self._text not in p.name.lower() and self._text != str(p.id):
            return False
        return FILTERS[self._filter](p)

    def lessThan(self, left: QModelIndex, right: QModelIndex) -> bool:
        if self.queue_order and left.column() == 0:
            if self._order is queue_key:
                return left.data(QUEUE_ROLE) < right.data(QUEUE_ROLE)
            src = self.sourceModel()
            a, b = src.part_at(left.row()), src.part_at(right.row())
            if a is not None and b is not None:
                return self._order(a) < self._order(b)
        a, b = left.data(), right.data()
        try:
            return float(a) < float(b)
        except (TypeError, ValueError):
            return str(a) < str(b)

    def part_id(self, row: int) -> int | None:
        idx = self.index(row, 0)
        return idx.data(PART_ID_ROLE) if idx.isValid() else None

    def row_of(self, part_id: int) -> int:
        src = self.sourceModel().row_of(part_id)
        if src < 0:
            return -1
        return self.mapFromSource(self.sourceModel().index(src, 0)).row()
