"""ViewKeys: single-key shortcuts of a view that work wherever the focus is inside it.

QShortcut would do for menus, but plain letter keys must win over item views' keyboard search
and must not fire while the user types a comment: an application event filter, scoped to the
view's widgets and skipping text inputs, does both (and QTest key events reach it too).
"""
from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import QEvent, QObject, Qt
from PyQt6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

TEXT_INPUTS = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox, QComboBox)
# (key, modifiers) -> action; modifiers is "", "ctrl" or "ctrl+shift" (shift alone is ignored,
# so keyboard layouts that need shift for "[" still work)
KeyMap = dict[tuple[Qt.Key, str], Callable[[], object]]


def modifiers_text(mods: Qt.KeyboardModifier) -> str:
    ctrl = bool(mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.MetaModifier))
    if not ctrl:
        return ""
    return "ctrl+shift" if mods & Qt.KeyboardModifier.ShiftModifier else "ctrl"


class ViewKeys(QObject):
    def __init__(self, root: QWidget, keys: KeyMap) -> None:
        super().__init__(root)
        self.root, self.keys = root, keys
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if ev.type() != QEvent.Type.KeyPress or isinstance(obj, TEXT_INPUTS) or not isinstance(obj, QWidget):
            return False
        if not self.root.isVisible() or not (obj is self.root or self.root.isAncestorOf(obj)):
            return False
        fn = self.keys.get((Qt.Key(ev.key()), modifiers_text(ev.modifiers())))
        if fn is None:
            return False
        fn()
        return True
