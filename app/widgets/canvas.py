"""MaskCanvas: one view enlarged, with smooth pan/zoom and mask tools.

Drawing speed: the mask overlay is cut into TILE x TILE RGBA tiles (pyqtgraph ImageItems,
created lazily). A brush move repaints only the tiles its dirty box touches, so a stroke on a
3264x2448 image costs a few 256x256 LUT lookups per mouse move, never a full-image recolour.
Opacity is the tiles' parent item's opacity, so changing it recolours nothing.

Tools: pan, brush, eraser (left drag paints; a click paints a dot), polygon (left clicks add
points, right click / double click / Enter closes), fill (left click floods the image region
under the cursor, scikit-image). Middle drag always pans; the wheel zooms.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPen
from PyQt6.QtWidgets import QGraphicsEllipseItem

from labeling.masktools import Box, Diff, MaskEditor, outline

from .qimage import display_levels

TILE = 256
TOOLS = ("pan", "brush", "eraser", "polygon", "fill")


def class_lut(colors: Sequence[str]) -> np.ndarray:
    """(256, 4) RGBA lookup: class k -> colour k (1-based), 0 transparent, 255 white."""
    lut = np.zeros((256, 4), np.uint8)
    for k, c in enumerate(colors, start=1):
        q = QColor(c)
        lut[k] = (q.red(), q.green(), q.blue(), 255)
    lut[len(colors) + 1:255] = (255, 0, 255, 255)  # unknown classes stay visible
    lut[255] = (255, 255, 255, 255)
    return lut


class _ToolViewBox(pg.ViewBox):
    """A ViewBox that hands left-button work to the canvas's current tool."""

    def __init__(self, canvas: MaskCanvas) -> None:
        super().__init__(invertY=True, lockAspect=True, enableMenu=False)
        self.canvas = canvas

    def _img_pos(self, scene_pos: QPointF) -> tuple[float, float]:
        p = self.mapSceneToView(scene_pos)
        return (p.x(), p.y())

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:
        c = self.canvas
        if ev.button() == Qt.MouseButton.LeftButton and c.tool in ("brush", "eraser") and c.editable:
            ev.accept()
            if ev.isStart():
                c.begin_stroke(*self._img_pos(ev.buttonDownScenePos()))
            c.stroke_to(*self._img_pos(ev.scenePos()))
            if ev.isFinish():
                c.end_stroke()
            return
        if ev.button() == Qt.MouseButton.MiddleButton or (ev.button() == Qt.MouseButton.LeftButton and c.tool == "pan"):
            # pan with either: temporarily act as a pan-mode ViewBox
            ev.accept()
            dif = self.mapToView(ev.lastPos()) - self.mapToView(ev.pos())
            self.translateBy(x=dif.x(), y=dif.y())
            return
        super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev: Any) -> None:
        c = self.canvas
        x, y = self._img_pos(ev.scenePos())
        if not c.editable:
            return super().mouseClickEvent(ev)
        if ev.button() == Qt.MouseButton.LeftButton:
            if c.tool in ("brush", "eraser"):
                ev.accept()
                c.begin_stroke(x, y)
                c.end_stroke()
                return
            if c.tool == "polygon":
                ev.accept()
                c.add_polygon_point(x, y)
                if ev.double():
                    c.close_polygon()
                return
            if c.tool == "fill":
                ev.accept()
                c.fill_at(x, y)
                return
        if ev.button() == Qt.MouseButton.RightButton and c.tool == "polygon":
            ev.accept()
            c.close_polygon()
            return
        super().mouseClickEvent(ev)

    def hoverEvent(self, ev: Any) -> None:
        if not ev.isExit():
            self.canvas.move_cursor(*self._img_pos(ev.scenePos()))


class MaskCanvas(pg.GraphicsView):
    """Shows one view (image + class mask + optional heatmap) and edits its mask."""

    mask_edited = pyqtSignal(object)  # Diff of a finished edit (stroke, polygon, fill, undo, redo)
    cursor_moved = pyqtSignal(float, float)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent, background="#15181d")
        self.vb = _ToolViewBox(self)
        # Ranges are set per view (set_view), never automatically: auto-range over empty content
        # with a locked aspect made pyqtgraph repaint in a loop (see CameraTile).
        self.vb.disableAutoRange()
        self.setCentralItem(self.vb)
        self.image_item = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.vb.addItem(self.image_item)
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256, alpha=True))
        self.heat_item.setOpacity(0.45)
        self.heat_item.setVisible(False)
        self.vb.addItem(self.heat_item)
        self.overlay = pg.ItemGroup()
        self.vb.addItem(self.overlay)
        # A segmentation model's proposal: an outline over the mask, never part of it until accepted.
        self.proposal_item = pg.ImageItem(axisOrder="row-major")
        self.proposal_item.setVisible(False)
        self.vb.addItem(self.proposal_item)
        self.proposal: np.ndarray | None = None
        self.poly_item = pg.PlotCurveItem(pen=pg.mkPen("#00e5ff", width=2))
        self.vb.addItem(self.poly_item)
        self.cursor_item = QGraphicsEllipseItem()
        self.cursor_item.setPen(QPen(QColor("#00e5ff"), 0))
        self.cursor_item.setVisible(False)
        self.vb.addItem(self.cursor_item)
        self.image: np.ndarray | None = None
        self.editor: MaskEditor | None = None
        self.tiles: dict[tuple[int, int], pg.ImageItem] = {}
        self.lut = class_lut([])
        self.lut32 = self.lut.view(np.uint32).ravel()
        self.tile_rgba: dict[tuple[int, int], np.ndarray] = {}
        self.tool = "brush"
        self.brush_radius = 12
        self.value = 1  # class index painted by the brush
        self.editable = True
        self.poly_points: list[tuple[float, float]] = []
        self.set_opacity(0.5)

    # ------------------------------------------------------------------ content
    def set_view(self, image: np.ndarray | None, editor: MaskEditor | None, colors: Sequence[str] = ()) -> None:
        """Show image with the mask held by editor (the canvas edits editor.mask in place)."""
        for item in self.tiles.values():
            if item.scene() is not None:
                item.scene().removeItem(item)
        self.tiles.clear()
        self.tile_rgba.clear()
        self.poly_points.clear()
        self.poly_item.setData([], [])
        self.image, self.editor = image, editor
        self.lut = class_lut(colors)
        self.lut32 = self.lut.view(np.uint32).ravel()
        self.heat_item.setVisible(False)
        self.proposal = None
        self.proposal_item.setVisible(False)
        if image is None:
            self.image_item.clear()
            return
        self.image_item.setImage(image, autoLevels=False, levels=display_levels(image))
        if editor is not None:
            self.repaint_box((0, 0, image.shape[1], image.shape[0]), only_nonzero=True)
        self.fit()

    def fit(self) -> None:
        if self.image is not None:
            h, w = self.image.shape[:2]
            self.vb.setRange(QRectF(0, 0, w, h), padding=0.02)

    def set_heatmap(self, heat: np.ndarray | None, visible: bool = True) -> None:
        """Overlay a (low-resolution) heatmap in 0..1 stretched over the whole view."""
        if heat is None or self.image is None:
            self.heat_item.setVisible(False)
            return
        h, w = self.image.shape[:2]
        self.heat_item.setImage(np.asarray(heat, np.float32), autoLevels=False, levels=(0.0, 1.0))
        self.heat_item.setRect(QRectF(0, 0, w, h))
        self.heat_item.setVisible(visible)

    def set_proposal(self, proposal: np.ndarray | None, classes: set[int] | None = None) -> None:
        """Outline a proposed class-index mask (only `classes`, 1-based, when given) in cyan."""
        if proposal is not None and classes is not None:
            proposal = np.where(np.isin(proposal, list(classes)), proposal, 0).astype(np.uint8)
        self.proposal = proposal
        if proposal is None or self.image is None or not proposal.any():
            self.proposal_item.setVisible(False)
            return
        rgba = np.zeros((*proposal.shape, 4), np.uint8)
        rgba[outline(proposal)] = (0, 229, 255, 255)
        self.proposal_item.setImage(rgba, autoLevels=False)
        self.proposal_item.setVisible(True)

    def accept_proposal(self) -> bool:
        """Copy the shown proposal into the mask where it is empty: one undo step."""
        if self.editor is None or self.proposal is None or not self.editable:
            return False
        diff = self.editor.apply("proposal", self.proposal)
        self._edited(diff)
        return diff is not None

    def set_opacity(self, opacity: float) -> None:
        self.opacity = max(0.0, min(1.0, float(opacity)))
        self.overlay.setOpacity(self.opacity)

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; known: {', '.join(TOOLS)}")
        if tool != "polygon":
            self.poly_points.clear()
            self.poly_item.setData([], [])
        self.tool = tool
        self.cursor_item.setVisible(tool in ("brush", "eraser"))

    def set_brush_radius(self, r: int) -> None:
        self.brush_radius = int(max(1, min(400, r)))
        if self.cursor_item.isVisible():
            c = self.cursor_item.rect().center()
            self.move_cursor(c.x(), c.y())

    # ------------------------------------------------------------------ overlay tiles
    def repaint_box(self, box: Box | None, only_nonzero: bool = False) -> None:
        """Recolour only box (the dirty rectangle) in the overlay tiles it touches.

        Each tile keeps its RGBA pixels as one uint32 per pixel; a move recolours the dirty
        part with one np.take on the 32-bit LUT and re-uploads just that 256x256 tile.
        """
        if box is None or self.editor is None:
            return
        mask = self.editor.mask
        x0, y0, x1, y1 = box
        for ty in range(y0 // TILE, (y1 - 1) // TILE + 1):
            for tx in range(x0 // TILE, (x1 - 1) // TILE + 1):
                key = (ty, tx)
                ox, oy = tx * TILE, ty * TILE
                item = self.tiles.get(key)
                if item is None:
                    sub = mask[oy:oy + TILE, ox:ox + TILE]
                    if only_nonzero and not sub.any():
                        continue
                    item = pg.ImageItem(axisOrder="row-major")
                    item.setPos(ox, oy)
                    item.setParentItem(self.overlay)
                    self.tiles[key] = item
                    self.tile_rgba[key] = np.take(self.lut32, sub)
                else:
                    a, b = max(x0, ox) - ox, max(y0, oy) - oy
                    c, d = min(x1, ox + TILE) - ox, min(y1, oy + TILE) - oy
                    rgba = self.tile_rgba[key]
                    rgba[b:d, a:c] = np.take(self.lut32, mask[oy + b:oy + d, ox + a:ox + c])
                rgba = self.tile_rgba[key]
                item.setImage(rgba.view(np.uint8).reshape(rgba.shape[0], rgba.shape[1], 4), autoLevels=False)

    # ------------------------------------------------------------------ tools (image coordinates)
    def _paint_value(self) -> int:
        return 0 if self.tool == "eraser" else self.value

    def begin_stroke(self, x: float, y: float) -> None:
        if self.editor is None:
            return
        self.repaint_box(self.editor.begin_stroke((x, y), self.brush_radius, self._paint_value()))

    def stroke_to(self, x: float, y: float) -> None:
        if self.editor is None:
            return
        self.repaint_box(self.editor.stroke_to((x, y), self.brush_radius, self._paint_value()))
        self.move_cursor(x, y)

    def end_stroke(self) -> None:
        if self.editor is not None:
            self._edited(self.editor.end_stroke())

    def add_polygon_point(self, x: float, y: float) -> None:
        self.poly_points.append((x, y))
        pts = self.poly_points + [self.poly_points[0]]
        self.poly_item.setData([p[0] for p in pts], [p[1] for p in pts])

    def close_polygon(self) -> None:
        pts, self.poly_points = self.poly_points, []
        self.poly_item.setData([], [])
        if self.editor is not None and len(pts) >= 3:
            self._edited(self.editor.apply("polygon", pts, self.value))

    def fill_at(self, x: float, y: float) -> None:
        if self.editor is not None and self.image is not None:
            self._edited(self.editor.apply("flood", self.image, (x, y), self.value))

    def undo(self) -> None:
        if self.editor is not None:
            box = self.editor.undo()
            self.repaint_box(box)
            if box is not None:
                self.mask_edited.emit(None)

    def redo(self) -> None:
        if self.editor is not None:
            box = self.editor.redo()
            self.repaint_box(box)
            if box is not None:
                self.mask_edited.emit(None)

    def _edited(self, diff: Diff | None) -> None:
        if diff is not None:
            self.repaint_box(diff.box)
            self.mask_edited.emit(diff)

    def move_cursor(self, x: float, y: float) -> None:
        r = self.brush_radius
        self.cursor_item.setRect(QRectF(x - r, y - r, 2 * r, 2 * r))
        self.cursor_moved.emit(x, y)

    # ------------------------------------------------------------------ helpers for callers
    def image_to_widget(self, x: float, y: float) -> Any:
        """Widget (viewport) position of an image pixel: for driving the canvas with QTest."""
        scene = self.vb.mapViewToScene(QPointF(x, y))
        return self.mapFromScene(scene)
