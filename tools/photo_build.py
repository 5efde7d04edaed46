"""Build and finalise the shipped photo model ``pretrained/photo-mobilenetv2``.

    # 1. an untrained starting checkpoint: ImageNet MobileNetV2 (fp16-rounded) + learners
    .venv/bin/python tools/photo_build.py init --out runs/photo/init [--proj-dim 0]
    # 2. meta-train its learners with `python -m app train --init ... --freeze-backbone`
    # 3. copy the trained model to pretrained/ with default method and provenance in the card
    .venv/bin/python tools/photo_build.py finalize --src runs/photo/maml \\
        --out pretrained/photo-mobilenetv2 --default maml
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from app.core.checkpoints import load_checkpoint, save_checkpoint
from app.training.photo import (centroid_learner, find_imagenet_weights, imagenet_backbone,
                                maml_learner, photo_input_spec, photo_model, protonet_learner,
                                weights_provenance, FEATURE_DIM)


def cmd_init(a: argparse.Namespace) -> int:
    weights = find_imagenet_weights()
    prov = weights_provenance(weights)
    zero = torch.zeros(FEATURE_DIM)  # `train` sets the centring mean from training features
    proj = a.proj_dim or None
    learners = {
        "protonet": protonet_learner(zero, out_dim=proj, scale=a.scale),
        "maml": maml_learner(zero, out_dim=proj, scale=a.scale, inner_steps=a.inner_steps,
                             inner_lr=a.inner_lr),
        "centroid": centroid_learner(),
    }
    model = photo_model(imagenet_backbone(weights), learners, photo_input_spec(a.size, a.crop),
                        default_method="protonet")
    card = {"starting_weights": prov.as_dict()}
    save_checkpoint(model, a.out, card, half=True)
    print(f"wrote {a.out} ({json.dumps(prov.as_dict())})")
    return 0


def cmd_finalize(a: argparse.Namespace) -> int:
    model, card = load_checkpoint(a.src)
    if a.default not in model.methods:
        raise SystemExit(f"{a.src} has no {a.default!r} learner ({model.methods})")
    model.default_method = a.default
    extra = json.loads(Path(a.card_extra).read_text()) if a.card_extra else {}
    keep = {k: v for k, v in card.items() if k not in ("format", "name", "architecture", "weights")}
    keep.update(extra)
    save_checkpoint(model, a.out, keep, half=True)
    print(f"wrote {a.out}.safetensors / .json (default method {a.default})")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("init")
    i.add_argument("--out", required=True)
    i.add_argument("--size", type=int, default=224)
    i.add_argument("--crop", type=float, default=1.0)
    i.add_argument("--proj-dim", type=int, default=0, help="learned projection (0 = none)")
    i.add_argument("--scale", type=float, default=10.0)
    i.add_argument("--inner-steps", type=int, default=5)
    i.add_argument("--inner-lr", type=float, default=0.1)
    i.set_defaults(func=cmd_init)
    f = sub.add_parser("finalize")
    f.add_argument("--src", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--default", required=True)
    f.add_argument("--card-extra", help="JSON file merged into the card")
    f.set_defaults(func=cmd_finalize)
    a = ap.parse_args()
    return a.func(a)


if __name__ == "__main__":
    raise SystemExit(main())
