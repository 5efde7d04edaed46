"""How fast the session streams features in and re-scores a whole folder (no images decoded).

    .venv/bin/python bench/bench_session.py [--images 100000] [--dim 1280] [--threads 1]

Prints: streaming N feature rows in batches of 256 (as the embedder delivers them),
one full ProtoNet re-score and one MAML (head, 5 steps) re-score after a new example,
and the per-image arrays the grid reads. Synthetic random features; CPU.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.backbones import Identity  # noqa: E402
from app.core.learners import MAML, ProtoNet  # noqa: E402
from app.core.model import FewShotModel, InputSpec  # noqa: E402
from app.core.session import Session  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    n, d = a.images, a.dim
    model = FewShotModel(Identity((d,)), {
        "protonet": ProtoNet(),
        "maml": MAML(neck={"name": "feature", "in_dim": d}, adapt="head", head_init="proto",
                     inner_steps=5, inner_lr=0.01)},
        InputSpec(size=(2, 2), channels=1, mean=(0.0,), std=(1.0,)))
    paths = [f"/photos/{i:07}.jpg" for i in range(n)]
    feats = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
    s = Session()
    ids = [s.add_class(f"c{k}").id for k in range(5)]
    s.set_folder("/photos", paths)
    for k, cid in enumerate(ids):
        s.add_examples(cid, paths[k * 5:k * 5 + 5])
    s.add_features(paths[:25], feats[:25])
    s.rescore(model)
    t = time.perf_counter()
    for i in range(25, n, 256):
        s.add_features(paths[i:i + 256], feats[i:i + 256])
    t_stream = time.perf_counter() - t
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch threads {a.threads}; {n:,} images x {d}-d features")
    print(f"stream in + live-predict in batches of 256: {t_stream:.2f} s")
    for method in ("protonet", "maml"):
        s.set_method(method)
        s.add_examples(ids[0], [paths[100 + len(s.examples)]])
        t = time.perf_counter()
        s.rescore(model)
        print(f"re-score everything after a new example ({method}): {1000 * (time.perf_counter() - t):.0f} ms")
    t = time.perf_counter()
    s.prediction_arrays()
    print(f"prediction_arrays (grid sort/filter): {1000 * (time.perf_counter() - t):.1f} ms")


if __name__ == "__main__":
    main()
