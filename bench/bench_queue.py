"""Label these next, simulated: a user labels 5 images a round for 4 rounds, chosen by the
queue (``app/core/suggest.py``), by least confidence, or at random (issue 12).

    .venv/bin/python bench/bench_queue.py [--suite ../devsuite] [--model PATH] \
        [--episodes 600] [--json runs/queue.json]

Each episode of each development-suite domain: 5 classes, one example each, and a
Dirichlet(2)-imbalanced folder of 40 images a class on average (``--query``). Round 0 is the
model's default learner on the examples alone; each round the strategy picks ``--per-round``
images of the folder, the simulated user gives their true labels, they become examples and
the learner is fitted again. Printed: accuracy of the whole folder's labels after each
round (the user's own labels count as right, for every strategy alike), mean ± 95% CI over
episodes, the same seeded episodes for every strategy.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.cache import EmbeddingCache  # noqa: E402
from app.core.checkpoints import load_checkpoint  # noqa: E402
from app.core.defaults import default_model_path  # noqa: E402
from app.core.learners import FolderPool  # noqa: E402
from app.core.suggest import STRATEGIES, suggest  # noqa: E402
from app.training.data import DataSpec, select_classes  # noqa: E402
from app.training.episodes import mean_ci95, prepare_episodes  # noqa: E402

HERE = Path(__file__).resolve().parents[1]
SUITE = ("solar-el", "clipart", "silhouettes", "digits", "handwriting")


@torch.no_grad()
def simulate(learner, feats: torch.Tensor, ep, way: int, rounds: int, per_round: int,
             strategy: str, seed: int) -> list[float]:  # noqa: ANN001
    """Whole-folder accuracy after rounds 0..rounds."""
    pool_x = feats[torch.as_tensor(ep.query)]
    truth = np.asarray(ep.query_labels)
    pool = FolderPool(pool_x) if learner.capabilities.reads_pool else None
    sx = feats[torch.as_tensor(ep.support)]
    sy = torch.as_tensor(ep.support_labels)
    labelled = np.zeros(len(truth), bool)
    out = []
    for r in range(rounds + 1):
        if pool is not None:
            proba = learner.fit(sx, sy, way, pool=pool).pool_proba
        else:
            proba = learner.fit(sx, sy, way).predict_proba(pool_x)
        conf, pred = proba.max(1)
        pred = pred.numpy()
        right = np.where(labelled, True, pred == truth)
        out.append(float(right.mean()))
        if r == rounds:
            break
        picks = suggest(pool_x.numpy(), conf.numpy(), labelled, per_round, strategy,
                        seed=seed * 100 + r)
        labelled[picks] = True
        sx = torch.cat([sx, pool_x[torch.as_tensor(picks)]])
        sy = torch.cat([sy, torch.as_tensor(truth[picks])])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default=str(HERE.parent / "devsuite"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--method", default="", help="learner (default: the model's)")
    ap.add_argument("--episodes", type=int, default=600)
    ap.add_argument("--query", type=int, default=40, help="folder images a class, on average")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--per-round", type=int, default=5)
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--domains", nargs="*", default=list(SUITE))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, card = load_checkpoint(a.model or default_model_path())
    learner = model.learner(a.method or model.default_method).eval()
    strategies = a.strategies.split(",")
    cache = EmbeddingCache()
    results = []
    print(f"model {card['name']}, learner {a.method or model.default_method}; {a.episodes} "
          f"episodes a domain; 1 example a class, Dirichlet(2) folder of ~{a.query} a class; "
          f"{a.per_round} labels a round")
    for dom in a.domains:
        root = str(Path(a.suite) / dom)
        classes = select_classes(DataSpec(root=root))
        way = min(5, len(classes))
        prep = prepare_episodes(model, classes, DataSpec(root=root), way, 1, a.query,
                                a.episodes, 0, cache=cache, quiet=True, pool="dirichlet")
        feats = prep.features.features
        rows = prep.features.row
        for strategy in strategies:
            t0 = time.monotonic()
            accs = np.array([simulate(learner, feats, _remap(ep, rows), way, a.rounds,
                                      a.per_round, strategy, i)
                             for i, ep in enumerate(prep.episodes)])
            cells = [mean_ci95(accs[:, r]) for r in range(a.rounds + 1)]
            results.append({"domain": dom, "strategy": strategy, "episodes": a.episodes,
                            "rounds": [[round(100 * m, 2), round(100 * c, 2)] for m, c in cells],
                            "seconds": round(time.monotonic() - t0, 1)})
            print(f"{dom:12s} {strategy:16s} " + "  ".join(
                f"r{r} {100 * m:.2f}±{100 * c:.2f}" for r, (m, c) in enumerate(cells)), flush=True)
    for strategy in strategies:
        rs = [r for r in results if r["strategy"] == strategy]
        means = np.mean([[c[0] for c in r["rounds"]] for r in rs], axis=0)
        print(f"{'mean':12s} {strategy:16s} " + "  ".join(f"r{i} {m:.2f}" for i, m in enumerate(means)))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


def _remap(ep, rows: np.ndarray):  # noqa: ANN001, ANN202
    """The episode with item indices turned into rows of the prepared feature matrix."""
    from dataclasses import replace
    return replace(ep, support=rows[ep.support], query=rows[ep.query])


if __name__ == "__main__":
    raise SystemExit(main())
