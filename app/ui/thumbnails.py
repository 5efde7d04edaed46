"""Lazy thumbnails: decoded in a small thread pool, kept in an LRU cache of QPixmaps.

``ThumbnailCache.get(path)`` returns the pixmap at once when cached, otherwise ``None``
and queues the file; ``ready(path)`` is emitted (GUI thread) when it arrives. Requests
are served newest first and the queue is bounded, so scrolling quickly through 100,000
images decodes only what the user is looking at. A file that cannot be decoded gets a
"broken" placeholder (and is not retried).
"""
from __future__ import annotations

import threading
from collections import OrderedDict, deque

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader, QPixmap

from app.core import images as core_images  # Pillow only (no torch): safe on the GUI thread

THUMB_SIZE = 128


def read_thumbnail(path: str, size: int = THUMB_SIZE) -> QImage:
    """Decode ``path`` scaled to fit ``size`` (EXIF orientation applied). Returns a null
    QImage on failure. Safe in any thread (QImage, not QPixmap)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    reader.setDecideFormatFromContent(True)
    s = reader.size()
    if s.isValid() and s.width() > 0 and s.height() > 0:
        if s.width() * s.height() > 200_000_000:
            return QImage()
        scaled = s.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio)
        reader.setScaledSize(scaled.expandedTo(QSize(1, 1)))
    img = reader.read()
    if img.isNull():
        img = _fallback(path, size)
    elif img.width() > size or img.height() > size:
        img = img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.SmoothTransformation)
    return img


def _fallback(path: str, size: int) -> QImage:
    """Formats Qt cannot read (e.g. CMYK TIFF, 16-bit) go through the core's Pillow loader."""
    try:
        pil = core_images.load_thumbnail(path, size)
        data = pil.tobytes("raw", "RGB")
        img = QImage(data, pil.width, pil.height, pil.width * 3, QImage.Format.Format_RGB888)
        return img.copy()  # own the buffer
    except Exception:
        return QImage()


class _Signals(QObject):
    loaded = Signal(str, QImage)


class _Loader(QRunnable):
    def __init__(self, owner: "ThumbnailCache") -> None:
        super().__init__()
        self.owner = owner

    def run(self) -> None:
        while True:
            path = self.owner._next_request()
            if path is None:
                return
            img = read_thumbnail(path, self.owner.size)
            try:
                self.owner._signals.loaded.emit(path, img)
            except RuntimeError:  # the cache was deleted (window closed): stop quietly
                return


class ThumbnailCache(QObject):
    ready = Signal(str)

    def __init__(self, capacity: int = 1200, size: int = THUMB_SIZE, threads: int = 2,
                 max_pending: int = 400, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self.capacity = capacity
        self.max_pending = max_pending
        self._cache: OrderedDict[str, QPixmap] = OrderedDict()
        self._broken: set[str] = set()
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._active = 0
        self._threads = threads
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._signals = _Signals()
        self._signals.loaded.connect(self._on_loaded, Qt.ConnectionType.QueuedConnection)

    # GUI thread -------------------------------------------------------------------
    def get(self, path: str) -> QPixmap | None:
        pm = self._cache.get(path)
        if pm is not None:
            self._cache.move_to_end(path)
            return pm
        if path not in self._broken:
            self._request(path)
        return None

    def is_broken(self, path: str) -> bool:
        return path in self._broken

    def cached(self, path: str) -> QPixmap | None:
        return self._cache.get(path)

    def forget(self, path: str) -> None:
        self._cache.pop(path, None)
        self._broken.discard(path)

    def clear_queue(self) -> None:
        with self._lock:
            self._queue.clear()
            self._queued.clear()

    def wait(self, msecs: int = 10000) -> bool:
        self.clear_queue()
        return self._pool.waitForDone(msecs)

    def _request(self, path: str) -> None:
        with self._lock:
            if path in self._queued:
                return
            self._queue.append(path)
            self._queued.add(path)
            while len(self._queue) > self.max_pending:
                self._queued.discard(self._queue.popleft())
            start = self._active < self._threads
            if start:
                self._active += 1
        if start:
            self._pool.start(_Loader(self))

    def _on_loaded(self, path: str, img: QImage) -> None:
        with self._lock:
            self._queued.discard(path)
        if img.isNull():
            self._broken.add(path)
        else:
            self._cache[path] = QPixmap.fromImage(img)
            self._cache.move_to_end(path)
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        self.ready.emit(path)

    # worker threads -----------------------------------------------------------------
    def _next_request(self) -> str | None:
        with self._lock:
            if not self._queue:
                self._active -= 1
                return None
            return self._queue.pop()  # newest first: what is on screen now (stays in
            # _queued until loaded, so a repeated request does not decode it twice)
