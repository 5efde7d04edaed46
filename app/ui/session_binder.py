"""Keeps the views in step with the session: session events (core observer callbacks) are
coalesced with a short timer, then the grid model, class panel, review bar and problems
view are refreshed from the session's vectorised accessors."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from ..core.events import SessionEvent, Topic

from .class_panel import ClassPanel, ClassView
from .image_model import PENDING, UNKNOWN, ClassStyle, ImageListModel, Source
from .problems_view import ProblemsView
from .review_bar import ReviewBar

if TYPE_CHECKING:
    from app.core.session import Session


def grid_state(session: "Session", paths: list[str], row_of: dict[str, int]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label index | PENDING | UNKNOWN, confidence, Source) per folder image."""
    ids, conf = session.prediction_arrays()
    n = len(paths)
    if len(ids) != n:  # folder being replaced; the next event brings matching arrays
        return (np.full(n, PENDING, np.int32), np.zeros(n, np.float32), np.zeros(n, np.uint8))
    label = np.full(n, PENDING, np.int32)
    for k, c in enumerate(session.classes):
        label[ids == c.id] = k
    pending = np.isnan(conf)
    label[(ids == -1) & ~pending] = UNKNOWN
    source = np.where(pending, Source.NONE, Source.PREDICTED).astype(np.uint8)
    for e in session.examples:
        i = row_of.get(e.path)
        if i is not None:
            source[i] = Source.CORRECTED if e.source == "corrected" else Source.EXAMPLE
    return label, np.nan_to_num(conf, nan=0.0).astype(np.float32), source


class SessionBinder(QObject):
    historyChanged = Signal()
    modifiedChanged = Signal(bool)
    countsChanged = Signal(dict)
    examplesChanged = Signal()    # examples/classes/folder changed: embedding may be needed
    stale = Signal()              # scoring inputs changed: rescore

    def __init__(self, session: "Session", model: ImageListModel, panel: ClassPanel,
                 review: ReviewBar, problems: ProblemsView, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.model = model
        self.panel = panel
        self.review = review
        self.problems = problems
        self._dirty: set[Topic] = set()
        self._shown: set[str] = set()
        self._new_problems: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)
        self._timer.timeout.connect(self.flush)
        self._unsubscribe: Callable[[], None] = session.subscribe(self._on_event)
        model.suggest = self.suggested_rows
        self._dirty.update({Topic.FOLDER, Topic.CLASSES, Topic.EXAMPLES, Topic.PROBLEMS})
        self.flush()

    def suggested_rows(self) -> list[int]:
        """The grid rows of "Label these next" (the session's queue), best first."""
        row_of = self.model.row_of
        return [row_of[p] for p in self.session.suggestions() if p in row_of]

    def detach(self) -> None:
        self._unsubscribe()
        self._timer.stop()

    def _on_event(self, event: SessionEvent) -> None:
        signal = {Topic.HISTORY: self.historyChanged, Topic.STALE: self.stale}.get(event.topic)
        if signal is not None:
            signal.emit()
            return
        if event.topic is Topic.MODIFIED:
            self.modifiedChanged.emit(self.session.modified)
            return
        if event.topic in (Topic.EXAMPLES, Topic.FOLDER):
            self.examplesChanged.emit()
        if event.topic is Topic.PROBLEMS:
            self._new_problems.update(event.paths or ())
        self._dirty.add(event.topic)
        if event.topic in (Topic.FOLDER, Topic.CLASSES):
            self.flush()  # structure changes show at once
        elif not self._timer.isActive():
            # big folders refresh a little less often while results stream in
            self._timer.start(120 if len(self.model.paths) < 20_000 else 400)

    def flush(self) -> None:
        self._timer.stop()
        dirty, self._dirty = self._dirty, set()
        if not dirty:
            return
        s = self.session
        if Topic.FOLDER in dirty:
            self.model.set_paths(s.images)
            self.problems.set_problems(dict(s.problems))
            self._shown = set(s.problems)
            self._new_problems = set()
            self.model.set_problems(s.problems, refresh=False)
        if dirty & {Topic.CLASSES, Topic.MODEL}:
            styles = [ClassStyle(c.name, c.colour) for c in s.classes]
            self.model.classes = styles
            self.review.set_classes(styles)
        if dirty & {Topic.CLASSES, Topic.EXAMPLES}:
            self.panel.set_classes([
                ClassView(c.id, c.name, c.colour, [(e.path, e.source) for e in s.examples_of(c.id)])
                for c in s.classes])
        if Topic.THRESHOLD in dirty:
            self.review.set_threshold(s.threshold)
        if Topic.PROBLEMS in dirty:
            pending, self._new_problems = self._new_problems, set()
            new = {p: s.problems[p] for p in pending if p in s.problems and p not in self._shown}
            self._shown.update(new)
            if new:
                self.problems.add_problems(new)
                self.model.set_problems(new, refresh=False)
        if self.model.paths:
            label, conf, source = grid_state(s, self.model.paths, self.model.row_of)
            self.model.threshold = s.threshold
            self.model.set_state(label, conf, source)
        self.countsChanged.emit(self.model.counts())
