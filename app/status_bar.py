"""StatusBar: sources, PLC, active model, user and role, always visible.

Reads AppContext state on its signals and on a 1 s timer (the PLC heartbeat count moves on its
own); no logic, only the text and colour of five fields.
"""
from __future__ import annotations

from typing import Any

from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtWidgets import QLabel, QPushButton, QStatusBar

from labeling.store import ProjectError
from training.card import ModelCard, read_card
from training.errors import TrainingError

from .station import ROLE_TITLES


def _pill(label: QLabel, text: str, state: str) -> None:
    """state: OK, Warn, Bad or Info (qss object names pillOK, ...)."""
    label.setText(text)
    if label.objectName() != f"pill{state}":
        label.setObjectName(f"pill{state}")
        label.style().unpolish(label)
        label.style().polish(label)


class StatusBar(QStatusBar):
    user_clicked = pyqtSignal()

    def __init__(self, ctx: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.sources = QLabel()
        self.plc = QLabel()
        self.model = QLabel()
        self.project = QLabel()
        self.user = QPushButton()
        self.user.setFlat(True)
        self.user.setToolTip("Switch user and role (Ctrl+U)")
        self.user.clicked.connect(self.user_clicked.emit)
        for w in (self.project, self.sources, self.plc, self.model):
            self.addPermanentWidget(w)
        self.addPermanentWidget(self.user)
        ctx.status.connect(lambda m: self.showMessage(m, 8000))
        for sig in (ctx.project_changed, ctx.user_changed, ctx.rig_changed, ctx.parts_changed):
            sig.connect(self.refresh)
        ctx.models_changed.connect(self.refresh_model)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh)
        self._timer.start(1000)
        self._card: ModelCard | None = None
        self._card_error = ""  # why the active model's card could not be read
        self.refresh_model()

    def refresh_model(self) -> None:
        """Re-read the active model's card when models change (from the Project's cached metadata)."""
        proj = self.ctx.project
        self._card, self._card_error = None, ""
        if proj is not None and proj.active_model_id:
            try:
                self._card = read_card(proj, proj.active_model_id)
            except (ProjectError, TrainingError) as exc:  # a missing or unreadable model shows as such
                self._card_error = str(exc)
        self.refresh()

    def refresh(self, *_: Any) -> None:
        ctx = self.ctx
        proj = ctx.project
        if proj is None:
            _pill(self.project, "no project", "Info")
        else:
            try:
                n = len(proj)
            except RuntimeError:  # the writer thread added a part while we counted: next tick
                n = None
            if n is not None:
                _pill(self.project, f"{proj.settings.name} · {n} parts", "Info")
        rig = ctx.rig
        if rig is None:
            _pill(self.sources, "sources: off", "Warn")
            _pill(self.plc, "PLC: off", "Warn")
        else:
            text, ok = rig.cameras_text()
            _pill(self.sources, text, "OK" if ok else "Bad")
            st = rig.plc
            if rig.plc_error and not st.get("connected"):
                _pill(self.plc, "PLC: none", "Bad")
                self.plc.setToolTip(rig.plc_error)
            elif st.get("connected"):
                sim = " (simulator)" if rig.plc_sim is not None else ""
                _pill(self.plc, f"PLC connected{sim} · ♥ {st.get('heartbeats', 0)}", "OK")
                self.plc.setToolTip(f"PLC at {st.get('endpoint', '?')}; heartbeats seen: {st.get('heartbeats', 0)}")
            else:
                _pill(self.plc, "PLC: not connected", "Bad")
                self.plc.setToolTip(st.get("error", ""))
        card = self._card
        if self._card_error:
            _pill(self.model, f"model {proj.active_model_id if proj else ''}: missing", "Bad")
            self.model.setToolTip(self._card_error)
        elif card is None:
            _pill(self.model, "model: none", "Warn")
        else:
            scratch = "" if card.pretrained else " · trained from scratch"
            _pill(self.model, f"model {card.id} · {card.arch}{scratch}", "OK" if not scratch else "Warn")
            self.model.setToolTip(f"{card.task} model, {card.origin}, threshold {card.threshold:.2f}")
        u = ctx.user
        self.user.setText(f"User: {u.name} · {ROLE_TITLES[u.role]}")
