"""The Label view's keyboard: one table from keys to the view's actions.

Keys (work wherever the focus is inside the view, except in text fields):
  O / N      label the part OK / NG (with the selected defect class) and go to the next part
  1-9        pick the defect class (relabels the current part if it is NG)
  A          accept the model's verdict and go to the next part
  B E P F H  brush, eraser, polygon, fill, pan;  [ ]  brush size;  Enter closes a polygon
  Ctrl+Z / Ctrl+Y   undo / redo mask edits;  Tab  next view;  Up/Down (K/J)  previous/next part
  Ctrl+1-9   tick another defect class;  M  accept the model's mask proposal;
  Ctrl+Shift+1-9    show / hide a class of the proposal
"""
from __future__ import annotations

from typing import Any

from PyQt6.QtCore import Qt

from labeling.types import Verdict

from .keys import KeyMap

K = Qt.Key
# Shift+1..9 on a US layout: what Qt reports for Ctrl+Shift+digit there
SHIFTED_DIGITS = (K.Key_Exclam, K.Key_At, K.Key_NumberSign, K.Key_Dollar, K.Key_Percent, K.Key_AsciiCircum,
                  K.Key_Ampersand, K.Key_Asterisk, K.Key_ParenLeft)


def label_keymap(view: Any) -> KeyMap:
    """The Label view's keys -> its actions."""
    m: KeyMap = {
        (K.Key_O, ""): lambda: view.label(Verdict.OK),
        (K.Key_N, ""): lambda: view.label(Verdict.NG),
        (K.Key_A, ""): view.accept_model,
        (K.Key_B, ""): lambda: view.set_tool("brush"),
        (K.Key_E, ""): lambda: view.set_tool("eraser"),
        (K.Key_P, ""): lambda: view.set_tool("polygon"),
        (K.Key_F, ""): lambda: view.set_tool("fill"),
        (K.Key_H, ""): lambda: view.set_tool("pan"),
        (K.Key_BracketLeft, ""): lambda: view.set_radius(round(view.canvas.brush_radius / 1.25)),
        (K.Key_BracketRight, ""): lambda: view.set_radius(round(view.canvas.brush_radius * 1.25) + 1),
        (K.Key_Return, ""): view.canvas.close_polygon,
        (K.Key_Enter, ""): view.canvas.close_polygon,
        (K.Key_Escape, ""): lambda: view.set_tool(view.canvas.tool),
        (K.Key_Tab, ""): lambda: view.show_view((view.view_index + 1) % max(1, len(view.images))),
        (K.Key_Down, ""): view.parts.select_next, (K.Key_J, ""): view.parts.select_next,
        (K.Key_Up, ""): view.parts.select_previous, (K.Key_K, ""): view.parts.select_previous,
        (K.Key_M, ""): view.accept_proposal,
        (K.Key_Z, "ctrl"): view.undo, (K.Key_Y, "ctrl"): view.redo, (K.Key_Z, "ctrl+shift"): view.redo,
    }
    for i in range(1, 10):
        m[(getattr(K, f"Key_{i}"), "")] = lambda i=i: view.pick_class(i)
        m[(getattr(K, f"Key_{i}"), "ctrl")] = lambda i=i: view.toggle_class(i)
        # Ctrl+digit is the label's classes (issue 13); a proposal's class shows with
        # Ctrl+Shift+digit (Qt reports the digit or, on most layouts, its shifted symbol)
        for key in (getattr(K, f"Key_{i}"), SHIFTED_DIGITS[i - 1]):
            m[(key, "ctrl+shift")] = lambda i=i: view.toggle_proposal_class(i)
    return m
