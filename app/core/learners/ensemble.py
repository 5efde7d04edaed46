"""Several learners over the same features, their probabilities combined as a product of
experts: the mean of the members' log-probabilities, renormalised (the softmax of the mean
of their scores: each member's per-row normaliser cancels).

Each member fits alone. Members that read the folder read one ``FolderPool``, so what one
of them derives from the folder (its mean, compact space, neighbours: keyed by the
member's settings) another with the same settings takes as it is. The default photo model
uses it for two views of the folder that fail in different places (measured on the
development suite, README "Choosing the default"): the folder learner centred on the
folder's mean, best when the classes are about even, and the same learner uncentred,
robust when a few classes fill most of the folder.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import Adapted, Capabilities, MetaLearner
from .folder import FolderPool


def _mean(scores: list[torch.Tensor]) -> torch.Tensor:
    """The members' mean score, summed into one new (images, classes) buffer: their mean
    log-probability up to a per-row constant, which no softmax sees."""
    if any(s.requires_grad for s in scores):
        return torch.stack(scores).mean(0)
    total = scores[0] + scores[1]
    for s in scores[2:]:
        total.add_(s)
    return total.div_(len(scores))


class EnsembleAdapted(Adapted):
    def __init__(self, learner: "Ensemble", members: list[Adapted]) -> None:
        self.learner = learner  # (whose parameters tell the device queries go to)
        self.members = members
        self.num_classes = members[0].num_classes
        scores = [a.pool_logits for a in members]
        self.pool_logits = _mean(scores) if all(s is not None for s in scores) else None

    def logits(self, query: torch.Tensor) -> torch.Tensor:
        """The mean of the members' log-probabilities (softmax gives the product of experts)."""
        return _mean([a.logits(query) for a in self.members])


class Ensemble(MetaLearner):
    method = "ensemble"
    label = "Ensemble"
    capabilities = Capabilities(trainable=False)  # per instance: what its members do

    def __init__(self, members: list[dict[str, Any]], label: str | None = None) -> None:
        from . import build_learner  # (the registry imports this module)

        super().__init__(label)
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        self.members = nn.ModuleList(build_learner(c) for c in members)
        caps = [m.capabilities for m in self.members]
        if len({c.reads_pool for c in caps}) > 1:
            raise ValueError("an ensemble's members must all read the folder, or none")
        self.capabilities = Capabilities(  # type: ignore[misc]  (an instance's own)
            gradient_steps=any(c.gradient_steps for c in caps),
            reads_pool=caps[0].reads_pool, trainable=False)

    def fit(self, support: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None,
            pool: Any = None) -> EnsembleAdapted:
        if pool is None or not self.capabilities.reads_pool:
            return EnsembleAdapted(self, [m.fit(support, labels, num_classes) for m in self.members])
        if not isinstance(pool, FolderPool):
            pool = FolderPool(pool)  # one pool for all: shared derived work
        return EnsembleAdapted(self, [m.fit(support, labels, num_classes, pool=pool)
                                      for m in self.members])

    def preview(self, support: torch.Tensor, labels: torch.Tensor, num_classes: int | None,
                pool: Any) -> Adapted | None:
        """The first member's preview: one view, one product (a preview is for speed; the
        views are combined by ``fit``)."""
        for m in self.members:
            quick = m.preview(support, labels, num_classes, pool)
            if quick is not None:
                return quick
        return None

    def prepare(self, pool: Any) -> None:
        """Each member's ``prepare``; the pool counts as read only once all have run."""
        for m in self.members:
            m.prepare(pool)
            pool.complete = False
        pool.complete = True

    def config(self) -> dict[str, Any]:
        return {"method": self.method, "members": [m.config() for m in self.members],
                **self.label_config()}
