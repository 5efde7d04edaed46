"""The Map: every folder image as a point of a 2-D projection of its features (t-SNE,
``app/core/projection.py``), coloured by predicted class, unknown grey, examples larger.

Drag draws a lasso (Shift+drag or the middle button pans; the wheel zooms); 1-9 or the
right-click menu assign the class to every selected image, through the same undoable edit
as the grid (``assignRequested``). A click selects the image under the cursor; the
window keeps the grid's selection and the map's in step (``rowsSelected`` /
``show_selection``). Hovering shows the image's thumbnail.

pyqtgraph draws the points: one ``ScatterPlotItem`` a class (a single brush each, no
per-point objects), so recolouring 100,000 points is a few boolean masks and pan and zoom
stay smooth (frame times: ``bench/bench_map.py``).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QKeyEvent, QPainterPath, QPen
from PySide6.QtWidgets import (QGraphicsPathItem, QHBoxLayout, QLabel, QMenu, QProgressBar,
                               QPushButton, QVBoxLayout, QWidget)

from .image_model import PENDING, UNKNOWN, ImageListModel, Source

GREY = "#9e9e9e"
PENDING_GREY = "#d0d0d0"
HOVER_PX = 8
MAX_LASSO_VERTICES = 256


def inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test of (n, 2) ``points`` against an (m, 2) ``polygon``,
    vectorised over the points (one pass per edge)."""
    x, y = points[:, 0], points[:, 1]
    hit = np.zeros(len(points), bool)
    if len(polygon) < 3:
        return hit
    xj, yj = polygon[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        for xi, yi in polygon:
            crosses = (yi > y) != (yj > y)
            hit ^= crosses & (x < (xj - xi) * (y - yi) / (yj - yi) + xi)
            xj, yj = xi, yi
    return hit


class LassoViewBox(pg.ViewBox):
    """Left-drag draws a lasso; Shift+left or middle drag pans; clicks and hovers are
    reported in data coordinates."""
    lassoFinished = Signal(object)        # (m, 2) polygon, data coordinates
    clicked = Signal(object)              # QPointF, data coordinates
    hovered = Signal(object, object)      # QPointF data, QPointF screen (None: left)
    menuRequested = Signal(object)        # QPoint, screen

    def __init__(self) -> None:
        super().__init__(enableMenu=False)
        self._lasso: list[QPointF] = []
        self._path_item = QGraphicsPathItem()
        pen = QPen(QColor("#1565c0"))
        pen.setCosmetic(True)
        pen.setWidth(2)
        pen.setStyle(Qt.PenStyle.DashLine)
        self._path_item.setPen(pen)
        self._path_item.setZValue(1e6)
        self.addItem(self._path_item, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: ANN001, N802
        shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if ev.button() != Qt.MouseButton.LeftButton or shift:
            if ev.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
                # pan: what pyqtgraph does with the left button in its pan mode
                ev.accept()
                tr = self.childGroup.transform()
                tr = pg.functions.invertQTransform(tr)
                d = tr.map(ev.pos()) - tr.map(ev.lastPos())
                self.translateBy(x=-d.x(), y=-d.y())
                return
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        if ev.isStart():
            self._lasso = []
        self._lasso.append(self.mapSceneToView(ev.scenePos()))
        path = QPainterPath(self._lasso[0])
        for p in self._lasso[1:]:
            path.lineTo(p)
        self._path_item.setPath(path)
        if ev.isFinish():
            poly = np.array([[p.x(), p.y()] for p in self._lasso], np.float64)
            if len(poly) > MAX_LASSO_VERTICES:
                poly = poly[np.linspace(0, len(poly) - 1, MAX_LASSO_VERTICES).astype(int)]
            self._path_item.setPath(QPainterPath())
            self._lasso = []
            self.lassoFinished.emit(poly)

    def mouseClickEvent(self, ev) -> None:  # noqa: ANN001, N802
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.clicked.emit(self.mapSceneToView(ev.scenePos()))
        elif ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            self.menuRequested.emit(ev.screenPos().toPoint())

    def hoverEvent(self, ev) -> None:  # noqa: ANN001, N802
        if ev.isExit():
            self.hovered.emit(None, None)
        else:
            self.hovered.emit(self.mapSceneToView(ev.scenePos()), ev.screenPos())


class MapView(QWidget):
    TAB_TIP = "Every image as a point, similar images close together: lasso a group and press 1-9"
    assignRequested = Signal(int, list)   # class index, source rows (the grid's edit)
    rowsSelected = Signal(list)           # source rows selected on the map
    updateRequested = Signal()            # the user asked for the map (button)
    cancelRequested = Signal()

    def __init__(self, model: ImageListModel, thumbnails=None,  # noqa: ANN001
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mapView")
        self.model = model
        self.thumbnails = thumbnails
        self.xy = np.full((0, 2), np.nan, np.float32)   # per model.paths row; NaN: not mapped
        self.selected = np.zeros(0, np.int64)
        self._hover_path: str | None = None
        self._paths: list[str] | None = None

        bar = QHBoxLayout()
        bar.setContentsMargins(6, 2, 6, 2)
        self.info = QLabel("", self)
        self.info.setObjectName("mapInfo")
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.update_button = QPushButton("Update map", self)
        self.update_button.setToolTip("Map the folder's images again (new images are placed "
                                      "on the current map as they come)")
        self.update_button.clicked.connect(self.updateRequested)
        bar.addWidget(self.info, 1)
        bar.addWidget(self.progress)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.update_button)

        self.view = LassoViewBox()
        self.plot = pg.PlotWidget(viewBox=self.view, background="w")
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setMouseTracking(True)
        self.tip = QLabel(self)
        self.tip.setObjectName("mapThumbnail")
        self.tip.setWindowFlags(Qt.WindowType.ToolTip)
        self.tip.hide()

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(bar)
        lay.addWidget(self.plot, 1)

        self._items: list[pg.ScatterPlotItem] = []
        self._examples = pg.ScatterPlotItem(size=11, pen=pg.mkPen("#212121", width=1.5), pxMode=True)
        self._examples.setZValue(10)
        self._selection = pg.ScatterPlotItem(size=12, brush=None,
                                             pen=pg.mkPen("#1565c0", width=2), pxMode=True)
        self._selection.setZValue(20)
        self._queue = pg.ScatterPlotItem(size=14, brush=None, symbol="star",
                                         pen=pg.mkPen("#ff6f00", width=2), pxMode=True)
        self._queue.setZValue(15)
        self.view.addItem(self._examples)
        self.view.addItem(self._selection)
        self.view.addItem(self._queue)
        self.view.lassoFinished.connect(self._lasso)
        self.view.clicked.connect(self._click)
        self.view.hovered.connect(self._hover)
        self.view.menuRequested.connect(self._menu)
        self._recolour_timer = QTimer(self)
        self._recolour_timer.setSingleShot(True)
        self._recolour_timer.setInterval(150)
        # hidden (the Grid tab in front): nothing to draw; showing it recolours
        self._recolour_timer.timeout.connect(lambda: self.isVisible() and self.recolour())
        model.contentChanged.connect(self._recolour_timer.start)
        model.modelReset.connect(self._paths_changed)
        if thumbnails is not None:
            thumbnails.ready.connect(self._thumbnail_ready)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._paths_changed()
        self.recolour()

    def showEvent(self, e) -> None:  # noqa: ANN001, N802
        super().showEvent(e)
        self.recolour()

    # data ------------------------------------------------------------------------------
    def _paths_changed(self) -> None:
        """The grid model was reset: by a new folder (a new ``paths`` list: its positions
        come from the controller) or by a new filter or sort (same paths: nothing moves)."""
        if self._paths is not self.model.paths:
            self._paths = self.model.paths
            self.xy = np.full((len(self._paths), 2), np.nan, np.float32)
            self.selected = np.zeros(0, np.int64)
        if self.isVisible():
            self.recolour()

    def set_positions(self, positions: dict[str, tuple[float, float]], fit: bool = False) -> None:
        """Positions by path (images of the folder not in it stay unmapped)."""
        xy = np.full((len(self.model.paths), 2), np.nan, np.float32)
        for p, i in self.model.row_of.items():
            v = positions.get(p)
            if v is not None:
                xy[i] = v
        self.xy = xy
        self.recolour()
        if fit:
            self.view.autoRange(padding=0.05)

    def mapped(self) -> np.ndarray:
        return np.flatnonzero(~np.isnan(self.xy[:, 0])) if len(self.xy) else np.zeros(0, np.int64)

    def recolour(self) -> None:
        m = self.model
        rows = self.mapped()
        groups: list[tuple[str, np.ndarray]] = []
        if len(rows) and len(m.label) == len(self.xy):
            label, source = m.label[rows], m.source[rows]
            for k, c in enumerate(m.classes):
                groups.append((c.color, rows[label == k]))
            groups.append((GREY, rows[label == UNKNOWN]))
            groups.append((PENDING_GREY, rows[(label == PENDING) | (label >= len(m.classes))]))
            sure = rows[np.isin(source, (Source.EXAMPLE, Source.CORRECTED))]
        else:
            groups.append((PENDING_GREY, rows))
            sure = np.zeros(0, np.int64)
        while len(self._items) < len(groups):
            item = pg.ScatterPlotItem(size=5, pen=None, pxMode=True)
            self.view.addItem(item)
            self._items.append(item)
        size = 8 if len(rows) < 2000 else 5 if len(rows) < 20000 else 3  # dense maps: smaller
        for item, (colour, idx) in zip(self._items, groups):
            item.setData(x=self.xy[idx, 0], y=self.xy[idx, 1], brush=pg.mkBrush(colour),
                         pen=None, size=size)
        for item in self._items[len(groups):]:
            item.setData(x=[], y=[])
        brushes = [pg.mkBrush(m.classes[l].color) if 0 <= l < len(m.classes) else pg.mkBrush(GREY)
                   for l in (m.label[sure] if len(sure) else [])]
        self._examples.setData(x=self.xy[sure, 0], y=self.xy[sure, 1], brush=brushes or None)
        # "Label these next" (the grid's queue), starred, while any image is no example
        queue = np.asarray(m.suggest() if m.suggest and len(rows) and len(sure) < len(rows)
                           else [], np.int64)
        queue = queue[~np.isnan(self.xy[queue, 0])] if len(queue) else queue
        self._queue.setData(x=self.xy[queue, 0], y=self.xy[queue, 1])
        self._show_selection()
        self.info.setText(self._info_text(len(rows)))

    def _info_text(self, mapped: int) -> str:
        n = len(self.model.paths)
        if not n:
            return "Open a folder to see its map."
        if not mapped:
            return "The map appears once the images are embedded."
        return (f"{mapped:,} of {n:,} images mapped · ☆ label these next · drag: lasso · "
                f"Shift+drag: pan · wheel: zoom · 1-9: assign")

    # progress of the projection (driven by the window) ----------------------------------
    def begin(self) -> None:
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.update_button.setEnabled(False)

    def update_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def finish(self, message: str = "") -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self.update_button.setEnabled(True)
        if message:
            self.info.setText(message)

    # selection -------------------------------------------------------------------------
    def show_selection(self, rows) -> None:  # noqa: ANN001
        """Highlight source ``rows`` (the grid's selection)."""
        self.selected = np.asarray(sorted(set(int(r) for r in rows)), np.int64)
        self._show_selection()

    def _show_selection(self) -> None:
        sel = self.selected[self.selected < len(self.xy)] if len(self.selected) else self.selected
        sel = sel[~np.isnan(self.xy[sel, 0])] if len(sel) else sel
        self._selection.setData(x=self.xy[sel, 0], y=self.xy[sel, 1])

    def select(self, rows) -> None:  # noqa: ANN001
        self.show_selection(rows)
        self.rowsSelected.emit([int(r) for r in self.selected])

    def _lasso(self, polygon: np.ndarray) -> None:
        rows = self.mapped()
        self.select(rows[inside(self.xy[rows].astype(np.float64), polygon)])
        self.setFocus()

    def row_at(self, point: QPointF) -> int:
        """The mapped image nearest ``point`` within ``HOVER_PX`` pixels, or -1."""
        rows = self.mapped()
        if not len(rows):
            return -1
        pw, ph = self.view.viewPixelSize()
        d = ((self.xy[rows, 0] - point.x()) / pw) ** 2 + ((self.xy[rows, 1] - point.y()) / ph) ** 2
        i = int(np.argmin(d))
        return int(rows[i]) if d[i] <= HOVER_PX ** 2 else -1

    def _click(self, point: QPointF) -> None:
        r = self.row_at(point)
        self.select([] if r < 0 else [r])
        self.setFocus()

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        key = e.key()
        mods = e.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if Qt.Key.Key_1 <= key <= Qt.Key.Key_9 and mods == Qt.KeyboardModifier.NoModifier:
            if len(self.selected):
                self.assignRequested.emit(key - Qt.Key.Key_1, [int(r) for r in self.selected])
            e.accept()
            return
        if key == Qt.Key.Key_Escape:
            self.select([])
            e.accept()
            return
        super().keyPressEvent(e)

    def context_menu(self) -> QMenu | None:
        rows = [int(r) for r in self.selected]
        if not rows:
            return None
        menu = QMenu(self)
        sub = menu.addMenu(f"Assign {len(rows):,} image{'s' * (len(rows) != 1)} to class")
        for k, c in enumerate(self.model.classes):
            a = QAction(f"{c.name}" + (f"\t{k + 1}" if k < 9 else ""), sub)
            a.triggered.connect(lambda _=False, k=k: self.assignRequested.emit(k, rows))
            sub.addAction(a)
        sub.setEnabled(bool(self.model.classes))
        return menu

    def _menu(self, pos) -> None:  # noqa: ANN001
        menu = self.context_menu()
        if menu is not None:
            menu.exec(pos)

    # hover thumbnails ------------------------------------------------------------------
    def _hover(self, point, screen) -> None:  # noqa: ANN001
        r = -1 if point is None else self.row_at(point)
        if r < 0 or self.thumbnails is None:
            self._hover_path = None
            self.tip.hide()
            return
        self._hover_path = self.model.paths[r]
        self._show_tip(screen)

    def _show_tip(self, screen=None) -> None:  # noqa: ANN001
        path = self._hover_path
        pix = self.thumbnails.get(path) if path else None
        if pix is None:
            return  # asked for; shown when it is ready
        self.tip.setPixmap(pix)
        self.tip.setToolTip(path)
        self.tip.adjustSize()
        if screen is not None:
            self.tip.move(int(screen.x()) + 16, int(screen.y()) + 16)
        self.tip.show()

    def _thumbnail_ready(self, path: str) -> None:
        if path == self._hover_path:
            self._show_tip()
