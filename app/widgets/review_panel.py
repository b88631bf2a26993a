"""ReviewPanel: a lab expert accepts or rejects a part's label with a comment; the audit trail."""
from __future__ import annotations

import time
from typing import Any

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from labeling.types import Part, Verdict


def describe_event(ev: dict[str, Any], class_names: list[str]) -> str:
    """One line of the audit trail, e.g. '14:03:12  NG (no coating)  by ana (inspector)'."""
    t = time.strftime("%m-%d %H:%M:%S", time.localtime(float(ev.get("time", 0))))
    op = ev.get("op", "?")
    user = ev.get("user")
    if op == "label":
        lab = ev["label"]
        user = lab.get("user")
        v = Verdict(int(lab["verdict"])).name
        dc = int(lab.get("defect_class", 0))
        what = v + (f" ({class_names[dc - 1]})" if 0 < dc <= len(class_names) else "")
    elif op == "review":
        rev = ev["review"]
        user = rev.get("user")
        what = f"review {rev['status']}" + (f": {rev['comment']}" if rev.get("comment") else "")
    elif op == "mask":
        what = f"mask view {ev.get('view', 0)} " + ("saved" if ev.get("has_mask") else "cleared")
    elif op == "prediction":
        pr = ev["prediction"]
        user = None
        what = f"model {pr['model_id']}: {Verdict(int(pr['verdict'])).name} ({float(pr.get('confidence', 0)):.2f})"
    else:
        what = op
    who = f"  by {user['name']} ({user['role'].replace('_', ' ')})" if isinstance(user, dict) else ""
    return f"{t}  {what}{who}"


class ReviewPanel(QWidget):
    review_requested = pyqtSignal(str, str)  # status ("accepted" | "rejected"), comment

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        box = QGroupBox("Lab expert review")
        bl = QVBoxLayout(box)
        self.status = QLabel("not reviewed")
        self.status.setWordWrap(True)
        self.comment = QLineEdit()
        self.comment.setPlaceholderText("Comment (required to reject)")
        self.accept_btn = QPushButton("Accept label")
        self.reject_btn = QPushButton("Reject label")
        self.accept_btn.setObjectName("okButtonSmall")
        self.reject_btn.setObjectName("ngButtonSmall")
        row = QHBoxLayout()
        row.addWidget(self.accept_btn)
        row.addWidget(self.reject_btn)
        bl.addWidget(self.status)
        bl.addWidget(self.comment)
        bl.addLayout(row)
        lay.addWidget(box)
        trail = QGroupBox("Audit trail")
        tl = QVBoxLayout(trail)
        self.trail = QListWidget()
        self.trail.setObjectName("trail")
        self.trail.setWordWrap(True)
        tl.addWidget(self.trail)
        lay.addWidget(trail, 1)
        self.accept_btn.clicked.connect(lambda: self._request("accepted"))
        self.reject_btn.clicked.connect(lambda: self._request("rejected"))

    def _request(self, status: str) -> None:
        if status == "rejected" and not self.comment.text().strip():
            self.status.setText("<span style='color:#ffb347'>Write why the label is wrong before rejecting.</span>")
            self.comment.setFocus()
            return
        self.review_requested.emit(status, self.comment.text().strip())
        self.comment.clear()

    def show_part(self, part: Part | None, events: list[dict[str, Any]], class_names: list[str]) -> None:
        if part is None or part.review is None:
            self.status.setText("not reviewed yet")
        else:
            r = part.review
            color = "#2ecc71" if r.status.value == "accepted" else "#ff4d4d"
            stale = " (label changed since)" if part.label and part.label.time > r.time else ""
            self.status.setText(f"<b style='color:{color}'>{r.status.value}</b> by {r.user.name}{stale}"
                                + (f"<br>“{r.comment}”" if r.comment else ""))
        self.trail.clear()
        for ev in reversed(events):
            self.trail.addItem(describe_event(ev, class_names))
