"""SegRulePanel: a segmentation model's area rule, shown and edited in the Train view's results.

Per defect class the probability threshold and the kept component area [min, max] (model-input
pixels), as learned from the training masks (training.segment.postprocess) or as last edited;
"Save rule" emits the edited rows and the view stores them on the card through the store writer
(training.segment.train.set_rules, what `okng seg-rule` does). The test dice per class sits beside
each row so an edit can be judged against what the model reaches.
"""
from __future__ import annotations

from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from training.card import ModelCard

COLUMNS = ["class", "threshold", "min area", "max area", "dice"]
EDITABLE = (1, 2, 3)


class SegRulePanel(QWidget):
    """The rule table of one segmentation model; hidden for classifiers."""

    save = pyqtSignal(str, list)  # model id, [{"name", "threshold", "min_area", "max_area"}, ...]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_id = ""
        self.title = QLabel("Area rule (NG when a class keeps a component; areas in model-input pixels)")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.save_btn = QPushButton("Save rule")
        self.save_btn.setToolTip("Store the edited thresholds and areas on the model card (as okng seg-rule); "
                                 "max area empty = no limit")
        self.save_btn.clicked.connect(self._save)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.table)
        row = QHBoxLayout()
        row.addWidget(self.note, 1)
        row.addWidget(self.save_btn)
        lay.addLayout(row)
        self.setVisible(False)

    def show_model(self, card: ModelCard | None) -> None:
        seg = card.extra.get("segment") if card is not None and card.task == "segment" else None
        self.setVisible(isinstance(seg, dict))
        if not isinstance(seg, dict):
            self.model_id = ""
            return
        self.model_id = card.id
        per_class = card.headline.get("seg_per_class") or {}
        rules = seg.get("rules") or []
        self.table.setRowCount(len(rules))
        for r, rule in enumerate(rules):
            dice = (per_class.get(rule["name"]) or {}).get("dice")
            cells = [rule["name"], f"{float(rule.get('threshold', 0.5)):.2f}", str(int(rule.get("min_area", 0))),
                     "" if rule.get("max_area") is None else str(int(rule["max_area"])),
                     "—" if dice is None else f"{dice:.3f}"]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if c not in EDITABLE:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(r, c, item)
        self.note.setText(f"dice on the {card.headline_name} parts; {seg.get('area_units', '')}")

    def rules(self) -> list[dict[str, Any]]:
        """The table's rows as rule dicts (ValueError naming the cell on a bad number)."""
        out = []
        for r in range(self.table.rowCount()):
            def cell(c: int, r: int = r) -> str:
                item = self.table.item(r, c)
                return item.text().strip() if item is not None else ""
            name = cell(0)
            try:
                mx = cell(3)
                out.append({"name": name, "threshold": float(cell(1)), "min_area": int(float(cell(2) or 0)),
                            "max_area": None if mx in ("", "-", "—") else int(float(mx))})
            except ValueError:
                raise ValueError(f"class {name}: threshold and areas must be numbers") from None
        return out

    def _save(self) -> None:
        if not self.model_id:
            return
        try:
            rules = self.rules()
        except ValueError as exc:
            self.note.setText(f"⚠ {exc}")
            return
        self.save.emit(self.model_id, rules)
