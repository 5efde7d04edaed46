"""Feature extractors ("backbones"), built by name from a plain config dict.

A backbone maps a batch of preprocessed images ``(B, C, H, W)`` to feature vectors
``(B, D)``. It is the expensive, cacheable part of a model: the app runs it once per
image and keeps the result; everything after it (necks, learners) acts on features.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int, track_running_stats: bool = True) -> nn.Sequential:
    """3x3 conv (64 filters in the papers) -> batch norm -> ReLU -> 2x2 max-pool."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels, track_running_stats=track_running_stats),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(2),
    )


class Conv4(nn.Module):
    """Conv-4 of the ProtoNet and MAML papers: 4 x [conv3x3(64), BN, ReLU, maxpool2].

    On 28x28 Omniglot the output is 64 x 1 x 1 -> 64-d; on 84x84 it is 64 x 5 x 5 -> 1600-d.
    ``track_running_stats=False`` makes batch norm always use the statistics of the batch
    it sees (the MAML reference implementation's behaviour); see ``learners/maml.py``.
    """

    def __init__(self, in_channels: int = 1, hidden: int = 64, out_channels: int = 64,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.hidden = hidden
        self.out_channels = out_channels
        self.track_running_stats = track_running_stats
        self.encoder = nn.Sequential(
            conv_block(in_channels, hidden, track_running_stats),
            conv_block(hidden, hidden, track_running_stats),
            conv_block(hidden, hidden, track_running_stats),
            conv_block(hidden, out_channels, track_running_stats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).flatten(1)

    def config(self) -> dict[str, Any]:
        return {"name": "conv4", "in_channels": self.in_channels, "hidden": self.hidden,
                "out_channels": self.out_channels,
                "track_running_stats": self.track_running_stats}


class MobileNetV2Features(nn.Module):
    """torchvision's MobileNetV2 without its classifier: features -> global average pool.

    Output is 1280-d. Weights come from a checkpoint (never downloaded here).
    """

    out_dim = 1280

    def __init__(self, width_mult: float = 1.0) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2

        self.width_mult = width_mult
        net = mobilenet_v2(weights=None, width_mult=width_mult)
        self.features = net.features
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)

    def config(self) -> dict[str, Any]:
        return {"name": "mobilenetv2", "width_mult": self.width_mult}


class Identity(nn.Module):
    """Backbone for learners that adapt the whole network themselves (full MAML):
    the "features" are the preprocessed images, flattened to ``(B, C*H*W)``.
    ``shape`` restores them for the network."""

    def __init__(self, shape: tuple[int, ...] | list[int] = ()) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def config(self) -> dict[str, Any]:
        return {"name": "identity", "shape": list(self.shape)}


class Unflatten(nn.Module):
    """Inverse of ``Identity``: (B, C*H*W) -> (B, C, H, W) in front of a conv network."""

    def __init__(self, shape: tuple[int, ...] | list[int]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], *self.shape)


BACKBONES: dict[str, type[nn.Module]] = {
    "conv4": Conv4,
    "mobilenetv2": MobileNetV2Features,
    "identity": Identity,
}


def build_backbone(config: dict[str, Any]) -> nn.Module:
    """Build a backbone from ``{"name": ..., **kwargs}`` (the form ``.config()`` returns)."""
    config = dict(config)
    name = config.pop("name", None)
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name](**config)


@torch.no_grad()
def output_dim(backbone: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Feature dimension for one input of shape (C, H, W), measured by a dry run."""
    was_training = backbone.training
    backbone.eval()
    try:
        return int(backbone(torch.zeros(2, *input_shape)).shape[1])
    finally:
        backbone.train(was_training)
