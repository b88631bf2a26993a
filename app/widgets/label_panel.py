"""LabelPanel: the right-hand controls of the Label view (verdict, defect class, mask tools, model).

Widgets only: every button emits a signal with a plain value; LabelView decides what it means.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from labeling.types import DefectClass, Part, Verdict

# tool name -> (button text, key hint)
TOOL_BUTTONS = {"brush": ("Brush", "B"), "eraser": ("Eraser", "E"), "polygon": ("Polygon", "P"),
                "fill": ("Fill", "F"), "pan": ("Pan", "H")}
VERDICT_STYLE = {Verdict.OK: ("OK", "verdictOK"), Verdict.NG: ("NG", "verdictNG"),
                 Verdict.UNLABELED: ("unlabeled", "verdictNone")}


class LabelPanel(QWidget):
    verdict_clicked = pyqtSignal(object)  # Verdict
    class_clicked = pyqtSignal(int)  # 1-based defect class: the part's main class
    also_toggled = pyqtSignal(int)  # 1-based defect class: the part also holds it (or no more)
    tool_clicked = pyqtSignal(str)
    radius_changed = pyqtSignal(int)
    opacity_changed = pyqtSignal(float)
    undo_clicked = pyqtSignal()
    redo_clicked = pyqtSignal()
    accept_model_clicked = pyqtSignal()
    predict_clicked = pyqtSignal()
    heatmap_toggled = pyqtSignal(bool)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        # verdict
        self.verdict = QLabel("—")
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict.setObjectName("verdictNone")
        self.verdict.setWordWrap(True)
        self.who = QLabel("")
        self.who.setObjectName("muted")
        self.who.setWordWrap(True)
        self.ok_btn = QPushButton("OK  (O)")
        self.ok_btn.setObjectName("okButton")
        self.ng_btn = QPushButton("NG  (N)")
        self.ng_btn.setObjectName("ngButton")
        self.ok_btn.clicked.connect(lambda: self.verdict_clicked.emit(Verdict.OK))
        self.ng_btn.clicked.connect(lambda: self.verdict_clicked.emit(Verdict.NG))
        row = QHBoxLayout()
        row.addWidget(self.ok_btn)
        row.addWidget(self.ng_btn)
        lay.addWidget(self.verdict)
        lay.addWidget(self.who)
        lay.addLayout(row)
        # defect classes
        self.class_box = QGroupBox("Defect class (1-9) · also holds (Ctrl+1-9)")
        self.class_grid = QGridLayout(self.class_box)
        self.class_group = QButtonGroup(self)
        self.class_group.setExclusive(True)
        self.class_group.idClicked.connect(self.class_clicked.emit)
        self.also: dict[int, QCheckBox] = {}
        lay.addWidget(self.class_box)
        # tools
        tools = QGroupBox("Mask tools")
        tl = QGridLayout(tools)
        self.tool_group = QButtonGroup(self)
        self.tool_buttons: dict[str, QPushButton] = {}
        for i, (name, (text, key)) in enumerate(TOOL_BUTTONS.items()):
            b = QPushButton(f"{text} ({key})")
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, n=name: self.tool_clicked.emit(n))
            self.tool_group.addButton(b)
            self.tool_buttons[name] = b
            tl.addWidget(b, i // 3, i % 3)
        self.radius = QSpinBox()
        self.radius.setRange(1, 400)
        self.radius.setSuffix(" px")
        self.radius.setToolTip("Brush radius ([ and ] change it)")
        self.radius.valueChanged.connect(self.radius_changed.emit)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.valueChanged.connect(lambda v: self.opacity_changed.emit(v / 100.0))
        tl.addWidget(QLabel("Size [ ]"), 2, 0)
        tl.addWidget(self.radius, 2, 1, 1, 2)
        tl.addWidget(QLabel("Opacity"), 3, 0)
        tl.addWidget(self.opacity, 3, 1, 1, 2)
        undo, redo = QPushButton("Undo (Ctrl+Z)"), QPushButton("Redo (Ctrl+Y)")
        undo.clicked.connect(self.undo_clicked.emit)
        redo.clicked.connect(self.redo_clicked.emit)
        tl.addWidget(undo, 4, 0, 1, 2)
        tl.addWidget(redo, 4, 2)
        lay.addWidget(tools)
        # model
        model = QGroupBox("Model")
        ml = QVBoxLayout(model)
        self.prediction = QLabel("no prediction yet")
        self.prediction.setWordWrap(True)
        self.accept_btn = QPushButton("Accept model verdict (A)")
        self.accept_btn.clicked.connect(self.accept_model_clicked.emit)
        self.heatmap = QCheckBox("Show heatmap")
        self.heatmap.setChecked(True)
        self.heatmap.toggled.connect(self.heatmap_toggled.emit)
        self.predict_btn = QPushButton("Predict parts with the active model")
        self.predict_btn.setToolTip("Pre-label: the active model's verdict, P(NG) per view and Grad-CAM heatmap "
                                    "for every part it has not seen yet (in the background); the part list "
                                    "then orders the queue by the model's uncertainty")
        self.predict_btn.clicked.connect(self.predict_clicked.emit)
        ml.addWidget(self.prediction)
        ml.addWidget(self.heatmap)
        ml.addWidget(self.accept_btn)
        ml.addWidget(self.predict_btn)
        self.check_btn = QPushButton()  # text, tooltip and job: app.views.label_check
        ml.addWidget(self.check_btn)
        lay.addWidget(model)

    # ------------------------------------------------------------------ binding values
    def set_classes(self, classes: Sequence[DefectClass]) -> None:
        for b in list(self.class_group.buttons()):
            self.class_group.removeButton(b)
            b.deleteLater()
        for box in self.also.values():
            box.deleteLater()
        self.also = {}
        for i, c in enumerate(classes[:9], start=1):
            b = QPushButton(f"{i}  {c.name}")
            b.setCheckable(True)
            b.setStyleSheet(f"QPushButton {{ border-left: 8px solid {c.color}; text-align: left; }}")
            b.setEnabled(not c.retired)
            self.class_group.addButton(b, i)
            self.class_grid.addWidget(b, (i - 1), 0)
            box = QCheckBox("also")
            box.setToolTip(f"The part also holds '{c.name}' (Ctrl+{i}); the pressed button is its main class")
            box.setEnabled(not c.retired)
            # clicked, not toggled: show_part sets the boxes without emitting anything
            box.clicked.connect(lambda _=False, i=i: self.also_toggled.emit(i))
            self.also[i] = box
            self.class_grid.addWidget(box, (i - 1), 1)
        self.class_box.setVisible(bool(classes))

    def show_class(self, index: int) -> None:
        b = self.class_group.button(index)
        if b is not None:
            b.setChecked(True)

    def show_tool(self, tool: str, radius: int, opacity: float) -> None:
        self.tool_buttons[tool].setChecked(True)
        for w, v in ((self.radius, radius), (self.opacity, round(opacity * 100))):
            w.blockSignals(True)
            w.setValue(v)
            w.blockSignals(False)

    def show_part(self, part: Part | None, classes: Sequence[DefectClass], active_model: str | None = None) -> None:
        v = part.verdict if part else Verdict.UNLABELED
        text, name = VERDICT_STYLE[v]
        held = part.label.classes if part and part.label else ()
        names = [classes[c - 1].name for c in held if c <= len(classes)]
        if names:
            text += " · " + " + ".join(names)
        for i, box in self.also.items():
            box.setChecked(i in held[1:])
        self.verdict.setText(text if part else "no part")
        self.verdict.setObjectName(name)
        self.verdict.style().unpolish(self.verdict)
        self.verdict.style().polish(self.verdict)
        if part and part.label:
            lab = part.label
            self.who.setText(f"{part.name}: labeled by {lab.user.name} ({lab.user.role.value.replace('_', ' ')})")
        else:
            self.who.setText(part.name if part else "")
        pred = part.prediction if part else None
        if pred is None:
            self.prediction.setText(
                f"No prediction yet: press 'Predict parts' below (active model {active_model})." if active_model
                else "No prediction yet: make a model active (Train), then press 'Predict parts' below.")
            self.accept_btn.setEnabled(False)
        else:
            scores = ", ".join(f"{s:.2f}" for s in pred.scores)
            cls = f" · {classes[pred.defect_class - 1].name}" if 0 < pred.defect_class <= len(classes) else ""
            color = "#2ecc71" if pred.verdict == Verdict.OK else "#ff4d4d"
            self.prediction.setText(
                f"<b style='color:{color}; font-size:16pt'>{pred.verdict.name}</b>{cls}<br>"
                f"confidence {pred.confidence:.2f} · model {pred.model_id}<br>P(NG) per view: {scores}")
            self.accept_btn.setEnabled(True)
