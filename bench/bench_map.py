"""The Map view at 100,000 images (issue 12): projection time and frame time while panning.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_map.py [--images 100000] \
        [--dim 2560] [--skip-projection]

* projection: ``app.core.projection.project`` (PCA to 50 axes, then openTSNE, 2 threads) of
  synthetic features (20 clusters of uneven size), and placing 1,000 added images on it
  (``place``), against PCA alone (the first two axes) measured in the same run;
* frame time: the real ``MapView`` with the points coloured in 10 classes, panned by small
  steps, each frame rendered (``QWidget.grab``) with Qt's software raster (offscreen);
  median and 95th percentile over the frames, and the time of a full recolour (what a new
  prediction costs).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def features(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.choice(20, n, p=rng.dirichlet(np.full(20, 2.0)))
    centres = rng.gamma(1.0, 1.0, (20, d)).astype(np.float32)
    return centres[labels] + rng.gamma(1.0, 0.7, (n, d)).astype(np.float32), labels


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=2560)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--skip-projection", action="store_true")
    a = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {a.images:,} images x {a.dim}-d")
    x, labels = features(a.images, a.dim)
    rows = lambda i: x[i]  # noqa: E731
    from app.core.projection import pca, place, project

    if a.skip_projection:
        rng = np.random.default_rng(1)
        xy = (rng.normal(size=(20, 2)) * 30)[labels % 20] + rng.normal(size=(a.images, 2))
    else:
        t = time.perf_counter()
        pca(rows, a.images, 2)
        t_pca = time.perf_counter() - t
        t = time.perf_counter()
        xy = project(rows, a.images)
        t_tsne = time.perf_counter() - t
        new, _ = features(1000, a.dim, seed=1)
        t = time.perf_counter()
        place(rows, xy, lambda i: new[i], 1000)
        t_place = time.perf_counter() - t
        print(f"projection: PCA + openTSNE {t_tsne:.1f} s; PCA alone {t_pca:.1f} s "
              f"({t_tsne / t_pca:.0f}x); placing 1,000 added images {1000 * t_place:.0f} ms")

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from app.ui.image_model import ClassStyle, ImageListModel, Source
    from app.ui.map_view import MapView

    app = QApplication.instance() or QApplication([])
    model = ImageListModel()
    paths = [f"/img/{i:06d}.jpg" for i in range(a.images)]
    model.set_paths(paths)
    model.classes = [ClassStyle(f"c{k}", f"#{(37 * k) % 256:02x}{(91 * k) % 256:02x}{(53 * k) % 256:02x}")
                     for k in range(10)]
    source = np.full(a.images, Source.PREDICTED, np.uint8)
    source[:50] = Source.EXAMPLE
    model.label, model.confidence, model.source = (labels % 10).astype(np.int32), \
        np.ones(a.images, np.float32), source
    view = MapView(model)
    view.resize(1200, 800)
    view.show()
    t = time.perf_counter()
    view.set_positions(dict(zip(paths, map(tuple, xy))), fit=True)
    t_set = time.perf_counter() - t
    t = time.perf_counter()
    view.recolour()
    t_recolour = time.perf_counter() - t
    app.processEvents()
    view.plot.grab()
    vb = view.view
    (x0, x1), _ = vb.viewRange()
    step = (x1 - x0) / 200
    times = []
    for i in range(a.frames):
        t = time.perf_counter()
        vb.translateBy(x=step if (i // 20) % 2 == 0 else -step)
        app.processEvents()
        view.plot.grab()
        times.append(time.perf_counter() - t)
    times = np.array(times) * 1000
    print(f"map view: positions set {1000 * t_set:.0f} ms, recolour {1000 * t_recolour:.0f} ms; "
          f"frame while panning median {np.median(times):.1f} ms, p95 "
          f"{np.percentile(times, 95):.1f} ms ({1000 / np.median(times):.0f} frames/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
