"""End to end, the way the product is judged: ``python -m app classify`` on a whole folder.

From a labelled folder (one sub-folder per class), each draw keeps a Dirichlet(2)-drawn share
of every class (the largest class whole, so proportions are uneven), copies K images a class
into ``examples/<class>/`` and the rest, renamed so that no name tells the class, into
``photos/``; then runs ``classify`` once per learner and scores its CSV against the truth:

    python tools/classify_eval.py --data ../devsuite/clipart --shots 1 5 --draws 3 \\
        --methods default centroid --work /tmp/classify-eval

With ``--uneven`` each class gets 1 to K examples, drawn at random per class (as in the
app, where corrections become examples). Prints one line per draw, shot count and
learner, then each one's mean over the draws. Slow
on purpose (it embeds the copied images like a user's folder; the embedding cache makes a
second run over the same copies fast).
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.core.images import is_image_path  # noqa: E402


def make_draw(data: Path, out: Path, shots: int, seed: int,
              uneven: bool = False) -> dict[str, str]:
    """Examples and photos of one draw under ``out``; returns photo path -> true class.
    ``uneven``: 1 to ``shots`` examples a class instead of ``shots``."""
    shutil.rmtree(out, ignore_errors=True)
    rng = np.random.default_rng(seed)
    classes = sorted(p.name for p in data.iterdir() if p.is_dir() and not p.name.startswith("."))
    share = rng.dirichlet(np.full(len(classes), 2.0))
    share /= share.max()
    counts = rng.integers(1, shots + 1, len(classes)) if uneven else [shots] * len(classes)
    truth: dict[str, str] = {}
    for name, sh, k in zip(classes, share, counts):
        files = sorted(f for f in (data / name).rglob("*") if f.is_file() and is_image_path(f))
        rng.shuffle(files)
        (out / "examples" / name).mkdir(parents=True, exist_ok=True)
        for f in files[:k]:
            shutil.copy(f, out / "examples" / name / f.name)
        for f in files[k:max(k + 1, int(round(sh * len(files))))]:
            n = len(truth)
            target = out / "photos" / f"{n % 10}" / f"img{n:06d}{f.suffix.lower()}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, target)
            truth[str(target)] = name
    return truth


def accuracy(csv_path: Path, truth: dict[str, str]) -> float:
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["source"] == "predicted"]
    return float(np.mean([truth[r["path"]] == r["label"] for r in rows]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a folder of class sub-folders")
    ap.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--uneven", action="store_true",
                    help="1 to K examples a class (K: each of --shots), drawn per class")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--methods", nargs="+", default=["default", "centroid"],
                    help="learners of the model ('default': the model's own)")
    ap.add_argument("--model", help="checkpoint (default: the shipped default model)")
    ap.add_argument("--work", default="/tmp/classify-eval", help="where the draws are copied")
    a = ap.parse_args(argv)
    data, work = Path(a.data), Path(a.work)
    results: dict[tuple[str, str], list[float]] = {}  # (shots, learner) -> accuracies
    for shots in a.shots:
        kind = f"1-{shots}-shot" if a.uneven else f"{shots}-shot"
        for draw in range(a.draws):
            out = work / f"{data.name}-{kind}-{draw}"
            truth = make_draw(data, out, shots, seed=draw, uneven=a.uneven)
            for method in a.methods:
                csv_path = out / f"labels-{method}.csv"
                cmd = [sys.executable, "-m", "app", "classify", "--support", str(out / "examples"),
                       "--images", str(out / "photos"), "--out", str(csv_path), "--quiet"]
                cmd += ["--model", a.model] if a.model else []
                cmd += ["--method", method] if method != "default" else []
                run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
                if run.returncode != 0:
                    raise SystemExit(f"classify failed ({run.returncode}):\n{run.stderr}")
                acc = accuracy(csv_path, truth)
                results.setdefault((kind, method), []).append(acc)
                print(f"{data.name} {kind} draw {draw} {method}: {100 * acc:.2f}% "
                      f"of {len(truth)} images", flush=True)
    for (kind, method), accs in results.items():
        print(f"{data.name} {kind} {method}: mean {100 * np.mean(accs):.2f}% over "
              f"{len(accs)} draws")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
