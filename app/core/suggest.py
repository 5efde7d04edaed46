"""Label these next: the folder images whose labels would teach the model most.

A user who labels a few images a round gains most from images the model is unsure of
(their label is news), that stand for many others (a dense region: the correction carries
to its neighbours through the folder-aware learner's smoothing) and that differ from each
other (five near-duplicates teach what one does). ``suggest`` ranks by exactly that:

1. candidates: the ``pool`` least confident unlabelled images;
2. each candidate's density: its mean cosine similarity to its ``knn`` nearest images of a
   seeded sample of the folder (centred features), scaled to [0, 1] over the candidates;
3. greedy picks of ``uncertainty x density``, each pick discounting the candidates similar
   to it (``score *= 1 - max(similarity, 0)``).

Measured against random picks and plain least-confident picks by ``bench/bench_queue.py``
(README, "Label these next"). Plain numpy, no torch: the session calls it on the features
it holds. Deterministic for the same inputs.
"""
from __future__ import annotations

import numpy as np

STRATEGIES = ("queue", "least_confident", "random")


def _unit(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    x = x - mean
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def suggest(features, confidence: np.ndarray, labelled: np.ndarray, k: int,  # noqa: ANN001
            strategy: str = "queue", pool: int = 200, sample: int = 2000, knn: int = 10,
            seed: int = 0) -> np.ndarray:
    """Indices (into ``confidence``) of up to ``k`` unlabelled images to label next, best first.

    ``features(idx)``: a function giving the float32 feature rows of images ``idx`` (so a
    caller holding 100,000 rows only decodes the few it needs) or an (n, D) array;
    ``confidence``: each image's predicted-class probability (NaN: not classified, treated
    as least sure); ``labelled``: a boolean mask of images that are examples already.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    get = features if callable(features) else (lambda idx: np.asarray(features[idx], np.float32))
    conf = np.nan_to_num(np.asarray(confidence, np.float64), nan=0.0)
    free = np.flatnonzero(~np.asarray(labelled, bool))
    if k <= 0 or len(free) == 0:
        return np.zeros(0, np.int64)
    if strategy == "random":
        return np.random.default_rng(seed).permutation(free)[:k].astype(np.int64)
    order = free[np.argsort(conf[free], kind="stable")]  # least confident first
    if strategy == "least_confident" or len(free) <= k:
        return order[:k].astype(np.int64)
    cand = order[:max(pool, k)]
    rng = np.random.default_rng(seed)
    n = len(conf)
    ref_idx = np.sort(rng.choice(n, min(sample, n), replace=False))
    ref = get(ref_idx)
    mean = ref.mean(0)
    ref = _unit(ref, mean)
    c = _unit(get(cand), mean)
    sim = c @ ref.T
    near = min(knn, ref.shape[0])
    density = np.sort(sim, axis=1)[:, -near:].mean(1)
    span = density.max() - density.min()
    density = (density - density.min()) / span if span > 0 else np.ones_like(density)
    score = (1.0 - conf[cand]) * (0.1 + density)   # 0.1: a sparse but unsure image still counts
    between = c @ c.T
    picks: list[int] = []
    for _ in range(min(k, len(cand))):
        i = int(np.argmax(score))
        if score[i] <= -np.inf:
            break
        picks.append(i)
        score = score * (1.0 - np.clip(between[i], 0.0, 1.0))
        score[picks] = -np.inf
    return cand[picks].astype(np.int64)
