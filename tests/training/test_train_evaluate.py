"""End-to-end ``python -m app train`` / ``evaluate`` on tiny generated data (seconds)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from app.cli import main
from app.core.cache import EmbeddingCache
from app.core.checkpoints import load_checkpoint, read_card


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def train(data: Path, out: Path, *extra: str) -> int:
    return main(["train", "--data", str(data), "--out", str(out), "--device", "cpu",
                 "--way", "3", "--shot", "2", "--query", "2", "--val-classes", "3",
                 "--val-way", "3", "--val-shot", "1", "--val-query", "2",
                 "--val-episodes", "4", "--quiet", *extra])


def evaluate_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["evaluate", "--json", "--quiet", "--device", "cpu", *args]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return json.loads(out[0])


def test_protonet_train_resume_and_evaluate(tiny_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m" / "proto"
    assert train(tiny_data, out, "--method", "protonet", "--episodes", "4",
                 "--val-every", "2") == 0
    card = read_card(out)
    assert card["method"] == "protonet"
    assert card["training"]["episodes_done"] == 4
    assert card["training"]["validation_classes"] == 3
    assert card["hyperparameters"]["way"] == 3
    assert card["architecture"]["input"]["size"] == [28, 28]
    assert 0.0 <= card["training"]["best_validation_accuracy"] <= 1.0
    state = Path(str(out) + ".state.pt")
    assert state.is_file()
    # a second run refuses to clobber the interrupted state without --resume
    capsys.readouterr()
    assert train(tiny_data, out, "--method", "protonet", "--episodes", "6") == 2
    assert "--resume" in capsys.readouterr().err
    assert train(tiny_data, out, "--method", "protonet", "--episodes", "6", "--val-every", "2",
                 "--resume") == 0
    assert "resumed from" in capsys.readouterr().err
    card = read_card(out)
    assert card["training"]["episodes_done"] == 6
    assert [h["step"] for h in card["training"]["history"]] == [2, 4, 6]

    result = evaluate_json(capsys, "--model", str(out), "--data", str(tiny_data), "--way", "4",
                           "--shot", "1", "--query", "3", "--episodes", "12", "--seed", "5")
    for key in ("accuracy", "ci95", "way", "shot", "query", "episodes", "seed", "model", "data",
                "method"):
        assert key in result
    assert (result["way"], result["shot"], result["query"], result["episodes"], result["seed"]) \
        == (4, 1, 3, 12, 5)
    assert result["method"] == "protonet"
    assert 0.0 <= result["accuracy"] <= 1.0 and result["ci95"] >= 0.0
    assert result["classes"] == 8 and result["skipped_classes"] == 1
    again = evaluate_json(capsys, "--model", str(out), "--data", str(tiny_data), "--way", "4",
                          "--shot", "1", "--query", "3", "--episodes", "12", "--seed", "5",
                          "--record")
    assert again["accuracy"] == result["accuracy"]
    evaluate_json(capsys, "--model", str(out), "--data", str(tiny_data), "--way", "4",
                  "--shot", "1", "--query", "3", "--episodes", "12", "--seed", "5", "--record")
    table = read_card(out)["accuracy"]
    assert len(table) == 1  # the same setting is replaced, not duplicated
    assert (table[0]["way"], table[0]["shot"], table[0]["accuracy"]) == (4, 1, result["accuracy"])
    load_checkpoint(out)  # the weights still match the card


def test_evaluate_reports_skips_and_too_many_ways(tiny_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "proto"
    assert train(tiny_data, out, "--method", "protonet", "--episodes", "1") == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), "--data", str(tiny_data), "--way", "9",
                 "--shot", "1", "--query", "2", "--episodes", "3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "warning" in err and "alpha1/small" in err
    assert "9-way" in err and "only 8 usable classes" in err
    assert main(["evaluate", "--model", str(out), "--data", str(tiny_data), "--way", "3",
                 "--shot", "1", "--query", "2", "--episodes", "3"]) == 0
    text = capsys.readouterr().out
    assert "3-way 1-shot" in text and "95% CI" in text
    # --way all: every usable class at once (with --pool rest: the whole folder labelled)
    assert main(["evaluate", "--model", str(out), "--data", str(tiny_data), "--way", "all",
                 "--shot", "1", "--pool", "rest", "--episodes", "2", "--json", "--quiet"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["way"], got["pool"]) == (9, "rest")  # alpha1/small's 2 images now suffice
    with pytest.raises(SystemExit):
        main(["evaluate", "--model", str(out), "--data", str(tiny_data), "--way", "most",
              "--shot", "1", "--episodes", "2"])
    assert "expected a number or 'all', not 'most'" in capsys.readouterr().err


def test_full_network_maml_trains_and_evaluates(tiny_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "maml"
    assert train(tiny_data, out, "--method", "maml", "--episodes", "2", "--meta-batch", "2",
                 "--val-every", "1", "--test-inner-steps", "1,2") == 0
    model, card = load_checkpoint(out)
    assert card["architecture"]["backbone"]["name"] == "identity"
    assert card["architecture"]["learners"]["maml"]["adapt"] == "all"
    chosen = card["hyperparameters"]["test_inner_steps"]["chosen"]
    assert model.learner("maml").inner_steps == chosen in (1, 2)
    result = evaluate_json(capsys, "--model", str(out), "--data", str(tiny_data), "--way", "5",
                           "--shot", "1", "--query", "2", "--episodes", "4", "--rotations",
                           "--inner-steps", "3")
    assert result["method"] == "maml" and result["inner_steps"] == 3
    assert result["classes"] == 32  # 8 usable folders x 4 rotations


def test_frozen_backbone_trains_on_cached_features_and_init_adds_a_learner(
        tiny_data: Path, tmp_path: Path, capsys, _cache_dir: Path) -> None:
    out = tmp_path / "photo"
    assert train(tiny_data, out, "--method", "protonet", "--backbone", "mobilenetv2",
                 "--image-size", "72", "--freeze-backbone", "--episodes", "3",
                 "--val-every", "3") == 0
    model, card = load_checkpoint(out)
    neck = model.learner("protonet").neck
    assert neck.mean.abs().sum() > 0  # centering mean set from the training features
    with EmbeddingCache() as cache:
        assert cache.count() > 0  # features came through the persistent cache
    out2 = tmp_path / "photo2"
    assert train(tiny_data, out2, "--method", "maml", "--init", str(out), "--head-init", "proto",
                 "--episodes", "2", "--val-every", "2") == 0
    model2, card2 = load_checkpoint(out2)
    assert sorted(model2.methods) == ["maml", "protonet"]
    assert model2.learner("maml").adapt == "head"
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, model2.backbone.state_dict()[k])
    for k, v in model.learner("protonet").state_dict().items():
        assert torch.equal(v, model2.learner("protonet").state_dict()[k])
    for method in ("protonet", "maml"):
        r = evaluate_json(capsys, "--model", str(out2), "--data", str(tiny_data), "--way", "3",
                          "--shot", "1", "--query", "2", "--episodes", "3", "--method", method)
        assert r["method"] == method


def test_evaluate_realistic_pools_with_a_folder_aware_learner(tiny_data: Path, tmp_path: Path,
                                                             capsys) -> None:
    """A weightless learner added to a trained checkpoint (tools/add_learner.py's way) runs
    under every pool protocol; the JSON says which, and --record keeps them apart."""
    import subprocess
    import sys

    out = tmp_path / "m" / "proto"
    assert train(tiny_data, out, "--method", "protonet", "--episodes", "2") == 0
    repo = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, str(repo / "tools" / "add_learner.py"), str(out), "folder",
                    '{"method": "folder", "knn": 3}'], check=True, capture_output=True)
    common = ["--model", str(out), "--data", str(tiny_data), "--way", "3", "--shot", "1",
              "--query", "3", "--episodes", "6", "--method", "folder", "--record"]
    runs = {pool: evaluate_json(capsys, *common, "--pool", pool) for pool in ("balanced", "dirichlet", "rest")}
    noisy = evaluate_json(capsys, *common, "--pool", "rest", "--distractors", "4")
    uneven = evaluate_json(capsys, *common, "--pool", "rest", "--shot", "3", "--examples", "uneven")
    for pool, r in runs.items():
        assert r["pool"] == pool and r["method"] == "folder" and 0.0 <= r["accuracy"] <= 1.0
    assert runs["dirichlet"]["dirichlet_alpha"] == 2.0 and noisy["distractors"] == 4
    assert uneven["examples"] == "uneven" and runs["rest"]["examples"] == "even"
    table = read_card(out)["accuracy"]
    assert sorted((e.get("pool", "balanced"), e.get("distractors", 0), e.get("examples", "even"))
                  for e in table if e["method"] == "folder") == [
        ("balanced", 0, "even"), ("dirichlet", 0, "even"), ("rest", 0, "even"), ("rest", 0, "uneven"),
        ("rest", 4, "even")]


def test_train_refuses_bad_shot_and_pool_lists_with_a_clear_message(tiny_data: Path, tmp_path: Path,
                                                             capsys) -> None:
    for bad in ("0", "1,x", ","):
        assert main(["train", "--method", "folder", "--data", str(tiny_data), "--way", "3",
                     "--shot", bad, "--episodes", "1", "--pool", "dirichlet",
                     "--out", str(tmp_path / "m"), "--quiet"]) == 2
        assert f"--shot {bad!r}: expected a positive number, or several like 1,5" in capsys.readouterr().err
    assert main(["train", "--method", "folder", "--data", str(tiny_data), "--way", "3",
                 "--shot", "1,5", "--episodes", "1", "--pool", "dirichlet,everything",
                 "--out", str(tmp_path / "m"), "--quiet"]) == 2
    assert "--pool 'dirichlet,everything': expected balanced, dirichlet, rest" in capsys.readouterr().err
