"""Live-sort widgets: the large OK/NG indicator with the part's views, and the counter tiles."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.widgets.explain_panels import ImagePane

STYLES = {
    "OK": "background:#1e7a46; color:white;",
    "NG": "background:#a52a2a; color:white;",
    "ERROR": "background:#8a5a00; color:white;",
    "": "background:#2b313a; color:#9aa4b2;",
}


class VerdictIndicator(QWidget):
    """A large OK / NG / ERROR block for ONE part: its verdict, details, views and per-view P(NG).

    `show_part` takes the verdict and the scores from one part record and the views of that
    same part, so the block never mixes two parts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.big = QLabel("—")
        self.big.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.big.setMinimumHeight(130)
        self.detail = QLabel("No part yet.")
        self.detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail.setWordWrap(True)
        self.views = [ImagePane("", smooth=False) for _ in range(4)]
        grid = QGridLayout()
        for i, p in enumerate(self.views):
            grid.addWidget(p, i // 2, i % 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.big)
        lay.addWidget(self.detail)
        lay.addLayout(grid, 1)
        self.verdict = ""
        self.part: dict[str, Any] = {}  # the record of the part shown (trig_seq, verdict, scores...)
        self.images: list[np.ndarray] = []  # the views shown (thumbnails)
        self.set_verdict("", "No part yet.")

    def show_part(self, record: dict[str, Any], images: Sequence[np.ndarray], cameras: Sequence[str],
                  detail: str) -> None:
        """One part: the record's verdict and per-view scores over that part's own views."""
        self.part = dict(record)
        self.set_verdict(str(record.get("verdict", "")), detail)
        self.set_views(images, cameras, [float(v) for v in record.get("scores") or []])

    def set_verdict(self, verdict: str, detail: str) -> None:
        if verdict != self.verdict or self.big.styleSheet() == "":
            # Restyling re-polishes the label (its 64 pt font): only when the colour changes.
            self.big.setStyleSheet(STYLES.get(verdict, STYLES[""]) + "font-size:64pt; font-weight:bold; "
                                   "border-radius:12px;")
        self.verdict = verdict
        self.big.setText(verdict or "—")
        self.detail.setText(detail)

    def set_views(self, images: Sequence[np.ndarray], cameras: Sequence[str], scores: Sequence[float] = ()) -> None:
        self.images = list(images)
        for i, pane in enumerate(self.views):
            if i < len(images):
                score = f" · P(NG) {scores[i]:.2f}" if i < len(scores) else ""
                pane.set_image(images[i], f"{cameras[i] if i < len(cameras) else i}{score}")
            else:
                pane.set_image(None, "")


class CounterTiles(QWidget):
    """Big numbers: triggers, OK, NG, ERROR, missed (and of those, missed while the PLC link was
    down), Modbus exception responses, parts/s, p50 / p99 latency."""

    KEYS = ("triggers", "OK", "NG", "ERROR", "missed", "missed in outages", "Modbus exceptions",
            "parts/s", "p50 ms", "p99 ms")
    # A count above zero here needs a look (outages cost parts; exceptions mean a register map
    # the PLC refuses), so it turns amber instead of staying a quiet grey number.
    WARN = ("missed in outages", "Modbus exceptions")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.values: dict[str, QLabel] = {}
        for key in self.KEYS:
            box = QVBoxLayout()
            v = QLabel("0")
            v.setAlignment(Qt.AlignmentFlag.AlignCenter)
            colour = {"OK": "#2ecc71", "NG": "#ff4d4d", "ERROR": "#ffb347"}.get(key, "#e6e9ee")
            v.setStyleSheet(f"font-size:20pt; font-weight:bold; color:{colour};")
            t = QLabel(key)
            t.setObjectName("muted")
            t.setAlignment(Qt.AlignmentFlag.AlignCenter)
            box.addWidget(v)
            box.addWidget(t)
            lay.addLayout(box)
            self.values[key] = v

    def show_snapshot(self, snap: dict[str, Any]) -> None:
        verdicts = snap.get("verdicts") or {}
        lat = snap.get("latency_ms") or {}
        vals = {"triggers": snap.get("triggers", 0), "OK": verdicts.get("OK", 0), "NG": verdicts.get("NG", 0),
                "ERROR": verdicts.get("ERROR", 0), "missed": snap.get("missed", 0),
                "missed in outages": snap.get("missed_in_outages", 0),
                "Modbus exceptions": snap.get("modbus_exceptions", (snap.get("plc") or {}).get("modbus_exceptions", 0)),
                "parts/s": f"{float(snap.get('parts_per_s') or 0):.1f}",
                "p50 ms": _ms(lat.get("p50")), "p99 ms": _ms(lat.get("p99"))}
        for k, v in vals.items():
            self.values[k].setText(str(v))
        for k in self.WARN:
            warn = str(vals[k]) not in ("0", "")
            if self.values[k].property("warn") != warn:  # restyle only on a change (re-polish)
                self.values[k].setProperty("warn", warn)
                self.values[k].setStyleSheet(f"font-size:20pt; font-weight:bold; color:{'#ffb347' if warn else '#e6e9ee'};")

    def value(self, key: str) -> str:
        return self.values[key].text()


def _ms(v: Any) -> str:
    return f"{float(v):.0f}" if isinstance(v, (int, float)) else "—"
