"""The classes panel: one card per class (colour, name, digit key, example thumbnails).

Image files or whole folders dropped from the file manager onto a card become examples
of that class (``filesDropped``); "Add images..." does the same through a file dialog.
The panel only shows state and emits requests; the controller edits the session.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import (QAction, QColor, QDragEnterEvent, QDragMoveEvent, QDropEvent, QIcon,
                           QKeyEvent, QPixmap)
from PySide6.QtWidgets import (QAbstractItemView, QColorDialog, QFileDialog, QFrame, QHBoxLayout,
                               QInputDialog, QLabel, QListView, QListWidget, QListWidgetItem,
                               QMenu, QPushButton, QScrollArea, QSizePolicy, QToolButton,
                               QVBoxLayout, QWidget)

from .icons import colour_icon, icon
from .thumbnails import ThumbnailCache

EXAMPLE_ICON = 56
IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.gif *.webp *.tif *.tiff *.JPG *.JPEG *.PNG)"


@dataclass
class ClassView:
    id: int
    name: str
    colour: str
    examples: list[tuple[str, str]] = field(default_factory=list)  # (path, source)


def local_paths(urls: list[QUrl]) -> list[str]:
    return [u.toLocalFile() for u in urls if u.isLocalFile() and u.toLocalFile()]


class ExampleStrip(QListWidget):
    removeRequested = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(EXAMPLE_ICON, EXAMPLE_ICON))
        self.setGridSize(QSize(EXAMPLE_ICON + 6, EXAMPLE_ICON + 6))
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setWrapping(True)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setFixedHeight(self.height_for(1))
        self.setAcceptDrops(False)  # drops go to the card
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)

    def selected_paths(self) -> list[str]:
        return [it.data(Qt.ItemDataRole.UserRole) for it in self.selectedItems()]

    @staticmethod
    def height_for(rows: int) -> int:
        return rows * (EXAMPLE_ICON + 6) + 6

    def fit_rows(self) -> None:
        """One row of thumbnails, two when they do not fit (then it scrolls)."""
        per_row = max(1, (self.viewport().width() - 4) // (EXAMPLE_ICON + 6))
        rows = 1 if self.count() <= per_row else 2
        if self.height() != self.height_for(rows):
            self.setFixedHeight(self.height_for(rows))

    def resizeEvent(self, e) -> None:  # noqa: ANN001,N802
        super().resizeEvent(e)
        self.fit_rows()

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        if e.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.selectedItems():
            self.removeRequested.emit(self.selected_paths())
            e.accept()
            return
        super().keyPressEvent(e)

    def _menu(self, pos) -> None:  # noqa: ANN001
        paths = self.selected_paths()
        if not paths:
            return
        menu = QMenu(self)
        a = menu.addAction(f"Remove {len(paths)} example{'s' * (len(paths) != 1)}\tDel")
        a.triggered.connect(lambda: self.removeRequested.emit(paths))
        menu.exec(self.viewport().mapToGlobal(pos))


class ClassCard(QFrame):
    filesDropped = Signal(int, list)          # class id, file/folder paths
    renameRequested = Signal(int, str)
    recolourRequested = Signal(int, str)
    deleteRequested = Signal(int)
    removeExamplesRequested = Signal(list)

    def __init__(self, view: ClassView, index: int, thumbnails: ThumbnailCache,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.class_id = view.id
        self.thumbnails = thumbnails
        self.setObjectName("classCard")
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(4)
        top = QHBoxLayout()
        self.colour_button = QToolButton(self)
        self.colour_button.setToolTip("Change colour")
        self.colour_button.clicked.connect(self.ask_colour)
        self.key_label = QLabel(self)
        self.key_label.setObjectName("keyHint")
        self.name_label = QLabel(self)
        self.name_label.setObjectName("className")
        self.name_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.name_label.setMinimumWidth(40)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("countLabel")
        self.count_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.count_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.count_label.setMinimumWidth(20)
        self.add_button = QToolButton(self)
        self.add_button.setText("Add images...")
        self.add_button.setIcon(icon("add-images"))
        self.add_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.add_button.setToolTip("Add images... (or drop files and folders here)")
        self.add_button.clicked.connect(self.ask_files)
        self.menu_button = QToolButton(self)
        self.menu_button.setIcon(icon("menu"))
        self.menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.menu_button)
        menu.addAction("Rename...", self.ask_name)
        menu.addAction("Colour...", self.ask_colour)
        menu.addAction("Add images...", self.ask_files)
        menu.addAction("Add folder...", self.ask_folder)
        menu.addSeparator()
        self.delete_action = QAction(icon("delete"), "Delete class", menu)
        self.delete_action.triggered.connect(lambda: self.deleteRequested.emit(self.class_id))
        menu.addAction(self.delete_action)
        self.menu_button.setMenu(menu)
        self.key_label.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        for w in (self.colour_button, self.key_label, self.name_label, self.count_label,
                  self.add_button, self.menu_button):
            top.addWidget(w, 2 if w is self.name_label else 1 if w is self.count_label else 0)
        lay.addLayout(top)
        self.strip = ExampleStrip(self)
        self.strip.removeRequested.connect(self.removeExamplesRequested)
        self.hint = QLabel("Drop example images or folders here", self)
        self.hint.setObjectName("dropHint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        lay.addWidget(self.strip)
        lay.addWidget(self.hint)
        self._paths: list[str] = []
        thumbnails.ready.connect(self._thumb_ready)
        self.update_view(view, index)

    # state ---------------------------------------------------------------------------
    def update_view(self, view: ClassView, index: int) -> None:
        self.view = view
        self.colour_button.setIcon(colour_icon(view.colour))
        self.key_label.setText(str(index + 1) if index < 9 else "")
        self.key_label.setToolTip(f"Press {index + 1} in the grid to assign images here"
                                  if index < 9 else "")
        self.name_label.setText(view.name)
        n = len(view.examples)
        self.count_label.setText(f"{n} example{'s' * (n != 1)}")
        self.count_label.setMinimumWidth(self.count_label.fontMetrics().horizontalAdvance(
            self.count_label.text()) + 4)
        self.setStyleSheet(f"#classCard {{ border-left: 5px solid {view.colour}; }}")
        paths = [p for p, _ in view.examples]
        if paths != self._paths:
            self._paths = paths
            self.strip.clear()
            for p, src in view.examples:
                it = QListWidgetItem(self._icon_for(p), "")
                it.setData(Qt.ItemDataRole.UserRole, p)
                it.setToolTip(f"{p}\n{'corrected in review' if src == 'corrected' else 'example'}")
                self.strip.addItem(it)
        self.strip.setVisible(bool(paths))
        self.strip.fit_rows()
        self.hint.setVisible(not paths)

    def _icon_for(self, path: str) -> QIcon:
        pm = self.thumbnails.get(path)
        if pm is None:
            pm = QPixmap(EXAMPLE_ICON, EXAMPLE_ICON)
            pm.fill(QColor(128, 128, 128, 50))
        return QIcon(pm)

    def _thumb_ready(self, path: str) -> None:
        if path not in self._paths:
            return
        for i in range(self.strip.count()):
            it = self.strip.item(i)
            if it.data(Qt.ItemDataRole.UserRole) == path:
                pm = self.thumbnails.cached(path)
                if pm is not None:
                    it.setIcon(QIcon(pm))

    # user requests --------------------------------------------------------------------
    def ask_name(self) -> None:
        name, ok = QInputDialog.getText(self, "Rename class", "Name:", text=self.view.name)
        if ok and name.strip():
            self.renameRequested.emit(self.class_id, name)

    def ask_colour(self) -> None:
        c = QColorDialog.getColor(QColor(self.view.colour), self, f"Colour of {self.view.name}")
        if c.isValid():
            self.recolourRequested.emit(self.class_id, c.name())

    def ask_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, f"Add example images to {self.view.name}",
                                                "", IMAGE_FILTER)
        if files:
            self.filesDropped.emit(self.class_id, files)

    def ask_folder(self) -> None:
        d = QFileDialog.getExistingDirectory(self, f"Add a folder of examples to {self.view.name}")
        if d:
            self.filesDropped.emit(self.class_id, [d])

    def mouseDoubleClickEvent(self, e) -> None:  # noqa: ANN001,N802
        if self.name_label.geometry().contains(e.position().toPoint()):
            self.ask_name()
        super().mouseDoubleClickEvent(e)

    # drag and drop ----------------------------------------------------------------------
    def dragEnterEvent(self, e: QDragEnterEvent) -> None:  # noqa: N802
        if e.mimeData().hasUrls() and local_paths(e.mimeData().urls()):
            e.acceptProposedAction()
            self.setProperty("dropTarget", True)
            self.style().polish(self)
        else:
            e.ignore()

    def dragMoveEvent(self, e: QDragMoveEvent) -> None:  # noqa: N802
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dragLeaveEvent(self, e) -> None:  # noqa: ANN001,N802
        self.setProperty("dropTarget", False)
        self.style().polish(self)

    def dropEvent(self, e: QDropEvent) -> None:  # noqa: N802
        self.setProperty("dropTarget", False)
        self.style().polish(self)
        paths = local_paths(e.mimeData().urls()) if e.mimeData().hasUrls() else []
        if paths:
            e.acceptProposedAction()
            self.filesDropped.emit(self.class_id, paths)
        else:
            e.ignore()


class ClassPanel(QWidget):
    addClassRequested = Signal()
    filesDropped = Signal(int, list)
    renameRequested = Signal(int, str)
    recolourRequested = Signal(int, str)
    deleteRequested = Signal(int)
    removeExamplesRequested = Signal(list)

    def __init__(self, thumbnails: ThumbnailCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.setObjectName("classPanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        head = QHBoxLayout()
        title = QLabel("Classes", self)
        title.setObjectName("panelTitle")
        self.add_button = QPushButton(icon("add"), "Add class", self)
        self.add_button.setObjectName("addClassButton")
        self.add_button.clicked.connect(self.addClassRequested)
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(self.add_button)
        lay.addLayout(head)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(250)
        body = QWidget(self.scroll)
        self.cards_layout = QVBoxLayout(body)
        self.cards_layout.setContentsMargins(0, 0, 0, 0)
        self.cards_layout.setSpacing(6)
        self.empty_hint = QLabel("Add a class for each kind of image,\nthen drop a few examples "
                                 "on each.\nTwo classes with one example each\nare enough to "
                                 "start.", body)
        self.empty_hint.setObjectName("emptyHint")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.cards_layout.addWidget(self.empty_hint)
        self.cards_layout.addStretch(1)
        self.scroll.setWidget(body)
        lay.addWidget(self.scroll)
        self.cards: dict[int, ClassCard] = {}

    def set_classes(self, views: list[ClassView]) -> None:
        keep = {v.id for v in views}
        for cid in [c for c in self.cards if c not in keep]:
            card = self.cards.pop(cid)
            self.cards_layout.removeWidget(card)
            card.deleteLater()
        for i, v in enumerate(views):
            card = self.cards.get(v.id)
            if card is None:
                card = ClassCard(v, i, self.thumbnails, self)
                card.filesDropped.connect(self.filesDropped)
                card.renameRequested.connect(self.renameRequested)
                card.recolourRequested.connect(self.recolourRequested)
                card.deleteRequested.connect(self.deleteRequested)
                card.removeExamplesRequested.connect(self.removeExamplesRequested)
                self.cards[v.id] = card
            else:
                card.update_view(v, i)
            self.cards_layout.removeWidget(card)
            self.cards_layout.insertWidget(i, card)
        self.empty_hint.setVisible(not views)

    def card(self, class_id: int) -> ClassCard:
        return self.cards[class_id]
