"""Dump a model's backbone features of every domain of the development suite (research aid).

    python tools/suite_features.py --model pretrained/photo-efficientnet-lite0 \
        --suite ../devsuite --out ../devsuite-features

Writes ``OUT/<model name>/<domain>.npz`` (features float16, labels, class names, paths), via
the app's own Embedder and persistent cache, so ``evaluate`` later reuses the same vectors.
Extra domains beyond the suite: mini-ImageNet train/test and clothing-small (pooled).
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))

import argparse
import os
import time
from pathlib import Path

import numpy as np

from app.core.cache import EmbeddingCache
from app.core.checkpoints import load_checkpoint
from app.training.data import discover_classes
from app.training.inputs import features_from_files

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EXTRA = {
    "mini-imagenet-train": str(SHARED / "mini-imagenet" / "train"),
    "mini-imagenet-test": str(SHARED / "mini-imagenet" / "test"),
    "clothing-small": os.pathsep.join(str(SHARED / "clothing-small" / s)
                                      for s in ("train", "validation", "test")),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--suite", default=str(Path(__file__).resolve().parents[2] / "devsuite"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "devsuite-features"))
    ap.add_argument("--domains", nargs="*")
    a = ap.parse_args()
    model, card = load_checkpoint(a.model)
    suite = Path(a.suite)
    domains = {d.name: str(d) for d in sorted(suite.iterdir()) if d.is_dir()}
    domains.update(EXTRA)
    out = Path(a.out) / card["name"]
    out.mkdir(parents=True, exist_ok=True)
    cache = EmbeddingCache()
    for name, root in domains.items():
        if a.domains and name not in a.domains:
            continue
        dst = out / f"{name}.npz"
        if dst.exists():
            continue
        classes = discover_classes(root)
        paths, labels = [], []
        for i, c in enumerate(classes):
            paths += list(c.files)
            labels += [i] * len(c.files)
        t0 = time.monotonic()
        feats, bad = features_from_files(model, paths, cache=cache, device="cpu")
        keep = [i for i, p in enumerate(paths) if p in feats]
        np.savez(dst, features=np.stack([feats[paths[i]] for i in keep]).astype(np.float16),
                 labels=np.asarray(labels)[keep], classes=np.asarray([c.name for c in classes]),
                 paths=np.asarray([paths[i] for i in keep]))
        print(f"{card['name']} {name}: {len(keep)} images ({len(bad)} bad) in "
              f"{time.monotonic() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
