"""The shipped Omniglot ProtoNet reproduces its card's 5-way 1-shot accuracy on ../shared/data."""
from __future__ import annotations

import json
import math

import pytest
import torch

from app.cli import main
from app.core.checkpoints import read_card
from tests.conftest import REPO, shared_data

MODEL = REPO / "pretrained" / "omniglot-protonet-conv4"


def test_shipped_protonet_matches_its_card_5way_1shot(capsys) -> None:
    data = shared_data("omniglot")
    if not MODEL.with_suffix(".json").is_file():
        pytest.skip(f"{MODEL}.json is not shipped in this checkout")
    card = read_card(MODEL)
    rows = [r for r in card.get("accuracy", [])
            if (r["way"], r["shot"], r.get("subset"), r.get("class_split"), r.get("rotations"))
            == (5, 1, "test", 1200, True)]
    assert rows, "the card reports no 5-way 1-shot accuracy on the Omniglot test classes"
    ref = rows[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        capsys.readouterr()
        rc = main(["evaluate", "--model", str(MODEL), "--data", str(data), "--rotations",
                   "--class-split", str(ref["class_split"]), "--subset", "test",
                   "--split-seed", str(ref["split_seed"]), "--way", "5", "--shot", "1",
                   "--query", str(ref["query"]), "--episodes", "200", "--seed", "1",
                   "--device", "cpu", "--json", "--quiet"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    got = json.loads(capsys.readouterr().out)
    tolerance = got["ci95"] + ref["ci95"]  # both estimates' 95% intervals
    assert math.isfinite(got["accuracy"])
    assert abs(got["accuracy"] - ref["accuracy"]) <= tolerance, (got, ref)
