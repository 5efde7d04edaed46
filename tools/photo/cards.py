"""The photo models' accuracy table and cards: ``python -m app evaluate`` cells in, JSON and
Markdown cards out (``table`` and ``finalize`` of ``python -m tools.photo``)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from app.core.atomic import atomic_write_text

REPO = Path(__file__).resolve().parents[2]
DATA = Path("..") / "shared" / "data"  # relative to the repository (commands run there)
CLOTHING = os.pathsep.join(str(DATA / "clothing-small" / s) for s in ("train", "validation", "test"))
COLUMNS = [  # (key, header, data, way, shot)
    ("mini_5w1s", "mini-ImageNet test 5w1s*", str(DATA / "mini-imagenet" / "test"), 5, 1),
    ("mini_5w5s", "mini-ImageNet test 5w5s*", str(DATA / "mini-imagenet" / "test"), 5, 5),
    ("clothing_5w1s", "clothing-small 5w1s", CLOTHING, 5, 1),
    ("clothing_5w5s", "clothing-small 5w5s", CLOTHING, 5, 5),
    ("clothing_10w5s", "clothing-small 10w5s", CLOTHING, 10, 5),
]
HP_KEYS = ("data", "val", "way", "shot", "query", "episodes", "meta_batch", "lr", "lr_step",
           "weight_decay", "seed", "val_way", "val_shot", "val_query", "val_episodes",
           "val_every", "freeze_backbone", "first_order", "test_inner_steps", "half", "pool")
ENTRY_KEYS = ("data", "rotations", "class_split", "subset", "split_seed", "method", "way",
              "shot", "query", "episodes", "seed")


# -- the table ------------------------------------------------------------------------------
def evaluate(model: str, method: str, data: str, way: int, shot: int, episodes: int,
             seed: int, threads: int) -> dict:
    """One cell, exactly as a user gets it: ``python -m app evaluate --json``."""
    cmd = [sys.executable, "-m", "app", "evaluate", "--model", model, "--method", method,
           "--data", data, "--way", str(way), "--shot", str(shot), "--query", "15",
           "--episodes", str(episodes), "--seed", str(seed), "--json", "--quiet",
           "--device", "cpu", "--threads", str(threads)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"evaluate failed: {' '.join(cmd)}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cell(r: dict | None, missing: str = "") -> str:
    return missing if r is None else f"{100 * r['accuracy']:.2f} ± {100 * r['ci95']:.2f}"


def table_markdown(results: dict[str, dict], rows: list[str], names: dict[str, str],
                   missing: str = "") -> str:
    lines = ["| model | " + " | ".join(c[1] for c in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    for m in rows:
        lines.append(f"| {names.get(m, m)} | "
                     + " | ".join(cell(results[m].get(c[0]), missing) for c in COLUMNS) + " |")
    return "\n".join(lines)


# -- what the card records ------------------------------------------------------------------
def training_summary(card: dict) -> dict:
    hp = card.get("hyperparameters", {})
    out = {"hyperparameters": {k: hp[k] for k in HP_KEYS if k in hp}}
    out.update({k: v for k, v in card.get("training", {}).items()
                if k not in ("device", "platform")})
    return out


def accuracy_entries(results: dict[str, dict]) -> list[dict]:
    """``python -m app evaluate --json`` results -> the card's ``accuracy`` list."""
    entries = []
    for cols in results.values():
        for key, r in cols.items():
            e = {k: r[k] for k in ENTRY_KEYS}
            e["protocol"] = ("mini-ImageNet test split, all 20 classes; ImageNet pre-training has "
                             "seen these classes" if key.startswith("mini") else
                             "clothing-small train+validation+test folders pooled (10 classes, "
                             "3,781 images)")
            e.update(accuracy=r["accuracy"], ci95=r["ci95"], classes=r["classes"])
            if r.get("inner_steps") is not None:
                e["inner_steps"] = r["inner_steps"]
            entries.append(e)
    return entries


def centroid_row(card_path: Path) -> dict[str, dict]:
    """A shipped card's centroid row, keyed like ``COLUMNS`` (a baseline measured on the
    same episodes, seed and protocol)."""
    card = json.loads(card_path.read_text())
    out = {}
    for key, _h, data, way, shot in COLUMNS:
        for e in card["accuracy"]:
            if (e["method"] == "centroid" and e["way"] == way and e["shot"] == shot
                    and Path(e["data"].split(":")[0]).parts[-2:] == Path(data.split(":")[0]).parts[-2:]):
                out[key] = {"accuracy": e["accuracy"], "ci95": e["ci95"]}
    return out


def acceptance(results: dict[str, dict], default: str, baselines: list[str],
               names: dict[str, str]) -> dict:
    """Issue 3's checks against each baseline row: the default beats it at clothing-small
    5w5s by more than the two CIs, and gains at least as much at 5w1s. ``met``: against
    the first baseline."""
    def pc(m: str, k: str) -> tuple[float, float]:
        return 100 * results[m][k]["accuracy"], 100 * results[m][k]["ci95"]

    out: dict[str, Any] = {}
    for base in baselines:
        (b5, cb5), (d5, cd5) = pc(base, "clothing_5w5s"), pc(default, "clothing_5w5s")
        (b1, cb1), (d1, cd1) = pc(base, "clothing_5w1s"), pc(default, "clothing_5w1s")
        g5, g1 = d5 - b5, d1 - b1
        ok5, ok1 = g5 > cb5 + cd5, g1 >= g5 and g1 > 0
        out[f"vs {names[base]}"] = (
            f"clothing 5w5s {d5:.2f} ± {cd5:.2f} vs {b5:.2f} ± {cb5:.2f} ({g5:+.2f}, "
            + ("more than the CIs" if ok5 else "NOT more than the CIs")
            + f"); 5w1s {d1:.2f} ± {cd1:.2f} vs {b1:.2f} ± {cb1:.2f} ({g1:+.2f}, "
            + ("at least the 5-shot gain" if ok1 else "less than the 5-shot gain") + ")")
        out[f"met_{base}"] = bool(ok5 and ok1)
    keys = [k for k in ("mini_5w5s", "clothing_5w5s", "clothing_10w5s")
            if k in results.get("maml", {}) and k in results.get("protonet", {})]
    out["maml_vs_protonet_5shot_plus"] = (
        "MAML >= ProtoNet in every measured 5-shot column" if all(
            pc("maml", k)[0] >= pc("protonet", k)[0] for k in keys)
        else "MAML is NOT >= ProtoNet in every measured 5-shot column (see table)")
    out["met"] = out[f"met_{baselines[0]}"]
    return out


# -- the Markdown card ----------------------------------------------------------------------
def _md_selection(title: str, v: object) -> list[str]:
    if isinstance(v, str):
        return [f"- **{title}**: {v}"]
    assert isinstance(v, dict)
    out = [f"- **{title}** ({v.get('protocol', '')}):", ""]
    results = v.get("results")
    if isinstance(results, list):
        cols = list(results[0])
        out += ["  | " + " | ".join(cols) + " |", "  |" + "---|" * len(cols)]
        out += ["  | " + " | ".join(str(r[c]) for c in cols) + " |" for r in results]
    elif isinstance(results, dict):
        out += [f"  - {name}: {val}" for name, val in results.items()]
    for extra, val in v.items():
        if extra in ("protocol", "results", "chosen"):
            continue
        out += [f"  - {extra.replace('_', ' ')}: " + "; ".join(f"{a} {b}" for a, b in val.items())]
    if "chosen" in v:
        out += ["", f"  Chosen: {v['chosen']}"]
    return out + [""]


def _md_input(spec: dict) -> str:
    w, h = spec["size"]
    mean = ", ".join(f"{m:.3f}" for m in spec["mean"])
    std = ", ".join(f"{s:.3f}" for s in spec["std"])
    return (f"{w} x {h} RGB: shorter side resized to {w / spec['crop_fraction']:.0f}, central "
            f"{w} x {h} crop (crop_fraction {spec['crop_fraction']}), pixels in [0, 1] "
            f"normalised with mean ({mean}) and std ({std}).")


def write_md(path: Path, card: dict, profile: dict) -> None:
    name = path.name
    lines = [f"# {name}", "", card["description"], "",
             "## Accuracy (`python -m app evaluate`, 600 episodes, 15 queries a class, seed 0, "
             "mean ± 95% CI)", ""]
    if "accuracy_table_markdown" in card:
        lines += [card["accuracy_table_markdown"], "", profile["footnote"], "",
                  f"Reproduce: `python -m tools.photo table --model pretrained/{name}`", "",
                  "## Acceptance (issue 3)", ""]
        lines += [f"- {k}: {v}" for k, v in card["acceptance"].items() if not k.startswith("met")]
        lines += ["", profile["verdict"][0 if card["acceptance"]["met"] else 1], ""]
        if profile.get("plainly"):
            lines += [profile["plainly"], ""]
    lines += ["## Methods", "", f"Default method: **{card['default_method']}**.", ""]
    lines += [f"- `{m}`: {t}" for m, t in card["methods"].items()]
    lines += ["", "## Input", "", _md_input(card["input"]), ""]
    sw = card["starting_weights"]
    lines += ["## Starting weights and licence", "",
              f"- Backbone: `{sw['package']}` {sw['version']}, file `{sw['file']}` "
              f"(sha256 `{sw['sha256']}`), {sw['identical_to']}."]
    lines += [f"- {k.replace('_', ' ')}: {v}" for k, v in card["licence"].items()]
    lines += ["", "## Training", "", f"- Data: {card['training']['data']}",
              f"- Selection: {card['training']['selection']}",
              f"- Backbone: {card['training']['backbone']}"]
    for m, r in card["training"]["runs"].items():
        hp = r["hyperparameters"]
        lines.append(f"- `{m}`: {hp.get('way')}-way {hp.get('shot')}-shot {hp.get('query')}-query "
                     f"episodes, {hp.get('episodes')} steps x {hp.get('meta_batch')} task(s), "
                     f"Adam lr {hp.get('lr')}, best validation "
                     f"{100 * (r.get('best_validation_accuracy') or 0):.2f}% "
                     f"({hp.get('val_way')}-way {hp.get('val_shot')}-shot)")
    lines += ["", "## Selection (mini-ImageNet val)", ""]
    for k, v in card["selection"].items():
        lines += _md_selection(k.replace("_", " "), v)
    lines += ["", "## Notes", ""] + [f"- {n}" for n in card["notes"]]
    lines += ["", "## Rebuild", "", "```sh", profile["rebuild"].strip(), "```", ""]
    atomic_write_text(path.with_suffix(".md"), "\n".join(lines))


def finalize_card(model: Any, src_card: dict, profile: dict, default: str,
                  protonet_card: dict | None, results: dict[str, dict] | None) -> dict:
    """The shipped card of a trained photo model: the profile's texts, the training runs'
    summaries and, with ``results`` (the table's JSON), accuracy, acceptance and table."""
    card: dict[str, Any] = {
        "description": profile["description"], "starting_weights": src_card["starting_weights"],
        "licence": profile["licence"], "methods": profile["methods"], "default_method": default,
        "input": model.input_spec.to_dict()}
    runs = {"maml": training_summary(src_card)}
    if protonet_card is not None:
        runs = {"protonet": training_summary(protonet_card), **runs}
    card["training"] = {"data": profile["training_data"],
                        "selection": "../shared/data/mini-imagenet/val (16 classes x 100 images)",
                        "backbone": "frozen (features computed once, cached)", "runs": runs}
    card["selection"] = profile["selection"]
    card["notes"] = profile["notes"]
    if results is not None:
        results = dict(results)
        for row, other in profile.get("baseline_cards", {}).items():
            results[row] = centroid_row(REPO / "pretrained" / f"{other}.json")
        own = {m: r for m, r in results.items() if m not in profile.get("baseline_cards", {})}
        card["accuracy"] = accuracy_entries(own)
        card["acceptance"] = acceptance(results, default, profile["baselines"], profile["rows"])
        card["accuracy_table_markdown"] = table_markdown(
            results, [*profile.get("baseline_cards", {}), "centroid", "protonet", "maml"],
            profile["rows"], missing="not measured")
    return card
