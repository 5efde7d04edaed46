"""Save and load meta-learners: weights in safetensors, everything else in a JSON card.

A checkpoint named ``pretrained/NAME`` is two files:

* ``NAME.safetensors`` -- tensors only (optionally stored as float16);
* ``NAME.json``        -- the card: architecture (enough to rebuild the model), input
  size and normalisation, hyper-parameters, training data and protocol, episodes, the
  measured accuracy table, and the SHA-256 of the weights file.

Loading never unpickles anything. A missing, corrupt, truncated, pickled or mismatched
file raises ``CheckpointError`` with one line naming the file and the problem.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write_bytes, atomic_write_text
from .learners.base import config_keys
from .model import FewShotModel

FORMAT = "fewshot-label/1"
_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


class CheckpointError(ValueError):
    """A model file that cannot be used; ``str(e)`` is one line naming file and problem."""


def checkpoint_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``x``, ``x.json`` or ``x.safetensors`` -> (``x.safetensors``, ``x.json``)."""
    p = Path(path)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(model: FewShotModel, path: str | os.PathLike[str],
                    card: dict[str, Any] | None = None, half: bool = False) -> Path:
    """Write ``path.safetensors`` and ``path.json`` atomically; returns the weights path."""
    from safetensors.torch import save

    weights_path, card_path = checkpoint_paths(path)
    tensors = {}
    in_card = config_keys(model)  # recorded by the learners' config in the card
    for k, v in model.state_dict().items():
        if k in in_card:
            continue
        v = v.detach().to("cpu").contiguous()
        if half and v.is_floating_point():
            v = v.half()
        tensors[k] = v
    data = save(tensors, metadata={"format": FORMAT})
    atomic_write_bytes(weights_path, data)
    full_card = dict(card or {})
    full_card.update({
        "format": FORMAT,
        "name": weights_path.with_suffix("").name,
        "architecture": model.architecture(),
        "weights": {"file": weights_path.name, "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data), "dtype": "float16" if half else "float32"},
    })
    atomic_write_text(card_path, json.dumps(full_card, indent=2, sort_keys=False) + "\n")
    return weights_path


def read_card(path: str | os.PathLike[str]) -> dict[str, Any]:
    _, card_path = checkpoint_paths(path)
    if not card_path.is_file():
        raise CheckpointError(f"{card_path}: model card not found")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(f"{card_path}: not a text file (expected a JSON model card)") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{card_path}: not valid JSON ({e})") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT or "architecture" not in card:
        raise CheckpointError(f"{card_path}: not a {FORMAT} model card")
    return card


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu",
                    verify: bool = True) -> tuple[FewShotModel, dict[str, Any]]:
    """Rebuild the model of a checkpoint (eval mode, float32) and return it with its card."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    weights_path, card_path = checkpoint_paths(path)
    card = read_card(path)
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: weights file not found")
    data = weights_path.read_bytes()
    if data[:4] in _PICKLE_MAGIC[:1] or data[:2] in _PICKLE_MAGIC[1:]:
        raise CheckpointError(f"{weights_path}: is a pickle/torch.save file, not safetensors; "
                              "refusing to unpickle it")
    expected = card.get("weights", {}).get("sha256")
    if verify and expected and hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(f"{weights_path}: contents do not match the card's SHA-256 "
                              "(corrupt, truncated or replaced file)")
    try:
        tensors = load(data)
    except (SafetensorError, Exception) as e:  # safetensors raises several types
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({msg})") from None
    try:
        model = FewShotModel.from_architecture(card["architecture"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{card_path}: architecture cannot be built ({e})") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
        in_card = config_keys(model)  # built from the card's config
        missing = [k for k in missing if k not in in_card]
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{weights_path}: does not fit the card's architecture ({first})") from None
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
        raise CheckpointError(f"{weights_path}: does not fit the card's architecture: "
                              + "; ".join(parts))
    model.eval().to(device)
    return model, card


def model_id(card: dict[str, Any]) -> str:
    """Stable identifier of the weights (for embedding-cache keys)."""
    return str(card.get("weights", {}).get("sha256", ""))[:16] or str(card.get("name"))
