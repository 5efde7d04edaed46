"""Embed dataset folders once into the persistent embedding cache with the photo backbone.

The backbone is the fp16-rounded ImageNet MobileNetV2 (exactly what the shipped fp16
checkpoint loads as), so ``python -m app train/evaluate`` on the shipped model hit the cache.

    .venv/bin/python tools/photo_warm_cache.py --size 224 --crop 0.875 DIR [DIR ...]
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))  # the repository, for `app`

import argparse
import sys
import time
from pathlib import Path

import torch

from app.core.cache import EmbeddingCache
from app.core.embedding import Embedder
from app.core.images import is_image_path
from photo_recipe import centroid_learner, imagenet_backbone, photo_input_spec, photo_model


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--crop", type=float, default=0.875)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = photo_model(imagenet_backbone(), {"centroid": centroid_learner()},
                        photo_input_spec(a.size, a.crop))
    emb = Embedder(model, device="cpu", batch_size=a.batch, cache=EmbeddingCache(), workers=2)
    print(f"backbone id {emb.model_key}", flush=True)
    for d in a.dirs:
        paths = sorted(str(p) for p in Path(d).rglob("*") if p.is_file() and is_image_path(p))
        t0 = time.monotonic()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] > 30 or done == total:
                last[0] = now
                rate = done / max(now - t0, 1e-6)
                print(f"{d}: {done}/{total} ({rate:.1f} img/s incl. cache hits)", flush=True)

        res = emb.embed_paths(paths, progress=progress)
        for p in res.problems:
            print(f"problem: {p.path}: {p.reason}", file=sys.stderr)
        print(f"{d}: {len(res.paths)} embedded in {time.monotonic() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
