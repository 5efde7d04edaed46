"""Child processes of bench_pipeline.py (fresh process: clean memory and Qt state).

    bench_children.py gui WORKDIR N DATA   # GUI-thread stall probe while N images are classified
    bench_children.py rss FOLDER DB        # peak RSS for a big folder (scan, cache, features, scores)

Each prints one line ``RESULT {json}``.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (feature_dim, jpegs_under, load_bench_model, peak_rss_mb,  # noqa: E402
                          reset_peak_rss)


def _session_with_examples(paths: list[str], n_classes: int, shot: int):
    """A session over ``paths`` whose first ``n_classes * shot`` images are examples."""
    from app.core.session import Session

    s = Session()
    s.set_folder(os.path.dirname(paths[0]), paths)
    for c in range(n_classes):
        info = s.add_class(f"class{c}")
        s.add_examples(info.id, paths[c * shot:(c + 1) * shot])
    return s


def gui(workdir: str, n: int, data: str) -> dict:
    """The app's own Engine (model load, embedding and scoring jobs) and Session, driven
    as the main window drives them, with a 5 ms QTimer on the GUI thread as the probe."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    os.environ["FEWSHOT_CACHE_DIR"] = str(work / "usercache")  # first use: ONNX export too
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from app.core.checkpoints import save_checkpoint
    from app.ui.engine import Engine

    model, desc = load_bench_model()
    save_checkpoint(model, work / "model", {"name": "bench model", "note": desc})
    paths = jpegs_under(Path(data))[:n]
    session = _session_with_examples(paths, 3, 5)
    engine = Engine(cache_path=str(work / "cache.sqlite"))
    engine.session = session
    clock = QElapsedTimer()
    clock.start()
    ticks: list[int] = []
    marks: dict[str, int] = {}

    def on_event(event) -> None:  # noqa: ANN001 - a SessionEvent
        if event.topic == "stale":
            engine.schedule_rescore()
        elif event.topic == "features":
            marks.setdefault("first_batch", clock.nsecsElapsed())
        elif event.topic == "predictions":
            marks.setdefault("first_predictions", clock.nsecsElapsed())

    session.subscribe(on_event)
    probe = QTimer()
    probe.setTimerType(Qt.PreciseTimer)
    probe.setInterval(5)
    probe.timeout.connect(lambda: ticks.append(clock.nsecsElapsed()))

    def check_done() -> None:
        lm = engine.loaded
        if lm is None or engine.working:
            return
        if all(p in session.features or p in session.problems for p in paths):
            app.quit()

    done_timer = QTimer()
    done_timer.setInterval(50)
    done_timer.timeout.connect(check_done)
    engine.modelFailed.connect(lambda m: (print("model failed:", m, file=sys.stderr), app.quit()))
    engine.error.connect(lambda m: print("error:", m, file=sys.stderr))
    probe.start()
    done_timer.start()
    QTimer.singleShot(0, lambda: engine.load(str(work / "model"), "auto", 32))
    QTimer.singleShot(900_000, app.quit)
    t0 = time.perf_counter()
    app.exec()
    seconds = time.perf_counter() - t0
    probe.stop()
    engine.shutdown()
    t = np.asarray(ticks, dtype=np.int64)
    gaps = np.diff(t) / 1e6 - 5.0
    ready = marks.get("first_batch", 0)
    after = np.diff(t[t >= ready]) / 1e6 - 5.0
    classes, _ = session.prediction_arrays()
    lm = engine.loaded
    return {"worst_ms": round(float(gaps.max()), 1),
            "p99_ms": round(float(np.percentile(gaps, 99)), 1),
            "worst_after_ready_ms": round(float(after.max()) if after.size else float("nan"), 1),
            "ticks": len(ticks), "seconds": round(seconds, 1), "images": len(paths),
            "predicted": int((classes >= 0).sum()),
            "first_batch_s": round(ready / 1e9, 2),
            "backend": lm.embedder.describe() if lm else "model not loaded"}


def rss(folder: str, db: str) -> dict:
    from app.core.cache import EmbeddingCache
    from app.core.embedding import Embedder
    from app.core.scan import scan

    model, _ = load_bench_model()
    base = peak_rss_mb()
    t = time.perf_counter()
    records = scan(folder).records
    scan_s = time.perf_counter() - t
    paths = [r.path for r in records]
    dim = feature_dim(model)
    # Pre-fill the cache as if every image had been embedded (embedding 100k images would
    # take ~15 min here); done in a grandchild so its memory does not count here.
    t = time.perf_counter()
    import subprocess

    from app.core.model import backbone_id

    subprocess.run([sys.executable, __file__, "fill", folder, db, backbone_id(model), str(dim)], check=True,
                   stdout=subprocess.DEVNULL)
    fill_s = time.perf_counter() - t
    cache = EmbeddingCache(db)
    session = _session_with_examples(paths, 10, 5)
    emb = Embedder(model, cache=cache)
    t = time.perf_counter()
    for batch in emb.iter_embed(session.paths_needing_features()):
        session.add_features(batch.paths, batch.features, batch.problems)
    read_s = time.perf_counter() - t
    read_mb, staged = peak_rss_mb(), reset_peak_rss()
    t = time.perf_counter()
    session.rescore(model)
    score_s = time.perf_counter() - t
    score_mb = peak_rss_mb()
    classes, _ = session.prediction_arrays()
    return {"peak_mb": round(max(read_mb, score_mb)), "base_mb": round(base),
            **({"read_peak_mb": round(read_mb), "score_peak_mb": round(score_mb)}
               if staged else {}),
            "images": len(paths),
            "embedded": len(session.features), "dim": dim, "scan_s": round(scan_s, 2),
            "fill_s": round(fill_s, 1), "read_s": round(read_s, 2), "score_s": round(score_s, 2),
            "predicted": int((classes >= 0).sum()), "backend_built": emb.backend is not None}


def fill(folder: str, db: str, key: str, dim: int) -> dict:
    from app.core.cache import EmbeddingCache, FileKey
    from app.core.scan import scan

    paths = [r.path for r in scan(folder).records]
    rng = np.random.default_rng(0)
    with EmbeddingCache(db) as cache:
        for i in range(0, len(paths), 2000):
            chunk = paths[i:i + 2000]
            vecs = np.maximum(rng.standard_normal((len(chunk), dim), dtype=np.float32), 0)
            cache.put_many(key, [(FileKey.of(p), v) for p, v in zip(chunk, vecs)])
    return {"filled": len(paths)}


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "gui":
        out = gui(rest[0], int(rest[1]), rest[2])
    elif mode == "rss":
        out = rss(rest[0], rest[1])
    else:
        out = fill(rest[0], rest[1], rest[2], int(rest[3]))
    print("RESULT " + json.dumps(out), flush=True)
