"""Add (or replace) a learner that has no weights of its own in a shipped checkpoint.

    python tools/add_learner.py pretrained/photo-efficientnet-lite0 folder \
        '{"method": "folder", "kappa": 1.0, "gamma": 0.5}' [--default] [--note TEXT]

The learner is built from its config (``build_learner``) and must add no tensors (besides
the ``config_parameters`` that its config records), so the
weights file stays byte for byte what it was (checked): only the JSON card changes.
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))

import argparse
import json

from app.core.atomic import atomic_write_text
from app.core.checkpoints import checkpoint_paths, load_checkpoint
from app.core.learners import build_learner
from app.core.learners.base import config_keys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("key", help="the learner's key in the card (what --method takes)")
    ap.add_argument("config", help="the learner's config as JSON (method + arguments)")
    ap.add_argument("--default", action="store_true", help="make it the model's default")
    ap.add_argument("--note", default="", help="a line for the card's 'methods' description")
    a = ap.parse_args()
    model, card = load_checkpoint(a.model)
    learner = build_learner(json.loads(a.config))
    if set(learner.state_dict()) - config_keys(learner):  # the card records config_parameters
        raise SystemExit("this learner has tensors: train it with `python -m app train --init` instead")
    model.learners[a.key] = learner
    if a.default:
        model.default_method = a.key
        card["default_method"] = a.key
    card["architecture"] = model.architecture()
    if a.note:
        card.setdefault("methods", {})[a.key] = a.note
    _, card_path = checkpoint_paths(a.model)
    load_checkpoint(a.model)  # the weights still match the card's SHA-256
    atomic_write_text(card_path, json.dumps(card, indent=2) + "\n")
    load_checkpoint(a.model)  # and the new card builds
    print(f"{card_path}: learner {a.key!r} = {json.dumps(learner.config())}"
          + (" (default)" if a.default else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
