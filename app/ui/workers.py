"""Background jobs with Qt signals; the GUI thread never waits on them.

    job = Job(fn, name="Scanning")        # fn(ctx) -> result; ctx.progress(done, total),
    job.signals.result.connect(...)       # ctx.emit(partial) streams partial results,
    job.signals.finished.connect(...)     # ctx.cancelled() / ctx.cancel_event
    runner.start(job)

``progress(done, total)``, ``partial(obj)`` (streamed results), ``result(obj)`` (the return
value), ``error(str)`` (a one-line message; the traceback goes to the log) and
``finished()`` (always last) are delivered in the GUI thread through queued connections.
``Job.cancel()`` sets a ``threading.Event`` that core functions (``scan``, ``iter_embed``)
check between items; a cancelled job emits neither ``result`` nor ``error``.
"""
from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from ..core.errors import Cancelled

log = logging.getLogger(__name__)


class JobSignals(QObject):
    progress = Signal(int, int)
    partial = Signal(object)
    result = Signal(object)
    error = Signal(str)
    cancelled = Signal()
    finished = Signal()


class JobContext:
    """What a job function sees: progress/partial emitters and the cancel flag."""

    def __init__(self, signals: JobSignals, cancel_event: threading.Event) -> None:
        self._signals = signals
        self.cancel_event = cancel_event

    def progress(self, done: int, total: int) -> None:
        self._signals.progress.emit(int(done), int(total))

    def emit(self, obj: Any) -> None:
        self._signals.partial.emit(obj)

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


class Job(QRunnable):
    def __init__(self, fn: Callable[[JobContext], Any], name: str = "") -> None:
        super().__init__()
        self.setAutoDelete(False)  # the Python object owns the lifetime
        self.fn = fn
        self.name = name
        self.signals = JobSignals()
        self.cancel_event = threading.Event()
        self.done = False

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def is_cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def run(self) -> None:  # worker thread
        ctx = JobContext(self.signals, self.cancel_event)
        try:
            out = self.fn(ctx)
        except Cancelled:  # the core's one cancellation (scan, embedding, scoring)
            self.signals.cancelled.emit()
        except Exception as e:  # reported, never raised into Qt
            log.error("%s failed:\n%s", self.name or "job", traceback.format_exc())
            if self.cancel_event.is_set():
                self.signals.cancelled.emit()
            else:
                self.signals.error.emit(f"{self.name + ': ' if self.name else ''}{error_text(e)}")
        else:
            if self.cancel_event.is_set():
                self.signals.cancelled.emit()
            else:
                self.signals.result.emit(out)
        finally:
            self.done = True
            self.signals.finished.emit()


def error_text(e: BaseException) -> str:
    msg = str(e).strip()
    return msg if msg else type(e).__name__


class JobRunner(QObject):
    """A thread pool that keeps its running jobs alive until they finish."""

    def __init__(self, max_threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.jobs: set[Job] = set()

    def start(self, job: Job) -> Job:
        self.jobs.add(job)
        job.signals.finished.connect(lambda j=job: self.jobs.discard(j))
        self.pool.start(job)
        return job

    def cancel_all(self) -> None:
        for j in list(self.jobs):
            j.cancel()

    def wait(self, msecs: int = 30000) -> bool:
        return self.pool.waitForDone(msecs)

    @property
    def busy(self) -> bool:
        return any(not j.done for j in self.jobs)
