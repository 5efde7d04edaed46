"""How fast does the app classify a folder? One run prints every figure of issue 5.

    .venv/bin/python bench/bench_pipeline.py            # the full benchmark (~6-10 min, 2 cores)
    .venv/bin/python bench/bench_pipeline.py --quick    # tiny sizes, to check it works

Figures: the app's pipeline (scan-free: decode + ONNX Runtime / PyTorch + cache) cold and
warm on the real JPEGs of ../shared/data/clothing-small (all splits) and on generated
camera-size JPEGs; a naive torchvision ImageFolder + DataLoader + eager PyTorch baseline;
re-scoring 100,000 cached embeddings; MAML head adaptation; the GUI thread's worst stall
while a folder is classified (child process, offscreen Qt); peak RSS for a 100,000-image
folder (child process). Not a test: numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (CLOTHING, REPO, Timer, feature_dim, jpegs_under,  # noqa: E402
                          load_average, load_bench_model, machine, maml_learner, make_camera_jpegs,
                          make_synthetic_folder, peak_rss_mb)

RESULTS: dict[str, object] = {}


def say(key: str, text: str, value: object = None) -> None:
    print(f"  {text}", flush=True)
    if value is not None:
        RESULTS[key] = value


def run_app(model, paths: list[str], workdir: Path, label: str, batch_size: int,
            workers: int | None, onnx_dir: Path) -> None:
    """Cold (empty cache) then warm (cache filled) through ``Embedder.iter_embed``."""
    from app.core.cache import EmbeddingCache
    from app.core.embedding import Embedder

    cache = EmbeddingCache(workdir / f"cache-{label}.sqlite")
    emb = Embedder(model, device="auto", batch_size=batch_size, cache=cache, workers=workers,
                   onnx_dir=onnx_dir)
    with Timer() as t:
        emb.runner()  # ONNX export + check on first use of a model (then reused)
    say(f"{label}.backend_s", f"backend: {emb.describe()}; ready in {t.s:.2f} s", round(t.s, 2))
    for phase in ("cold", "warm"):
        n_ok = n_bad = 0
        with Timer() as t:
            for b in emb.iter_embed(paths):
                n_ok += len(b.paths)
                n_bad += len(b.problems)
        rate = len(paths) / t.s
        say(f"{label}.{phase}", f"{phase:4s}: {len(paths)} images in {t.s:6.2f} s = "
            f"{rate:7.1f} img/s ({n_ok} embedded, {n_bad} problems)", round(rate, 1))
    cache.close()


def _decode_chunk(args: tuple[list[str], object]) -> int:
    from app.core.images import load_for_model

    paths, spec = args
    return sum(load_for_model(p, spec).shape[0] > 0 for p in paths)


def run_decode_scaling(model, paths: list[str]) -> None:
    """Decode + preprocess alone: 1 thread, N threads, N processes. Threads that scale as
    well as processes mean the GIL is not what bounds decoding."""
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    from app.core.images import load_for_model

    spec = model.input_spec
    n = os.cpu_count() or 1
    with Timer() as t:
        for p in paths:
            load_for_model(p, spec)
    one = len(paths) / t.s
    with ThreadPoolExecutor(n) as pool, Timer() as t:
        list(pool.map(lambda p: load_for_model(p, spec), paths))
    threads = len(paths) / t.s
    chunks = [(paths[i::n * 4], spec) for i in range(n * 4)]
    with ProcessPoolExecutor(n) as pool:
        pool.submit(int, 0).result()  # start the workers before timing
        with Timer() as t:
            list(pool.map(_decode_chunk, chunks))
    procs = len(paths) / t.s  # arrays stay in the workers: an upper bound for processes
    say("decode", f"decode+preprocess only ({len(paths)} images): 1 thread {one:.0f} img/s, "
        f"{n} threads {threads:.0f} img/s, {n} processes {procs:.0f} img/s "
        "(processes: without sending the arrays back)",
        {"one": round(one), "threads": round(threads), "processes": round(procs)})


def run_ort_batches(model, onnx_dir: Path, seconds: float = 2.0) -> None:
    """ONNX Runtime alone, by images per session.run: which batch size to use."""
    from app.core.onnx_backend import OnnxBackbone

    with Timer() as t:
        bb = OnnxBackbone.for_model(model, onnx_dir)
    say("export_s", f"first use of the model: ONNX export (child process) + check against "
        f"PyTorch + session: {t.s:.1f} s (then cached in the user cache dir)", round(t.s, 1))
    out = {}
    for rb in (1, 4, 8, 16, 32, 64):
        bb.run_batch = rb
        x = np.random.default_rng(0).standard_normal((64, *model.input_spec.shape),
                                                     dtype=np.float32)
        bb(x[:rb])
        n = 0
        with Timer() as t:
            while time.perf_counter() - t.t0 < seconds:
                bb(x)
                n += len(x)
        out[rb] = round(n / t.s, 1)
    say("ort_batches", "ONNX Runtime alone, img/s by images per run: "
        + ", ".join(f"{k}: {v}" for k, v in out.items()), out)


def run_variant(model, paths: list[str], workdir: Path, threads: int, workers: int,
                batch_size: int, onnx_dir: Path, streams: int = 1) -> None:
    from app.core.cache import EmbeddingCache
    from app.core.embedding import Embedder

    cache = EmbeddingCache(workdir / f"cache-variant-{threads}-{workers}-{streams}.sqlite")
    emb = Embedder(model, batch_size=batch_size, cache=cache, workers=workers, threads=threads,
                   onnx_dir=onnx_dir)
    emb.runner().streams = streams
    with Timer() as t:
        for _ in emb.iter_embed(paths):
            pass
    rate = len(paths) / t.s
    say(f"variant.{threads}x{workers}x{streams}", f"{threads} inference thread(s) x {streams} "
        f"concurrent run(s), {workers} decode threads: {rate:.1f} img/s", round(rate, 1))
    cache.close()


def run_naive(model, roots: list[Path], limit: int | None, batch_size: int = 32) -> float:
    """What a user would write: ImageFolder + DataLoader + the same backbone, eager, CPU."""
    import torch
    from torch.utils.data import ConcatDataset, DataLoader, Subset
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                             transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    ds = ConcatDataset([datasets.ImageFolder(str(r), transform=tf) for r in roots])
    if limit:
        ds = Subset(ds, range(min(limit, len(ds))))
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=2)
    net = model.backbone.eval()
    n = 0
    with Timer() as t, torch.no_grad():
        for x, _ in loader:
            net(x)
            n += x.shape[0]
    rate = n / t.s
    say("naive", f"naive: {n} images in {t.s:6.2f} s = {rate:7.1f} img/s "
        f"(ImageFolder + DataLoader(batch {batch_size}, 2 workers) + eager PyTorch, "
        f"{torch.get_num_threads()} threads)", round(rate, 1))
    return rate


def run_rescore(model, n: int, way: int = 10, shot: int = 5) -> None:
    """Re-score ``n`` cached embeddings after an example changes: the app's scoring path."""
    import torch

    dim = feature_dim(model)
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((way, dim)).astype(np.float32)
    labels_all = rng.integers(0, way, n)
    feats = (centers[labels_all] + rng.standard_normal((n, dim)).astype(np.float32) * 2)
    feats = np.maximum(feats, 0).astype(np.float32)  # post-ReLU6-pool features are >= 0
    ex_idx = np.concatenate([np.flatnonzero(labels_all == c)[:shot] for c in range(way)])
    ex_feats, ex_labels = feats[ex_idx], labels_all[ex_idx]
    mlearner, mdesc = maml_learner(model)
    holder = model
    if "maml" not in model.methods:
        from app.core.model import FewShotModel

        holder = FewShotModel(model.backbone, {**dict(model.learners.items()), "maml": mlearner},
                              model.input_spec)
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        print(f"  -- torch intra-op threads: {threads}")
        _rescore_once(holder, feats, ex_feats, ex_labels, labels_all, ex_idx, way, shot, n, dim,
                      mlearner, mdesc, suffix=f".t{threads}")
    torch.set_num_threads(os.cpu_count() or 1)


def _rescore_once(holder, feats, ex_feats, ex_labels, labels_all, ex_idx, way, shot, n, dim,
                  mlearner, mdesc, suffix: str) -> None:
    import torch

    from app.core import scoring

    for method in [m for m in ("protonet", "centroid", "maml") if m in holder.methods]:
        times = []
        for rep in range(5):
            ex = ex_feats.copy()
            ex[rep] += 0.01  # "an example changes"
            with Timer() as t:
                lab, conf = scoring.score(holder, method, ex, ex_labels, feats)
            times.append(t.s)
        acc = float((lab == labels_all).mean())
        say(f"rescore.{method}{suffix}", f"re-score {n} embeddings, {method}: median "
            f"{1000 * np.median(times):.1f} ms, worst {1000 * max(times):.1f} ms "
            f"(fit + predict, {way}-way {shot}-shot, accuracy on the synthetic data {acc:.2f})",
            round(1000 * float(np.median(times)), 1))
    protos = torch.from_numpy(np.ascontiguousarray(feats[:way]))
    q = torch.from_numpy(feats)
    times = []
    for _ in range(5):
        with Timer() as t, torch.no_grad():
            (q @ protos.T).argmax(1)
        times.append(t.s)
    say(f"rescore.floor{suffix}", f"floor: one pass over the {n} x {dim} float32 matrix "
        f"({feats.nbytes / 2**20:.0f} MB), q @ P^T + argmax: median "
        f"{1000 * np.median(times):.1f} ms", round(1000 * float(np.median(times)), 1))
    run_session_rescore(holder, feats, ex_idx, ex_labels, way, suffix)
    sup = torch.from_numpy(ex_feats)
    lab = torch.from_numpy(ex_labels)
    times = []
    for _ in range(5):
        with Timer() as t, torch.no_grad():
            mlearner.fit(sup, lab, num_classes=way)
        times.append(t.s)
    say(f"maml_adapt{suffix}", f"MAML head adaptation {way}-way {shot}-shot ({mdesc}): median "
        f"{1000 * np.median(times):.1f} ms, worst {1000 * max(times):.1f} ms",
        round(1000 * float(np.median(times)), 1))


def run_session_rescore(model, feats: np.ndarray, ex_idx: np.ndarray, ex_labels: np.ndarray,
                        way: int, suffix: str = "") -> None:
    """The app's own path: a Session over ``len(feats)`` images whose features are in
    memory; one example is added and everything is re-scored (fit, predict, apply)."""
    from app.core.session import Session

    n = feats.shape[0]
    paths = [f"/photos/d{i // 1000:03d}/img{i:06d}.jpg" for i in range(n)]
    s = Session()
    s.set_folder("/photos", paths)
    s.add_features(paths, feats)
    ids = [s.add_class(f"c{c}").id for c in range(way)]
    for c in range(way):
        s.add_examples(ids[c], [paths[i] for i, l in zip(ex_idx, ex_labels) if l == c][:-1])
    spare = {c: [paths[i] for i, l in zip(ex_idx, ex_labels) if l == c][-1] for c in range(way)}
    for method in [m for m in ("protonet", "centroid", "maml") if m in model.methods]:
        s.set_method(method)
        s.rescore(model)
        times = []
        for c in range(min(5, way)):
            s.add_examples(ids[c], [spare[c]])  # an example changes ...
            with Timer() as t:
                s.rescore(model)                 # ... and all n images are re-scored
            times.append(t.s)
            s.remove_examples([spare[c]])
        say(f"session_rescore.{method}{suffix}", f"Session.rescore after adding an example, {method}, "
            f"{n} images: median {1000 * np.median(times):.1f} ms, worst "
            f"{1000 * max(times):.1f} ms (gather + fit + predict + apply)",
            round(1000 * float(np.median(times)), 1))


def run_child(args: list[str], timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve().parent / "bench_children.py"), *args]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"child {args[0]} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: check the script works")
    ap.add_argument("--model", default=None,
                    help="checkpoint to benchmark (default: the app's default model)")
    ap.add_argument("--data", type=Path, default=CLOTHING)
    ap.add_argument("--camera", type=int, default=200, help="camera-size JPEGs to make")
    ap.add_argument("--camera-dir", type=Path, default=REPO / "runs" / "bench" / "camera",
                    help="where the camera-size JPEGs are kept between runs")
    ap.add_argument("--synthetic", type=int, default=100_000)
    ap.add_argument("--synthetic-dir", type=Path, default=None,
                    help="kept between runs (default: runs/bench/synthetic-N)")
    ap.add_argument("--naive-limit", type=int, default=0, help="0: all real images")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None, help="decode threads (default: app's)")
    ap.add_argument("--skip", default="", help="comma list: decode,ort,app,variants,camera,naive,rescore,gui,rss")
    ns = ap.parse_args(argv)
    skip = set(filter(None, ns.skip.split(",")))
    if ns.quick:
        ns.camera, ns.synthetic, ns.naive_limit = 8, 3000, 96
    if ns.model:  # children (GUI probe, memory run) read it from the environment too
        os.environ["FEWSHOT_BENCH_MODEL"] = str(Path(ns.model).resolve())

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    print(f"Machine: {machine()}")
    print(f"Load average at start (1/5/15 min): {load_average()}")
    model, desc = load_bench_model()
    print(f"Model: {desc}; input {model.input_spec.size} {model.input_spec.resize}")
    RESULTS.update(machine=machine(), model=desc, load_start=load_average())
    real = jpegs_under(ns.data)
    if ns.quick:
        real = real[:200]
    if not real:
        print(f"no JPEGs under {ns.data}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="fewshot-bench-"))
    onnx_dir = tmp / "onnx"
    t_start = time.perf_counter()

    if "decode" not in skip:
        print("\n[0] Is decoding GIL-bound? (threads vs processes)")
        run_decode_scaling(model, real[:600])
    if "ort" not in skip:
        print("\n[0b] Inference alone (ONNX Runtime, all cores), by batch size")
        run_ort_batches(model, onnx_dir)
    if "app" not in skip:
        print(f"\n[1] App pipeline on {len(real)} real JPEGs ({ns.data.name}, all splits)")
        run_app(model, real, tmp, "real", ns.batch_size, ns.workers, onnx_dir)
    if "variants" not in skip:
        sub = real[:1000] if not ns.quick else real[:100]
        print(f"\n[1b] Pipeline settings, cold, {len(sub)} real JPEGs (inference threads x decode threads)")
        for threads, workers, streams in ((1, 2, 1), (2, 2, 1), (2, 3, 1), (1, 2, 2)):
            run_variant(model, sub, tmp, threads, workers, ns.batch_size, onnx_dir, streams)
    if "camera" not in skip:
        cam_dir = ns.camera_dir if not ns.quick else tmp / "camera"
        with Timer() as t:
            cams = make_camera_jpegs(real, cam_dir, ns.camera)
        mb = np.mean([os.path.getsize(p) for p in cams]) / 2**20
        print(f"\n[2] App pipeline on {len(cams)} camera-size JPEGs (4032x3024 = 12.2 MP, "
              f"{mb:.1f} MB each on average; made/found in {t.s:.0f} s)")
        run_app(model, cams, tmp, "camera", ns.batch_size, ns.workers, onnx_dir)
    if "naive" not in skip:
        print("\n[3] Naive baseline (torchvision ImageFolder + DataLoader + eager PyTorch, CPU)")
        roots = [d for d in sorted(ns.data.iterdir()) if d.is_dir()]
        rate = run_naive(model, roots, ns.naive_limit or None)
        if "real.cold" in RESULTS:
            ratio = float(RESULTS["real.cold"]) / rate  # type: ignore[arg-type]
            say("ratio", f"app cold / naive = {ratio:.1f}x", round(ratio, 1))
    if "rescore" not in skip:
        n = 100_000 if not ns.quick else 10_000
        print(f"\n[4] Re-scoring {n} cached embeddings; MAML adaptation")
        run_rescore(model, n)
    if "gui" not in skip:
        n = 1000 if not ns.quick else 100
        print(f"\n[5] GUI thread stall while {n} images are classified (offscreen Qt, "
              "5 ms QTimer probe, embedding + scoring in a worker job, cold cache)")
        r = run_child(["gui", str(tmp / "gui"), str(n), str(ns.data)], timeout=900)
        say("gui.worst_ms", f"worst stall {r['worst_ms']:.1f} ms (p99 {r['p99_ms']:.1f} ms, "
            f"{r['ticks']} ticks over {r['seconds']:.1f} s; {r['images']} images, "
            f"{r['predicted']} predicted; worst after the backend was ready: "
            f"{r['worst_after_ready_ms']:.1f} ms)", r["worst_ms"])
        RESULTS["gui"] = r
    if "rss" not in skip:
        folder = ns.synthetic_dir or (REPO / "runs" / "bench" / f"synthetic-{ns.synthetic}")
        if ns.quick:
            folder = tmp / "synthetic"
        with Timer() as t:
            if not (folder / f"d{(ns.synthetic - 1) // 1000:04d}" / f"img{ns.synthetic - 1:06d}.jpg").exists():
                make_synthetic_folder(folder, ns.synthetic)
        print(f"\n[6] Peak memory for a synthetic {ns.synthetic}-image folder (made/found in {t.s:.0f} s)")
        r = run_child(["rss", str(folder), str(tmp / "rss.sqlite")], timeout=1800)
        say("rss.peak_mb", f"peak RSS {r['peak_mb']:.0f} MB for {r['images']} images: scan "
            f"{r['scan_s']:.1f} s, embeddings {r['embedded']} x {r['dim']} "
            f"(cache pre-filled with synthetic vectors: {r['fill_s']:.0f} s), read back from "
            f"the cache in {r['read_s']:.1f} s, scored in {r['score_s']:.2f} s; the same "
            f"process after imports and model load: {r['base_mb']:.0f} MB"
            + (f"; the peak while reading the features {r['read_peak_mb']} MB, while scoring "
               f"{r['score_peak_mb']} MB" if "read_peak_mb" in r else ""), r["peak_mb"])
        RESULTS["rss"] = r

    print(f"\nLoad average at end (1/5/15 min): {load_average()}; "
          f"total {time.perf_counter() - t_start:.0f} s; peak RSS of this process "
          f"{peak_rss_mb():.0f} MB")
    RESULTS["load_end"] = load_average()
    out = REPO / "runs" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / ("last-quick.json" if ns.quick else "last.json")).write_text(json.dumps(RESULTS, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
