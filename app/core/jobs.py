"""The session's ``FeatureTable`` and the data of a scoring run (``ScoreJob``,
``ScoreOutcome``), without torch. Running a ``ScoreJob`` imports the torch side
(``app.core.scoring``) only then, so the session and everything that opens folders,
projects and exports import no torch.
"""
from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np


def to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16, as its 16 bits (uint16), rounded to nearest even. Half the
    memory of float32 with float32's range; ``app.core.scoring`` reads the bits as a torch
    ``bfloat16`` tensor without a copy, and widening it back is a shift (as fast as
    copying float32 rows, where float16 measured 3x slower on the CPU)."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32)
    return ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))
            >> np.uint32(16)).astype(np.uint16)


def from_bf16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) -> float32 (exact)."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


_ALLOCATIONS = itertools.count()


class FeatureTable:
    """Append-only map path -> feature vector, kept in one growable matrix (capacity
    doubles), so streaming 100k rows in small batches costs O(n) and ``locate`` + fancy
    indexing builds query matrices in milliseconds. Rows are stored as bfloat16 (``to_bf16``:
    100,000 x 2,560-d take 512 MB instead of 1 GB; relative rounding 2^-9, measured to move
    suite accuracy by at most 0.01 points); ``get`` and ``gather`` give float32. Rows are never
    overwritten (a path added again gets a new row), so a worker may read rows it was
    handed while the GUI thread appends more."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._buf = np.zeros((0, 0), np.uint16)
        self._rows = 0
        self._reserved = 0
        self.dim: int | None = None
        self.allocation = next(_ALLOCATIONS)  # a new number with each new matrix buffer
        self.version = next(_ALLOCATIONS)     # a new number whenever a path's row changes

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, path: object) -> bool:
        return path in self._index

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def reserve(self, rows: int) -> None:
        """Make room for ``rows`` rows at the next allocation: a folder whose size is known
        fills one matrix instead of doubling it (a doubling holds the old and the new
        matrix at once: 1.5x the final size at its peak)."""
        self._reserved = max(self._reserved, int(rows))

    def add(self, paths: Sequence[str], features: np.ndarray) -> None:
        if len(paths) == 0:
            return
        feats = np.asarray(features, dtype=np.float32)
        if feats.ndim != 2 or feats.shape[0] != len(paths):
            raise ValueError(f"features must be (len(paths), D), got {feats.shape}")
        if self.dim is not None and feats.shape[1] != self.dim:
            self.clear()  # a different model: the old vectors are useless now
        if self.dim is None:
            self.dim = int(feats.shape[1])
        need = self._rows + feats.shape[0]
        if need > self._buf.shape[0]:
            cap = max(need, 2 * self._buf.shape[0], 1024)
            if need <= self._reserved:
                cap = self._reserved
            buf = np.empty((cap, self.dim), np.uint16)
            if self._rows:
                buf[:self._rows] = self._buf[:self._rows]
            self._buf = buf  # old buffer stays valid for whoever still holds it
            self.allocation = next(_ALLOCATIONS)
        self._buf[self._rows:need] = to_bf16(feats)
        for i, p in enumerate(paths):
            self._index[p] = self._rows + i
        self._rows = need
        self.version = next(_ALLOCATIONS)

    def matrix(self) -> np.ndarray:
        """All rows so far as bfloat16 bits (uint16; a view; rows may include superseded
        vectors). ``app.core.scoring`` takes it as is."""
        return self._buf[:self._rows] if self.dim is not None else np.zeros((0, 0), np.uint16)

    def get(self, path: str) -> np.ndarray | None:
        i = self._index.get(path)
        return None if i is None else from_bf16(self._buf[i])

    def rename(self, old: str, new: str) -> None:
        """The file moved: its vector now answers to ``new``."""
        i = self._index.pop(old, None)
        if i is not None:
            self._index[new] = i
            self.version = next(_ALLOCATIONS)

    def locate(self, paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``paths`` that have features, their row numbers in ``matrix()``)."""
        get = self._index.get
        rows = np.fromiter((get(p, -1) for p in paths), dtype=np.int64, count=len(paths))
        pos = np.flatnonzero(rows >= 0)
        return pos, rows[pos]

    def gather(self, paths: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """(the paths that have features, their (n, D) float32 matrix), in the given order."""
        paths = list(paths)
        pos, rows = self.locate(paths)
        return [paths[i] for i in pos], from_bf16(self.matrix()[rows])


@dataclass
class FolderJob:
    """Reading the folder before any example (a folder-aware learner's ``prepare``): its
    features, as a ``ScoreJob`` holds them, and where the result is kept."""
    method: str
    query_feats: np.ndarray
    query_rows: np.ndarray | None
    pool_key: tuple
    pool_cache: dict

    def run(self, model, cancel: threading.Event | None = None) -> None:  # noqa: ANN001
        from .scoring import read_folder

        read_folder(self, model, cancel)


@dataclass
class ScoreOutcome:
    job: "ScoreJob"
    adapted: object
    labels: np.ndarray        # index into job.class_ids, per job.query_paths
    confidences: np.ndarray
    final: bool = True        # False: the quick inductive result of a folder-aware job


@dataclass
class ScoreJob:
    """Everything one scoring run needs, taken from the session (thread-safe to run: it
    only reads rows the session never overwrites)."""
    generation: int
    method: str
    class_ids: list[int]
    example_feats: np.ndarray
    example_labels: np.ndarray
    query_paths: list[str]
    query_feats: np.ndarray                   # the queries, or a matrix holding them at query_rows
                                              # (float32, or bfloat16 bits as FeatureTable keeps them)
    query_rows: np.ndarray | None = None      # rows of query_feats, in query_paths order
    image_positions: np.ndarray | None = None  # positions of query_paths in the session's images
    folder_epoch: int = -1
    refine: bool = True       # let a folder-aware learner read the folder (after the quick pass)
    pool_key: tuple = ()      # what the folder's features are; same key, same pool
    pool_cache: dict | None = None  # the session's {pool_key: FolderPool}, reused across jobs

    @property
    def folder_read(self) -> bool:
        """Whether a folder-aware learner has read this job's folder already (its derived
        data is in the pool cache): then its labels take a fraction of a second."""
        pool = self.pool_cache.get(self.pool_key) if self.pool_cache is not None else None
        return pool is not None and bool(pool.complete)

    def run(self, model, cancel: threading.Event | None = None,
            partial=None) -> ScoreOutcome:  # noqa: ANN001
        """Fit and predict (``app.core.scoring.run_job``): a folder-aware learner
        (``reads_pool``) reads the folder; the first time on a folder (its graph to build)
        it first gives the quick inductive result (to ``partial``, when given); on a folder
        it has read, its preview (one product) if it offers one."""
        from .scoring import run_job

        return run_job(self, model, cancel, partial)
