"""Explain view panels: four images side by side, the dataset summary and the shortcut alarm.

ImagePane shows a numpy image scaled to fit (it keeps the pixmap, never the computation).
ShortcutPanel lists the per-camera alarms and emits `apply_roi(camera, [x, y, w, h])` when the
user accepts a suggested ROI; the view does the store call.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QPixmap, QResizeEvent
from PyQt6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.widgets.qimage import to_qimage


class ImagePane(QWidget):
    """A titled image that scales with the widget (aspect kept)."""

    def __init__(self, title: str, parent: QWidget | None = None, smooth: bool = True) -> None:
        super().__init__(parent)
        self.smooth = smooth  # live panes (sorting) scale fast: they change several times a second
        self.title = QLabel(title)
        self.title.setObjectName("tileTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image = QLabel("—")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(120, 90)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self._pix: QPixmap | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.title)
        lay.addWidget(self.image, 1)

    def set_image(self, img: np.ndarray | None, caption: str | None = None) -> None:
        if caption is not None:
            self.title.setText(caption)
        if img is None:
            self._pix = None
            self.image.clear()
            self.image.setText("—")
            return
        self._pix = QPixmap.fromImage(to_qimage(np.ascontiguousarray(img)))
        self._rescale()

    def has_image(self) -> bool:
        return self._pix is not None

    def _rescale(self) -> None:
        if self._pix is not None:
            mode = Qt.TransformationMode.SmoothTransformation if self.smooth \
                else Qt.TransformationMode.FastTransformation
            self.image.setPixmap(self._pix.scaled(self.image.size(), Qt.AspectRatioMode.KeepAspectRatio, mode))

    def resizeEvent(self, ev: QResizeEvent) -> None:
        super().resizeEvent(ev)
        self._rescale()


class SideBySide(QWidget):
    """View | inspector mask | Grad-CAM overlay | agreement."""

    TITLES = ("View", "Inspector mask", "Grad-CAM overlay", "Agreement")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        lay = QHBoxLayout()
        self.panes = [ImagePane(t) for t in self.TITLES]
        for p in self.panes:
            lay.addWidget(p, 1)
        outer.addLayout(lay, 1)
        self.legend = QLabel("Overlay: heatmap colours, <span style='color:#2ecc71'>mask contour</span>, "
                             "white = thresholded heatmap.   Agreement: "
                             "<span style='color:#2ecc71'>mask only</span> · "
                             "<span style='color:#ff4d4d'>heatmap only</span> · "
                             "<span style='color:#ffd24d'>both</span>")
        self.legend.setObjectName("muted")
        outer.addWidget(self.legend)

    def show_images(self, images: list[np.ndarray | None], captions: list[str] | None = None) -> None:
        for i, p in enumerate(self.panes):
            p.set_image(images[i] if i < len(images) else None,
                        captions[i] if captions and i < len(captions) else None)


def _fmt(v: Any) -> str:
    if isinstance(v, dict) and "mean" in v:
        if v.get("mean") is None:
            return "—"
        return f"{v['mean']:.3f} ± {v.get('std') or 0:.3f} (n={v.get('n', '?')})"
    if isinstance(v, float):
        return f"{v:.3f}"
    return "—" if v is None else str(v)


def summary_html(report: dict[str, Any]) -> str:
    """The dataset summary (per class mean +- std) as a small HTML table."""
    t = report.get("totals") or {}
    head = (f"<b>{report.get('parts', 0)} parts, {report.get('views', 0)} views</b> · layer "
            f"<code>{report.get('layer', '?')}</code> · overall IoU {_fmt(t.get('iou'))} · "
            f"energy in mask {_fmt(t.get('energy'))} · lift {_fmt(t.get('lift'))} · "
            f"pointing {_fmt(t.get('pointing'))}")
    rows = [("<tr><th>class</th><th>views</th><th>IoU</th><th>energy in mask</th><th>lift (× flat)</th>"
             "<th>pointing</th><th>centroid (x, y)</th></tr>")]
    for cls, s in (report.get("summary") or {}).items():
        c = s.get("centroid")
        cen = f"{c[0]:.2f}, {c[1]:.2f}" if c else "—"
        rows.append(f"<tr><td>{cls}</td><td>{s.get('views')}</td><td>{_fmt(s.get('iou'))}</td>"
                    f"<td>{_fmt(s.get('energy'))}</td><td>{_fmt(s.get('lift'))}</td>"
                    f"<td>{_fmt(s.get('pointing'))}</td><td>{cen}</td></tr>")
    legend = ("<br><small>lift: energy in the mask over the mask's share of the view (1 = no more than a flat "
              "map; thin cracks score a low IoU and energy even when looked at). Pointing: the peak in the mask "
              "or within half a cell of the layer's map of it.</small>")
    return f"{head}<table cellspacing=6>{''.join(rows)}</table>{legend}"


class ShortcutPanel(QGroupBox):
    """The shortcut alarm per camera, each flagged one with an 'Apply suggested ROI' button."""

    apply_roi = pyqtSignal(str, list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Shortcut alarm", parent)
        self.grid = QGridLayout(self)
        self.buttons: dict[str, QPushButton] = {}
        self.note = QLabel("Run the explanation to check where the model looks.")
        self.note.setObjectName("muted")
        self.note.setWordWrap(True)
        self.grid.addWidget(self.note, 0, 0, 1, 3)

    def show_alarms(self, alarms: list[dict[str, Any]]) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None and item.widget() is not self.note:
                item.widget().deleteLater()
        self.buttons.clear()
        flagged = [a for a in alarms if a.get("flagged")]
        self.note.setText("⚠ The model looks at the same place whatever the part: a shortcut (jig, "
                          "lighting?). Apply the suggested ROI and retrain." if flagged else
                          "No shortcut found: attention does not pile up outside the masks.")
        self.note.setObjectName("pillBad" if flagged else "pillOK")
        self.note.style().unpolish(self.note)
        self.note.style().polish(self.note)
        self.grid.addWidget(self.note, 0, 0, 1, 3)
        for r, a in enumerate(alarms, start=1):
            cam = str(a.get("camera"))
            share = a.get("energy_share")
            detail = a.get("note") or (f"{share:.0%} of the attention in region {a.get('region')}"
                                       if share is not None and a.get("flagged") else "")
            text = (f"<b>{cam}</b>: " + ("<span style='color:#ff4d4d'>FLAGGED</span>" if a.get("flagged") else "ok")
                    + (f" · {detail}" if detail else ""))
            lab = QLabel(text)
            lab.setWordWrap(True)
            self.grid.addWidget(lab, r, 0, 1, 2)
            roi = a.get("suggested_roi")
            if a.get("flagged") and roi:
                btn = QPushButton(f"Apply ROI {list(roi)}")
                btn.setToolTip(f"Set {cam}'s ROI to x, y, w, h = {list(roi)} (excludes the hot region)")
                btn.clicked.connect(lambda _=False, c=cam, v=list(roi): self.apply_roi.emit(c, v))
                self.buttons[cam] = btn
                self.grid.addWidget(btn, r, 2)
