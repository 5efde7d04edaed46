"""Re-score and folder-aware refinement times at 100,000 cached images (issue 9).

    .venv/bin/python bench/bench_folder.py [--images 100000] [--threads 2] [--model PATH]

Uses the default model's own learners (each one its card lists) over synthetic
non-negative features of the model's dimension (10 clusters of uneven size, like pooled
ReLU activations), through the session's real ``ScoreJob`` as the window runs it. Every
time runs from a change of examples to its labels installed in the session (the job's
snapshot, its run as the worker runs it, ``apply_scores``). Prints, after an example
changes:

* each inductive learner's fit + predict of the whole folder;
* the folder-aware learner on a new folder: its quick inductive pass (shown at once), then
  the folder-aware pass that builds the folder's compact space and neighbour graph (once
  per folder state);
* the folder-aware learner after each later correction: its preview (the inductive result
  in the folder's compact space, one product: shown at once, the issue's 50 ms), then the
  folder-aware labels (the folder's derived data reused; the issue's 1 s);
* the default after many corrections (50 examples a class);
* the window's usual order: the folder read ahead when embedding ends, before any example
  (``Session.make_folder_job``), then the first examples' preview and folder-aware labels;
* one smoothing step over 20,000 anchors' neighbour graph as the folder learner takes it
  (a weighted ``embedding_bag``) against the sparse CSR product it replaced.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.checkpoints import load_checkpoint  # noqa: E402
from app.core.defaults import default_model_path  # noqa: E402
from app.core.session import Session  # noqa: E402


def features(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = rng.dirichlet(np.full(10, 2.0))
    labels = rng.choice(10, n, p=sizes)
    centres = rng.gamma(1.0, 1.0, (10, d)).astype(np.float32)
    x = centres[labels] + rng.gamma(1.0, 0.7, (n, d)).astype(np.float32)
    return x.astype(np.float32), labels


def ms(t: float) -> str:
    return f"{1000 * t:,.0f} ms"


def probe(repeats: int = 15) -> float:
    """The median time of one memory-bound product of the re-score's shape: how busy or
    slow this machine is right now (README "Speed" scales its figures by it)."""
    z, p = torch.randn(100_000, 256), torch.randn(10, 256)
    times = []
    for _ in range(repeats + 1):
        t = time.perf_counter()
        z @ p.T
        times.append(time.perf_counter() - t)
    return float(np.median(times[1:]))


def smoothing_step(anchors: int = 20_000, k: int = 10, classes: int = 10) -> None:
    """One smoothing step, ``(W + W^T) / 2 @ y`` over a random k-neighbour graph: the
    folder learner's (``neighbour_graph``, ``spread``: a weighted ``embedding_bag``), and
    the sparse CSR product it replaced (same result)."""
    import warnings

    from app.core.learners.folder import neighbour_graph, spread

    g = torch.Generator().manual_seed(0)
    graph = neighbour_graph(torch.randint(0, anchors, (anchors, k), generator=g), anchors)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        csr = torch.sparse_csr_tensor(torch.cat([graph.offsets, torch.tensor([len(graph.near)])]),
                                      graph.near, graph.weights, (anchors, anchors))
    y = torch.rand(anchors, classes, generator=g)
    times = {}
    for name, step in (("embedding_bag", lambda: spread(graph, y)), ("sparse CSR", lambda: csr @ y)):
        step()
        runs = []
        for _ in range(50):
            t = time.perf_counter()
            step()
            runs.append(time.perf_counter() - t)
        times[name] = float(np.median(runs))
    torch.testing.assert_close(spread(graph, y), csr @ y)
    print(f"one smoothing step, {anchors:,} anchors x {classes} classes: embedding_bag "
          f"{1000 * times['embedding_bag']:.2f} ms, sparse CSR {1000 * times['sparse CSR']:.2f} ms "
          f"(ratio {times['embedding_bag'] / times['sparse CSR']:.2f})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, card = load_checkpoint(a.model or default_model_path())
    d = int(model.learner("centroid").neck.in_dim) if "centroid" in model.methods else 1280
    x, labels = features(a.images, d)
    paths = [f"/photos/{i:07}.jpg" for i in range(a.images)]
    s = Session()
    ids = [s.add_class(f"c{k}").id for k in range(10)]
    s.set_folder("/photos", paths)
    for k, cid in enumerate(ids):
        s.add_examples(cid, [paths[int(i)] for i in np.flatnonzero(labels == k)[:1]])
    s.add_features(paths, x)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {a.threads} threads; model {card['name']}; "
          f"{a.images:,} images x {d}-d features, 10 classes, 1 example each")
    print(f"machine speed: a 100,000 x 256 by 256 x 10 float32 product takes "
          f"{1000 * probe():.1f} ms (5.9 ms on this project's 2-core machine when quiet)", flush=True)
    spare = iter(int(i) for i in np.flatnonzero(labels == 0)[1:])
    medians: dict[str, tuple[float, bool]] = {}  # method -> (median re-score, reads the folder)
    folder_read = False
    for method in model.methods:
        s.set_method(method)
        caps = model.learner(method).capabilities
        quick, first, later, previews = [], None, [], []
        for r in range(a.repeats + 1):
            s.add_examples(ids[0], [paths[next(spare)]])  # the user adds an example
            t_quick, t1 = change(s, model)
            if caps.reads_pool and not folder_read:  # a new folder: the quick pass, then the read
                assert t_quick is not None
                quick.append(t_quick)
                first, folder_read = t1 - t_quick, True
            elif caps.reads_pool:  # a folder already read (by this or another folder-aware
                later.append(t1)   # learner): its preview at once, then the folder-aware pass
                if t_quick is not None:
                    previews.append(t_quick)
            elif r > 0:
                quick.append(t1)
        if caps.reads_pool:
            shown = (f"preview (inductive, the folder's space) median {ms(float(np.median(previews)))}, "
                     if previews else "")
            line = (f"{method:9s} new folder: quick inductive pass {ms(quick[0])}, then the "
                    f"folder-aware pass {ms(first)} (folder space and graph built); after each "
                    f"correction: " if first is not None else
                    f"{method:9s} on the folder already read (switching learner rebuilds "
                    f"nothing), after each correction: ") + (
                    f"{shown}folder-aware labels median {ms(float(np.median(later)))}")
        else:
            line = f"{method:9s} fit + predict {a.images:,}: median {ms(float(np.median(quick)))}"
        acc = float(np.mean(np.asarray([s.prediction(p).class_id for p in paths[::50]])
                            == np.asarray(ids)[labels[::50]]))
        print(line + f"; accuracy on the synthetic clusters {100 * acc:.1f}%", flush=True)
        medians[method] = (float(np.median(later if caps.reads_pool else quick)), caps.reads_pool)
        if previews:
            medians[f"{method} preview"] = (float(np.median(previews)), True)
    baseline = next((m for m, (_, reads) in medians.items() if not reads), None)
    if baseline is not None:  # speed as a ratio to the inductive learner of the same run
        print("re-score time / " + baseline + "'s, same run: " + ", ".join(
            f"{m} {t / medians[baseline][0]:.2f}" for m, (t, reads) in medians.items() if reads),
            flush=True)
    many_examples(model, s, ids, paths, labels, a.repeats)
    read_ahead(model, paths, x, labels)
    smoothing_step()


def change(s: Session, model) -> tuple[float | None, float]:  # noqa: ANN001
    """Re-score after a change of examples as the window does: the job's snapshot, its run
    (its quick result installed as it comes), ``apply_scores``. Returns the seconds to the
    quick result installed (None: none) and to the final one."""
    marks: dict[str, float] = {}

    def shown(outcome) -> None:  # noqa: ANN001
        s.apply_scores(outcome)
        marks.setdefault("quick", time.perf_counter())

    t0 = time.perf_counter()
    s.apply_scores(s.make_score_job().run(model, threading.Event(), partial=shown))
    t1 = time.perf_counter()
    return (marks["quick"] - t0 if "quick" in marks else None), t1 - t0


def many_examples(model, s: Session, ids: list[int], paths: list[str],  # noqa: ANN001
                  labels: np.ndarray, repeats: int) -> None:
    """The default after many corrections (50 examples a class): a re-score costs what it
    costs with one a class (each example's neighbours are found once per folder)."""
    s.set_method(model.default_method)
    spare = iter(int(i) for i in np.flatnonzero(labels == 1)[60:])
    before = len(s.examples)
    for k, cid in enumerate(ids):
        s.add_examples(cid, [paths[int(i)] for i in np.flatnonzero(labels == k)[2:50]])
    times, new = [], len(s.examples) - before + 1
    for _ in range(repeats + 1):
        s.add_examples(ids[1], [paths[next(spare)]])
        times.append(change(s, model))
    print(f"{model.default_method:9s} with {len(s.examples)} examples (about 50 a class): "
          f"preview median {ms(float(np.median([q for q, _ in times[1:]])))}, folder-aware "
          f"labels median {ms(float(np.median([t for _, t in times[1:]])))}, the first with "
          f"{new} new examples {ms(times[0][1])}", flush=True)


def read_ahead(model, paths: list[str], x: np.ndarray, labels: np.ndarray) -> None:  # noqa: ANN001
    """A new session on the same folder, embedded, no examples yet: the folder is read
    ahead, then the first examples are labelled folder-aware at once."""
    s = Session()
    s.set_folder("/photos", paths)
    s.add_features(paths, x)
    s.set_method(model.default_method)
    t0 = time.perf_counter()
    job = s.make_folder_job()
    assert job is not None
    job.run(model)
    t1 = time.perf_counter()
    for k in range(10):
        s.add_examples(s.add_class(f"c{k}").id, [paths[int(np.flatnonzero(labels == k)[0])]])
    t_quick, t_final = change(s, model)
    assert t_quick is not None
    print(f"{model.default_method:9s} read ahead once embedding ends (no examples yet): "
          f"{ms(t1 - t0)}; then the first examples: preview {ms(t_quick)}, folder-aware "
          f"labels {ms(t_final)}", flush=True)


if __name__ == "__main__":
    main()
