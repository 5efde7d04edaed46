"""Choose the photo model's input size on mini-ImageNet *val* (never test).

Frozen ImageNet MobileNetV2 features, L2-normalised, nearest centroid, for several
InputSpecs; prints accuracy (mean +- 95% CI) and embedding throughput.

    .venv/bin/python tools/photo_input_size.py --episodes 300 --threads 2
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))  # the repository, for `app`

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from app.core.cache import EmbeddingCache
from app.core.embedding import Embedder
from photo_recipe import centroid_learner, imagenet_backbone, photo_input_spec, photo_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def class_pool(root: Path) -> dict[str, list[str]]:
    return {d.name: sorted(str(p) for p in d.iterdir() if p.is_file())
            for d in sorted(root.iterdir()) if d.is_dir()}


def episodes_acc(feats: dict[str, np.ndarray], pool: dict[str, list[str]], n_way: int,
                 k_shot: int, n_query: int, n_episodes: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    learner = centroid_learner().eval()
    names = sorted(pool)
    accs = []
    for _ in range(n_episodes):
        cls = rng.choice(len(names), n_way, replace=False)
        s, ys, q, yq = [], [], [], []
        for i, c in enumerate(cls):
            files = pool[names[c]]
            pick = rng.choice(len(files), k_shot + n_query, replace=False)
            s += [feats[files[j]] for j in pick[:k_shot]]
            ys += [i] * k_shot
            q += [feats[files[j]] for j in pick[k_shot:]]
            yq += [i] * n_query
        with torch.no_grad():
            ad = learner.fit(torch.from_numpy(np.stack(s)), torch.tensor(ys), n_way)
            pred = ad.logits(torch.from_numpy(np.stack(q))).argmax(1).numpy()
        accs.append(float((pred == np.array(yq)).mean()))
    a = np.array(accs)
    return 100 * a.mean(), 100 * 1.96 * a.std(ddof=1) / np.sqrt(len(a))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--specs", default="224:0.875,224:1.0,160:0.875,128:1.0")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pool = class_pool(DATA / "mini-imagenet" / "val")
    paths = [p for files in pool.values() for p in files]
    backbone = imagenet_backbone()
    cache = EmbeddingCache()
    print(f"| input | 5w1s val | 5w5s val | img/s (embed, {args.threads} thread(s)) |")
    print("|---|---|---|---|")
    for item in args.specs.split(","):
        size, frac = item.split(":")
        spec = photo_input_spec(int(size), float(frac))
        model = photo_model(backbone, {"centroid": centroid_learner()}, spec)
        emb = Embedder(model, device="cpu", batch_size=64, cache=cache, workers=2)
        t0 = time.perf_counter()
        res = emb.embed_paths(paths)
        dt = time.perf_counter() - t0
        feats = res.as_dict()
        r1 = episodes_acc(feats, pool, 5, 1, 15, args.episodes, 0)
        r5 = episodes_acc(feats, pool, 5, 5, 15, args.episodes, 0)
        print(f"| {size} crop_fraction={frac} | {r1[0]:.2f} ± {r1[1]:.2f} | {r5[0]:.2f} ± {r5[1]:.2f} "
              f"| {len(paths) / dt:.1f} |", flush=True)


if __name__ == "__main__":
    main()
