"""Tiny generated images and a tiny model for the app's behaviour tests (no training)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from app.core.backbones import Conv4
from app.core.checkpoints import save_checkpoint
from app.core.learners import MAML, FolderProtoNet, ProtoNet
from app.core.model import FewShotModel, InputSpec

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30)}
TINY_INPUT = InputSpec(size=(16, 16), channels=3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                       resize="stretch", crop_fraction=1.0)


def tiny_model(seed: int = 0) -> FewShotModel:
    torch.manual_seed(seed)
    return FewShotModel(Conv4(3, hidden=8, out_channels=8),
                        {"protonet": ProtoNet(),
                         "maml": MAML(neck={"name": "feature", "in_dim": 8}, adapt="head",
                                      head_init="proto", inner_steps=2, inner_lr=0.1),
                         "centroid": ProtoNet(label="Centroid"),
                         "folder": FolderProtoNet(knn=2, head_steps=10)},
                        TINY_INPUT, default_method="protonet").eval()


def save_tiny_model(folder: Path, name: str = "tiny") -> Path:
    base = Path(folder) / name
    save_checkpoint(tiny_model(), base, {"training": {"data": "none (random weights, tests)"}})
    return base


def solid(path: Path, colour: str | tuple[int, int, int], size=(24, 20), seed: int = 0,
          fmt: str | None = None) -> Path:
    """A solid-colour image with a little noise."""
    rgb = COLOURS[colour] if isinstance(colour, str) else colour
    rng = np.random.default_rng(seed)
    arr = np.clip(np.asarray(rgb)[None, None, :] + rng.integers(-12, 13, (size[1], size[0], 3)),
                  0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def truncated_jpeg(path: Path) -> Path:
    buf = io.BytesIO()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(buf, "JPEG", quality=95)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def bad_files(folder: Path) -> dict[str, str]:
    """The three classic broken files; returns path -> regex the reason must match."""
    folder.mkdir(parents=True, exist_ok=True)
    trunc = truncated_jpeg(folder / "cut.jpg")
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    text = folder / "notes.jpg"
    text.write_text("not a picture\n")
    return {str(trunc): "truncated", str(empty): "empty", str(text): "not an image"}
