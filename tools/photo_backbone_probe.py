"""Probe backbone feature variants for the photo model (nearest centroid, 600 episodes).

Variants of the frozen ImageNet MobileNetV2 features: global average pooling (shipped),
horizontal-flip averaging, GeM pooling, and pooled intermediate blocks concatenated.
Run on mini-ImageNet val (selection) and a seeded 100-images-a-class clothing-small
subset (check only). Slow on CPU (two backbone passes an image): about 10 minutes.

    .venv/bin/python tools/photo_backbone_probe.py --model runs/photo/init
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))  # the repository, for `app`

import argparse
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from app.core.checkpoints import load_checkpoint
from app.core.images import load_for_model
from app.training.data import discover_classes

DATA = _Path(__file__).resolve().parents[2] / "shared" / "data"
TAPS = {13: "b13", 16: "b16", 17: "b17"}


def extract(model, files: list[str]) -> dict[str, np.ndarray]:
    layers = model.backbone.features.eval()
    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("gap", "gapflip", "gem", *TAPS.values())}
    with ThreadPoolExecutor(2) as pool:
        for i in range(0, len(files), 64):
            x = torch.from_numpy(np.stack(list(pool.map(
                lambda f: load_for_model(f, model.input_spec), files[i:i + 64]))))
            with torch.no_grad():
                for xx, flip in ((x, False), (x.flip(-1), True)):
                    h, mids = xx, {}
                    for j, layer in enumerate(layers):
                        h = layer(h)
                        if j in TAPS:
                            mids[TAPS[j]] = h.mean((2, 3))
                    if flip:
                        out["gapflip"].append(h.mean((2, 3)))
                        continue
                    out["gap"].append(h.mean((2, 3)))
                    out["gem"].append(h.clamp_min(1e-6).pow(3).mean((2, 3)).pow(1 / 3))
                    for k, v in mids.items():
                        out[k].append(v)
    return {k: torch.cat(v).numpy() for k, v in out.items()}


def l2(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def variants(z: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    g, f = z["gap"], (z["gap"] + z["gapflip"]) / 2
    cat = lambda *xs: l2(np.concatenate([l2(xs[0])] + [0.5 * l2(x) for x in xs[1:]], 1))  # noqa: E731
    return {"gap": l2(g), "gap+flip": l2(f), "gem": l2(z["gem"]), "gap|b17": cat(g, z["b17"]),
            "gap|b16|b17": cat(g, z["b16"], z["b17"]), "gap|b13|b16": cat(g, z["b13"], z["b16"])}


def episodes(V: dict[str, np.ndarray], y: np.ndarray, shot: int, n: int = 600) -> str:
    per = [np.nonzero(y == c)[0] for c in np.unique(y)]
    rng = np.random.default_rng(0)
    acc: dict[str, list[float]] = {k: [] for k in V}
    for _ in range(n):
        cls = rng.choice(len(per), 5, replace=False)
        picks = [rng.choice(per[c], shot + 15, replace=False) for c in cls]
        q = np.concatenate([p[shot:] for p in picks])
        yq = np.repeat(np.arange(5), 15)
        for k, X in V.items():
            P = np.stack([X[p[:shot]].mean(0) for p in picks])
            acc[k].append(float((((X[q][:, None] - P[None]) ** 2).sum(-1).argmin(1) == yq).mean()))
    return "  ".join(f"{k} {100 * np.mean(v):.2f}±{196 * np.std(v) / np.sqrt(n):.2f}"
                     for k, v in acc.items())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="runs/photo/init")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = load_checkpoint(a.model)
    cloth = os.pathsep.join(str(DATA / "clothing-small" / s) for s in ("train", "validation", "test"))
    for name, root, cap in (("mini-ImageNet val", str(DATA / "mini-imagenet" / "val"), None),
                            ("clothing-small subset (check only)", cloth, 100)):
        rng = np.random.default_rng(0)
        groups = [sorted(rng.choice(list(c.files), min(cap or len(c.files), len(c.files)),
                                    replace=False)) for c in discover_classes(root)]
        files = [f for g in groups for f in g]
        y = np.concatenate([[i] * len(g) for i, g in enumerate(groups)])
        V = variants(extract(model, files))
        for shot in (1, 5):
            print(f"{name} 5w{shot}s: {episodes(V, y, shot)}", flush=True)


if __name__ == "__main__":
    main()
