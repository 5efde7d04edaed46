"""The model the app and ``classify`` use when none is given.

``default_model_path()`` picks the first shipped checkpoint that exists, in order of
preference (the photo model first; the Omniglot models work on photos only poorly).
"""
from __future__ import annotations

import os
from pathlib import Path

from .bundled import bundled_dir

PRETRAINED_DIR = bundled_dir("pretrained")

# Preference order: checkpoint names under pretrained/ (NAME.json + NAME.safetensors).
PREFERENCE = (
    "photo-mobilenetv2-lite1",    # chosen on the multi-domain suite (README "Shipped models")
    "photo-mobilenetv2",          # the previous default: 3x faster to embed, 1.5-2 points lower
    "photo-efficientnet-lite0",
    "photo-protonet-mobilenetv2",
    "omniglot-protonet-conv4",
    "omniglot-maml-conv4",
)

DEFAULT_MODEL = PRETRAINED_DIR / PREFERENCE[0]


def _exists(base: Path) -> bool:
    return (base.with_name(base.name + ".json").is_file()
            and base.with_name(base.name + ".safetensors").is_file())


def default_model_path(pretrained_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The first existing checkpoint of ``PREFERENCE``, else any checkpoint in the folder
    (sorted by name), else None."""
    d = Path(pretrained_dir) if pretrained_dir is not None else PRETRAINED_DIR
    for name in PREFERENCE:
        if _exists(d / name):
            return d / name
    if d.is_dir():
        for card in sorted(d.glob("*.json")):
            base = card.with_suffix("")
            if _exists(base):
                return base
    return None
