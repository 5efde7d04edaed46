"""``classify`` throughput: one machine vs a local Ray Data actor pool of 1 and 2 workers.

    .venv/bin/python bench/bench_cluster.py [--images 800] [--model PATH]

Generates a folder of photo-sized JPEGs (640 x 480, noise over colour fields) and two
example folders, then runs the whole ``classify`` job (embedding without the cache, scoring,
CSV) three ways in the same run: ``--engine local`` (the baseline), ``--engine ray
--num-workers 1`` and ``--num-workers 2`` on a local Ray instance with as many CPUs as the
machine has. Prints images per second and the ratio to the baseline. Ray's start-up (about
5-10 s: the instance, then each actor loading torch and the model) is inside the figure, as
a user would feel it; the actors reuse the ONNX file the driver exported.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.cli import main as cli  # noqa: E402


def make_images(root: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for k, colour in enumerate(((200, 40, 40), (40, 60, 200))):
        for i in range(4):
            arr = np.clip(np.asarray(colour) + rng.normal(0, 30, (480, 640, 3)), 0, 255)
            Image.fromarray(arr.astype(np.uint8)).save(root / "support" / f"c{k}" / f"{i}.jpg", quality=90)
    for i in range(n):
        colour = np.asarray(((200, 40, 40), (40, 60, 200))[i % 2])
        arr = np.clip(colour + rng.normal(0, 40, (480, 640, 3)), 0, 255)
        Image.fromarray(arr.astype(np.uint8)).save(root / "photos" / f"{i:05}.jpg", quality=90)


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    code = cli(argv)
    if code != 0:
        raise SystemExit(f"classify failed ({code}): {' '.join(argv)}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=800)
    ap.add_argument("--model", default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as d:
        root = Path(d)
        for sub in ("support/c0", "support/c1", "photos"):
            (root / sub).mkdir(parents=True)
        make_images(root, a.images)
        base = ["classify", "--support", str(root / "support"), "--images", str(root / "photos"),
                "--device", "cpu", "--quiet", "--no-cache"] + (["--model", a.model] if a.model else [])
        runs = [("one machine (--engine local)", base + ["--out", str(root / "local.csv")])]
        for w in (1, 2):
            runs.append((f"Ray, {w} worker{'s' * (w > 1)}",
                         base + ["--out", str(root / f"ray{w}.csv"), "--engine", "ray",
                                 "--num-workers", str(w)]))
        timed(base + ["--out", str(root / "warm.csv")])  # exports the ONNX backbone once
        n = a.images + 8
        print(f"{n} images (640 x 480 JPEG), {os.cpu_count()} CPUs; whole classify job, no cache")
        print("| engine | seconds | images/s | vs one machine |\n|---|---|---|---|")
        baseline = None
        for name, argv in runs:
            sec = timed(argv)
            rate = n / sec
            baseline = baseline or rate
            print(f"| {name} | {sec:.1f} | {rate:.1f} | {rate / baseline:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
