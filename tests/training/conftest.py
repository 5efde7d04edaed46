"""Tiny generated class-folder datasets for the training/evaluation tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_dataset(root: Path, classes: dict[str, int], size: int = 28, seed: int = 0) -> Path:
    """``classes`` maps a relative leaf path ("alpha/char1") to its number of images.
    Each class is a distinct bar pattern plus noise, so it is learnable."""
    rng = np.random.default_rng(seed)
    for c, (name, n) in enumerate(sorted(classes.items())):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        base = np.zeros((size, size), np.float32)
        band = size // max(len(classes), 1)
        if c % 2 == 0:
            base[(c * band) % size:(c * band) % size + band, :] = 1.0
        else:
            base[:, (c * band) % size:(c * band) % size + band] = 1.0
        for i in range(n):
            img = np.clip(base + rng.normal(0, 0.15, base.shape), 0, 1)
            Image.fromarray((img * 255).astype(np.uint8), "L").save(d / f"img{i:02d}.png")
    return root


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """8 classes in two "alphabets" (nested leaves) with 6 images each, plus one class
    with only 2 images."""
    classes = {f"alpha{a}/char{c}": 6 for a in range(2) for c in range(4)}
    classes["alpha1/small"] = 2
    return make_dataset(tmp_path / "data", classes)


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("FEWSHOT_CACHE_DIR", str(d))
    return d
