"""A folder-aware ProtoNet: the unlabeled folder shapes the feature space and the labels.

What a labeling app has that a benchmark episode lacks is the whole folder, unlabeled, in
unknown and uneven class proportions. This learner reads it (transductive), in three steps
chosen on the multi-domain development suite (``tools/build_devsuite.py``), each one robust
to uneven classes and to images of no class:

1. **Folder statistics.** Features are power-transformed (``x ** beta``, Hu et al. 2021's
   PT), L2-normalised, centred on the *folder's* mean and normalised again: the space
   follows the user's domain instead of ImageNet's.
2. **Anchored prototypes.** Each class prototype moves from its examples' mean towards the
   soft mean of the folder images nearest to it, by at most ``kappa / (kappa + K)`` for a
   class with ``K`` examples: a pool mean rather than a pool *sum*, so a class that fills
   half the folder cannot drag its prototype further than a rare one, and more examples
   mean less trust in the pool.
3. **Neighbourhood smoothing.** Each folder image's class scores (softmax of the scaled
   distances to the prototypes) are smoothed with those of its ``knn`` nearest folder
   images, as in LaplacianShot (Ziko et al., ICML 2020): ``Y = softmax(-a + lam * tau * W Y)``.
   It makes no assumption about class sizes.

Cost at 100,000 images: the neighbours are searched among at most ``max_anchors`` folder
images (a seeded subset; all of them for smaller folders) in their ``proj_dim`` leading
principal axes, once per folder (``FolderPool`` keeps them while only the examples
change); a fit is then a few passes over the anchors plus one pass over the folder.
Deterministic: same features, same examples, same labels.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .base import Adapted, Cancelled, Capabilities, MetaLearner, class_means, infer_num_classes


def _unit_sqdist(z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Squared distances from unit vectors ``z`` to any ``p``: one matrix product."""
    return (1.0 + (p * p).sum(1))[None, :] - 2.0 * z @ p.T


class FolderPool:
    """The folder's unlabeled features plus what the learner derives from them once:
    the folder mean, the anchors (transformed) and each image's neighbours among them.
    Pass the same object to successive fits while the folder's features do not change.
    ``cancel``: an event (``threading.Event``) checked between chunks of work."""

    def __init__(self, features: torch.Tensor, rows: torch.Tensor | None = None,
                 cancel: Any = None) -> None:
        self.features = features      # (M, D) raw backbone features (may hold other rows)
        self.rows = rows              # the pool's rows of ``features`` (None: all of them)
        self.cancel = cancel
        self._derived: dict[tuple, Any] = {}

    def chunks(self, n: int | None = None, size: int = 8192):
        n = len(self) if n is None else n
        for i in range(0, n, size):
            if self.cancel is not None and self.cancel.is_set():
                raise Cancelled()
            yield slice(i, min(i + size, n))

    def __len__(self) -> int:
        return int(self.features.shape[0] if self.rows is None else self.rows.shape[0])

    def raw(self, s: slice) -> torch.Tensor:
        return self.features[s] if self.rows is None else self.features[self.rows[s]]

    def derived(self, key: tuple, make):
        if key not in self._derived:
            self._derived[key] = make()
        return self._derived[key]


class FolderAdapted(Adapted):
    def __init__(self, learner: "FolderProtoNet", prototypes: torch.Tensor, mean: torch.Tensor,
                 pool_proba: torch.Tensor | None) -> None:
        self.learner = learner
        self.prototypes = prototypes
        self.mean = mean
        self.pool_proba = pool_proba   # smoothed class probabilities of the pool's images
        self.num_classes = prototypes.shape[0]

    def logits(self, query: torch.Tensor) -> torch.Tensor:
        """Images outside the pool (and the inductive part of the pool's scores)."""
        return -self.learner.tau * _unit_sqdist(self.learner.transform(query, self.mean),
                                                self.prototypes)


class FolderProtoNet(MetaLearner):
    method = "folder"
    label = "Folder-aware ProtoNet"
    capabilities = Capabilities(reads_pool=True, trainable=False)

    def __init__(self, beta: float = 0.5, tau: float = 10.0, kappa: float = 1.0,
                 mix_iters: int = 5, knn: int = 5, lam: float = 0.3, gamma: float = 0.0,
                 smooth_iters: int = 10,
                 max_anchors: int = 20000, proj_dim: int = 128, seed: int = 0,
                 label: str | None = None) -> None:
        super().__init__(label)
        self.beta, self.tau, self.kappa, self.mix_iters = beta, tau, kappa, mix_iters
        self.knn, self.lam, self.gamma, self.smooth_iters = knn, lam, gamma, smooth_iters
        self.max_anchors, self.proj_dim, self.seed = max_anchors, proj_dim, seed

    # -- feature space ------------------------------------------------------------------
    def _pre(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.beta != 1.0:
            x = x.clamp_min(0) ** self.beta
        return F.normalize(x, dim=-1)

    def transform(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        return F.normalize(self._pre(x) - mean, dim=-1)

    def _mean(self, pool: FolderPool) -> torch.Tensor:
        def make() -> torch.Tensor:
            total = None
            for s in pool.chunks():
                part = self._pre(pool.raw(s)).sum(0)
                total = part if total is None else total + part
            assert total is not None
            return total / len(pool)
        return pool.derived(("mean", self.beta), make)

    def _anchors(self, pool: FolderPool, mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(anchor positions in the pool, their transformed features)."""
        def make():
            n = len(pool)
            if n <= self.max_anchors:
                pos = torch.arange(n)
            else:
                g = torch.Generator().manual_seed(self.seed)
                pos = torch.randperm(n, generator=g)[:self.max_anchors].sort().values
            feats = torch.cat([self.transform(_rows(pool, pos[s]), mean)
                               for s in pool.chunks(len(pos))])
            return pos, feats
        return pool.derived(("anchors", self.beta, self.max_anchors, self.seed), make)

    def _graph(self, pool: FolderPool, mean: torch.Tensor) -> torch.Tensor:
        """Indices (into the anchors) of each pool image's ``knn`` nearest anchors, itself
        excluded; in the ``proj_dim`` leading principal axes of the anchors for large folders."""
        def make() -> torch.Tensor:
            pos, anchors = self._anchors(pool, mean)
            d = anchors.shape[1]
            # Project only when the search is large (exact below: a small folder's
            # neighbours cost less than the projection itself).
            if self.proj_dim and self.proj_dim < d and len(pool) * len(pos) > 2.5e7:
                proj = torch.linalg.eigh(anchors.T @ anchors).eigenvectors[:, -self.proj_dim:]
            else:
                proj = None
            a = anchors @ proj if proj is not None else anchors
            k = min(self.knn, len(pos) - 1)
            anchor_of = torch.full((len(pool),), -1, dtype=torch.long)
            anchor_of[pos] = torch.arange(len(pos))
            out = torch.empty(len(pool), max(k, 0), dtype=torch.long)
            if k <= 0:
                return out
            for s in pool.chunks(size=2048):
                z = self.transform(pool.raw(s), mean)
                z = z @ proj if proj is not None else z
                sim = z @ a.T
                own = anchor_of[s].to(sim.device)
                hit = own >= 0
                sim[hit.nonzero().flatten(), own[hit]] = -float("inf")  # not its own neighbour
                out[s] = sim.topk(k, dim=1).indices.cpu()
            return out
        return pool.derived(("graph", self.beta, self.max_anchors, self.seed, self.knn,
                             self.proj_dim), make)

    # -- the interface ------------------------------------------------------------------
    @torch.no_grad()
    def fit(self, support: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None,
            pool: FolderPool | torch.Tensor | None = None) -> FolderAdapted:
        n = infer_num_classes(labels, num_classes)
        if pool is None:  # no folder: folder statistics from the examples alone
            pool = FolderPool(support)
        elif not isinstance(pool, FolderPool):
            pool = FolderPool(pool)
        mean = self._mean(pool)
        s = self.transform(support, mean)
        p0 = class_means(s, labels, n)
        pos, anchors = self._anchors(pool, mean)
        shots = torch.bincount(labels, minlength=n).to(s.dtype)
        trust = (self.kappa / (self.kappa + shots))[:, None]
        protos = p0
        for _ in range(self.mix_iters):
            r = (-self.tau * _unit_sqdist(anchors, protos)).softmax(1)
            pool_mean = (r.T @ anchors) / r.sum(0).clamp_min(1e-6)[:, None]
            protos = (1 - trust) * p0 + trust * pool_mean
        adapted = FolderAdapted(self, protos, mean, None)
        if self.knn > 0 and self.lam > 0 and len(pool) > 1:
            adapted.pool_proba = self._smooth(adapted, pool, mean, float(shots.mean()))
        return adapted

    def _smooth(self, adapted: FolderAdapted, pool: FolderPool, mean: torch.Tensor,
                shots: float) -> torch.Tensor:
        pos, anchors = self._anchors(pool, mean)
        nbrs = self._graph(pool, mean)
        nb_a = nbrs[pos]                         # the anchors' neighbours (anchors)
        rows, cols = torch.arange(len(pos)).repeat_interleave(nb_a.shape[1]), nb_a.reshape(-1)

        def neighbours(y: torch.Tensor) -> torch.Tensor:  # symmetrised kNN graph: (W + W^T) / 2
            back = torch.zeros_like(y).index_add_(0, cols, y[rows])
            return 0.5 * (y[nb_a].sum(1) + back)

        unary_a = -self.tau * _unit_sqdist(anchors, adapted.prototypes)
        # More examples, less need of the neighbours: weight / shots ** gamma.
        w = self.lam * self.tau / max(shots, 1.0) ** self.gamma
        y = unary_a.softmax(1)
        for _ in range(self.smooth_iters):
            y = (unary_a + w * neighbours(y)).softmax(1)
        out = torch.empty(len(pool), adapted.num_classes)
        for s in pool.chunks():
            out[s] = (adapted.logits(pool.raw(s)) + w * y[nbrs[s]].sum(1)).softmax(1).cpu()
        out[pos] = y.cpu()
        return out

    def config(self) -> dict[str, Any]:
        return {"method": self.method, "beta": self.beta, "tau": self.tau, "kappa": self.kappa,
                "mix_iters": self.mix_iters, "knn": self.knn, "lam": self.lam, "gamma": self.gamma,
                "smooth_iters": self.smooth_iters, "max_anchors": self.max_anchors,
                "proj_dim": self.proj_dim, "seed": self.seed, **self.label_config()}


def _rows(pool: FolderPool, positions: torch.Tensor) -> torch.Tensor:
    return pool.features[positions] if pool.rows is None else pool.features[pool.rows[positions]]
