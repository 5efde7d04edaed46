"""The photo model's accuracy table, every cell printed by ``python -m app evaluate``.

Same seed and episodes for every row (600 episodes, 15 queries a class, mean +- 95% CI).
Rows: the model's learners (centroid = frozen ImageNet features + nearest centroid, the
baseline; protonet; maml). Columns: mini-ImageNet test 5w1s/5w5s, clothing-small (its
train/validation/test folders pooled) 5w1s/5w5s/10w5s.

    .venv/bin/python tools/photo_eval_table.py --model pretrained/photo-mobilenetv2 \\
        --json runs/photo/table.json
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))  # the repository, for `app`

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path("..") / "shared" / "data"  # relative to the repository (commands run there)
CLOTHING = os.pathsep.join(str(DATA / "clothing-small" / s) for s in ("train", "validation", "test"))
COLUMNS = [  # (key, header, data, way, shot)
    ("mini_5w1s", "mini-ImageNet test 5w1s*", str(DATA / "mini-imagenet" / "test"), 5, 1),
    ("mini_5w5s", "mini-ImageNet test 5w5s*", str(DATA / "mini-imagenet" / "test"), 5, 5),
    ("clothing_5w1s", "clothing-small 5w1s", CLOTHING, 5, 1),
    ("clothing_5w5s", "clothing-small 5w5s", CLOTHING, 5, 5),
    ("clothing_10w5s", "clothing-small 10w5s", CLOTHING, 10, 5),
]
ROW_NAMES = {"centroid": "frozen ImageNet features + nearest centroid (baseline)",
             "protonet": "shipped ProtoNet mode", "maml": "shipped MAML mode"}


def evaluate(model: str, method: str, data: str, way: int, shot: int, episodes: int,
             seed: int, threads: int) -> dict:
    cmd = [sys.executable, "-m", "app", "evaluate", "--model", model, "--method", method,
           "--data", data, "--way", str(way), "--shot", str(shot), "--query", "15",
           "--episodes", str(episodes), "--seed", str(seed), "--json", "--quiet",
           "--device", "cpu", "--threads", str(threads)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"evaluate failed: {' '.join(cmd)}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(results: dict[str, dict[str, dict]], methods: list[str]) -> str:
    head = "| model | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|---" * (len(COLUMNS) + 1) + "|"]
    for m in methods:
        cells = []
        for key, *_ in COLUMNS:
            r = results[m].get(key)
            cells.append("" if r is None else f"{100 * r['accuracy']:.2f} ± {100 * r['ci95']:.2f}")
        lines.append(f"| {ROW_NAMES.get(m, m)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="pretrained/photo-mobilenetv2")
    ap.add_argument("--methods", default="centroid,protonet,maml")
    ap.add_argument("--columns", default=",".join(c[0] for c in COLUMNS))
    ap.add_argument("--episodes", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write all results here (updated after every cell)")
    a = ap.parse_args()
    methods = a.methods.split(",")
    wanted = set(a.columns.split(","))
    results: dict[str, dict[str, dict]] = {m: {} for m in methods}
    if a.json and Path(a.json).is_file():
        results.update(json.loads(Path(a.json).read_text()).get("results", {}))
    for key, _h, data, way, shot in COLUMNS:
        if key not in wanted:
            continue
        for m in methods:
            r = evaluate(a.model, m, data, way, shot, a.episodes, a.seed, a.threads)
            results.setdefault(m, {})[key] = r
            print(f"{m} {key}: {100 * r['accuracy']:.2f} ± {100 * r['ci95']:.2f}", file=sys.stderr,
                  flush=True)
            if a.json:
                Path(a.json).write_text(json.dumps({"results": results}, indent=1))
    print(markdown(results, methods))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
