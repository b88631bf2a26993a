"""Role switching and PIN settings (see app/station.py for the single-seat role model)."""
from __future__ import annotations

from typing import Any

from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
)

from app.station import ROLE_TITLES
from labeling.types import Role


class RoleDialog(QDialog):
    """Name, role and that role's PIN; a wrong PIN keeps the dialog open with a clear message."""

    def __init__(self, ctx: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle("Switch user / role")
        self.name = QLineEdit(ctx.user.name)
        self.role = QComboBox()
        for r in Role:
            self.role.addItem(ROLE_TITLES[r], r)
        self.role.setCurrentIndex(list(Role).index(ctx.user.role))
        self.pin = QLineEdit()
        self.pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin.setPlaceholderText("PIN")
        self.message = QLabel("")
        self.message.setObjectName("pillBad")
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Role", self.role)
        form.addRow("PIN", self.pin)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.try_accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.message)
        lay.addWidget(QLabel("The PIN is a seat lock, not a password: every label and review records "
                             "the name and role in the project's audit trail."))
        lay.addWidget(buttons)
        self.role.currentIndexChanged.connect(self._role_changed)
        self._role_changed()

    def _role_changed(self) -> None:
        needs = self.ctx.station.needs_pin(self.role.currentData())
        self.pin.setEnabled(needs)
        self.pin.setPlaceholderText("PIN" if needs else "no PIN needed")

    def try_accept(self) -> bool:
        """Switch if the PIN fits; otherwise show why and stay open. True on success."""
        try:
            self.ctx.switch_role(self.role.currentData(), self.pin.text(), self.name.text())
        except PermissionError as exc:
            self.message.setText(f"{exc}. Ask your supervisor for the PIN.")
            self.pin.selectAll()
            self.pin.setFocus()
            return False
        self.accept()
        return True


class PinDialog(QDialog):
    """Set the PIN of each role (supervisor only; the caller checks the role)."""

    def __init__(self, ctx: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle("Station PINs")
        self.fields: dict[Role, QLineEdit] = {}
        form = QFormLayout()
        for r in Role:
            f = QLineEdit()
            f.setEchoMode(QLineEdit.EchoMode.Password)
            f.setPlaceholderText("unchanged" if ctx.station.needs_pin(r) else "no PIN")
            self.fields[r] = f
            form.addRow(ROLE_TITLES[r], f)
        self.message = QLabel("Leave a field empty to keep its PIN. 4 to 8 digits.")
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.try_accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.message)
        lay.addWidget(buttons)

    def try_accept(self) -> bool:
        try:
            for r, f in self.fields.items():
                if f.text().strip():
                    self.ctx.station.set_pin(r, f.text())
        except ValueError as exc:
            self.message.setText(str(exc))
            return False
        self.ctx.station.save()
        self.accept()
        return True
