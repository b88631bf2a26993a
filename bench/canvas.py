"""Brush repaint on a 3264x2448 view: time from a mouse move to the repainted canvas.

Each step is one brush move through the canvas's tool API, then the event loop runs until the
view has painted the dirty region (what the user sees), so the figure includes the mask edit,
the overlay recolouring and the drawing. A full-viewport repaint (zoom/pan) is timed apart.
Prints ONE JSON line: p50/p99/max per move in ms, paints seen, undo-stack bytes.
Run: QT_QPA_PLATFORM=offscreen .venv/bin/python bench/canvas.py
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PyQt6.QtCore import QEvent, QObject
from PyQt6.QtWidgets import QApplication


def main() -> None:
    from app.widgets.canvas import MaskCanvas
    from labeling.masktools import MaskEditor
    from labeling.types import BOLT_CLASSES

    app = QApplication.instance() or QApplication([])
    h, w = 2448, 3264
    img = (np.random.default_rng(0).random((h, w)) * 255).astype(np.uint8)
    canvas = MaskCanvas()
    canvas.resize(1280, 900)
    canvas.show()
    canvas.set_view(img, MaskEditor(np.zeros((h, w), np.uint8)), [c.color for c in BOLT_CLASSES])
    canvas.set_brush_radius(25)
    for _ in range(5):
        app.processEvents()
    paints = [0]

    class Count(QObject):
        def eventFilter(self, obj, ev):
            if ev.type() == QEvent.Type.Paint:
                paints[0] += 1
            return False
    counter = Count()
    canvas.viewport().installEventFilter(counter)
    times, full = [], []
    for stroke in range(10):
        y0 = 200 + stroke * 200
        canvas.begin_stroke(100, y0)
        for i in range(60):
            seen = paints[0]
            t = time.perf_counter()
            canvas.stroke_to(100 + i * 50, y0 + 40 * np.sin(i / 5))
            for _ in range(5):  # until the dirty region is painted (usually 1-2 passes)
                app.processEvents()
                if paints[0] > seen:
                    break
            times.append((time.perf_counter() - t) * 1000)
        canvas.end_stroke()
        t = time.perf_counter()
        canvas.viewport().repaint()
        full.append((time.perf_counter() - t) * 1000)
    t = np.array(times)
    print(json.dumps({"bench": "brush_repaint_3264x2448", "moves": len(t),
                      "p50_ms": round(float(np.percentile(t, 50)), 2),
                      "p99_ms": round(float(np.percentile(t, 99)), 2),
                      "max_ms": round(float(t.max()), 2), "target_ms": 16, "paints": paints[0],
                      "full_repaint_p50_ms": round(float(np.median(full)), 2),
                      "undo_bytes_10_strokes": canvas.editor.stack.nbytes,
                      "full_mask_bytes": h * w}))


if __name__ == "__main__":
    main()
