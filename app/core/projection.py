"""A 2-D map of a folder's features for the Map view: PCA to 50 axes, then openTSNE.

Chosen by ``research`` runs recorded in the README ("The map"): on the development suite's
features t-SNE and UMAP keep classes together equally well (10-NN accuracy of the true
class in 2-D within 3 points of each other, both 15-50 points above plain PCA), openTSNE
preserves neighbourhoods a little better (trustworthiness 0.965-0.994 vs 0.964-0.989), and
only openTSNE reports progress and stops when asked between iterations (its callbacks),
which a window needs; UMAP's numba code can be neither followed nor stopped.

Images added later are placed without a new projection (``place``): each at the mean
position of its 5 most similar mapped images. ``MapStore`` keeps maps per folder and
model in the user's cache folder, so reopening a folder shows its map at once.
"""
from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .atomic import atomic_write_bytes
from .errors import Cancelled

PCA_AXES = 50
ITERATIONS = (250, 500)  # openTSNE's defaults: early exaggeration, then the main phase
FIT_SAMPLE = 20000       # images the PCA axes are fitted on (seeded), the rest projected


Rows = Callable[[np.ndarray], np.ndarray]  # positions -> their float32 feature rows


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _chunks(n: int, size: int = 8192, cancel: threading.Event | None = None):
    for i in range(0, n, size):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        yield np.arange(i, min(i + size, n))


def pca(rows: Rows, n: int, axes: int = PCA_AXES, seed: int = 0,
        cancel: threading.Event | None = None) -> np.ndarray:
    """(n, min(axes, D, n)) principal components of the L2-normalised features, the axes
    fitted on at most ``FIT_SAMPLE`` of them (seeded), every row projected chunk by chunk
    (100,000 x 2,560-d never sit in memory as float32 at once)."""
    rng = np.random.default_rng(seed)
    fit_idx = np.arange(n) if n <= FIT_SAMPLE else np.sort(rng.choice(n, FIT_SAMPLE, replace=False))
    fit = _unit(rows(fit_idx))
    mean = fit.mean(0)
    _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
    basis = vt[:min(axes, vt.shape[0])].T
    return np.concatenate([(_unit(rows(idx)) - mean) @ basis for idx in _chunks(n, cancel=cancel)])


def project(rows: Rows, n: int, cancel: threading.Event | None = None,
            progress: Callable[[int, int], None] | None = None, seed: int = 0,
            threads: int = 2) -> np.ndarray:
    """(n, 2) float32 map of the features ``rows(positions)`` of ``n`` images.
    ``progress(done, total)`` follows the iterations; ``cancel`` set raises ``Cancelled``
    within 25 iterations. Deterministic for the same features, seed and thread count."""
    if n < 5:  # too few for t-SNE's neighbourhoods: the first two principal axes
        out = np.zeros((n, 2), np.float32)
        if n:
            p = pca(rows, n, 2)
            out[:, :p.shape[1]] = p
        return out
    from openTSNE import TSNE

    total = sum(ITERATIONS)
    done = [0]

    def step(iteration: int, error: float, embedding) -> bool:  # noqa: ANN001
        done[0] += 25
        if progress is not None:
            progress(min(done[0], total), total)
        return bool(cancel is not None and cancel.is_set())

    x = pca(rows, n, seed=seed, cancel=cancel)
    tsne = TSNE(n_jobs=threads, random_state=seed, callbacks=step, callbacks_every_iters=25,
                early_exaggeration_iter=ITERATIONS[0], n_iter=ITERATIONS[1],
                perplexity=min(30.0, max(1.0, (n - 1) / 3.0)), verbose=False)
    embedding = np.asarray(tsne.fit(x), np.float32)
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    return embedding


def place(known: Rows, known_xy: np.ndarray, new: Rows, m: int, k: int = 5,
          sample: int = FIT_SAMPLE, seed: int = 0) -> np.ndarray:
    """Positions for ``m`` images added after a map was made (features ``new(positions)``):
    each at the mean position of its ``k`` most similar (cosine) mapped images, among at
    most ``sample`` of them (seeded)."""
    n = len(known_xy)
    if m == 0 or n == 0:
        return np.zeros((m, 2), np.float32)
    rng = np.random.default_rng(seed)
    ref_idx = np.arange(n) if n <= sample else np.sort(rng.choice(n, sample, replace=False))
    ref, ref_xy = _unit(known(ref_idx)), np.asarray(known_xy, np.float32)[ref_idx]
    k = min(k, len(ref_idx))
    out = np.empty((m, 2), np.float32)
    for idx in _chunks(m, 2048):
        sim = _unit(new(idx)) @ ref.T
        near = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        out[idx] = ref_xy[near].mean(1)
    return out


class MapStore:
    """Maps (path -> position) per folder and model, as ``.npz`` files in ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _file(self, folder: str, model_key: str) -> Path:
        h = hashlib.sha1(f"{model_key}\0{os.path.abspath(folder)}".encode()).hexdigest()[:20]
        return self.root / f"{h}.npz"

    def load(self, folder: str, model_key: str) -> dict[str, tuple[float, float]]:
        f = self._file(folder, model_key)
        try:
            with np.load(f, allow_pickle=False) as z:
                return {str(p): (float(a), float(b)) for p, (a, b) in zip(z["paths"], z["xy"])}
        except (OSError, KeyError, ValueError):  # none yet, or unreadable: make it again
            return {}

    def save(self, folder: str, model_key: str, paths: Sequence[str], xy: np.ndarray) -> None:
        buf = io.BytesIO()
        np.savez(buf, paths=np.asarray(list(paths), dtype=str), xy=np.asarray(xy, np.float32))
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self._file(folder, model_key), buf.getvalue())
