"""Seeded N-way K-shot Q-query episodes over an ``ItemTable``.

Episode ``i`` of a sampler with seed ``s`` depends only on ``(s, i)``: a run resumed at
episode 5,000 sees exactly the episodes it would have seen, and evaluation episodes are
reproducible from the seed alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import DatasetError, ItemTable, check_way


@dataclass(frozen=True)
class Episode:
    classes: np.ndarray         # (way,) class indices of the table
    support: np.ndarray         # (way * shot,) item indices, grouped by class
    support_labels: np.ndarray  # (way * shot,) 0..way-1
    query: np.ndarray           # (way * query,) item indices
    query_labels: np.ndarray

    @property
    def items(self) -> np.ndarray:
        return np.concatenate([self.support, self.query])


class EpisodeSampler:
    def __init__(self, table: ItemTable, way: int, shot: int, query: int, seed: int = 0) -> None:
        if shot < 1 or query < 1:
            raise DatasetError("--shot and --query must be at least 1")
        check_way(table, way)
        small = [table.class_names[c] for c, items in enumerate(table.class_items)
                 if len(items) < shot + query]
        if small:
            raise DatasetError(f"{len(small)} classes have fewer than shot + query = "
                               f"{shot + query} images (e.g. {small[0]!r})")
        self.table = table
        self.way, self.shot, self.query, self.seed = way, shot, query, seed

    def episode(self, index: int) -> Episode:
        rng = np.random.default_rng([self.seed, index])
        classes = rng.choice(self.table.num_classes, self.way, replace=False)
        sup, qry = [], []
        for c in classes:
            items = self.table.class_items[c]
            pick = rng.choice(len(items), self.shot + self.query, replace=False)
            sup.append(items[pick[:self.shot]])
            qry.append(items[pick[self.shot:]])
        labels = np.arange(self.way)
        return Episode(classes, np.concatenate(sup), np.repeat(labels, self.shot),
                       np.concatenate(qry), np.repeat(labels, self.query))

    def episodes(self, start: int, stop: int) -> list[Episode]:
        return [self.episode(i) for i in range(start, stop)]
