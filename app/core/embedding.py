"""Batched embedding of image files: decode (threads) overlapping backbone inference.

    embedder = Embedder(model, cache=EmbeddingCache())
    for batch in embedder.iter_embed(paths, cancel=event):   # streams as it goes
        batch.paths, batch.features, batch.problems
    result = embedder.embed_paths(paths)                      # all at once

Cached vectors are returned first (no decode, no inference); the rest is decoded by a
thread pool (Pillow releases the GIL while decoding) while the previous batch runs
through the backbone. A file that cannot be used is reported in ``problems`` with its
reason and skipped; nothing raises for bad images.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from .cache import EmbeddingCache, FileKey
from .images import ImageError, load_for_model
from .model import FewShotModel, backbone_id


@dataclass
class Problem:
    path: str
    reason: str


@dataclass
class EmbedBatch:
    paths: list[str]
    features: np.ndarray  # (len(paths), D) float32
    problems: list[Problem] = field(default_factory=list)
    from_cache: bool = False


@dataclass
class EmbedResult:
    paths: list[str]
    features: np.ndarray
    problems: list[Problem]

    def as_dict(self) -> dict[str, np.ndarray]:
        return dict(zip(self.paths, self.features))


def choose_device(preference: str = "auto") -> torch.device:
    """"auto" -> CUDA, else Apple MPS, else CPU; or an explicit torch device string."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(preference)


class Cancelled(Exception):
    pass


class Embedder:
    def __init__(self, model: FewShotModel, device: str | torch.device = "auto",
                 batch_size: int = 32, cache: EmbeddingCache | None = None,
                 workers: int | None = None) -> None:
        self.model = model.eval()
        self.device = choose_device(device) if isinstance(device, str) else device
        self.model.to(self.device)
        self.batch_size = batch_size
        self.cache = cache
        self.workers = workers or max(1, min(4, (os.cpu_count() or 2)))
        self.model_key = backbone_id(model)

    def _decode(self, path: str) -> np.ndarray | Problem:
        try:
            return load_for_model(path, self.model.input_spec)
        except ImageError as e:
            return Problem(path, e.reason)
        except Exception as e:  # never let one odd file stop a folder
            return Problem(path, f"cannot decode image ({type(e).__name__}: {e})")

    @torch.no_grad()
    def _infer(self, arrays: list[np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(np.stack(arrays)).to(self.device)
        return self.model.features(x).float().cpu().numpy()

    def iter_embed(self, paths: Sequence[str | os.PathLike[str]],
                   cancel: threading.Event | None = None,
                   progress: Callable[[int, int], None] | None = None) -> Iterator[EmbedBatch]:
        """Yield batches as they are ready. ``progress(done, total)`` after each batch.
        Raises ``Cancelled`` (within one batch) when ``cancel`` is set."""
        paths = [os.fspath(p) for p in paths]
        total, done = len(paths), 0
        keys: dict[str, FileKey] = {}
        problems: list[Problem] = []
        for p in paths:
            try:
                keys[p] = FileKey.of(p)
            except OSError as e:
                problems.append(Problem(p, "file not found" if isinstance(e, FileNotFoundError)
                                        else f"cannot read file ({e.strerror or e})"))
        if problems:
            done += len(problems)
            yield EmbedBatch([], np.zeros((0, 0), np.float32), problems)
        todo = [p for p in paths if p in keys]
        if self.cache is not None and todo:
            hits = self.cache.get_many(self.model_key, [keys[p] for p in todo])
            if hits:
                hit_paths = [p for p in todo if keys[p] in hits]
                for i in range(0, len(hit_paths), 4096):
                    chunk = hit_paths[i:i + 4096]
                    done += len(chunk)
                    yield EmbedBatch(chunk, np.stack([hits[keys[p]] for p in chunk]), from_cache=True)
                    if progress:
                        progress(done, total)
                todo = [p for p in todo if keys[p] not in hits]
        if not todo:
            return
        batches = [todo[i:i + self.batch_size] for i in range(0, len(todo), self.batch_size)]
        with ThreadPoolExecutor(self.workers, thread_name_prefix="decode") as pool:
            pending: list[list[Future]] = []
            ahead = 2  # batches being decoded ahead of inference

            def submit(b: int) -> None:
                if b < len(batches):
                    pending.append([pool.submit(self._decode, p) for p in batches[b]])

            for b in range(ahead):
                submit(b)
            for b in range(len(batches)):
                if cancel is not None and cancel.is_set():
                    for fs in pending:
                        for f in fs:
                            f.cancel()
                    raise Cancelled()
                futures = pending.pop(0)
                submit(b + ahead)
                good_paths, arrays, bad = [], [], []
                for p, f in zip(batches[b], futures):
                    r = f.result()
                    if isinstance(r, Problem):
                        bad.append(r)
                    else:
                        good_paths.append(p)
                        arrays.append(r)
                feats = self._infer(arrays) if arrays else np.zeros((0, 0), np.float32)
                if self.cache is not None and good_paths:
                    self.cache.put_many(self.model_key, [(keys[p], f) for p, f in zip(good_paths, feats)])
                done += len(batches[b])
                yield EmbedBatch(good_paths, feats, bad)
                if progress:
                    progress(done, total)

    def embed_paths(self, paths: Sequence[str | os.PathLike[str]],
                    cancel: threading.Event | None = None,
                    progress: Callable[[int, int], None] | None = None) -> EmbedResult:
        """Embed everything; ``features`` rows follow ``paths`` order minus the problems."""
        got: dict[str, np.ndarray] = {}
        problems: list[Problem] = []
        for batch in self.iter_embed(paths, cancel, progress):
            got.update(zip(batch.paths, batch.features))
            problems.extend(batch.problems)
        order = [os.fspath(p) for p in paths if os.fspath(p) in got]
        feats = np.stack([got[p] for p in order]) if order else np.zeros((0, 0), np.float32)
        return EmbedResult(order, feats, problems)


class ProgressETA:
    """Rate and ETA from (done, total) updates; for progress bars in the CLI and the GUI."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def eta_seconds(self, done: int, total: int) -> float | None:
        elapsed = time.monotonic() - self.start
        if done <= 0 or elapsed <= 0:
            return None
        return (total - done) * elapsed / done
