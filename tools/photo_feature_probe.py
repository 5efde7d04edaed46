"""Quick probe of feature transforms over cached frozen features (selection on mini-ImageNet
val; clothing-small printed as a check only). Nearest centroid, same episodes for all.

    .venv/bin/python tools/photo_feature_probe.py --model runs/photo/init
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))  # the repository, for `app`

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from app.core.cache import EmbeddingCache
from app.core.checkpoints import load_checkpoint
from app.core.embedding import Embedder
from app.training.data import discover_classes

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load(model, root: str) -> tuple[list[np.ndarray], np.ndarray]:
    classes = discover_classes(root)
    emb = Embedder(model, device="cpu", batch_size=64, cache=EmbeddingCache())
    res = emb.embed_paths([f for c in classes for f in c.files]).as_dict()
    per = [np.stack([res[f] for f in c.files]) for c in classes]
    return per, np.concatenate(per).mean(0)


def transforms(train_mean: np.ndarray, pt_mean: np.ndarray) -> dict:
    l2 = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    return {
        "L2": lambda x: l2(x),
        "center(train)+L2": lambda x: l2(x - train_mean),
        "sqrt+L2": lambda x: l2(np.sqrt(x)),
        "sqrt+center(train)+L2": lambda x: l2(np.sqrt(x) - pt_mean),
        "L2+center(train L2)+L2": lambda x: l2(l2(x) - l2(train_mean)),
        "task: L2+center(support mean)+L2": lambda s, q: _task(l2, s, q, 1.0),
        "task: L2+center(half support mean)+L2": lambda s, q: _task(l2, s, q, 0.5),
    }


def _task(l2, s, q, alpha):
    m = alpha * l2(s).reshape(-1, s.shape[-1]).mean(0)
    return l2(l2(s) - m), l2(l2(q) - m)


def run(per: list[np.ndarray], fns: dict, way: int, shot: int, episodes: int = 600,
        query: int = 15, seed: int = 0) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(seed)
    accs = {k: [] for k in fns}
    for _ in range(episodes):
        cls = rng.choice(len(per), way, replace=False)
        s, q = [], []
        for c in cls:
            pick = rng.choice(len(per[c]), shot + query, replace=False)
            s.append(per[c][pick[:shot]])
            q.append(per[c][pick[shot:]])
        s, q = np.stack(s), np.concatenate(q)
        yq = np.repeat(np.arange(way), query)
        for k, f in fns.items():
            if k.startswith("task"):
                fs, fq = f(s, q)
                protos = fs.mean(1)
            else:
                protos = f(s).mean(1)
                fq = f(q)
            d = ((fq[:, None] - protos[None]) ** 2).sum(-1)
            accs[k].append((d.argmin(1) == yq).mean())
    return {k: (100 * np.mean(v), 196 * np.std(v, ddof=1) / np.sqrt(len(v))) for k, v in accs.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="runs/photo/init")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = load_checkpoint(a.model)
    train, train_mean = load(model, str(DATA / "mini-imagenet" / "train"))
    pt_mean = np.concatenate([np.sqrt(x) for x in train]).mean(0)
    fns = transforms(train_mean, pt_mean)
    cloth = os.pathsep.join(str(DATA / "clothing-small" / s) for s in ("train", "validation", "test"))
    for name, root in (("mini-ImageNet val", str(DATA / "mini-imagenet" / "val")),
                       ("clothing-small (check only)", cloth)):
        per, _ = load(model, root)
        for way, shot in ((5, 1), (5, 5)):
            r = run(per, fns, way, shot)
            print(f"{name} {way}w{shot}s: " + "; ".join(f"{k} {m:.2f}±{c:.2f}" for k, (m, c) in r.items()),
                  flush=True)


if __name__ == "__main__":
    main()
