"""One ``QAbstractListModel`` for the whole folder (100,000 rows is fine).

Per-image state lives in numpy arrays (label, confidence, source), so a batch of
predictions is one vectorised update and one ``dataChanged``; filtering by class and
sorting by confidence compute an index array (``view``) with numpy instead of a
Python ``lessThan`` per comparison. Rows of the model are rows of ``view``.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from PySide6.QtCore import (QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt,
                            QTimer, Signal)
from PySide6.QtGui import QColor

PENDING = -1   # not classified yet
BIG_FOLDER = 20_000  # above this, re-sorting while results stream is rate-limited
RESORT_S = 1.0
UNKNOWN = -2   # classified, but below the confidence threshold

Index = QModelIndex | QPersistentModelIndex


class Source(IntEnum):
    NONE = 0        # waiting for a prediction
    PREDICTED = 1
    EXAMPLE = 2
    CORRECTED = 3
    PROBLEM = 4     # could not be read; reason in ``problems``


class Roles(IntEnum):
    PATH = Qt.ItemDataRole.UserRole + 1
    LABEL = Qt.ItemDataRole.UserRole + 2        # class index, PENDING or UNKNOWN
    CONFIDENCE = Qt.ItemDataRole.UserRole + 3
    SOURCE = Qt.ItemDataRole.UserRole + 4
    SOURCE_ROW = Qt.ItemDataRole.UserRole + 5   # index into ``paths``


class Filter(IntEnum):
    ALL = -100
    PENDING = -101
    UNKNOWN = -102
    EXAMPLES = -103
    PROBLEMS = -104
    SUGGESTED = -105    # "Label these next", in the queue's order
    # >= 0: a class index


class Sort(IntEnum):
    NAME = 0
    LEAST_CONFIDENT = 1
    MOST_CONFIDENT = 2


@dataclass(frozen=True)
class ClassStyle:
    name: str
    color: str  # "#rrggbb"


class ImageListModel(QAbstractListModel):
    contentChanged = Signal()  # labels/confidences of (possibly) every row changed

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.paths: list[str] = []
        self.row_of: dict[str, int] = {}
        self.label = np.zeros(0, np.int32)
        self.confidence = np.zeros(0, np.float32)
        self.source = np.zeros(0, np.uint8)
        self.problems: dict[str, str] = {}
        self.problem_mask = np.zeros(0, bool)
        self.classes: list[ClassStyle] = []
        self.threshold = 0.0
        self.filter: int = Filter.ALL
        self.sort: int = Sort.NAME
        self.view = np.zeros(0, np.int64)        # model row -> source row
        self.inverse = np.zeros(0, np.int64)     # source row -> model row or -1
        self.thumbnails = None                   # ThumbnailCache, set by the grid
        self.suggest = None                      # () -> source rows to label next (binder)
        self._last_view = 0.0
        self._view_timer = QTimer(self)
        self._view_timer.setSingleShot(True)
        self._view_timer.timeout.connect(lambda: self.refresh_view(force=True))

    # content ------------------------------------------------------------------------
    def set_paths(self, paths: list[str]) -> None:
        self.beginResetModel()
        self.paths = list(paths)
        self.row_of = {p: i for i, p in enumerate(self.paths)}
        n = len(self.paths)
        self.label = np.full(n, PENDING, np.int32)
        self.confidence = np.zeros(n, np.float32)
        self.source = np.zeros(n, np.uint8)
        self.problems = {}
        self.problem_mask = np.zeros(n, bool)
        self._compute_view()
        self.endResetModel()

    def set_classes(self, classes: list[ClassStyle]) -> None:
        self.classes = list(classes)
        self._changed_all()

    def set_threshold(self, t: float) -> None:
        self.threshold = float(t)
        self.refresh_view()

    def set_state(self, label: np.ndarray, confidence: np.ndarray, source: np.ndarray) -> None:
        """Whole-folder update (arrays aligned with ``paths``); labels below the threshold
        should already be ``UNKNOWN``."""
        self.label = np.asarray(label, np.int32).copy()
        self.confidence = np.asarray(confidence, np.float32).copy()
        src = np.asarray(source, np.uint8).copy()
        src[self.problem_mask] = Source.PROBLEM
        self.source = src
        self.refresh_view()

    def set_problems(self, problems: dict[str, str], refresh: bool = True) -> None:
        """Add skipped files (path -> reason); only folder images are kept here."""
        rows = [self.row_of[p] for p in problems if p in self.row_of]
        if rows:
            self.problems.update({self.paths[i]: problems[self.paths[i]] for i in rows})
            self.problem_mask[rows] = True
            self.source[rows] = Source.PROBLEM
            self.label[rows] = PENDING
            if refresh:
                self.refresh_view()

    def refresh_view(self, force: bool = False) -> None:
        """Recompute filter/sort when they depend on the data, else just repaint.

        Re-ordering makes the view lay out every row again (~0.3 s at 100,000 rows), so for
        big folders the order follows streaming results at most every ``RESORT_S`` seconds
        (the badges themselves update at once); user choices (``set_view_options``) apply
        immediately."""
        if self.filter == Filter.ALL and self.sort == Sort.NAME:
            self._changed_all()
            return
        wait = self._last_view + RESORT_S - time.monotonic()
        if not force and len(self.paths) > BIG_FOLDER and wait > 0:
            self._changed_all()
            if not self._view_timer.isActive():
                self._view_timer.start(int(wait * 1000) + 1)
            return
        self._view_timer.stop()
        self._last_view = time.monotonic()
        old = self.view
        new = self._view_array()
        if len(old) == len(new) and np.array_equal(old, new):
            self._changed_all()
            return
        if len(old) == len(new):
            self._relayout(new)  # same rows, new order: selection and scroll position stay
            return
        self.beginResetModel()
        self._set_view(new)
        self.endResetModel()

    def _relayout(self, new: np.ndarray) -> None:
        self.layoutAboutToBeChanged.emit()
        old = self.view
        self._set_view(new)
        before = self.persistentIndexList()
        after = []
        for ix in before:
            r = int(self.inverse[old[ix.row()]]) if 0 <= ix.row() < len(old) else -1
            after.append(self.index(r) if r >= 0 else QModelIndex())
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    def set_view_options(self, filter_: int | None = None, sort: int | None = None) -> None:
        if filter_ is not None:
            self.filter = int(filter_)
        if sort is not None:
            self.sort = int(sort)
        self._view_timer.stop()
        self._last_view = time.monotonic()
        self.beginResetModel()
        self._compute_view()
        self.endResetModel()

    # view computation ----------------------------------------------------------------
    def _view_array(self) -> np.ndarray:
        n = len(self.paths)
        f = self.filter
        if f == Filter.ALL:
            idx = np.arange(n)
        elif f == Filter.PENDING:
            idx = np.flatnonzero(self.source == Source.NONE)
        elif f == Filter.UNKNOWN:
            idx = np.flatnonzero((self.label == UNKNOWN) & (self.source == Source.PREDICTED))
        elif f == Filter.EXAMPLES:
            idx = np.flatnonzero((self.source == Source.EXAMPLE) | (self.source == Source.CORRECTED))
        elif f == Filter.PROBLEMS:
            idx = np.flatnonzero(self.source == Source.PROBLEM)
        elif f == Filter.SUGGESTED:  # already in the order to label them
            return np.asarray(self.suggest() if self.suggest else [], np.int64)
        else:
            idx = np.flatnonzero(self.label == f)
        if self.sort != Sort.NAME and len(idx):
            conf = self.confidence[idx].astype(np.float64)
            # sure labels (examples, corrections) and unclassified rows go last
            sure = np.isin(self.source[idx], (Source.EXAMPLE, Source.CORRECTED))
            none = (self.source[idx] == Source.NONE) | (self.source[idx] == Source.PROBLEM)
            key = conf if self.sort == Sort.LEAST_CONFIDENT else -conf
            key = np.where(sure, 10.0, np.where(none, 20.0, key))
            idx = idx[np.argsort(key, kind="stable")]
        return idx.astype(np.int64)

    def _compute_view(self) -> None:
        self._set_view(self._view_array())

    def _set_view(self, view: np.ndarray) -> None:
        self.view = view
        self.inverse = np.full(len(self.paths), -1, np.int64)
        self.inverse[view] = np.arange(len(view))

    def _changed_all(self) -> None:
        """Every row's state changed. Views repaint what they show (``contentChanged``): a
        whole-range ``dataChanged`` costs an icon-mode QListView ~0.4 s at 100,000 rows."""
        self.contentChanged.emit()

    # lookups ---------------------------------------------------------------------------
    def source_row(self, row: int) -> int:
        return int(self.view[row])

    def path_at(self, row: int) -> str:
        return self.paths[int(self.view[row])]

    def model_row(self, path: str) -> int:
        i = self.row_of.get(path)
        return -1 if i is None else int(self.inverse[i])

    def thumbnail_ready(self, path: str) -> None:
        r = self.model_row(path)
        if r >= 0:
            ix = self.index(r)
            self.dataChanged.emit(ix, ix, [Qt.ItemDataRole.DecorationRole])

    def label_text(self, row: int) -> str:
        i = int(self.view[row])
        lab = int(self.label[i])
        if self.source[i] == Source.PROBLEM:
            return "problem"
        if lab == UNKNOWN:
            return "unknown"
        if 0 <= lab < len(self.classes):
            return self.classes[lab].name
        return ""

    def counts(self) -> dict[str, int]:
        done = int(np.count_nonzero(self.source != Source.NONE))
        return {"total": len(self.paths), "done": done,
                "unknown": int(np.count_nonzero((self.label == UNKNOWN)
                                                & (self.source == Source.PREDICTED))),
                "problems": int(np.count_nonzero(self.source == Source.PROBLEM))}

    # Qt model interface -------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.view)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: ANN201
        if not index.isValid():
            return None
        r = index.row()
        i = int(self.view[r])
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(self.paths[i])
        if role == Roles.PATH:
            return self.paths[i]
        if role == Roles.LABEL:
            return int(self.label[i])
        if role == Roles.CONFIDENCE:
            return float(self.confidence[i])
        if role == Roles.SOURCE:
            return int(self.source[i])
        if role == Roles.SOURCE_ROW:
            return i
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(r, i)
        if role == Qt.ItemDataRole.DecorationRole and self.thumbnails is not None:
            return self.thumbnails.get(self.paths[i])
        return None

    def _tooltip(self, r: int, i: int) -> str:
        path = self.paths[i]
        src = Source(int(self.source[i]))
        if src == Source.PROBLEM:
            return f"{path}\nskipped: {self.problems.get(path, 'cannot read')}"
        if src == Source.NONE:
            return f"{path}\nnot classified yet"
        what = {Source.PREDICTED: "predicted", Source.EXAMPLE: "example",
                Source.CORRECTED: "corrected"}[src]
        return f"{path}\n{self.label_text(r)} ({what}, confidence {self.confidence[i]:.0%})"

    def class_color(self, label: int) -> QColor | None:
        if 0 <= label < len(self.classes):
            return QColor(self.classes[label].color)
        return None
