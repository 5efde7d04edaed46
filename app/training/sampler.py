"""Seeded N-way K-shot Q-query episodes over an ``ItemTable``.

Episode ``i`` of a sampler with seed ``s`` depends only on ``(s, i)``: a run resumed at
episode 5,000 sees exactly the episodes it would have seen, and evaluation episodes are
reproducible from the seed alone.

The query set is the task's *unlabeled pool*; ``pool`` says what it looks like:

* ``"balanced"``: ``query`` images of every class (the papers' protocol);
* ``"dirichlet"``: ``way * query`` images in proportions drawn from Dirichlet(alpha, ...,
  alpha) (Veilleux et al., NeurIPS 2021: alpha 2), so a class may have none;
* ``"rest"``: every remaining image of the task's classes ("the rest of the folder"),
  as uneven as the dataset is.

``examples`` says how many labelled examples each class gets: ``"even"``, ``shot`` each
(the papers' protocol); ``"uneven"``, between 1 and ``shot`` each, drawn uniformly per
class, as in a labeling app, where corrections become examples and the classes the model
gets wrong soon have more of them than the rest.

``distractors`` adds that many images of classes outside the task (label -1): images of
no class that a folder-aware learner must not be pulled by. They stay in the pool and are
not scored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import DatasetError, ItemTable, check_way


@dataclass(frozen=True)
class Episode:
    classes: np.ndarray         # (way,) class indices of the table
    support: np.ndarray         # (way * shot,) item indices, grouped by class (uneven: fewer)
    support_labels: np.ndarray  # (way * shot,) 0..way-1
    query: np.ndarray           # (way * query,) item indices
    query_labels: np.ndarray

    @property
    def items(self) -> np.ndarray:
        return np.concatenate([self.support, self.query])


POOLS = ("balanced", "dirichlet", "rest")
EXAMPLES = ("even", "uneven")


ALL_WAYS = 0  # ``way`` meaning every usable class of the dataset (``--way all``)


def min_images(shot: int, query: int, pool: str = "balanced") -> int:
    """Images a class needs to take part: shot + query (balanced), else shot + 1."""
    return shot + (query if pool == "balanced" else 1)


class EpisodeSampler:
    def __init__(self, table: ItemTable, way: int, shot: int, query: int, seed: int = 0,
                 pool: str = "balanced", alpha: float = 2.0, distractors: int = 0,
                 examples: str = "even") -> None:
        if shot < 1 or query < 1:
            raise DatasetError("--shot and --query must be at least 1")
        if pool not in POOLS:
            raise DatasetError(f"--pool must be one of {', '.join(POOLS)}")
        if examples not in EXAMPLES:
            raise DatasetError(f"--examples must be one of {', '.join(EXAMPLES)}")
        if alpha <= 0:
            raise DatasetError("--dirichlet-alpha must be positive")
        check_way(table, way)
        need = min_images(shot, query, pool)
        small = [table.class_names[c] for c, items in enumerate(table.class_items)
                 if len(items) < need]
        if small:
            raise DatasetError(f"{len(small)} classes have fewer than the {need} images an "
                               f"episode needs (e.g. {small[0]!r})")
        if distractors and table.num_classes <= way:
            raise DatasetError("--distractors needs more classes than --way")
        self.table = table
        self.way, self.shot, self.query, self.seed = way, shot, query, seed
        self.pool, self.alpha, self.distractors = pool, alpha, distractors
        self.examples = examples

    def _shot_counts(self, rng: np.random.Generator) -> list[int]:
        if self.examples == "even":  # no draw: seeded episodes stay the same
            return [self.shot] * self.way
        return [int(k) for k in rng.integers(1, self.shot + 1, self.way)]

    def _pool_counts(self, rng: np.random.Generator, available: list[int]) -> list[int]:
        if self.pool == "balanced":
            return [self.query] * self.way
        if self.pool == "rest":
            return available
        p = rng.dirichlet(np.full(self.way, self.alpha))
        counts = rng.multinomial(self.way * self.query, p)
        return [min(int(n), a) for n, a in zip(counts, available)]

    def episode(self, index: int) -> Episode:
        rng = np.random.default_rng([self.seed, index])
        classes = rng.choice(self.table.num_classes, self.way, replace=False)
        if self.pool == "balanced":  # the original draw, so seeded episodes stay the same
            picks = [self.table.class_items[c][rng.choice(len(self.table.class_items[c]),
                                                          self.shot + self.query, replace=False)]
                     for c in classes]
        else:
            picks = [rng.permutation(self.table.class_items[c]) for c in classes]
        shots = self._shot_counts(rng)
        counts = self._pool_counts(rng, [len(p) - k for p, k in zip(picks, shots)])
        sup = [p[:k] for p, k in zip(picks, shots)]
        qry = [p[k:k + n] for p, k, n in zip(picks, shots, counts)]
        labels = np.arange(self.way)
        query, query_labels = np.concatenate(qry), np.repeat(labels, counts)
        if self.distractors:
            others = np.setdiff1d(np.arange(self.table.num_classes), classes)
            items = np.concatenate([self.table.class_items[c] for c in others])
            extra = rng.choice(items, min(self.distractors, len(items)), replace=False)
            query = np.concatenate([query, extra])
            query_labels = np.concatenate([query_labels, np.full(len(extra), -1)])
        return Episode(classes, np.concatenate(sup), np.repeat(labels, shots),
                       query, query_labels)

    def episodes(self, start: int, stop: int) -> list[Episode]:
        return [self.episode(i) for i in range(start, stop)]
