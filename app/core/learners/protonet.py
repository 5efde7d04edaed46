"""Prototypical Networks (Snell et al., 2017).

Each class is represented by the mean of its support embeddings (its prototype); a query
gets softmax(-squared Euclidean distance to each prototype), the paper's choice.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import Adapted, MetaLearner, class_means, infer_num_classes, squared_euclidean
from .neck import build_neck, neck_config


class ProtoAdapted(Adapted):
    def __init__(self, learner: "ProtoNet", prototypes: torch.Tensor) -> None:
        self.learner = learner
        self.prototypes = prototypes
        self.num_classes = prototypes.shape[0]

    def logits(self, query: torch.Tensor) -> torch.Tensor:
        return -squared_euclidean(self.learner.neck(query), self.prototypes)


class ProtoNet(MetaLearner):
    method = "protonet"

    def __init__(self, neck: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.neck: nn.Module = build_neck(neck)

    def fit(self, support: torch.Tensor, labels: torch.Tensor,
            num_classes: int | None = None) -> ProtoAdapted:
        n = infer_num_classes(labels, num_classes)
        return ProtoAdapted(self, class_means(self.neck(support), labels, n))

    def config(self) -> dict[str, Any]:
        return {"method": self.method, "neck": neck_config(self.neck)}
