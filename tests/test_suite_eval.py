"""tools/suite_eval.py: a row that changes its learner's settings (no suite run)."""
from __future__ import annotations

from pathlib import Path

import pytest

from app.core.checkpoints import load_checkpoint
from tools.suite_eval import _variant

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


def test_a_variant_row_changes_the_setting_in_every_member_and_nothing_else():
    model, _ = load_checkpoint(PRETRAINED / "photo-mobilenetv2-lite1")
    assert _variant(model, "folder-two") == "folder-two"
    base = model.learner("folder-two").config()
    key = _variant(model, "folder-two[kappa=1.3,knn=7]")
    changed = model.learner(key).config()
    assert key != "folder-two" and model.learner("folder-two").config() == base
    for before, after in zip(base["members"], changed["members"]):
        assert after["kappa"] == pytest.approx(1.3) and after["knn"] == 7
        assert {k: v for k, v in after.items() if k not in ("kappa", "knn")} == \
            {k: v for k, v in before.items() if k not in ("kappa", "knn")}
    with pytest.raises(SystemExit, match="none of"):
        _variant(model, "centroid[kappa=2]")


def test_a_variant_row_sets_a_setting_that_a_config_leaves_out_at_its_default():
    model, _ = load_checkpoint(PRETRAINED / "photo-mobilenetv2-lite1")
    members = model.learner("folder-two").config()["members"]
    assert ["centre" in m for m in members] == [False, True]  # "folder", the default, unshown
    key = _variant(model, 'folder-two[centre="none"]')
    assert [m.get("centre") for m in model.learner(key).config()["members"]] == ["none", "none"]
