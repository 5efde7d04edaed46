"""A shippable few-shot model: backbone + one or more learners + how to preprocess input.

    model.features(images)          # the expensive, cacheable pass: (B, C, H, W) -> (B, D)
    model.learner(key).fit(support_features, labels).predict_proba(query_features)
    model.methods                   # the learners' keys, as the card lists them

Every learner of a model consumes the same backbone features, so switching method never
re-embeds an image.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .backbones import build_backbone
from .inputspec import InputSpec
from .learners import MetaLearner, build_learner


OMNIGLOT_INPUT = InputSpec(size=(28, 28), channels=1, mean=(0.0,), std=(1.0,), resize="stretch",
                           crop_fraction=1.0)


class FewShotModel(nn.Module):
    def __init__(self, backbone: nn.Module, learners: dict[str, MetaLearner],
                 input_spec: InputSpec, default_method: str | None = None) -> None:
        super().__init__()
        if not learners:
            raise ValueError("a model needs at least one learner")
        self.backbone = backbone
        self.learners = nn.ModuleDict(learners)
        self.input_spec = input_spec
        self.default_method = default_method or next(iter(learners))
        if self.default_method not in self.learners:
            raise ValueError(f"default method {self.default_method!r} is not among "
                             f"{list(self.learners)}")

    @property
    def methods(self) -> list[str]:
        return list(self.learners.keys())

    def learner(self, method: str | None = None) -> MetaLearner:
        method = method or self.default_method
        if method not in self.learners:
            raise ValueError(f"this model has no {method!r} learner; it has "
                             f"{', '.join(self.methods)}")
        return self.learners[method]  # type: ignore[return-value]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def architecture(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone.config(),  # type: ignore[operator]
            "learners": {m: l.config() for m, l in self.learners.items()},  # type: ignore[union-attr]
            "default_method": self.default_method,
            "input": self.input_spec.to_dict(),
        }

    @classmethod
    def from_architecture(cls, arch: dict[str, Any]) -> "FewShotModel":
        return cls(backbone=build_backbone(arch["backbone"]),
                   learners={m: build_learner(c) for m, c in arch["learners"].items()},
                   input_spec=InputSpec.from_dict(arch["input"]),
                   default_method=arch.get("default_method"))


def feature_dim(model: FewShotModel) -> int:
    from .backbones import output_dim

    return output_dim(model.backbone, model.input_spec.shape)





def backbone_id(model: FewShotModel) -> str:
    """Identifier of what the cached features depend on: backbone weights + input spec.

    Models that share a backbone (e.g. the photo model's ProtoNet and MAML modes, or the
    frozen-ImageNet baseline) share cached embeddings."""
    import hashlib
    import json

    h = hashlib.sha256()
    h.update(json.dumps(model.backbone.config(), sort_keys=True).encode())  # type: ignore[operator]
    h.update(json.dumps(model.input_spec.to_dict(), sort_keys=True).encode())
    for k, v in sorted(model.backbone.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
