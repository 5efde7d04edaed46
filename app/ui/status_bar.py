"""Status bar: a message, a progress bar with ETA, a Cancel button, and folder counts."""
from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from .icons import icon


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s left"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s left"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min left"


class ProgressStatusBar(QStatusBar):
    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(True)
        self.eta = QLabel(self)
        self.cancel = QPushButton(icon("cancel"), "Cancel", self)
        self.cancel.setObjectName("cancelButton")
        self.cancel.clicked.connect(self.cancelRequested)
        self.counts = QLabel(self)
        for w in (self.task, self.bar, self.eta, self.cancel):
            self.addPermanentWidget(w)
        self.addPermanentWidget(self.counts)
        self._start = 0.0
        self._start_done = 0
        self.finish()

    def begin(self, task: str, total: int = 0, cancellable: bool = True) -> None:
        self.task.setText(task)
        self.task.show()
        self.bar.setRange(0, max(0, total))
        self.bar.setValue(0)
        self.bar.show()
        self.eta.setText("")
        self.eta.show()
        self.cancel.setVisible(cancellable)
        self._start = time.monotonic()
        self._start_done = -1

    def update_progress(self, done: int, total: int) -> None:
        if total <= 0:
            self.bar.setRange(0, 0)
            return
        self.bar.setRange(0, total)
        self.bar.setValue(min(done, total))
        self.bar.setFormat(f"{done:,} / {total:,}")
        now = time.monotonic()
        if self._start_done < 0:  # first report: cached images come at once, do not count them
            self._start, self._start_done = now, done
            return
        rate_done = done - self._start_done
        elapsed = now - self._start
        if rate_done > 0 and elapsed > 0.5:
            self.eta.setText(format_eta((total - done) * elapsed / rate_done))

    def finish(self, message: str = "", timeout_ms: int = 5000) -> None:
        for w in (self.task, self.bar, self.eta, self.cancel):
            w.hide()
        if message:
            self.showMessage(message, timeout_ms)

    @property
    def busy(self) -> bool:
        return self.bar.isVisible()

    def set_counts(self, text: str) -> None:
        self.counts.setText(text)
