"""PartList: the labeling queue: a filter box, a search field and the parts table."""
from __future__ import annotations

from typing import Any

from PyQt6.QtCore import QItemSelectionModel, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.models.parts_model import PartsFilter, PartsModel
from labeling.queue import FILTERS


class PartList(QWidget):
    """Parts table bound to a PartsFilter; emits part_selected(id) when the selection moves."""

    part_selected = pyqtSignal(int)

    def __init__(self, ctx: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.model = PartsModel(ctx, self)
        self.proxy = PartsFilter(self.model, self)
        self.filter_box = QComboBox()
        self.filter_box.addItems(list(FILTERS))
        self.filter_box.setToolTip("Show only these parts (the list is the labeling queue: unlabeled "
                                   "first, then the parts the model is least sure about)")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search part name or id")
        self.search.setClearButtonEnabled(True)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the labeling shortcuts
        self.count = QLabel()
        self.count.setObjectName("muted")
        top = QHBoxLayout()
        top.addWidget(self.filter_box, 1)
        top.addWidget(self.search, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.count)
        self.filter_box.currentTextChanged.connect(self.set_filter)
        self.search.textChanged.connect(self._search)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        for sig in (self.proxy.modelReset, self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.layoutChanged):
            sig.connect(self._update_count)
        self.model.modelReset.connect(self.refresh)
        # A model run adds predictions part by part: re-order the queue once it settles,
        # not on every event (rows stay put while the user labels).
        self._resort = QTimer(self)
        self._resort.setSingleShot(True)
        self._resort.setInterval(800)
        self._resort.timeout.connect(self.refresh)
        ctx.part_event.connect(lambda ev: self._resort.start() if ev.get("op") in ("prediction", "label_check") else None)
        self.refresh()

    # ------------------------------------------------------------------ API
    def set_filter(self, name: str) -> None:
        keep = self.current_part_id()
        if self.filter_box.currentText() != name:
            self.filter_box.setCurrentText(name)  # re-enters through the signal
            return
        self.proxy.set_filter(name)
        self._update_count()
        if keep is not None and self.proxy.row_of(keep) >= 0:
            self.select_part(keep)
        else:
            self.select_row(0)

    def refresh(self) -> None:
        """Re-sort by the queue order and keep the selection."""
        keep = self.current_part_id()
        self.proxy.invalidate()
        self.proxy.resort()
        self._update_count()
        if keep is not None and self.proxy.row_of(keep) >= 0:
            self.select_part(keep)
        elif self.proxy.rowCount() and keep is None:
            self.select_row(0)

    def visible_ids(self) -> list[int]:
        return [self.proxy.part_id(r) for r in range(self.proxy.rowCount())]

    def current_part_id(self) -> int | None:
        idx = self.table.currentIndex()
        return self.proxy.part_id(idx.row()) if idx.isValid() else None

    def select_row(self, row: int) -> bool:
        if not 0 <= row < self.proxy.rowCount():
            return False
        idx = self.proxy.index(row, 0)
        self.table.selectionModel().setCurrentIndex(
            idx, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(idx)
        return True

    def select_part(self, part_id: int) -> bool:
        return self.select_row(self.proxy.row_of(part_id))

    def select_next(self) -> bool:
        """Advance to the next part in the queue; False at the end."""
        idx = self.table.currentIndex()
        return self.select_row(idx.row() + 1 if idx.isValid() else 0)

    def select_previous(self) -> bool:
        idx = self.table.currentIndex()
        return self.select_row(idx.row() - 1) if idx.isValid() else False

    # ------------------------------------------------------------------ internals
    def _search(self, text: str) -> None:
        self.proxy.set_text(text)
        self._update_count()

    def _row_changed(self, current: Any, _previous: Any) -> None:
        if current.isValid():
            pid = self.proxy.part_id(current.row())
            if pid is not None:
                self.part_selected.emit(int(pid))

    def _update_count(self, *_: Any) -> None:
        self.count.setText(f"{self.proxy.rowCount()} of {self.model.rowCount()} parts")
