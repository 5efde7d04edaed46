"""``python -m app evaluate``: few-shot accuracy of a model, mean and 95% CI over episodes.

All episodes are sampled first (seeded); the union of their images is embedded once
(persistent embedding cache for plain files; in memory for rotated or small images); then
each episode runs on features without gradients (MAML's inner loop excepted).
"""
from __future__ import annotations

import argparse
import json
import time

from ..core.checkpoints import CheckpointError, load_checkpoint
from .common import add_data_flags, add_runtime_flags, apply_runtime, data_spec, fail, open_cache
from ..training.data import DatasetError, select_classes
from ..training.episodes import mean_ci95, prepare_episodes, run_feature_episodes
from ..training.sampler import ALL_WAYS, EXAMPLES, POOLS
from ..training.models import set_inner_steps
from ..core.progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="N-way K-shot accuracy of a model with a 95%% CI",
                       description=__doc__)
    p.add_argument("--model", required=True, metavar="PATH", help="checkpoint (PATH.json + PATH.safetensors)")
    add_data_flags(p, subset_default="test")
    p.add_argument("--val-classes", type=int, default=0, metavar="N",
                   help="with --subset val: the N classes train held out for validation "
                        "(same --class-split/--split-seed as train) -- for choosing settings "
                        "without touching the test classes")
    p.add_argument("--way", type=_way, required=True, metavar="N|all",
                   help="classes an episode; all: every usable class of the dataset (with "
                        "--pool rest, each episode labels the whole folder)")
    p.add_argument("--shot", type=int, required=True,
                   help="labelled examples a class (with --examples uneven: at most)")
    p.add_argument("--examples", choices=EXAMPLES, default="even",
                   help="even: --shot examples every class (the papers' protocol); uneven: "
                        "1 to --shot a class, drawn at random (as in the app, where "
                        "corrections become examples)")
    p.add_argument("--query", type=int, default=15,
                   help="unlabeled pool images per class (default 15; with --pool dirichlet "
                        "the pool holds way x query images in uneven proportions)")
    p.add_argument("--pool", choices=POOLS, default="balanced",
                   help="the task's unlabeled pool: balanced (the papers' protocol), "
                        "dirichlet (class proportions from Dirichlet(alpha): a realistic "
                        "folder) or rest (every remaining image of the task's classes)")
    p.add_argument("--dirichlet-alpha", type=float, default=2.0, metavar="A",
                   help="concentration of --pool dirichlet (default 2, as Veilleux et al. 2021)")
    p.add_argument("--distractors", type=int, default=0, metavar="N",
                   help="add N images of other classes to each pool (not scored)")
    p.add_argument("--episodes", type=int, default=600, help="episodes (default 600)")
    p.add_argument("--seed", type=int, default=0, help="episode seed (default 0)")
    p.add_argument("--method", default=None, help="learner of the model (default: its default)")
    p.add_argument("--inner-steps", type=int, default=None,
                   help="MAML: inner steps at test time (default: the model's)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--record", action="store_true",
                   help="also write the result into the model card's accuracy table "
                        "(replacing an entry with the same data, protocol and episode settings)")
    add_runtime_flags(p)
    p.set_defaults(func=run)


def protocol_text(r: dict) -> str:
    parts = []
    if r.get("class_split") is not None:
        parts.append(f"seeded class split {r['class_split']}/rest (split seed {r['split_seed']}), "
                     f"{r['subset']} part")
    else:
        parts.append("all classes")
    if r.get("rotations"):
        parts.append("rotations 0/90/180/270 as separate classes")
    return ", ".join(parts)


_KEYS = ("data", "rotations", "class_split", "subset", "split_seed", "method", "way", "shot",
         "query", "episodes", "seed")


def record_in_card(model_path: str, result: dict) -> None:
    """Put ``result`` into the card's ``accuracy`` list (atomic rewrite of the JSON)."""
    from ..core.atomic import atomic_write_text
    from ..core.checkpoints import checkpoint_paths

    _, card_path = checkpoint_paths(model_path)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    entry = {k: result[k] for k in _KEYS}
    entry["protocol"] = protocol_text(result)
    entry.update(accuracy=result["accuracy"], ci95=result["ci95"], classes=result["classes"])
    # settings kept only when not the default, so older entries keep matching
    optional = ("inner_steps", "pool", "dirichlet_alpha", "distractors", "examples")
    entry.update({k: result[k] for k in optional
                  if result.get(k) not in (None, 0, "balanced", "even")})
    table = [e for e in card.get("accuracy", [])
             if not all(e.get(k) == entry.get(k) for k in _KEYS + optional)]
    table.append(entry)
    card["accuracy"] = table
    atomic_write_text(card_path, json.dumps(card, indent=2) + "\n")


def _way(text: str) -> int:
    if text == "all":
        return ALL_WAYS
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', not {text!r}") from None


def run(a: argparse.Namespace) -> int:
    device = apply_runtime(a)
    if a.episodes < 1:
        return fail("--episodes must be at least 1")
    try:
        model, card = load_checkpoint(a.model, device=device)
        method = a.method or model.default_method
        learner = model.learner(method)
        if a.inner_steps is not None:
            set_inner_steps(learner, a.inner_steps)
        spec = data_spec(a)
        classes = select_classes(spec)
        t0 = time.monotonic()
        prepared = prepare_episodes(model, classes, spec, a.way, a.shot, a.query, a.episodes,
                                    a.seed, want="features", device=device,
                                    cache=open_cache(a), quiet=a.quiet, label="evaluate",
                                    pool=a.pool, alpha=a.dirichlet_alpha,
                                    distractors=a.distractors, examples=a.examples)
    except (CheckpointError, DatasetError, ValueError) as e:
        return fail(str(e))
    a.way = prepared.sampler.way  # --way all: the number of usable classes
    prog = Progress(a.episodes, f"evaluate {a.way}-way {a.shot}-shot", quiet=a.quiet)
    accs = run_feature_episodes(model, method, prepared, a.way, prog)
    prog.close()
    acc, ci = mean_ci95(accs)
    result = {
        "accuracy": round(acc, 6), "ci95": round(ci, 6), "way": a.way, "shot": a.shot,
        "query": a.query, "episodes": a.episodes, "seed": a.seed, "model": str(a.model),
        "model_name": card.get("name"), "method": method, "data": a.data,
        "rotations": a.rotations, "class_split": a.class_split,
        "subset": a.subset if a.class_split is not None else None,
        "split_seed": a.split_seed if a.class_split is not None else None,
        "classes": prepared.table.num_classes,
        "skipped_classes": len(prepared.table.skipped),
        "pool": a.pool, "dirichlet_alpha": a.dirichlet_alpha if a.pool == "dirichlet" else None,
        "distractors": a.distractors, "examples": a.examples,
        "inner_steps": getattr(learner, "inner_steps", None),
        "seconds": round(time.monotonic() - t0, 1),
    }
    if a.record:
        record_in_card(a.model, result)
    if a.json:
        print(json.dumps(result))
    else:
        pool = "" if a.pool == "balanced" else f", {a.pool} pool"
        pool += f" + {a.distractors} distractors" if a.distractors else ""
        shot = f"1-{a.shot}-shot (uneven)" if a.examples == "uneven" else f"{a.shot}-shot"
        print(f"{card.get('name')} [{method}] on {a.data}: {a.way}-way {shot} "
              f"{a.query}-query{pool}, {a.episodes} episodes (seed {a.seed}): "
              f"{100 * acc:.2f}% +- {100 * ci:.2f}% (95% CI)")
    return 0
