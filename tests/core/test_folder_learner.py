"""The folder-aware learner on small generated features (no training, no shipped data)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from app.core.backbones import Identity
from app.core.learners import LEARNERS, FolderPool, FolderProtoNet, ProtoNet, build_learner
from app.core.learners.base import config_keys
from app.core.errors import Cancelled
from app.core.model import FewShotModel, InputSpec
from app.core.session import Session

D = 32


def clusters(sizes, seed=0, spread=0.6, distractors=0):
    """Non-negative features (like pooled ReLU activations): one Gaussian blob per class,
    uneven class sizes; the examples are each class's *least typical* member, so examples
    alone give poor prototypes and the folder must help. Optional off-class distractors."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, (len(sizes), D)) * 2
    feats, labels, support = [], [], []
    for k, n in enumerate(sizes):
        x = centres[k] + spread * rng.normal(size=(n, D))
        far = np.argmax(np.linalg.norm(x - centres[k], axis=1))
        support.append(x[far])
        feats.append(np.delete(x, far, axis=0))
        labels += [k] * (n - 1)
    if distractors:
        feats.append(rng.uniform(0, 2, (distractors, D)) + 2 * spread * rng.normal(size=(distractors, D)))
        labels += [-1] * distractors
    t = lambda a: torch.tensor(np.abs(np.concatenate(a) if isinstance(a, list) else a), dtype=torch.float32)
    return t(np.stack(support)), torch.arange(len(sizes)), t(feats), torch.tensor(labels)


def accuracy(pred, labels):
    keep = labels >= 0
    return (pred[keep] == labels[keep]).float().mean().item()


def inductive(support, ys, pool):
    return ProtoNet().fit(support, ys).logits(pool).argmax(1)


def test_registered_with_capabilities_and_rebuilt_from_its_config():
    learner = FolderProtoNet(lam=0.4, knn=7, label="Mine")
    assert LEARNERS["folder"] is FolderProtoNet
    assert learner.capabilities.reads_pool and learner.capabilities.trainable
    again = build_learner(learner.config())
    assert again.config() == learner.config() and again.label == "Mine"
    assert again.config()["lam"] == 0.4  # the card's value, not float32 noise
    # the meta-learned scalars are the card's: none goes into the weights file
    assert {n for n, _ in again.named_parameters()} == set(FolderProtoNet.config_parameters)
    assert not config_keys(again) ^ set(again.state_dict())


@pytest.mark.parametrize("sizes", [(40, 40, 40), (150, 12, 40, 6)])
def test_reading_the_folder_beats_the_examples_alone_with_uneven_classes(sizes):
    wins = []
    for seed in range(5):
        s, ys, pool, yq = clusters(sizes, seed=seed)
        adapted = FolderProtoNet().fit(s, ys, pool=pool)
        assert adapted.pool_proba.shape == (len(pool), len(sizes))
        assert torch.allclose(adapted.pool_proba.sum(1), torch.ones(len(pool)), atol=1e-5)
        wins.append(accuracy(adapted.pool_proba.argmax(1), yq) - accuracy(inductive(s, ys, pool), yq))
    assert np.mean(wins) > 0.05, wins


def test_images_of_no_class_do_not_break_it():
    s, ys, pool, yq = clusters((60, 30, 10), seed=3, distractors=40)
    folder = FolderProtoNet().fit(s, ys, pool=pool).pool_proba.argmax(1)
    assert accuracy(folder, yq) >= accuracy(inductive(s, ys, pool), yq) - 0.02


def test_deterministic_and_same_with_a_subset_of_anchors_path():
    s, ys, pool, _ = clusters((80, 50, 30), seed=1)
    a = FolderProtoNet().fit(s, ys, pool=pool).pool_proba
    b = FolderProtoNet().fit(s, ys, pool=FolderPool(pool.clone())).pool_proba
    assert torch.equal(a, b)
    # a folder larger than max_anchors: neighbours among a seeded subset; still sensible
    small = FolderProtoNet(max_anchors=40, proj_dim=8)
    small.full_rows = 0  # the large-folder path: compact space, anchors a subset
    p1 = small.fit(s, ys, pool=pool).pool_proba
    p2 = small.fit(s, ys, pool=pool).pool_proba
    assert torch.equal(p1, p2) and p1.shape == a.shape
    assert (p1.argmax(1) == a.argmax(1)).float().mean() > 0.8


def test_pool_work_is_kept_between_fits_and_cancel_stops_it():
    s, ys, pool, _ = clusters((30, 30), seed=2)
    fp = FolderPool(pool)
    learner = FolderProtoNet()
    learner.fit(s, ys, pool=fp)
    derived = dict(fp._derived)
    assert derived and fp.complete
    learner.fit(s[:1].repeat(2, 1) * 1.01, torch.tensor([0, 1]), pool=fp)  # other examples
    assert fp._derived.keys() == derived.keys()
    assert all(fp._derived[k] is v for k, v in derived.items())  # nothing derived again
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        learner.fit(s, ys, pool=FolderPool(pool, cancel=ev))


def test_without_a_pool_it_is_an_inductive_learner():
    s, ys, pool, _ = clusters((20, 20), seed=4)
    adapted = FolderProtoNet().fit(s, ys)
    assert adapted.logits(pool).shape == (len(pool), 2)


def test_session_gives_the_quick_result_first_then_the_folder_aware_one():
    sizes = (60, 20, 8)
    s_feats, ys, pool, yq = clusters(sizes, seed=5)
    model = FewShotModel(Identity((D,)), {"protonet": ProtoNet(), "folder": FolderProtoNet()},
                         InputSpec(size=(4, 8), channels=1, mean=(0.0,), std=(1.0,), resize="stretch"),
                         default_method="folder")
    session = Session()
    ids = [session.add_class(f"c{k}").id for k in range(len(sizes))]
    paths = [f"/f/img{i:03}.png" for i in range(len(pool))]
    ex = [f"/ex/{k}.png" for k in range(len(sizes))]
    session.set_folder("/f", paths)
    for k in range(len(sizes)):
        session.add_examples(ids[k], [ex[k]])
    session.add_features(ex + paths, np.concatenate([s_feats.numpy(), pool.numpy()]))
    job = session.make_score_job()
    assert not job.folder_read
    seen = []
    outcome = job.run(model, threading.Event(), partial=seen.append)
    assert len(seen) == 1 and not seen[0].final and outcome.final
    assert session.apply_scores(seen[0]) is False or session.scores_stale
    assert session.apply_scores(outcome)
    cls, _ = session.prediction_arrays()
    truth = np.asarray(ids)[yq.numpy()]
    quick = np.asarray(ids)[seen[0].labels]
    assert (cls == truth).mean() > (quick == truth).mean()
    # each image's label and confidence: the top class of the pool's probabilities
    top = outcome.adapted.pool_proba.max(dim=1)
    assert np.array_equal(outcome.labels, top.indices.numpy())
    assert np.allclose(outcome.confidences, top.values.numpy(), atol=1e-6)
    # the same folder: the next job reuses the folder's derived data
    job2 = session.make_score_job()
    assert job2.pool_key == job.pool_key and job2.pool_cache is job.pool_cache
    assert job2.folder_read  # (the window says "learning from the folder", not "reading")
    # while the folder is still being embedded, only the quick pass runs
    assert session.make_score_job(refine=False).run(model).final
    # the synchronous path used by `classify` reads the folder too: same labels as the app
    assert session.rescore(model)
    assert np.array_equal(session.prediction_arrays()[0], cls)


def _support_loss(learner, adapted, support, ys):
    import torch.nn.functional as F

    from app.core.learners.folder import _score

    z = learner.project(support, adapted.mean, adapted.basis)
    return F.cross_entropy(learner.tau * _score(z, adapted.prototypes, adapted.perp), ys).item()


def _three_shot(seed=0):
    """Three examples a class from overlapping clusters, and a pool."""
    s1, y1, pool, labels = clusters((60, 60, 60), seed=seed, spread=1.2)
    s2, _, _, _ = clusters((60, 60, 60), seed=seed + 1, spread=1.2)
    s3, _, _, _ = clusters((60, 60, 60), seed=seed + 2, spread=1.2)
    return torch.cat([s1, s2, s3]), torch.cat([y1, y1, y1]), pool


def test_gradient_steps_fit_the_examples_better_than_the_anchored_prototypes():
    support, ys, pool = _three_shot()
    plain, head = FolderProtoNet(knn=3), FolderProtoNet(knn=3, head_steps=50)
    a0, a1 = plain.fit(support, ys, 3, pool=pool), head.fit(support, ys, 3, pool=pool)
    assert _support_loss(head, a1, support, ys) < _support_loss(plain, a0, support, ys) - 1e-3
    again = FolderProtoNet(knn=3, head_steps=50).fit(support, ys, 3, pool=pool)
    assert torch.equal(again.prototypes, a1.prototypes)  # deterministic
    assert torch.allclose(a1.pool_proba.sum(1), torch.ones(len(pool)), atol=1e-5)


def test_no_gradient_steps_with_one_example_a_class():
    support, ys, pool, _ = clusters((40, 30, 20))
    a0 = FolderProtoNet(knn=3).fit(support, ys, 3, pool=pool)
    a1 = FolderProtoNet(knn=3, head_steps=50).fit(support, ys, 3, pool=pool)
    assert torch.equal(a0.prototypes, a1.prototypes)


def test_a_gradient_step_is_the_autograd_step_and_stays_differentiable():
    """The head's closed-form gradient: one step from the prototypes equals the step that
    autograd's gradient of the examples' cross-entropy gives, and in training mode the
    stepped prototypes carry gradients to the step size and the temperature."""
    import torch.nn.functional as F

    from app.core.learners.folder import _score

    support, ys, _ = _three_shot(seed=2)
    torch.manual_seed(0)
    w0, perp = torch.randn(3, D) * 0.1, torch.rand(3) * 0.1
    learner = FolderProtoNet(head_steps=1, head_lr=0.005, tau=4.0)
    with torch.no_grad():
        stepped = learner._head(w0, perp, support, ys, torch.bincount(ys).float(), learner.tau)
    w = w0.clone().requires_grad_(True)
    loss = F.cross_entropy(learner.tau.detach() * _score(support, w, perp), ys)
    (grad,) = torch.autograd.grad(loss, w)
    assert not torch.equal(stepped, w0)
    torch.testing.assert_close(stepped, w0 - 0.005 * grad, rtol=1e-5, atol=1e-6)
    learner.train()
    learner._head(w0, perp, support, ys, torch.bincount(ys).float(), learner.tau).square().sum().backward()
    assert learner.log_head_lr.grad != 0 and learner.log_tau.grad != 0


def test_a_step_size_far_too_large_is_halved_and_never_raises_the_loss():
    support, ys, pool = _three_shot(seed=3)
    plain = FolderProtoNet(knn=3)
    wild = FolderProtoNet(knn=3, head_steps=20, head_lr=1e4)
    before = _support_loss(plain, plain.fit(support, ys, 3, pool=pool), support, ys)
    adapted = wild.fit(support, ys, 3, pool=pool)
    after = _support_loss(wild, adapted, support, ys)
    assert np.isfinite(after) and after <= before + 1e-6
    assert torch.isfinite(adapted.prototypes).all()


def test_meta_parameters_get_gradients_in_training_and_nothing_is_recorded_in_eval():
    """``train --method folder``: the episode loss back-propagates (through the anchoring,
    the head's gradient steps and the smoothing) into every meta-learned scalar."""
    support, ys, pool = _three_shot(seed=1)
    _, _, _, labels = clusters((60, 60, 60), seed=1, spread=1.2)
    learner = FolderProtoNet(knn=3, head_steps=10, gamma=0.5, support_edges=True).train()
    loss, logp = learner.loss(support, ys, pool, labels, 3)
    assert logp.shape == (len(pool), 3) and torch.isfinite(loss)
    loss.backward()
    grads = {n: p.grad for n, p in learner.named_parameters()}
    assert set(grads) == set(FolderProtoNet.config_parameters)
    assert all(g is not None and torch.isfinite(g) and g != 0 for g in grads.values()), grads
    learner.eval()
    with torch.enable_grad():
        assert not learner.fit(support, ys, 3, pool=pool).pool_proba.requires_grad


def test_a_checkpoint_keeps_the_meta_parameters_in_its_card_not_its_weights(tmp_path):
    from safetensors import safe_open

    from app.core.checkpoints import load_checkpoint, save_checkpoint

    learner = FolderProtoNet(knn=3)
    with torch.no_grad():  # as if meta-trained
        learner.log_tau.fill_(np.log(7.25))
        learner.gamma_.fill_(0.125)
    spec = InputSpec(size=(1, D), channels=1, mean=(0.0,), std=(1.0,), resize="stretch")
    save_checkpoint(FewShotModel(Identity((1, 1, D)), {"folder": learner}, spec), tmp_path / "m")
    with safe_open(str(tmp_path / "m.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if k.startswith("learners.folder.")]
    loaded, card = load_checkpoint(tmp_path / "m")
    cfg = card["architecture"]["learners"]["folder"]
    assert (cfg["tau"], cfg["gamma"]) == (7.25, 0.125)
    assert loaded.learner("folder").config() == learner.config()


def test_the_in_place_folder_space_equals_the_differentiable_one():
    """The no-gradient path transforms in place (one copy, no page-fault-bound temporaries);
    features that carry gradients take the out-of-place path, with the same values."""
    learner = FolderProtoNet(beta=0.5)
    x = torch.rand(50, D) - 0.2  # some negative entries: clamped before the power
    mean = torch.rand(D) * 0.05
    keep = x.clone()
    fast = learner.transform(x, mean)
    assert torch.equal(x, keep)  # the caller's features are untouched
    xg = x.clone().requires_grad_(True)
    slow = learner.transform(xg, mean)
    slow.sum().backward()
    assert torch.allclose(fast, slow.detach(), atol=1e-6) and xg.grad is not None


@pytest.mark.parametrize("project", [False, True])
def test_the_in_place_pool_scores_equal_the_differentiable_ones(project):
    """Without autograd the pool's scores are changed in place (at 100,000 images each new
    (images, classes) buffer costs its page faults); with it (meta-training) out of place:
    the same scores, on both the exact and the compact large-folder path."""
    s, ys, pool, _ = clusters((60, 40, 25), seed=7)
    learner = FolderProtoNet(max_anchors=50, proj_dim=8, knn=5, support_edges=True, whiten=0.5,
                             whiten_min=10)
    if project:
        learner.full_rows = 0
    with torch.no_grad():
        fast = learner.fit(s, ys, pool=FolderPool(pool)).pool_logits
    with torch.enable_grad():
        slow = learner.train().fit(s, ys, pool=FolderPool(pool)).pool_logits
    assert slow.requires_grad and not fast.requires_grad
    assert torch.allclose(fast, slow.detach(), atol=1e-4)


def test_pool_means_over_a_seeded_subset_of_anchors():
    """``mix_anchors``: the prototypes' pool means are taken over that many anchors (a
    seeded subset, the same at every fit) when a folder has more; fewer: all of them."""
    s, ys, pool, labels = clusters((90, 60, 30), seed=2)
    full = FolderProtoNet().fit(s, ys, pool=pool).pool_proba
    few = FolderProtoNet(mix_anchors=60)
    fp = FolderPool(pool)
    a = few.fit(s, ys, pool=fp).pool_proba
    assert torch.equal(a, few.fit(s, ys, pool=fp).pool_proba)
    assert not torch.equal(a, full)
    assert accuracy(a.argmax(1), labels) >= accuracy(full.argmax(1), labels) - 0.05
    assert torch.equal(FolderProtoNet(mix_anchors=len(pool)).fit(s, ys, pool=pool).pool_proba, full)
    again = build_learner(few.config())
    assert again.mix_anchors == 60 and "mix_anchors" not in FolderProtoNet().config()


def test_prepare_derives_what_a_fit_reads_so_the_first_fit_derives_nothing():
    s, ys, pool, _ = clusters((40, 25, 10), seed=8)
    learner = FolderProtoNet(max_anchors=30, proj_dim=8)
    learner.full_rows = 0  # the large-folder path (anchors, axes) on a small pool
    fp = FolderPool(pool)
    learner.prepare(fp)
    assert fp.complete
    derived = dict(fp._derived)
    a = learner.fit(s, ys, pool=fp).pool_proba
    assert all(fp._derived[k] is v for k, v in derived.items()) and fp._derived.keys() == derived.keys()
    assert torch.equal(a, learner.fit(s, ys, pool=FolderPool(pool)).pool_proba)  # same labels
    # neighbours by class size: only the graph's edges for the fit's class count are new
    scaled = FolderProtoNet(max_anchors=30, proj_dim=8, knn=10, knn_scale=1.2)
    scaled.full_rows = 0
    fp = FolderPool(pool)
    scaled.prepare(fp)
    derived = dict(fp._derived)
    scaled.fit(s, ys, pool=fp)
    assert all(fp._derived[k] is v for k, v in derived.items())
    assert {k[0] for k in set(fp._derived) - set(derived)} == {"edges"}


def test_neighbours_follow_the_images_a_class_has():
    learner = FolderProtoNet(knn=10, knn_scale=1.2, knn_min=3)
    assert learner.neighbours_for(75, 5) == 5          # 15 images a class
    assert learner.neighbours_for(13180, 659) == 5     # 20 a class
    assert learner.neighbours_for(2427, 659) == 3      # 3.7 a class: at least knn_min
    assert learner.neighbours_for(2500, 10) == 10      # 250 a class: at most knn
    assert FolderProtoNet(knn=5).neighbours_for(2500, 10) == 5  # no scale: always knn
    rebuilt = build_learner(learner.config())
    assert rebuilt.neighbours_for(75, 5) == 5 and rebuilt.knn_scale == learner.knn_scale


def test_fewer_neighbours_use_the_first_of_the_same_search():
    s, ys, pool, _ = clusters((40, 40, 40), seed=9)
    fp = FolderPool(pool)
    big = FolderProtoNet(knn=10, knn_scale=0.6, knn_min=3)  # 40 a class: 4 neighbours
    got = big.fit(s, ys, pool=fp).pool_proba
    assert torch.equal(got, FolderProtoNet(knn=4).fit(s, ys, pool=FolderPool(pool)).pool_proba)


def test_the_neighbour_graph_is_the_symmetrised_knn_matrix():
    """``neighbour_graph`` + ``spread`` multiply by ``(W + W^T) / 2`` exactly: a mutual pair
    weighs 1, a one-way edge 0.5 both ways, an anchor nobody lists sums nothing."""
    from app.core.learners.folder import neighbour_graph, spread

    idx = torch.tensor([[1, 2], [0, 2], [1, 0], [0, 1], [0, 1]])  # anchor 4: listed by none
    w = torch.zeros(5, 5)
    w[torch.arange(5).repeat_interleave(2), idx.reshape(-1)] = 1.0
    y = torch.randn(5, 3)
    graph = neighbour_graph(idx, 5)
    torch.testing.assert_close(spread(graph, y), (w + w.T) / 2 @ y)
    assert float(graph.weights.max()) == 1.0 and float(graph.weights.min()) == 0.5
    lonely = neighbour_graph(torch.zeros(3, 0, dtype=torch.long), 3)  # no neighbours at all
    assert torch.equal(spread(lonely, y[:3]), torch.zeros(3, 3))


def _session_with_folder(n_classes, pool, extra=()):
    session = Session()
    paths = [f"/f/img{i:03}.png" for i in range(len(pool))]
    session.set_folder("/f", paths)
    session.add_features(paths, pool.numpy())
    ids = [session.add_class(f"c{k}").id for k in range(n_classes)]
    return session, ids, paths


@pytest.mark.parametrize("config", [
    {"method": "folder"},
    {"method": "ensemble", "members": [{"method": "folder"}, {"method": "folder", "centre": "none"}]}])
def test_the_session_reads_the_folder_before_the_examples(config):
    sizes = (50, 20, 8)
    s_feats, ys, pool, yq = clusters(sizes, seed=6)
    model = FewShotModel(Identity((D,)), {"folder": build_learner(config)},
                         InputSpec(size=(4, 8), channels=1, mean=(0.0,), std=(1.0,), resize="stretch"),
                         default_method="folder")
    session, ids, _ = _session_with_folder(len(sizes), pool)
    session.method = "folder"
    assert session.make_score_job() is None  # no examples yet
    fj = session.make_folder_job()
    fj.run(model)
    assert session.make_folder_job() is None  # read once
    # examples from outside the folder: their features add rows, the folder stays read
    ex = [f"/ex/{k}.png" for k in range(len(sizes))]
    session.add_features(ex, s_feats.numpy())
    for k in range(len(sizes)):
        session.add_examples(ids[k], [ex[k]])
    job = session.make_score_job()
    assert job.pool_key == fj.pool_key
    seen = []
    outcome = job.run(model, threading.Event(), partial=seen.append)
    # the folder read: first the learner's preview, one product of the folder's matrix, then
    # the folder-aware labels
    assert len(seen) == 1 and not seen[0].final and outcome.final
    quick = seen[0]
    view = model.learner("folder")
    view = view.members[0] if config["method"] == "ensemble" else view
    assert quick.adapted.learner is view and quick.adapted.pool_logits.shape == (len(pool), len(sizes))
    # ... which is each image's nearest class mean of the examples in the folder's space
    adapted = quick.adapted
    assert adapted.white is None  # (the space before any whitening)
    z = view.transform(pool, adapted.mean)
    means = view.transform(s_feats, adapted.mean)  # one example a class
    assert np.array_equal(quick.labels, torch.cdist(z, means).argmin(1).numpy())
    assert np.allclose(quick.confidences, adapted.pool_proba.max(1).values.numpy(), atol=1e-6)
    truth = yq.numpy()
    assert (outcome.labels == truth).mean() > (quick.labels == truth).mean()
    session.apply_scores(quick)
    assert session.scores_stale  # shown, with the folder-aware labels still to come
    assert session.apply_scores(outcome) and not session.scores_stale
    # the same labels as a session that read the folder with its examples
    other, ids2, _ = _session_with_folder(len(sizes), pool)
    other.method = "folder"
    other.add_features(ex, s_feats.numpy())
    for k in range(len(sizes)):
        other.add_examples(ids2[k], [ex[k]])
    assert np.array_equal(other.make_score_job().run(model).labels, outcome.labels)


@pytest.mark.parametrize("whiten", [0.0, 0.5])
@pytest.mark.parametrize("centre", FolderProtoNet.CENTRES)
def test_large_folder_space_the_leading_axes_and_one_product_projection(centre, whiten):
    _, _, pool, _ = clusters((300, 200, 100), seed=10)
    learner = FolderProtoNet(max_anchors=400, proj_dim=6, centre=centre, whiten=whiten, whiten_min=0)
    learner.full_rows = 0  # the large-folder path on a small pool
    fp = FolderPool(pool)
    mean = learner._mean(fp)
    pos, basis, white, zp = learner._space(fp, mean)
    assert len(pos) == 400 and basis.shape == (D, 6)
    # orthonormal axes that keep (almost) the variance of the 6 leading eigenvectors
    a = learner.transform(pool[pos], mean)
    cov = a.T @ a
    top = torch.linalg.eigh(cov).eigenvectors[:, -6:]
    assert torch.allclose(basis.T @ basis, torch.eye(6), atol=1e-5)
    kept, best = torch.trace(basis.T @ cov @ basis), torch.trace(top.T @ cov @ top)
    assert 0.99 * best <= kept <= best * (1 + 1e-5)
    assert kept > 2 * torch.trace(cov) * 6 / D  # far more than 6 random axes keep
    # the one-product projection (whitened or not) equals transforming then projecting
    assert torch.allclose(zp, learner.project(pool, mean, basis, white), atol=1e-5)
    assert (white is None) == (whiten == 0)
    if white is not None:  # the axes are the basis, their variances the covariance's
        assert white.axes is basis
        var = torch.diagonal(basis.T @ cov @ basis) / len(pos)
        scale = (var + learner.whiten_eps / D) ** (-whiten / 2)
        assert torch.allclose(white.lift + white.tail, scale, rtol=1e-3)
    if centre == "folder":
        assert torch.allclose(mean, learner._pre(pool[pos]).mean(0))  # the anchors' mean
    else:
        assert not mean.any()


@pytest.mark.parametrize("whiten", [0.0, 0.5])
@pytest.mark.parametrize("compact", [False, True])
def test_the_preview_is_the_nearest_class_mean_before_the_whitening(compact, whiten):
    support, ys, pool, labels = clusters((300, 200, 100), seed=11)
    support = torch.cat([support, pool[:2]])  # uneven counts: 3, 1, 1
    ys = torch.cat([ys, torch.tensor([0, 0])])
    learner = FolderProtoNet(max_anchors=400, proj_dim=6, whiten=whiten, whiten_min=0).eval()
    if compact:
        learner.full_rows = 0  # the large-folder path on a small pool
    fp = FolderPool(pool)
    learner.prepare(fp)
    quick = learner.preview(support, ys, 3, fp)
    mean, basis, white = quick.mean, quick.basis, learner._space(fp, quick.mean).white
    assert (basis is not None) == compact and (white is None) == (whiten == 0)
    assert quick.white is None  # late images are scored the same way
    # brute force: class means of the examples in the unwhitened folder space (projected on
    # the compact axes, the part outside them a per-class constant), less each mean's noise
    z, s = learner.transform(pool, mean), learner.transform(support, mean)
    p = torch.stack([s[ys == k].mean(0) for k in range(3)])
    z0, p0 = (z @ basis, p @ basis) if compact else (z, p)
    perp = (p * p).sum(1) - (p0 * p0).sum(1) - learner._noise(s, p, ys, torch.tensor([3.0, 1.0, 1.0]))
    want = -learner.tau * (torch.cdist(z0, p0) ** 2 + perp)
    torch.testing.assert_close(quick.pool_logits.softmax(1), want.softmax(1), atol=2e-4, rtol=0)
    torch.testing.assert_close(quick.logits(pool).softmax(1), want.softmax(1), atol=2e-4, rtol=0)
    # an inductive result: well above chance here, and below the folder-aware labels
    folder_aware = learner.fit(support, ys, 3, pool=fp).pool_logits.argmax(1)
    assert 0.5 < accuracy(quick.pool_logits.argmax(1), labels) <= accuracy(folder_aware, labels)


def test_a_sharper_temperature_only_above_tau_classes_classes():
    learner = FolderProtoNet(tau=4.0, tau_classes=10)
    assert float(learner.tau_for(5)) == float(learner.tau_for(10)) == pytest.approx(4.0)
    assert float(learner.tau_for(100)) == pytest.approx(8.0)  # 4 x ln 100 / ln 10
    assert float(FolderProtoNet(tau=4.0).tau_for(100)) == pytest.approx(4.0)  # off by default
    assert build_learner(learner.config()).tau_classes == 10
    assert "tau_classes" not in FolderProtoNet().config()
    support, ys, pool, _ = clusters((30,) * 12, seed=4)
    adapted = learner.fit(support, ys, 12, pool=pool)
    assert float(adapted.tau) == pytest.approx(4.0 * np.log(12) / np.log(10), rel=1e-5)
    assert torch.allclose(adapted.pool_proba.sum(1), torch.ones(len(pool)), atol=1e-5)


def test_the_compact_space_is_wider_for_smaller_folders():
    """``proj_dim`` axes from ``full_rows`` images on; smaller folders get more axes at the
    same images x axes, up to the features' dimension (then the fit is exact)."""
    learner = FolderProtoNet(max_anchors=400, proj_dim=6)
    assert learner.width(FolderProtoNet.full_rows, D) == 6 and learner.width(10**6, D) == 6
    assert learner.width(FolderProtoNet.full_rows // 2, D) == 12
    assert learner.width(1000, D) == D  # the shipped rule: small folders exact
    learner.full_rows = 400  # the large-folder path on a small pool
    assert learner.width(400, D) == 6 and learner.width(200, D) == 12 and learner.width(50, D) == D
    _, _, pool, _ = clusters((100, 60, 40), seed=10)
    fp = FolderPool(pool)
    pos, basis, *_ = learner._space(fp, learner._mean(fp))
    assert len(pos) == len(pool) < 200 and basis.shape == (D, 12)  # 6 x 400 // 197


def test_without_centring_the_space_does_not_follow_the_folder_composition():
    """``centre="none"``: an image's folder-space feature is its power-transformed, L2
    feature whatever else the folder holds, so a class filling most of the folder cannot pull
    the space; with ``centre="folder"`` it moves with the folder's mean."""
    support, ys, pool, _ = clusters((40, 40, 40), seed=3)
    big = torch.cat([pool, pool[:40].repeat(10, 1)])  # the first class ten times larger
    spaces = {}
    for centre in FolderProtoNet.CENTRES:
        learner = FolderProtoNet(centre=centre)
        z = [learner.transform(pool[:5], learner._mean(FolderPool(p))) for p in (pool, big)]
        spaces[centre] = z
    assert torch.allclose(spaces["none"][0], spaces["none"][1])
    assert torch.allclose(spaces["none"][0], FolderProtoNet()._pre(pool[:5]))
    assert not torch.allclose(spaces["folder"][0], spaces["folder"][1], atol=1e-3)
    again = build_learner(FolderProtoNet(centre="none").config())
    assert again.centre == "none" and "centre" not in FolderProtoNet().config()
    with pytest.raises(ValueError, match="centre"):
        FolderProtoNet(centre="classes")


def test_examples_votes_are_kept_per_example_and_give_what_a_fresh_folder_gives():
    """Each example's neighbours are found once per folder (``_hits``): later fits with
    more examples, fewer or the same again, give exactly what a fit on a fresh pool gives."""
    s, ys, pool, yq = clusters((70, 40, 25), seed=5)
    learner = FolderProtoNet(max_anchors=60, proj_dim=8, knn=6, support_edges=True)
    learner.full_rows = 0  # the large-folder path: anchors a subset of the folder
    fp = FolderPool(pool)
    extra = pool[[0, 80, 120]]  # three folder images become examples of their classes
    steps = [(s, ys), (torch.cat([s, extra]), torch.cat([ys, yq[[0, 80, 120]]])),
             (s[[0, 1, 2, 0]], torch.tensor([0, 1, 2, 0]))]  # one example twice
    for sup, lab in steps:
        kept = learner.fit(sup, lab, pool=fp).pool_proba
        assert torch.equal(kept, learner.fit(sup, lab, pool=FolderPool(pool)).pool_proba)
    hits = next(v for k, v in fp._derived.items() if k[0] == "hits")
    assert len(hits) == 6  # three examples, three folder images: one entry each
    # the examples' votes count: an example's own image in the folder takes its label
    without = FolderProtoNet(max_anchors=60, proj_dim=8, knn=6)
    without.full_rows = 0
    a = learner.fit(*steps[1], pool=fp).pool_proba
    b = without.fit(*steps[1], pool=FolderPool(pool)).pool_proba
    assert not torch.equal(a, b)
    assert (a[[0, 80, 120]].argmax(1) == yq[[0, 80, 120]]).all()


def test_whitening_is_the_folder_covariance_to_a_power_and_rebuilt_from_its_config():
    """With every axis kept, the whitened folder space is ``normalize((C + eps I)^(-a/2) z)``
    for the covariance ``C`` of the folder's images in folder space, ``eps`` = whiten_eps / D."""
    s, ys, pool, _ = clusters((60, 40, 20), seed=11)
    learner = FolderProtoNet(whiten=0.5, whiten_eps=0.2, whiten_min=100, proj_dim=D)
    fp = FolderPool(pool)
    mean = learner._mean(fp)
    space = learner._space(fp, mean)
    assert space.basis is None and space.white.axes.shape == (D, D)  # exact path, all axes
    z = learner.transform(pool, mean)
    lam, u = torch.linalg.eigh(z.T @ z / len(z))
    w = (u * (lam.clamp_min(0) + 0.2 / D) ** -0.25) @ u.T
    assert torch.allclose(space.zp, F.normalize(z @ w, dim=-1), atol=1e-4)
    assert torch.allclose(learner.transform(s, mean, space.white), F.normalize(learner.transform(s, mean) @ w, dim=-1), atol=1e-4)
    again = build_learner(learner.config())
    assert (again.whiten, again.whiten_eps, again.whiten_min) == (0.5, 0.2, 100)
    # a folder of fewer than whiten_min images is not whitened
    small = FolderPool(pool[:99])
    assert learner._space(small, learner._mean(small)).white is None
    # with whiten_from, folders from that many images on are, to a power that grows with
    # them up to whiten_min: 80 images, 0.5 * 80 / 100
    ramp = FolderProtoNet(whiten=0.5, whiten_eps=0.2, whiten_min=100, whiten_from=40, proj_dim=D)
    assert [ramp.whiten_power(n) for n in (39, 40, 80, 100, 1000)] == [0.0, 0.2, 0.4, 0.5, 0.5]
    part = FolderPool(pool[:80])
    mean = ramp._mean(part)
    z = ramp.transform(pool[:80], mean)
    lam, u = torch.linalg.eigh(z.T @ z / len(z))
    w = (u * (lam.clamp_min(0) + 0.2 / D) ** -0.2) @ u.T
    assert torch.allclose(ramp._space(part, mean).zp, F.normalize(z @ w, dim=-1), atol=1e-4)
    assert build_learner(ramp.config()).whiten_from == 40 and "whiten_from" not in learner.config()
    assert "whiten" not in FolderProtoNet().config()  # off unless asked for
    with pytest.raises(ValueError, match="whiten"):
        FolderProtoNet(whiten=1.5)


def test_whitening_finds_classes_that_a_few_loud_directions_hide():
    """Classes apart along quiet directions, and a few directions of large variance that
    say nothing about the class (what ImageNet features of a foreign domain look like):
    whitening damps the loud ones and the folder's labels are right more often."""
    gains = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        labels = rng.choice(4, 400, p=[0.4, 0.3, 0.2, 0.1])
        centres = 0.6 * rng.normal(size=(4, D))
        centres[:, :2] = 0  # two loud directions that carry no class
        x = centres[labels] + 0.5 * rng.normal(size=(400, D))
        x[:, :2] += 3.0 * rng.normal(size=(400, 2))
        x = torch.tensor(x + 50.0, dtype=torch.float32)  # non-negative, like ReLU features
        ex = torch.tensor([int(np.flatnonzero(labels == k)[0]) for k in range(4)])
        y = torch.as_tensor(labels)
        acc = [accuracy(FolderProtoNet(beta=1.0, whiten=a, whiten_min=400).fit(x[ex], torch.arange(4), pool=x)
                        .pool_proba.argmax(1), y) for a in (0.0, 0.5)]
        gains.append(acc[1] - acc[0])
    assert min(gains) > 0.03 and np.mean(gains) > 0.08, gains  # measured: +0.05 to +0.18


def test_a_class_with_more_examples_does_not_take_the_folder():
    """One class with 5 examples, five with 1 (corrections make counts uneven): a prototype
    of 5 examples lies nearer the folder's centre than one of 1, and the plain distance
    (or gradient steps on the examples) handed it most of the folder (measured on this
    data before the correction: 80% of the images, 17% its true share)."""
    shares, wins = [], []
    for seed in range(4):
        s, ys, pool, yq = clusters((80,) * 6, seed=seed, spread=1.0)
        extra = np.flatnonzero(yq.numpy() == 0)[:4]  # four more examples of class 0
        rest = np.setdiff1d(np.arange(len(pool)), extra)
        support, labels = torch.cat([s, pool[extra]]), torch.cat([ys, yq[extra]])
        learner = FolderProtoNet(whiten=0.5, whiten_min=100, head_steps=50, knn=5, proj_dim=D).eval()
        pred = learner.fit(support, labels, 6, pool=pool[rest]).pool_proba.argmax(1)
        shares.append((pred == 0).float().mean().item())
        wins.append(accuracy(pred, yq[rest]) - accuracy(inductive(support, labels, pool[rest]), yq[rest]))
    assert np.mean(shares) < 0.35 and np.mean(wins) > 0.1, (shares, wins)


def test_the_noise_correction_is_sigma2_over_k_and_nothing_with_even_counts():
    z = F.normalize(torch.randn(9, D, generator=torch.Generator().manual_seed(0)), dim=-1)
    even = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    means = lambda labels: torch.stack([z[labels == k].mean(0) for k in range(3)])
    shots = lambda labels: torch.bincount(labels, minlength=3).float()
    assert torch.equal(FolderProtoNet._noise(z, means(even), even, shots(even)), torch.zeros(3))
    uneven = torch.tensor([0, 0, 0, 0, 0, 0, 0, 1, 2])  # 7, 1, 1: sigma^2 from class 0 alone
    p = means(uneven)
    sigma2 = ((z[:7] - p[0]) ** 2).sum() / 6
    assert torch.allclose(FolderProtoNet._noise(z, p, uneven, shots(uneven)),
                          torch.stack([sigma2 / 7, sigma2, sigma2]))
