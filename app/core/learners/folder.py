"""A folder-aware ProtoNet: the unlabeled folder shapes the feature space and the labels.

What a labeling app has that a benchmark episode lacks is the whole folder, unlabeled, in
unknown and uneven class proportions. This learner reads it (transductive), in four steps
chosen on the multi-domain development suite (``tools/build_devsuite.py``), each one robust
to uneven classes and to images of no class:

1. **Folder statistics.** Features are power-transformed (``x ** beta``, Hu et al. 2021's
   PT), L2-normalised, centred on the *folder's* mean and normalised again: the space
   follows the user's domain instead of ImageNet's. With ``centre="none"`` they are not
   centred: a class that fills most of the folder pulls its mean towards itself, and its
   images, left near the centre, scatter; uncentred, they cannot (the default model
   combines both views, ``ensemble.py``). With ``whiten``, folders of at least
   ``whiten_from`` images are then partially whitened by their own covariance
   (``Whitening``, to a power that grows with the folder up to ``whiten_min`` images): the
   few directions along which the backbone's features of a foreign domain vary most, and
   which say little about its classes, are damped.
2. **Anchored prototypes.** Each class prototype moves from its examples' mean towards the
   soft mean of the folder images nearest to it, by at most ``kappa / (kappa + K)`` for a
   class with ``K`` examples: a pool mean rather than a pool *sum*, so a class that fills
   half the folder cannot drag its prototype further than a rare one, and more examples
   mean less trust in the pool. When classes have different numbers of examples (as soon
   as corrections become examples), each class's squared distance is less its
   prototype's expected noise ``sigma^2 / K`` (``_noise``): unbiased, so a class of many
   examples, whose mean lies nearer the centre, does not take every image.
3. **A few gradient steps on the examples** (Proto-MAML, Triantafillou et al. 2020): the
   anchored prototypes initialise a distance classifier, refined by ``head_steps`` steps of
   plain gradient descent on the examples' cross-entropy, with a step size that grows with
   the examples a class has (none at 1, full from ``head_full`` on average) and halves
   whenever a step would raise the loss; only when every class has as many examples
   (with uneven counts it moves prototypes of few examples out, and the others take the
   folder). Far from ImageNet photos the frozen features'
   class means are poor and this moves them where the examples say; near ImageNet it
   changes next to nothing (measured: README, "Choosing the default").
4. **Neighbourhood smoothing.** Each folder image's class scores (softmax of the scaled
   distances to the prototypes) are smoothed with those of its k nearest folder images,
   as in LaplacianShot (Ziko et al., ICML 2020): ``Y = softmax(-a + lam * tau * W Y)``.
   k is ``knn``, or with ``knn_scale`` grows with the square root of the images a class
   has on average (``neighbours_for``). No assumption about class sizes.

Compact and fast at 100,000 images: once per folder (``FolderPool`` keeps it while only
the examples change; ``prepare`` derives it before any example) every image's
folder-space feature is projected (folders over 10,000 images at 2,560-d) on the leading
principal axes of at most ``max_anchors`` folder images (a seeded subset; all of them for
smaller folders): ``proj_dim`` of them from ``full_rows`` images on, more for smaller
folders at the same images x axes (``width``). Each image's neighbours are searched among
those anchors.
A fit then works in that small space: distances to a prototype are exact for images in the
anchors' span (the prototype's part outside it is kept as a per-class constant), the
prototypes' pool means are taken over the anchors (or a seeded ``mix_anchors`` of them),
the smoothing runs over the anchors, and labelling the folder is one small matrix product.
Deterministic: same features, same examples, same labels.

Its few continuous parameters (``tau``, ``lam``, ``kappa``, ``head_lr``, ``gamma``,
``calib``) are meta-learned by gradient (``python -m app train --method folder --pool
dirichlet``): in training mode ``fit`` keeps the autograd graph through the anchoring, the
head's gradient steps (second order) and the smoothing, and ``loss`` is the cross-entropy of
the smoothed labels of an imbalanced pool. They are ``config_parameters``: the card's
config records them and the weights file leaves them out.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import Cancelled
from .base import (Adapted, Capabilities, MetaLearner, class_means, infer_num_classes,
                   softmax_rows, softmax_rows_)


def _l2_(x: torch.Tensor) -> torch.Tensor:
    """``F.normalize(x, dim=-1)`` in place (the same arithmetic)."""
    return x.div_(torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min_(1e-12))


def _score_terms(p: torch.Tensor, perp: torch.Tensor, scale: torch.Tensor | float
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``_score``'s two terms, on the few prototypes: ``2 scale p`` and ``scale (|p|^2 + perp)``."""
    return 2.0 * scale * p, scale * ((p * p).sum(1) + perp)


def _score(z: torch.Tensor, p: torch.Tensor, perp: torch.Tensor,
           scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """``-scale * |z - p|^2`` up to a per-row constant (``|z|^2``, which no softmax over
    classes sees), for ``p`` with a part of squared norm ``perp`` outside the space of
    ``z``: one fused product (``z @ (2 scale p) - scale (|p|^2 + perp)``), the scale and
    the constant on the few prototypes, not on every row of ``z``."""
    lead, shift = _score_terms(p, perp, scale)
    return torch.addmm(-shift, z, lead.T)


class Whitening(NamedTuple):
    """The folder's partial whitening ``W = (C + eps I)^(-alpha/2)`` for the covariance ``C``
    of its images in folder space, over its leading principal axes, the rest of the space
    scaled as one: ``W z = tail * z + axes @ (lift * (axes.T @ z))``."""
    axes: torch.Tensor   # (D, r) leading principal axes, orthonormal
    lift: torch.Tensor   # (r,) each axis's scale minus ``tail``
    tail: float          # the scale of every direction outside the axes


class Graph(NamedTuple):
    """A sparse (anchors, anchors) matrix as ``embedding_bag`` takes it: row ``i``'s
    columns are ``near[offsets[i]:offsets[i + 1]]``, with those ``weights``."""
    near: torch.Tensor
    offsets: torch.Tensor
    weights: torch.Tensor


def neighbour_graph(idx: torch.Tensor, a: int) -> Graph:
    """The symmetrised graph ``(W + W^T) / 2`` of ``a`` anchors, ``idx`` (a, k) each one's
    neighbours (``W``: 1 from an anchor to each of them; mutual neighbours get 1). A
    smoothing step is then one weighted ``embedding_bag`` over each anchor's neighbours:
    0.71-0.86x the time of the same product with a sparse CSR matrix (20,000 anchors x
    10 classes, ``bench_folder.py``, seven runs), 0.96x the default's whole fit at
    100,000 images (paired runs)."""
    rows, cols = torch.arange(a).repeat_interleave(idx.shape[1]), idx.reshape(-1).long()
    both = torch.sparse_coo_tensor(  # mutual neighbours: summed by coalesce
        torch.stack([torch.cat([rows, cols]), torch.cat([cols, rows])]),
        torch.full((2 * len(rows),), 0.5), (a, a), check_invariants=True).coalesce()
    start, near = both.indices()
    offsets = torch.zeros(a, dtype=torch.long)
    offsets[1:] = torch.bincount(start, minlength=a)[:-1].cumsum(0)
    return Graph(near.contiguous(), offsets, both.values())


def spread(graph: Graph, y: torch.Tensor) -> torch.Tensor:
    """``graph @ y``: each anchor's neighbours' rows of ``y``, summed by their weights."""
    return F.embedding_bag(graph.near, y, graph.offsets, mode="sum",
                           per_sample_weights=graph.weights)


class Space(NamedTuple):
    """What a fit reads of the folder, derived once per folder (``FolderProtoNet._space``)."""
    pos: torch.Tensor                 # the anchors' positions in the pool
    basis: torch.Tensor | None        # (D, width) projection to the compact space, or None
    white: Whitening | None
    zp: torch.Tensor                  # every pool image in the (compact) folder space
    # (The anchors' own rows of ``zp`` are not kept: 20 MB a view at 100,000 images. The
    # neighbour search gathers them, and ``_mixers`` keeps the rows a fit reads.)


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
        self.complete = False         # everything a fit reads is derived (`prepare`, or a fit)
        self._derived: dict[tuple, Any] = {}

    def chunks(self, n: int | None = None, size: int = 2048):
        n = len(self) if n is None else n
        for i in range(0, n, size):
            if self.cancel is not None and self.cancel.is_set():
                raise Cancelled()
            yield slice(i, min(i + size, n))

    def __len__(self) -> int:
        return int(self.features.shape[0] if self.rows is None else self.rows.shape[0])

    def raw(self, s: slice | torch.Tensor) -> torch.Tensor:
        """Raw features of the pool's images ``s`` (a slice or positions)."""
        return self.features[s] if self.rows is None else self.features[self.rows[s]]

    def derived(self, key: tuple, make):
        if key not in self._derived:
            self._derived[key] = make()
        return self._derived[key]


class FolderAdapted(Adapted):
    def __init__(self, learner: "FolderProtoNet", prototypes: torch.Tensor, perp: torch.Tensor,
                 mean: torch.Tensor, basis: torch.Tensor | None, white: Whitening | None,
                 tau: torch.Tensor) -> None:
        self.learner = learner
        self.tau = tau                 # the temperature for this many classes (``tau_for``)
        self.prototypes = prototypes   # in the folder's compact space
        self.perp = perp               # squared norm of each prototype outside that space
        self.mean = mean
        self.basis = basis
        self.white = white
        self.pool_logits: torch.Tensor | None = None  # smoothed scores of the pool
        self.num_classes = prototypes.shape[0]

    def logits(self, query: torch.Tensor) -> torch.Tensor:
        """Images outside the pool (e.g. embedded after the fit): no smoothing."""
        return _score(self.learner.project(query, self.mean, self.basis, self.white),
                      self.prototypes, self.perp, self.tau)


class FolderProtoNet(MetaLearner):
    method = "folder"
    label = "Folder-aware ProtoNet"
    capabilities = Capabilities(reads_pool=True, trainable=True)
    # The compact space holds at most ``full_rows x proj_dim`` numbers: what each re-score
    # reads and, with the anchors, what the neighbour search multiplies. A folder of
    # ``full_rows`` images or more gets ``proj_dim`` axes, a smaller one as many more as keep
    # that size (``width``), and the exact space once that reaches the features' dimension.
    full_rows = 100_000
    # Images a chunk of the neighbour search compares with every anchor, and a chunk of the
    # projection to the compact space takes: 256 and 1,024 took the same time as 512 and
    # 2,048 at 100,000 images, and about 30 MB less peak memory (README, "Speed").
    search_rows = 256
    project_rows = 1024
    # Meta-learned, each as its logarithm (``gamma`` as itself): config, not weights.
    config_parameters = ("log_tau", "log_lam", "log_kappa", "log_head_lr", "log_calib", "gamma_")
    # What the features are centred on: the folder's mean, or nothing (``none``: robust where
    # a few large classes pull the folder's mean towards themselves).
    CENTRES = ("folder", "none")

    def __init__(self, beta: float = 0.5, tau: float = 10.0, kappa: float = 1.0,
                 mix_iters: int = 5, knn: int = 5, knn_scale: float = 0.0, knn_min: int = 3,
                 lam: float = 0.3, gamma: float = 0.0,
                 smooth_iters: int = 10, support_edges: bool = False,
                 max_anchors: int = 20000, proj_dim: int = 128, seed: int = 0,
                 calib: float = 1.0, head_steps: int = 0, head_lr: float = 0.3,
                 head_full: float = 3.0, centre: str = "folder", tau_classes: int = 0,
                 whiten: float = 0.0, whiten_eps: float = 0.1, whiten_min: int = 500,
                 whiten_from: int | None = None, mix_anchors: int = 0,
                 label: str | None = None) -> None:
        super().__init__(label)
        if centre not in self.CENTRES:
            raise ValueError(f"folder learner: centre must be one of {', '.join(self.CENTRES)} "
                             f"(got {centre!r})")
        self.beta, self.mix_iters, self.centre = beta, mix_iters, centre
        self.tau_classes = tau_classes
        if not 0.0 <= whiten <= 1.0 or whiten_eps <= 0:
            raise ValueError(f"folder learner: whiten must lie in [0, 1] and whiten_eps be > 0 "
                             f"(got {whiten}, {whiten_eps})")
        self.whiten, self.whiten_eps, self.whiten_min = whiten, whiten_eps, whiten_min
        self.whiten_from = whiten_min if whiten_from is None else whiten_from
        self.mix_anchors = mix_anchors
        self.knn, self.knn_scale, self.knn_min = knn, knn_scale, knn_min
        self.smooth_iters = smooth_iters
        self.support_edges = support_edges
        self.max_anchors, self.proj_dim, self.seed = max_anchors, proj_dim, seed
        self.head_steps, self.head_full = head_steps, head_full
        for name, value in (("tau", tau), ("lam", lam), ("kappa", kappa), ("head_lr", head_lr),
                            ("calib", calib)):
            if value <= 0:
                raise ValueError(f"folder learner: {name} must be > 0 (got {value})")
            setattr(self, f"log_{name}", nn.Parameter(torch.tensor(float(value)).log()))
        self.gamma_ = nn.Parameter(torch.tensor(float(gamma)))

    # The meta-learned parameters as (0-d) tensors: exp of their logarithms.
    tau = property(lambda self: self.log_tau.exp())
    lam = property(lambda self: self.log_lam.exp())
    kappa = property(lambda self: self.log_kappa.exp())
    head_lr = property(lambda self: self.log_head_lr.exp())
    calib = property(lambda self: self.log_calib.exp())
    gamma = property(lambda self: self.gamma_)

    @classmethod
    def from_options(cls, neck, embed_dim, full_network, options):  # noqa: ANN001, ANN206
        """A fresh folder learner for ``train`` (its class defaults; no neck)."""
        if full_network:
            raise ValueError("the folder learner works on backbone features: use "
                             "--freeze-backbone (or --init a model with a frozen backbone)")
        return cls()

    def loss(self, support: torch.Tensor, support_labels: torch.Tensor,
             query: torch.Tensor, query_labels: torch.Tensor,
             num_classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Meta-training: the episode's query images are the unlabeled pool; the loss is
        the cross-entropy of their smoothed (reported) probabilities."""
        adapted = self.fit(support, support_labels, num_classes, pool=query)
        assert adapted.pool_logits is not None
        logp = F.log_softmax(adapted.pool_logits, dim=1)
        return F.nll_loss(logp, query_labels, ignore_index=-1), logp

    # -- feature space ------------------------------------------------------------------
    def _pre(self, x: torch.Tensor) -> torch.Tensor:
        """Power transform and L2, in place on one float32 copy: each fresh temporary of a
        2,048 x 2,560 chunk costs its page faults. Out of place for features that carry
        gradients (a backbone trained through this learner)."""
        if x.requires_grad:
            x = x.float().clamp_min(0) ** self.beta if self.beta != 1.0 else x.float()
            return F.normalize(x, dim=-1)
        x = x.to(torch.float32, copy=True)
        if self.beta != 1.0:
            x.clamp_(min=0).pow_(self.beta)
        return _l2_(x)

    def transform(self, x: torch.Tensor, mean: torch.Tensor,
                  white: Whitening | None = None) -> torch.Tensor:
        """Folder space: power transform, L2, minus the folder mean, L2; then, with
        ``white``, the folder's partial whitening and L2 again."""
        x = self._pre(x)
        z = F.normalize(x - mean, dim=-1) if x.requires_grad else _l2_(x.sub_(mean))
        if white is None:
            return z
        w = (z @ white.axes) * white.lift
        if z.requires_grad:
            return F.normalize(white.tail * z + w @ white.axes.T, dim=-1)
        return _l2_(z.mul_(white.tail).addmm_(w, white.axes.T))

    def project(self, x: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor | None,
                white: Whitening | None = None) -> torch.Tensor:
        z = self.transform(x, mean, white)
        return z @ basis if basis is not None else z

    def _anchors(self, n: int) -> torch.Tensor:
        """Positions of the anchors in a pool of ``n`` images: all of them, or a seeded
        subset of ``max_anchors``."""
        if n <= self.max_anchors:
            return torch.arange(n)
        g = torch.Generator().manual_seed(self.seed)
        return torch.randperm(n, generator=g)[:self.max_anchors].sort().values

    def _mean(self, pool: FolderPool) -> torch.Tensor:
        """The folder's mean (after the power transform and L2), taken over the anchors: the
        whole folder up to ``max_anchors`` images, a 20,000-image sample beyond; zero with
        ``centre="none"``."""
        if self.centre == "none":
            return torch.zeros(pool.raw(slice(0, 1)).shape[1])
        def make() -> torch.Tensor:
            pos = self._anchors(len(pool))
            total = torch.zeros(())
            for s in pool.chunks(len(pos)):
                total = total + self._pre(pool.raw(pos[s])).sum(0)
            return total / len(pos)
        return pool.derived(("mean", self.beta, self.max_anchors, self.seed), make)

    def width(self, images: int, dim: int) -> int:
        """How many principal axes the compact space of a folder of ``images`` keeps:
        ``proj_dim`` from ``full_rows`` images on, and as many more for fewer images as keep
        images x axes at ``full_rows x proj_dim``, up to the features' ``dim`` (the exact
        space: 10,000 images or fewer at 2,560-d with the shipped 256 axes). So a folder of
        any size holds a compact matrix no larger than one of ``full_rows`` images and
        costs about what it costs (the neighbour search: images x anchors x axes, the
        anchors at most ``max_anchors``; measured at 14,000 images: the read 1.2x, the
        folder-aware labels 1.9x the 100,000-image folder's), and a fit's accuracy grows
        with the axes: on handwriting's whole folder (13,180 images; 2,044 axes at one
        example a class instead of 408 with the earlier rule, which kept anchors x axes)
        +4.2 / +1.7 points at 1 / 5 examples a class (README, "A wider compact space")."""
        return min(dim, max(self.proj_dim, self.proj_dim * self.full_rows // max(images, 1)))

    def _basis(self, pool: FolderPool, pos: torch.Tensor, mean: torch.Tensor,
               width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``width`` leading principal axes of the anchors in folder space and the
        variance along each, by a seeded randomized subspace iteration (Halko et al. 2011:
        16 extra directions, 2 power iterations) over chunks of anchors, then a Rayleigh-Ritz
        rotation: 4 passes over the anchors instead of their full covariance and its
        ``eigh`` (measured in bench_folder.py), and no anchor matrix held at once."""
        d = mean.shape[0]
        q = min(width + 16, d)
        y = torch.randn(d, q, generator=torch.Generator().manual_seed(self.seed))
        for last in (False, False, False, True):
            gram = torch.zeros(q, q) if last else torch.zeros(d, q)
            for s in pool.chunks(len(pos)):
                b = self.transform(pool.raw(pos[s]), mean)
                if last:
                    ay = b @ y
                    gram.addmm_(ay.T, ay)
                else:
                    gram.addmm_(b.T, b @ y)  # (A^T A) y
            if not last:
                y = torch.linalg.qr(gram).Q
        var, rot = torch.linalg.eigh(gram)  # ascending
        return (y @ rot[:, -width:]).contiguous(), var[-width:].clamp_min(0) / len(pos)

    def whiten_power(self, images: int) -> float:
        """The whitening's power for a folder of ``images``: ``whiten`` from ``whiten_min``
        images on, that times ``images / whiten_min`` below, none under ``whiten_from``. A
        covariance of few images mostly tells their classes apart, and equalising it
        undoes that: whitened fully, 150-image folders lost 1.4 points at 5 shots (mean of
        five domains), to half the power they gained 1.0 / 0.3 (1 / 5 shots), and 75-image
        pools lost up to 7.8 points (README, "Whitening by the folder")."""
        if self.whiten <= 0 or images < self.whiten_from:
            return 0.0
        return self.whiten * min(1.0, images / max(self.whiten_min, 1))

    def _whitening(self, axes: torch.Tensor, var: torch.Tensor, power: float) -> Whitening:
        """Scales ``(variance + eps)^(-power/2)`` along the leading axes, and along every
        other direction the scale of their mean variance (folder-space images have unit
        norm, so all variances sum to 1); ``eps`` is ``whiten_eps`` times the mean variance,
        1 / D. Axes along which the folder barely varies are lifted, the few that dominate
        it (what ImageNet features share across a domain they were not trained on) are
        damped."""
        d, r = axes.shape
        eps = self.whiten_eps / d
        rest = max(1.0 - float(var.sum()), 0.0) / max(d - r, 1)
        tail = (rest + eps) ** (-power / 2)
        return Whitening(axes, (var + eps) ** (-power / 2) - tail, tail)

    def _project_all(self, pool: FolderPool, mean: torch.Tensor, basis: torch.Tensor | None,
                     white: Whitening | None) -> torch.Tensor:
        """Every pool image in the compact space. With a basis, one product a chunk: for x
        after the power transform and L2, ``normalize(x - m) @ B = (x @ B - m @ B) /
        |x - m|`` and ``|x - m|^2 = |x|^2 - 2 x.m + |m|^2``, so ``x @ [B, m]`` gives both
        (no centred copy of the chunk). The whitening's axes are then the basis: ``W z @ B``
        scales each coordinate, and ``|W z|`` follows from them and ``|z| = 1``."""
        if basis is None or pool.raw(slice(0, 1)).requires_grad:  # (a backbone in training)
            return torch.cat([self.project(pool.raw(s), mean, basis, white) for s in pool.chunks()])
        bm = torch.cat([basis, mean[:, None]], 1)
        mb, mm = mean @ basis, mean @ mean
        out = torch.empty(len(pool), basis.shape[1])
        for s in pool.chunks(size=self.project_rows):
            x = self._pre(pool.raw(s))
            xb = x @ bm
            norm2 = (x * x).sum(1, keepdim=True) - 2 * xb[:, -1:] + mm
            z = (xb[:, :-1] - mb).div_(norm2.clamp_min_(1e-24).sqrt_())
            if white is not None:
                rest = (1.0 - (z * z).sum(1, keepdim=True)).clamp_min_(0) * white.tail ** 2
                z.mul_(white.lift + white.tail)
                z.div_((z * z).sum(1, keepdim=True).add_(rest).clamp_min_(1e-24).sqrt_())
            out[s] = z
        return out

    def _space_key(self) -> tuple:
        """The settings the folder's derived space depends on (the pool's cache keys)."""
        return (self.centre, self.beta, self.max_anchors, self.seed, self.proj_dim,
                self.whiten, self.whiten_eps, self.whiten_min, self.whiten_from)

    def _space(self, pool: FolderPool, mean: torch.Tensor) -> Space:
        """The anchors, the compact space and its whitening, and every pool image in it.
        Small folders stay exact (full dimension: ``width``);
        their whitening, if any, works on ``proj_dim`` leading axes, to a power that
        depends on the folder's size (``whiten_power``)."""
        def make() -> Space:
            n, d = len(pool), len(mean)
            pos = self._anchors(n)
            width = self.width(n, d)
            project = bool(self.proj_dim) and width < d
            basis = white = None
            power = self.whiten_power(n)
            if project or power > 0:
                axes, var = self._basis(pool, pos, mean, width if project else min(self.proj_dim or d, d))
                basis = axes if project else None
                white = self._whitening(axes, var, power) if power > 0 else None
            zp = self._project_all(pool, mean, basis, white)
            return Space(pos, basis, white, zp)
        return pool.derived(("space", *self._space_key()), make)

    def _mixers(self, pool: FolderPool, mean: torch.Tensor) -> torch.Tensor:
        """The rows the prototypes' pool means are taken over: the anchors, or a seeded
        subset of ``mix_anchors`` of them (gathered once per folder)."""
        space = self._space(pool, mean)
        def make() -> torch.Tensor:
            pos = space.pos
            if self.mix_anchors and len(pos) > self.mix_anchors:
                g = torch.Generator().manual_seed(self.seed + 1)
                pos = pos[torch.randperm(len(pos), generator=g)[:self.mix_anchors].sort().values]
            return space.zp if len(pos) == len(space.zp) else space.zp[pos]
        return pool.derived(("mix", *self._space_key(), self.mix_anchors), make)

    def _neighbours(self, pool: FolderPool, mean: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each pool image's ``knn`` most similar anchors (itself excluded), in the compact
        space, most similar first, built once per folder: (their positions among the
        anchors as int32, 4 MB less a view than int64 at 100,000 images; their
        similarities), each (images, knn). A fit takes its first ``k`` (``_edges``)."""
        def make():
            pos, _, _, zp = self._space(pool, mean)
            n, a = len(pool), len(pos)
            anchors = zp if a == n else zp[pos]  # (a copy, not kept)
            k = max(min(self.knn, a - 1), 0)
            anchor_of = torch.full((n,), -1, dtype=torch.long)
            anchor_of[pos] = torch.arange(a)
            idx = torch.empty(n, k, dtype=torch.int32)
            sims = torch.empty(n, k)
            if k > 0:
                # One similarity buffer for every chunk: a fresh chunk x 20k matrix each time
                # costs its page faults, 3x the product itself (bench_folder.py).
                buf = torch.empty(min(self.search_rows, n), a)
                for s in pool.chunks(size=self.search_rows):
                    sim = torch.mm(zp[s], anchors.T, out=buf[:s.stop - s.start])
                    own = anchor_of[s]
                    hit = (own >= 0).nonzero().flatten()
                    sim[hit, own[hit]] = -float("inf")  # not its own neighbour
                    sims[s], idx[s] = torch.topk(sim, k, dim=1)
            return idx, sims
        return pool.derived(("graph", *self._space_key(), self.knn), make)

    def tau_for(self, classes: int) -> torch.Tensor:
        """The temperature of a fit with ``classes`` classes: ``tau``, or with ``tau_classes``
        that times ln(classes) / ln(tau_classes) above ``tau_classes`` classes. With many
        classes each image's soft assignment spreads over them all and one example a class
        needs sharper scores: measured on handwriting's folder at 1 shot, the best
        temperature grew from ``tau`` at 10 classes to twice it and more at 100-659
        (README, "A temperature for many classes"); at or below ``tau_classes`` classes
        (every benchmark episode) nothing changes."""
        if self.tau_classes <= 1 or classes <= self.tau_classes:
            return self.tau
        return self.tau * (math.log(classes) / math.log(self.tau_classes))

    def neighbours_for(self, images: int, classes: int) -> int:
        """How many neighbours smooth an image's scores: ``knn``, or with ``knn_scale``
        that many times the square root of the images a class has on average (the classic
        k ~ sqrt(n) of nearest-neighbour rules, per class), within ``[knn_min, knn]``: few
        in a folder of many small classes, where a distant neighbour is of another class,
        more where classes are large."""
        if self.knn_scale <= 0:
            return self.knn
        k = round(self.knn_scale * math.sqrt(images / max(classes, 1)))
        return int(min(self.knn, max(self.knn_min, k)))

    def _edges(self, pool: FolderPool, mean: torch.Tensor, k: int
               ) -> tuple[torch.Tensor, Graph, torch.Tensor]:
        """The ``k``-neighbour graph: (the similarity of each image's k-th neighbour, the
        anchors' symmetrised kNN graph ``(W + W^T) / 2`` (``neighbour_graph``), every
        image's k neighbours among the anchors). Summing every image's neighbours' scores
        at the end is one unweighted ``embedding_bag`` (1.1 ms at 100,000 images, 1.4 ms
        as a CSR product)."""
        def make():
            pos = self._space(pool, mean).pos
            idx, sims = self._neighbours(pool, mean)
            k_ = min(k, idx.shape[1])
            idx = idx[:, :k_]
            n, a = len(pool), len(pos)
            kth = sims[:, k_ - 1] if k_ > 0 else torch.full((n,), float("inf"))
            return kth, neighbour_graph(idx[pos], a), idx.sort(1).values
        return pool.derived(("edges", *self._space_key(), self.knn, k), make)

    # -- the interface ------------------------------------------------------------------
    def prepare(self, pool: FolderPool) -> None:
        """The folder's mean, compact space, the rows of the pool means and the neighbours:
        what every fit on ``pool`` reads, and nearly the whole cost of the first one
        (seconds at 100,000 images). With ``knn_scale`` a fit still derives its graph's
        edges for its count of classes, a small cost (measured in bench_folder.py)."""
        with torch.no_grad():
            mean = self._mean(pool)
            self._mixers(pool, mean)
            if self._space(pool, mean).white is not None:
                self._white_norms(pool, mean)  # (for ``preview``)
            if self.knn > 0 and len(pool) > 1:
                self._neighbours(pool, mean)
                if self.knn_scale <= 0:  # the edges a fit will take (else: per class count)
                    self._edges(pool, mean, self.knn)
        pool.complete = True

    def fit(self, support: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None,
            pool: FolderPool | torch.Tensor | None = None) -> FolderAdapted:
        """In training mode (and with gradients on) the result keeps the autograd graph to
        the meta-learned parameters; otherwise nothing is recorded."""
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):
            return self._fit(support, labels, num_classes, pool)

    def _fit(self, support: torch.Tensor, labels: torch.Tensor, num_classes: int | None,
             pool: FolderPool | torch.Tensor | None) -> FolderAdapted:
        n = infer_num_classes(labels, num_classes)
        if pool is None:  # no folder: folder statistics from the examples alone
            pool = FolderPool(support)
        elif not isinstance(pool, FolderPool):
            pool = FolderPool(pool)
        mean, s, p0, perp0, shots = self._examples(support, labels, n, pool)
        basis, white = self._space(pool, mean)[1:3]
        trust = (self.kappa / (self.kappa + shots))[:, None]
        tau = self.tau_for(n)
        protos, perp = p0, perp0
        anchors = self._mixers(pool, mean)
        for _ in range(self.mix_iters):
            r = softmax_rows_(_score(anchors, protos, perp, tau))
            pool_mean = (r.T @ anchors) / r.sum(0).clamp_min(1e-6)[:, None]
            protos = (1 - trust) * p0 + trust * pool_mean
            perp = (1 - trust[:, 0]) ** 2 * perp0
        sp = s @ basis if basis is not None else s
        protos = self._head(protos, perp, sp, labels, shots, tau)
        adapted = FolderAdapted(self, protos, perp, mean, basis, white, tau)
        if self.knn > 0 and self.lam > 0 and len(pool) > 1:
            adapted.pool_logits = self._smooth(adapted, pool, mean, float(shots.mean()),
                                              sp, F.one_hot(labels, n).to(s.dtype))
            pool.complete = True
        return adapted

    def _examples(self, support: torch.Tensor, labels: torch.Tensor, n: int, pool: FolderPool,
                  whitened: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Where a fit starts: (the folder's mean, the examples in folder space, their class
        means in the compact space, each mean's squared norm outside it less its expected
        noise, the examples a class); ``whitened=False``: in the space before the whitening."""
        mean = self._mean(pool)
        _, basis, white, _ = self._space(pool, mean)
        s = self.transform(support, mean, white if whitened else None)
        p_full = class_means(s, labels, n)
        p0 = p_full @ basis if basis is not None else p_full
        shots = torch.bincount(labels, minlength=n).to(s.dtype)
        # The part outside the compact space, less the prototype's expected noise: the
        # score is then an unbiased estimate of the distance to the class's true mean.
        perp0 = ((p_full * p_full).sum(1) - (p0 * p0).sum(1)).clamp_min(0) \
            - self._noise(s, p_full, labels, shots)
        return mean, s, p0, perp0, shots

    def preview(self, support: torch.Tensor, labels: torch.Tensor, num_classes: int | None,
                pool: FolderPool) -> FolderAdapted:
        """The inductive result on a folder already read: each image's nearest class mean of
        the examples in the folder's space *before* its whitening (power transform, centring,
        compact axes), nothing inferred from the folder's other images. One product of the
        folder's compact matrix with the prototypes (``pool_logits``), shown at once after a
        change of examples while the folder-aware ``fit`` runs (README, "Speed").

        Not in the whitened space itself: there the class means of a few examples were well
        below the plain centroid (whole folders, one example a class: clipart 31.8 against
        44.3), since the whitening lifts the directions in which single images are noise.
        Unwhitened they were ahead of it on most folders and agreed more with the
        folder-aware labels. The whitened matrix serves: ``zp_i = W z_i / n_i``, so
        ``z_i . p = n_i zp_i . W^-1 p``, with ``n_i`` taken once per folder
        (``_white_norms``)."""
        with torch.no_grad():
            n = infer_num_classes(labels, num_classes)
            mean, _, p0, perp0, _ = self._examples(support, labels, n, pool, whitened=False)
            space = self._space(pool, mean)
            adapted = FolderAdapted(self, p0, perp0, mean, space.basis, None, self.tau_for(n))
            lead, shift = _score_terms(p0, perp0, adapted.tau)
            if space.white is None:
                adapted.pool_logits = torch.addmm(-shift, space.zp, lead.T)
            else:
                scores = space.zp @ self._unwhiten(space, lead).T
                adapted.pool_logits = scores.mul_(self._white_norms(pool, mean)[:, None]).sub_(shift)
            return adapted

    @staticmethod
    def _unwhiten(space: Space, v: torch.Tensor) -> torch.Tensor:
        """``W^-1 v`` for each row of ``v`` (in the compact space, whose axes are the
        whitening's, ``W`` scales each coordinate)."""
        white = space.white
        assert white is not None
        if space.basis is not None:
            return v / (white.lift + white.tail)
        inv = 1.0 / (white.lift + white.tail) - 1.0 / white.tail
        return v / white.tail + ((v @ white.axes) * inv) @ white.axes.T

    def _white_norms(self, pool: FolderPool, mean: torch.Tensor) -> torch.Tensor:
        """Each pool image's ``n_i = |W z_i|`` (``z_i`` its unit folder-space vector before
        the whitening), derived once per folder from the whitened rows alone: in the full
        space ``1 / |W^-1 zp_i|``; in the compact one, whose part outside the axes ``W``
        scales by ``tail``, ``1 / n_i^2 = |W^-1 zp_i|^2 + (1 - |zp_i|^2) / tail^2``."""
        space = self._space(pool, mean)

        def make() -> torch.Tensor:
            white, zp = space.white, space.zp
            out = torch.empty(len(zp))
            for s in pool.chunks(size=self.project_rows):
                u = self._unwhiten(space, zp[s]).square_().sum(1)
                if space.basis is not None:
                    u += (1.0 - zp[s].square().sum(1)).clamp_min_(0) / white.tail ** 2
                out[s] = u.clamp_min_(1e-24).rsqrt_()
            return out
        return pool.derived(("white norms", *self._space_key()), make)

    @staticmethod
    def _noise(s: torch.Tensor, p: torch.Tensor, labels: torch.Tensor,
               shots: torch.Tensor) -> torch.Tensor:
        """Each class prototype's expected squared error ``sigma^2 / K`` for a class of ``K``
        examples (``sigma^2``: an example's squared distance to its class's true mean,
        pooled over the classes with two or more examples, unbiased). A prototype of one
        example is as far from its class's mean as an example, one of five much nearer: the
        plain distance makes the class with more examples the nearest to nearly every image
        (measured: one class of 5 examples and nine of 1 on digits' folder, 9.9% of the
        images right against 49.4 for the centroid; README "Uneven examples"). Zeros when
        every class has as many examples: a shift that no softmax over classes sees."""
        many = shots > 1
        if bool(shots.min() == shots.max()) or not bool(many.any()):
            return torch.zeros_like(shots)
        sigma2 = ((s - p[labels]) ** 2).sum(1)[many[labels]].sum() / (shots[many] - 1).sum()
        return sigma2 / shots.clamp_min(1) * (shots > 0)  # (a class of none: no prototype)

    def _head(self, protos: torch.Tensor, perp: torch.Tensor, support: torch.Tensor,
              labels: torch.Tensor, shots: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """``head_steps`` gradient-descent steps on the examples' cross-entropy from
        ``protos``; the step size ramps from 0 at one example a class to ``head_lr`` at
        ``head_full``, and halves (the step undone) whenever the loss would rise. With
        gradients on (meta-training) the steps stay differentiable (second order).

        Only when every class has as many examples: fitting the examples themselves moves a
        prototype of few examples onto them, out from the folder's centre, and one of many
        less, so with uneven counts the class with more examples takes nearly every image
        (measured, every split of 1-5 examples a class tried, on four folders: README
        "Uneven examples"; weighting the classes evenly or ramping per class did not help)."""
        ramp = min(1.0, max(0.0, (float(shots.mean()) - 1.0) / max(self.head_full - 1.0, 1e-6)))
        if self.head_steps <= 0 or ramp <= 0 or bool(shots.min() != shots.max()):
            return protos
        lr = self.head_lr * ramp
        onehot, count = F.one_hot(labels, protos.shape[0]).to(support.dtype), len(labels)

        def loss_and_grad(w: torch.Tensor) -> tuple[float, torch.Tensor]:
            """The examples' mean cross-entropy and its gradient in closed form: for scores
            ``tau * (2 s.w - |w|^2 - perp)`` it is ``2 tau (G^T S - diag(sum_i G) W)``, ``G``
            the softmax minus the one-hot labels, over the count. A quarter of autograd's
            time, and differentiable itself (meta-training's second order goes through it;
            the test checks it against autograd)."""
            logp = _score(support, w, perp, tau).log_softmax(1)
            g = (logp.exp() - onehot) / count
            grad = 2.0 * tau * (g.T @ support - g.sum(0)[:, None] * w)
            return float(-(logp * onehot).sum()) / count, grad

        w = protos
        loss, grad = loss_and_grad(w)
        for _ in range(self.head_steps):
            trial = w - lr * grad
            new, new_grad = loss_and_grad(trial)
            if new > loss:
                lr = lr * 0.5
                continue
            w, loss, grad = trial, new, new_grad
        return w

    def _hits(self, pool: FolderPool, mean: torch.Tensor, keys: list[bytes],
              support: torch.Tensor, zp: torch.Tensor, protos: torch.Tensor, perp: torch.Tensor,
              tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every folder image's scaled class scores ``_score(zp, protos, perp, tau)``, in one
        product that also finds, for each example not seen on this folder before, the
        images it would be among the ``knn`` nearest of (its similarity at least their
        ``knn``-th neighbour's, the loosest any ``k`` takes). Those are kept per example
        (``keys``: its row's bytes) for the later fits, so a fit's pass costs the same with
        10 examples or 500 (with every example in the product it grew with them: 0.1 s a
        fit at 1 a class, 0.7 s at 50, 100k images, README "Speed"). Returns (the scores,
        then each example's hits: image, similarity, the example's index in ``keys``)."""
        known = pool.derived(("hits", *self._space_key(), self.knn), dict) if keys else {}
        fresh: dict[bytes, int] = {}
        for j, key in enumerate(keys):
            if key not in known:
                fresh.setdefault(key, j)
        if not fresh:
            unary = _score(zp, protos, perp, tau)
        else:  # the same product, with the new examples as more columns
            k = protos.shape[0]
            lead, shift = _score_terms(protos, perp, tau)
            both = torch.cat([lead, support[list(fresh.values())].detach()])
            offset = torch.cat([-shift, shift.new_zeros(len(fresh))])
            floor = self._neighbours(pool, mean)[1][:, -1]
            scores, found = [], []
            for s in pool.chunks(size=max(1024, 2 ** 22 // both.shape[0])):
                zz = torch.addmm(offset, zp[s], both.T)
                scores.append(zz[:, :k])
                img, col = (zz[:, k:].detach() >= floor[s, None]).nonzero(as_tuple=True)
                found.append((img + s.start, col, zz[img, col + k].detach()))
            unary = torch.cat(scores)
            img, col, sim = (torch.cat(t) for t in zip(*found))
            order = torch.argsort(col, stable=True)
            counts = torch.bincount(col, minlength=len(fresh)).tolist()
            for key, i, v in zip(fresh, img[order].split(counts), sim[order].split(counts)):
                known[key] = (i, v)
        if not keys:
            none = zp.new_zeros(0, dtype=torch.long)
            return unary, none, zp.new_zeros(0), none
        hits = [known[key] for key in keys]
        counts = torch.tensor([len(i) for i, _ in hits], device=zp.device)
        return (unary, torch.cat([i for i, _ in hits]), torch.cat([v for _, v in hits]),
                torch.repeat_interleave(torch.arange(len(keys), device=zp.device), counts))

    def _smooth(self, adapted: FolderAdapted, pool: FolderPool, mean: torch.Tensor,
                shots: float, support: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """The pool's smoothed scores, divided by ``calib`` (softmax: the reported
        probabilities). At 100,000 images every pass over the (images, classes) scores
        costs about a millisecond, so they are made by one fused product and then changed
        in place where autograd does not record (meta-training)."""
        space = self._space(pool, mean)
        pos, zp = space.pos, space.zp
        kth, graph, to_anchors = self._edges(pool, mean,
                                             self.neighbours_for(len(pool), adapted.num_classes))
        protos, tau, n = adapted.prototypes, adapted.tau, len(pool)
        # Scaled scores (``tau * _score``) of every image, and the labelled neighbours: the
        # examples that would be among an image's k nearest vote with their one-hot label.
        keys = [r.tobytes() for r in support.detach().cpu().numpy()] if self.support_edges else []
        unary, img, sim, example = self._hits(pool, mean, keys, support, zp, protos, adapted.perp, tau)
        # More examples, less need of the neighbours: weight / shots ** gamma.
        w = self.lam * tau / max(shots, 1.0) ** self.gamma
        inplace = not unary.requires_grad  # (autograd records it in meta-training)
        unary_a = unary if len(pos) == n else unary[pos]
        y = softmax_rows(unary_a)
        keep = sim >= kth[img]
        votes = onehot[example[keep]] * w
        base = (unary.index_add_ if inplace else unary.index_add)(0, img[keep], votes)
        base_a = base if len(pos) == n else base[pos]
        logits_a, weighted = base_a, graph._replace(weights=graph.weights * w)
        for _ in range(self.smooth_iters):
            near_a = spread(weighted, y)  # w * (W + W^T) / 2 @ y
            logits_a = near_a.add_(base_a) if inplace else near_a + base_a
            y = softmax_rows(logits_a)
        # The smoothed scores rank well but are far too sure of themselves (neighbours'
        # votes add up): ``calib`` brings the reported confidence back towards accuracy.
        anchored = logits_a / self.calib
        if len(pos) == n:
            return anchored
        near = F.embedding_bag(to_anchors, y, mode="sum")  # its neighbours' scores, summed
        if not inplace:
            return ((base + w * near) / self.calib).index_put((pos,), anchored)
        return near.mul_(w).add_(base).div_(self.calib).index_put_((pos,), anchored)

    def config(self) -> dict[str, Any]:
        v = lambda t: float(f"{float(t.detach()):.6g}")  # noqa: E731  (not float32 noise)
        return {"method": self.method, "beta": self.beta, "tau": v(self.tau),
                "kappa": v(self.kappa), "mix_iters": self.mix_iters, "knn": self.knn,
                **({"knn_scale": self.knn_scale, "knn_min": self.knn_min} if self.knn_scale > 0 else {}),
                "lam": v(self.lam), "gamma": v(self.gamma), "smooth_iters": self.smooth_iters,
                "support_edges": self.support_edges, "max_anchors": self.max_anchors,
                "proj_dim": self.proj_dim, "seed": self.seed, "calib": v(self.calib),
                "head_steps": self.head_steps, "head_lr": v(self.head_lr),
                "head_full": self.head_full,
                **({"centre": self.centre} if self.centre != "folder" else {}),
                **({"tau_classes": self.tau_classes} if self.tau_classes > 1 else {}),
                **({"whiten": self.whiten, "whiten_eps": self.whiten_eps, "whiten_min": self.whiten_min,
                    **({"whiten_from": self.whiten_from} if self.whiten_from != self.whiten_min else {})}
                   if self.whiten > 0 else {}),
                **({"mix_anchors": self.mix_anchors} if self.mix_anchors else {}),
                **self.label_config()}

