"""Episodes over a class-folder dataset, ready for a model: items -> inputs/features.

``prepare_episodes`` samples the episodes first, then makes only the images they need
available -- decoded into memory (``ImageStore``) or embedded once into a feature table
(persistent cache for plain files). Files that turn out unreadable are reported, dropped,
and the episodes re-sampled without them.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..core.model import FewShotModel
from .data import ClassFolder, DataSpec, ItemTable, build_items
from .inputs import (ImageStore, decode_files, drop_bad_files, features_from_files,
                     features_from_store, should_preload)
from ..core.progress import Progress
from .sampler import ALL_WAYS, Episode, EpisodeSampler, min_images


@dataclass
class ItemFeatures:
    """Features of some items: ``features[row[item]]`` (row -1 = not computed)."""

    features: torch.Tensor
    row: np.ndarray

    def get(self, items: np.ndarray) -> torch.Tensor:
        rows = self.row[items]
        if (rows < 0).any():
            raise KeyError("features of some items were not computed")
        return self.features[torch.as_tensor(rows, device=self.features.device)]


@dataclass
class PreparedEpisodes:
    table: ItemTable
    sampler: EpisodeSampler
    episodes: list[Episode]
    store: ImageStore | None = None
    features: ItemFeatures | None = None


def _union(episodes: Sequence[Episode]) -> np.ndarray:
    if not episodes:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate([e.items for e in episodes]))


def prepare_episodes(model: FewShotModel, classes: Sequence[ClassFolder], spec: DataSpec,
                     way: int, shot: int, query: int, episodes: int, seed: int,
                     want: str = "features", device: str | torch.device = "cpu",
                     cache=None, all_items: bool = False, quiet: bool = False,
                     label: str = "data", pool: str = "balanced", alpha: float = 2.0,
                     distractors: int = 0, examples: str = "even") -> PreparedEpisodes:
    """Sample ``episodes`` episodes (or none with ``all_items``), then load what they need.

    want="features": backbone features (eval mode) in a ``ItemFeatures``;
    want="images": preprocessed images in an ``ImageStore`` (training through the backbone).
    """
    device = torch.device(device)
    preload = want == "images" or should_preload(model.input_spec, spec.rotations)
    classes = list(classes)
    for _attempt in range(10):
        table = build_items(spec.root, classes, spec.rotations,
                            min_images=min_images(shot, query, pool))
        for msg in table.skipped:
            print(f"warning: {msg}", file=sys.stderr)
        sampler = EpisodeSampler(table, way if way != ALL_WAYS else table.num_classes, shot,
                                 query, seed, pool=pool, alpha=alpha, distractors=distractors,
                                 examples=examples)
        eps = sampler.episodes(0, episodes)
        items = np.arange(len(table)) if all_items else _union(eps)
        file_idx = np.unique(table.item_file[items])
        paths = [table.files[i] for i in file_idx]
        prog = Progress(len(paths), f"{label}: loading", quiet=quiet)
        if preload:
            arrays, bad = decode_files(paths, model.input_spec, progress=prog.callback())
        else:
            feats_by_path, bad = features_from_files(model, paths, cache=cache, device=device,
                                                     progress=prog.callback())
        prog.close()
        if bad:
            classes = drop_bad_files(classes, bad)
            continue
        if preload:
            store = ImageStore(table, arrays, device=device)
            if want == "images":
                return PreparedEpisodes(table, sampler, eps, store=store)
            prog = Progress(len(items), f"{label}: embedding", quiet=quiet)
            model.to(device)
            feats = features_from_store(model, store, items, progress=prog.callback())
            prog.close()
        else:
            per_file = [feats_by_path[table.files[table.item_file[i]]] for i in items]
            feats = torch.from_numpy(np.stack(per_file)).to(device)
        row = np.full(len(table), -1, dtype=np.int64)
        row[items] = np.arange(len(items))
        return PreparedEpisodes(table, sampler, eps, features=ItemFeatures(feats, row))
    raise RuntimeError("too many unreadable files; giving up")


def refresh_features(model: FewShotModel, prepared: PreparedEpisodes) -> None:
    """Recompute the feature table from the image store (the backbone changed)."""
    if prepared.store is None:
        return
    items = _union(prepared.episodes)
    feats = features_from_store(model, prepared.store, items)
    row = np.full(len(prepared.table), -1, dtype=np.int64)
    row[items] = np.arange(len(items))
    prepared.features = ItemFeatures(feats, row)


def episode_tensors(ep: Episode, device: torch.device | str
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.as_tensor(ep.support_labels, device=device),
            torch.as_tensor(ep.query_labels, device=device))


def episode_accuracy(learner, features: ItemFeatures, ep: Episode, way: int) -> float:
    """Accuracy over the episode's labelled pool images (distractors, label -1, are in the
    pool a folder-aware learner reads, but not scored)."""
    ys, yq = episode_tensors(ep, features.features.device)
    query = features.get(ep.query)
    if learner.capabilities.reads_pool:
        adapted = learner.fit(features.get(ep.support), ys, way, pool=query)
        scores = adapted.pool_proba if adapted.pool_proba is not None else adapted.logits(query)
    else:
        scores = learner.fit(features.get(ep.support), ys, way).logits(query)
    scored = yq >= 0
    if not bool(scored.any()):
        return float("nan")
    return (scores.argmax(1)[scored] == yq[scored]).float().mean().item()


@torch.no_grad()
def run_feature_episodes(model: FewShotModel, method: str | None, prepared: PreparedEpisodes,
                         way: int, progress: Progress | None = None) -> np.ndarray:
    """Accuracy of each episode, the learner fitted on support features (eval mode)."""
    assert prepared.features is not None
    learner = model.learner(method)
    was = learner.training
    learner.eval()
    accs = np.zeros(len(prepared.episodes))
    try:
        for i, ep in enumerate(prepared.episodes):
            accs[i] = episode_accuracy(learner, prepared.features, ep, way)
            if progress:
                progress.update(i + 1, f"acc {100 * accs[:i + 1].mean():.2f}%")
    finally:
        learner.train(was)
    return accs


def mean_ci95(accs: np.ndarray) -> tuple[float, float]:
    """Mean and 95% confidence half-width 1.96 * std / sqrt(n) (std with ddof=1)."""
    accs = np.asarray(accs, dtype=float)
    accs = accs[~np.isnan(accs)]
    n = len(accs)
    if n == 0:
        return float("nan"), float("nan")
    std = float(np.std(accs, ddof=1)) if n > 1 else 0.0
    return float(np.mean(accs)), 1.96 * std / float(np.sqrt(n))
