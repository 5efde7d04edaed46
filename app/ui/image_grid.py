"""The thumbnail grid: a ``QListView`` in icon mode over ``ImageListModel`` with a painting
delegate (thumbnail, class-colour frame, label + confidence badge).

Keys (labelImg/labelme habits): 1-9 assign the selection to class 1-9, Delete removes
examples, A/D (and the arrows) move. Signals carry *source rows* (indices into
``model.paths``), which stay valid whatever the filter or sort.
"""
from __future__ import annotations

import os

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QModelIndex, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QKeyEvent, QPainter, QPen
from PySide6.QtWidgets import (QAbstractItemView, QListView, QMenu, QStyle,
                               QStyledItemDelegate, QStyleOptionViewItem, QWidget)

from .image_model import UNKNOWN, ImageListModel, Source
from .thumbnails import THUMB_SIZE, ThumbnailCache

CELL = QSize(THUMB_SIZE + 16, THUMB_SIZE + 40)


class ThumbnailDelegate(QStyledItemDelegate):
    def __init__(self, model: ImageListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.small = QFont()
        self.small.setPointSizeF(max(7.0, self.small.pointSizeF() * 0.85))

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802
        return CELL

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        m = self.model
        r = index.row()
        i = m.source_row(r)
        rect = option.rect.adjusted(3, 3, -3, -3)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pal = option.palette
        p.fillRect(option.rect, pal.highlight() if selected else pal.base())
        src = int(m.source[i])
        lab = int(m.label[i])
        color = m.class_color(lab)
        thumb_rect = QRect(rect.left() + 2, rect.top() + 2, rect.width() - 4, THUMB_SIZE + 4)
        pm = m.thumbnails.get(m.paths[i]) if m.thumbnails is not None else None
        if pm is not None:
            s = pm.size().scaled(thumb_rect.size() - QSize(8, 8), Qt.AspectRatioMode.KeepAspectRatio)
            x = thumb_rect.left() + (thumb_rect.width() - s.width()) // 2
            y = thumb_rect.top() + (thumb_rect.height() - s.height()) // 2
            p.drawPixmap(QRect(x, y, s.width(), s.height()), pm)
        else:
            p.fillRect(thumb_rect.adjusted(4, 4, -4, -4), QColor(128, 128, 128, 40))
            if m.thumbnails is not None and m.thumbnails.is_broken(m.paths[i]):
                p.setPen(QPen(QColor("#c0392b"), 3))
                c = thumb_rect.center()
                p.drawLine(c + QPoint(-14, -14), c + QPoint(14, 14))
                p.drawLine(c + QPoint(-14, 14), c + QPoint(14, -14))
        if color is not None and src in (Source.PREDICTED, Source.EXAMPLE, Source.CORRECTED):
            width = 5 if src != Source.PREDICTED else 3
            pen = QPen(color, width)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(thumb_rect.adjusted(1, 1, -1, -1), 4, 4)
        elif lab == UNKNOWN and src == Source.PREDICTED:
            p.setPen(QPen(QColor("#888888"), 2, Qt.PenStyle.DashLine))
            p.drawRoundedRect(thumb_rect.adjusted(1, 1, -1, -1), 4, 4)
        self._badge(p, rect, thumb_rect, m, r, i, src, color, selected, option)
        p.restore()

    def _badge(self, p: QPainter, rect: QRect, thumb_rect: QRect, m: ImageListModel, r: int,
               i: int, src: int, color: QColor | None, selected: bool,
               option: QStyleOptionViewItem) -> None:
        p.setFont(self.small)
        text_rect = QRect(rect.left(), thumb_rect.bottom() + 2, rect.width(), 16)
        name_rect = QRect(rect.left(), text_rect.bottom() + 1, rect.width(), 14)
        if src == Source.NONE:
            label = ""
        elif src == Source.PROBLEM:
            label = "skipped"
        else:
            label = m.label_text(r)
            if src == Source.PREDICTED:
                label += f"  {m.confidence[i]:.0%}"
            elif src == Source.EXAMPLE:
                label += "  ★ example"
            else:
                label += "  ✓ corrected"
        if label:
            bg = color if color is not None else QColor("#777777")
            if src == Source.PROBLEM:
                bg = QColor("#c0392b")
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(bg)
            p.drawRoundedRect(text_rect.adjusted(4, 0, -4, 0), 7, 7)
            p.setPen(QColor("white") if bg.lightness() < 170 else QColor("black"))
            p.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, label)
        pal = option.palette
        p.setPen(pal.highlightedText().color() if selected else pal.text().color())
        name = p.fontMetrics().elidedText(m.paths[i].rsplit("/", 1)[-1], Qt.TextElideMode.ElideMiddle,
                                          name_rect.width() - 6)
        p.drawText(name_rect, Qt.AlignmentFlag.AlignCenter, name)


class ImageGrid(QListView):
    assignRequested = Signal(int, list)   # class index, source rows
    removeRequested = Signal(list)        # source rows (examples/corrections to drop)
    openRequested = Signal(str)
    folderDropped = Signal(str)           # a folder dropped on the grid: open it

    def __init__(self, model: ImageListModel, thumbnails: ThumbnailCache,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image_model = model
        model.thumbnails = thumbnails
        thumbnails.ready.connect(model.thumbnail_ready)
        self.setModel(model)
        model.contentChanged.connect(self.viewport().update)
        self.setItemDelegate(ThumbnailDelegate(model, self))
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        # lay out 100,000 cells in slices between events, not in one long stall
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setGridSize(CELL + QSize(4, 4))
        self.setSpacing(0)
        self.setWrapping(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(CELL.height() // 3)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self.doubleClicked.connect(lambda ix: self.openRequested.emit(model.path_at(ix.row())))
        self._saved_selection: list[str] = []
        self._saved_current: str | None = None
        model.modelAboutToBeReset.connect(self._save_selection)
        model.modelReset.connect(self._restore_selection)
        self.setObjectName("imageGrid")
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)

    # a folder dropped from the file manager opens it ----------------------------------------
    @staticmethod
    def _dropped_folder(e) -> str | None:  # noqa: ANN001
        md = e.mimeData()
        if not md.hasUrls():
            return None
        for u in md.urls():
            p = u.toLocalFile()
            if p and os.path.isdir(p):
                return p
        return None

    def dragEnterEvent(self, e) -> None:  # noqa: ANN001,N802
        if self._dropped_folder(e):
            e.acceptProposedAction()
        else:
            e.ignore()

    def dragMoveEvent(self, e) -> None:  # noqa: ANN001,N802
        if self._dropped_folder(e):
            e.acceptProposedAction()
        else:
            e.ignore()

    def dropEvent(self, e) -> None:  # noqa: ANN001,N802
        folder = self._dropped_folder(e)
        if folder:
            e.acceptProposedAction()
            self.folderDropped.emit(folder)
        else:
            e.ignore()

    # selection ---------------------------------------------------------------------------
    def selected_source_rows(self) -> list[int]:
        rows = sorted(ix.row() for ix in self.selectionModel().selectedIndexes())
        return [self.image_model.source_row(r) for r in rows]

    def select_paths(self, paths: list[str]) -> None:
        sm = self.selectionModel()
        selection = QItemSelection()
        first = None
        for p in paths:
            r = self.image_model.model_row(p)
            if r >= 0:
                ix = self.image_model.index(r)
                selection.select(ix, ix)
                first = first or ix
        # one change for the whole set (a lasso on the map may hand over thousands)
        sm.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        if first is not None:
            sm.setCurrentIndex(first, QItemSelectionModel.SelectionFlag.NoUpdate)
            self.scrollTo(first)

    def _save_selection(self) -> None:
        m = self.image_model
        self._saved_selection = [m.path_at(ix.row()) for ix in self.selectionModel().selectedIndexes()
                                 if ix.row() < len(m.view)][:10000]
        cur = self.currentIndex()
        self._saved_current = m.path_at(cur.row()) if cur.isValid() and cur.row() < len(m.view) else None

    def _restore_selection(self) -> None:
        m = self.image_model
        sm = self.selectionModel()
        for p in self._saved_selection:
            r = m.model_row(p)
            if r >= 0:
                sm.select(m.index(r), QItemSelectionModel.SelectionFlag.Select)
        if self._saved_current:
            r = m.model_row(self._saved_current)
            if r >= 0:
                sm.setCurrentIndex(m.index(r), QItemSelectionModel.SelectionFlag.NoUpdate)

    # keys and menu -------------------------------------------------------------------------
    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        key = e.key()
        mods = e.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if Qt.Key.Key_1 <= key <= Qt.Key.Key_9 and mods == Qt.KeyboardModifier.NoModifier:
            rows = self.selected_source_rows()
            if rows:
                self.assignRequested.emit(key - Qt.Key.Key_1, rows)
            e.accept()
            return
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            rows = self.selected_source_rows()
            if rows:
                self.removeRequested.emit(rows)
            e.accept()
            return
        if key in (Qt.Key.Key_A, Qt.Key.Key_D) and mods == Qt.KeyboardModifier.NoModifier:
            self._step(-1 if key == Qt.Key.Key_A else 1)
            e.accept()
            return
        super().keyPressEvent(e)

    def _step(self, delta: int) -> None:
        n = self.image_model.rowCount()
        if not n:
            return
        cur = self.currentIndex()
        r = min(max((cur.row() if cur.isValid() else -1) + delta, 0), n - 1)
        ix = self.image_model.index(r)
        self.selectionModel().setCurrentIndex(ix, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.scrollTo(ix)

    def _context_menu(self, pos: QPoint) -> None:
        menu = self.context_menu()
        if menu is not None:
            menu.exec(self.viewport().mapToGlobal(pos))

    def context_menu(self) -> QMenu | None:
        """The right-click menu for the current selection (None when nothing is selected)."""
        rows = self.selected_source_rows()
        if not rows:
            return None
        menu = QMenu(self)
        sub = menu.addMenu("Assign to class")
        for k, c in enumerate(self.image_model.classes):
            a = QAction(f"{c.name}" + (f"\t{k + 1}" if k < 9 else ""), sub)
            a.triggered.connect(lambda _=False, k=k, rows=rows: self.assignRequested.emit(k, rows))
            sub.addAction(a)
        sub.setEnabled(bool(self.image_model.classes))
        rm = menu.addAction("Remove from examples\tDel")
        rm.triggered.connect(lambda: self.removeRequested.emit(rows))
        op = menu.addAction("Open image")
        op.triggered.connect(lambda: self.openRequested.emit(self.image_model.paths[rows[0]]))
        return menu
