"""Prototypical Networks (Snell et al., 2017).

Each class is represented by the mean of its support embeddings (its prototype); a query
gets softmax(-squared Euclidean distance to each prototype), the paper's choice.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import Adapted, MetaLearner, class_means, infer_num_classes, squared_euclidean
from .neck import apply_neck, build_neck, neck_config, task_mean


class ProtoAdapted(Adapted):
    def __init__(self, learner: "ProtoNet", prototypes: torch.Tensor,
                 tmean: torch.Tensor | None = None) -> None:
        self.learner = learner
        self.prototypes = prototypes
        self.tmean = tmean
        self.num_classes = prototypes.shape[0]

    def logits(self, query: torch.Tensor) -> torch.Tensor:
        return -squared_euclidean(apply_neck(self.learner.neck, query, self.tmean),
                                  self.prototypes)


class ProtoNet(MetaLearner):
    method = "protonet"
    label = "ProtoNet"

    def __init__(self, neck: dict[str, Any] | None = None, label: str | None = None) -> None:
        super().__init__(label)
        self.neck: nn.Module = build_neck(neck)

    @classmethod
    def from_options(cls, neck, embed_dim, full_network, options) -> "ProtoNet":  # noqa: ANN001
        return cls(neck=neck)

    def fit(self, support: torch.Tensor, labels: torch.Tensor,
            num_classes: int | None = None, pool: Any = None) -> ProtoAdapted:
        n = infer_num_classes(labels, num_classes)
        tmean = task_mean(self.neck, support)
        return ProtoAdapted(self, class_means(apply_neck(self.neck, support, tmean), labels, n),
                            tmean)

    def config(self) -> dict[str, Any]:
        return {"method": self.method, "neck": neck_config(self.neck), **self.label_config()}
