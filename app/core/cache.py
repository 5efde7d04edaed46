"""Persistent embedding cache: one backbone pass per image, ever.

Key: (absolute path, file size, modification time in ns, backbone id). A file that changed
on disk (size or mtime) misses and is re-embedded. Stored in SQLite in WAL mode, so a crash
mid-write loses at most the uncommitted batch (each ``put_many`` is one transaction: a batch
is there whole or not at all), and a second running instance reads and writes the same file
safely (SQLite's locking, with a busy timeout; readers never wait for a writer). A cache
file that is not a readable database (damaged by a disk fault, or not ours) is moved aside
as ``*.corrupt`` and a fresh one started: it is only a cache.

Default location: the user's cache directory (``platformdirs``), overridable with the
``FEWSHOT_CACHE_DIR`` environment variable.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileKey:
    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> "FileKey":
        p = os.path.abspath(os.fspath(path))
        st = os.stat(p)
        return cls(p, int(st.st_size), int(st.st_mtime_ns))


def default_cache_dir() -> Path:
    env = os.environ.get("FEWSHOT_CACHE_DIR")
    if env:
        return Path(env)
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("fewshot-label", appauthor=False))
    except ImportError:  # pragma: no cover - platformdirs is a declared dependency
        return Path.home() / ".cache" / "fewshot-label"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    dim INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (model, path)
) WITHOUT ROWID;
"""


class EmbeddingCache:
    """Thread-safe (one connection, a lock) persistent map FileKey x model -> float32 vector."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            path = default_cache_dir() / "embeddings.sqlite"
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError):  # locked, read-only, ...: not damage
                raise
            aside = self.path.with_name(self.path.name + ".corrupt")
            log.warning("embedding cache %s is unreadable (%s); moved aside to %s and "
                        "starting a new one", self.path, e, aside.name)
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.replace(str(self.path) + suffix, str(aside) + suffix)
                except FileNotFoundError:
                    pass
            self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False,
                             isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "EmbeddingCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_many(self, model: str, keys: Sequence[FileKey]) -> dict[FileKey, np.ndarray]:
        """The cached vectors for those keys that are present and still current."""
        out: dict[FileKey, np.ndarray] = {}
        if not keys:
            return out
        by_path = {k.path: k for k in keys}
        paths = list(by_path)
        with self._lock:
            for i in range(0, len(paths), 900):  # SQLite's variable limit
                chunk = paths[i:i + 900]
                q = ("SELECT path, size, mtime_ns, data FROM embeddings WHERE model = ? AND path IN ("
                     + ",".join("?" * len(chunk)) + ")")
                for path, size, mtime_ns, data in self._db.execute(q, [model, *chunk]):
                    k = by_path[path]
                    if k.size == size and k.mtime_ns == mtime_ns:
                        out[k] = np.frombuffer(data, dtype=np.float32)
        return out

    def put_many(self, model: str, items: Iterable[tuple[FileKey, np.ndarray]]) -> None:
        rows = [(model, k.path, k.size, k.mtime_ns, int(v.shape[-1]),
                 np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO embeddings (model, path, size, mtime_ns, dim, data) "
                    "VALUES (?, ?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return int(self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
            return int(self._db.execute("SELECT COUNT(*) FROM embeddings WHERE model = ?",
                                        (model,)).fetchone()[0])

    def integrity_ok(self) -> bool:
        """SQLite's own consistency check of the whole file."""
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
