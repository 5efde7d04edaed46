"""A shippable few-shot model: backbone + one or more learners + how to preprocess input.

    model.features(images)          # the expensive, cacheable pass: (B, C, H, W) -> (B, D)
    model.learner(key).fit(support_features, labels).predict_proba(query_features)
    model.methods                   # the learners' keys, as the card lists them

Every learner of a model consumes the same backbone features, so switching method never
re-embeds an image.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .backbones import build_backbone
from .learners import MetaLearner, build_learner


@dataclass(frozen=True)
class InputSpec:
    """How an image becomes the backbone's input tensor (applied in ``images.py``).

    resize: "stretch" (resize to size, ignoring aspect) or "center_crop" (resize the
    shorter side to size / crop_fraction, then take the central size crop).
    """

    size: tuple[int, int] = (224, 224)
    channels: int = 3
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    resize: str = "center_crop"
    crop_fraction: float = 0.875

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputSpec":
        return cls(size=tuple(d["size"]), channels=int(d["channels"]), mean=tuple(d["mean"]),
                   std=tuple(d["std"]), resize=d.get("resize", "stretch"),
                   crop_fraction=float(d.get("crop_fraction", 1.0)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"] = list(self.size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size[0], self.size[1])


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
