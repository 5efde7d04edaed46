"""The ensemble learner (a product of experts) on small generated features."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from app.core.backbones import Identity
from app.core.learners import LEARNERS, Ensemble, FolderPool, FolderProtoNet, ProtoNet, build_learner
from app.core.model import FewShotModel, InputSpec
from app.core.scoring import fit as score_fit

from .test_folder_learner import D, clusters

CENTRED, UNCENTRED = {"method": "folder", "knn": 5}, {"method": "folder", "knn": 5, "centre": "none"}


def _mean_log_softmax(*probas):
    return torch.softmax(torch.stack([p.log() for p in probas]).mean(0), -1)


def test_registered_and_rebuilt_from_its_config_with_what_its_members_do():
    ens = Ensemble([CENTRED, UNCENTRED], label="Two views")
    assert LEARNERS["ensemble"] is Ensemble and "ensemble" not in LEARNERS["folder"].method
    assert ens.capabilities.reads_pool and not ens.capabilities.trainable
    again = build_learner(ens.config())
    assert again.config() == ens.config() and again.label == "Two views"
    assert [m.centre for m in again.members] == ["folder", "none"]
    inductive = Ensemble([{"method": "protonet"}, {"method": "protonet", "neck": None}])
    assert not inductive.capabilities.reads_pool
    with pytest.raises(ValueError, match="at least two"):
        Ensemble([CENTRED])
    with pytest.raises(ValueError, match="all read the folder, or none"):
        Ensemble([CENTRED, {"method": "protonet"}])


def test_the_folder_labels_are_the_members_product_of_experts():
    support, ys, pool, labels = clusters((120, 30, 10), seed=4)
    ens = Ensemble([CENTRED, UNCENTRED]).eval()
    got = ens.fit(support, ys, pool=pool)
    a, b = (FolderProtoNet(**{k: v for k, v in c.items() if k != "method"}).eval()
            .fit(support, ys, pool=FolderPool(pool)).pool_proba for c in (CENTRED, UNCENTRED))
    assert not torch.equal(a.argmax(1), b.argmax(1)) or not torch.allclose(a, b)  # two views
    assert torch.allclose(got.pool_proba, _mean_log_softmax(a, b), atol=1e-6)
    assert torch.allclose(got.pool_proba.sum(1), torch.ones(len(pool)))
    # images outside the folder: the mean of the members' log-probabilities (up to a
    # per-row constant)
    members = [m.fit(support, ys, pool=FolderPool(pool)) for m in ens.members]
    q = pool[:7]
    want = torch.stack([torch.log_softmax(m.logits(q), -1) for m in members]).mean(0)
    assert torch.allclose(got.logits(q).log_softmax(-1), want.log_softmax(-1), atol=1e-6)
    # an ensemble of one learner twice labels as that learner does
    twice = Ensemble([CENTRED, CENTRED]).eval().fit(support, ys, pool=pool).pool_proba
    assert torch.equal(twice.argmax(1), a.argmax(1))


def test_members_with_the_same_settings_derive_the_folder_once_and_prepare_reads_all():
    support, ys, pool, _ = clusters((40, 30, 20), seed=5)
    fp = FolderPool(pool)
    Ensemble([CENTRED, CENTRED]).fit(support, ys, pool=fp)
    one = FolderPool(pool)
    FolderProtoNet(knn=5).fit(support, ys, pool=one)
    assert fp._derived.keys() == one._derived.keys()  # the second member derived nothing
    ens = Ensemble([CENTRED, UNCENTRED])
    fp = FolderPool(pool)
    ens.prepare(fp)
    assert fp.complete and {k[:2] for k in fp._derived if k[0] == "graph"} == {
        ("graph", "folder"), ("graph", "none")}
    derived = dict(fp._derived)
    ens.fit(support, ys, pool=fp)
    assert all(fp._derived[k] is v for k, v in derived.items())


def test_a_cancelled_read_leaves_the_folder_unread():
    from app.core.errors import Cancelled

    _, _, pool, _ = clusters((40, 30, 20), seed=5)
    fp = FolderPool(pool)
    ens = Ensemble([CENTRED, UNCENTRED])

    class Stop(FolderProtoNet):
        def prepare(self, pool):  # noqa: ANN001
            raise Cancelled()
    ens.members[1] = Stop()
    with pytest.raises(Cancelled):
        ens.prepare(fp)
    assert not fp.complete


def test_a_model_with_an_ensemble_scores_through_the_one_interface(tmp_path):
    from app.core.checkpoints import load_checkpoint, save_checkpoint

    support, ys, pool, labels = clusters((60, 25, 10), seed=2)
    spec = InputSpec(size=(1, D), channels=1, mean=(0.0,), std=(1.0,), resize="stretch")
    model = FewShotModel(Identity((1, 1, D)), {"two": Ensemble([CENTRED, UNCENTRED]),
                                                "centroid": ProtoNet()}, spec, default_method="two")
    save_checkpoint(model, tmp_path / "m")
    loaded, card = load_checkpoint(tmp_path / "m")
    assert card["architecture"]["learners"]["two"]["members"][1]["centre"] == "none"
    adapted = score_fit(loaded, "", support.numpy(), ys.numpy(), pool=FolderPool(pool))
    inductive = score_fit(loaded, "", support.numpy(), ys.numpy())
    assert adapted.pool_proba.shape == (len(pool), 3)
    acc = lambda p: float((p.argmax(1) == labels).float().mean())  # noqa: E731
    assert acc(adapted.pool_proba) > acc(inductive.logits(pool))  # the folder helps here
    assert np.isfinite(adapted.pool_proba.numpy()).all()
