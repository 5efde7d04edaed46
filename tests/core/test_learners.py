import pytest
import torch
import torch.nn.functional as F

from app.core.learners import MAML, ProtoNet, build_learner
from app.core.learners.base import class_means, squared_euclidean


def blobs(n_way=4, shot=5, query=10, dim=8, seed=0, spread=0.1):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(n_way, dim, generator=g) * 5
    def draw(k):
        x = centers.repeat_interleave(k, 0) + spread * torch.randn(n_way * k, dim, generator=g)
        return x, torch.arange(n_way).repeat_interleave(k)
    return draw(shot), draw(query)


def test_prototypes_are_class_means():
    x = torch.tensor([[0., 0.], [2., 0.], [10., 10.], [10., 12.], [11., 11.]])
    y = torch.tensor([0, 0, 1, 1, 1])
    adapted = ProtoNet().fit(x, y)
    assert torch.allclose(adapted.prototypes, torch.tensor([[1., 0.], [31 / 3, 11.]]))
    assert torch.allclose(class_means(x, y, 2), adapted.prototypes)


def test_protonet_uses_negative_squared_distance():
    x = torch.randn(6, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    q = torch.randn(4, 3)
    adapted = ProtoNet().fit(x, y)
    protos = torch.stack([x[y == k].mean(0) for k in range(3)])
    expected = -((q[:, None, :] - protos[None]) ** 2).sum(-1)
    assert torch.allclose(adapted.logits(q), expected, atol=1e-5)
    assert torch.allclose(squared_euclidean(q, protos), -expected, atol=1e-5)
    p = adapted.predict_proba(q)
    assert torch.allclose(p.sum(1), torch.ones(4))


def test_protonet_separable_toy_problem_is_perfect():
    (s, ys), (q, yq) = blobs(n_way=7)
    pred = ProtoNet().fit(s, ys).predict_proba(q).argmax(1)
    assert torch.equal(pred, yq)


def test_missing_class_is_an_error():
    with pytest.raises(ValueError, match="no support example"):
        ProtoNet().fit(torch.randn(2, 3), torch.tensor([0, 2]))


def test_predict_proba_chunks_match_whole():
    (s, ys), (q, _) = blobs()
    a = ProtoNet().fit(s, ys)
    assert torch.allclose(a.predict_proba(q, batch_size=7), a.predict_proba(q), atol=1e-6)


def _support_loss(learner, s, ys, fast, w, b):
    emb = learner.embed(s, fast)
    return F.cross_entropy(emb @ w.T + b, ys)


@pytest.mark.parametrize("adapt,head_init", [("all", "zero"), ("all", "proto"), ("head", "proto"),
                                             ("head", "zero")])
def test_maml_inner_step_lowers_support_loss(adapt, head_init):
    torch.manual_seed(0)
    s = torch.randn(12, 8)  # overlapping classes: the support loss is far from zero
    ys = torch.arange(3).repeat(4)
    neck = {"name": "feature", "in_dim": 8, "out_dim": 8, "center": False, "l2norm": False,
            "scale": None}
    learner = MAML(neck=neck, adapt=adapt, head_init=head_init, inner_steps=0, inner_lr=0.05)
    learner.eval()
    before = learner.fit(s, ys)
    learner.inner_steps = 1
    after = learner.fit(s, ys)
    l0 = F.cross_entropy(before.logits(s), ys)
    l1 = F.cross_entropy(after.logits(s), ys)
    assert l0 > 0.1
    assert l1 < l0 - 1e-3


def test_maml_many_steps_fit_any_number_of_classes():
    (s, ys), (q, yq) = blobs(n_way=9, dim=16)
    learner = MAML(neck=None, adapt="head", head_init="zero", inner_steps=20, inner_lr=0.5)
    learner.eval()
    acc = (learner.fit(s, ys).predict_proba(q).argmax(1) == yq).float().mean()
    assert acc == 1.0


def _meta_grad(first_order: bool):
    torch.manual_seed(0)
    (s, ys), (q, yq) = blobs(n_way=3, shot=2, query=3, dim=4, spread=1.0)
    neck = {"name": "feature", "in_dim": 4, "out_dim": 4, "center": False, "l2norm": False,
            "scale": None}
    learner = MAML(neck=neck, adapt="all", head_init="zero", inner_steps=1, inner_lr=0.3,
                   first_order=first_order)
    learner.train()
    w = learner.neck.proj.weight
    loss, _ = learner.loss(s, ys, q, yq)
    (g,) = torch.autograd.grad(loss, [w])
    return learner, g, (s, ys, q, yq)


def _manual_meta_grads(s, ys, q, yq, w0, lr):
    """The meta-gradient computed by hand: second-order keeps d(inner grad)/d(w0)."""
    def outer(w0_, second_order: bool):
        wh = torch.zeros(3, 4, requires_grad=True)
        bh = torch.zeros(3, requires_grad=True)
        loss = F.cross_entropy((s @ w0_.T) @ wh.T + bh, ys)
        gw0, gwh, gbh = torch.autograd.grad(loss, [w0_, wh, bh], create_graph=second_order)
        if not second_order:
            gw0, gwh, gbh = gw0.detach(), gwh.detach(), gbh.detach()
        w1, wh1, bh1 = w0_ - lr * gw0, wh - lr * gwh, bh - lr * gbh
        return F.cross_entropy((q @ w1.T) @ wh1.T + bh1, yq)
    w = w0.detach().clone().requires_grad_(True)
    (g2,) = torch.autograd.grad(outer(w, True), [w])
    w = w0.detach().clone().requires_grad_(True)
    (g1,) = torch.autograd.grad(outer(w, False), [w])
    return g2, g1


def test_second_order_meta_gradient_uses_second_derivatives():
    learner2, g2, (s, ys, q, yq) = _meta_grad(first_order=False)
    learner1, g1, _ = _meta_grad(first_order=True)
    w0 = learner2.neck.proj.weight
    m2, m1 = _manual_meta_grads(s, ys, q, yq, w0, 0.3)
    # each mode equals its hand-computed counterpart ...
    assert torch.allclose(g2, m2, atol=1e-5)
    assert torch.allclose(g1, m1, atol=1e-5)
    # ... and they differ by the Hessian term, which is not negligible here
    assert (g2 - g1).abs().max() > 1e-3


def test_second_order_gradient_matches_finite_differences():
    learner, g, (s, ys, q, yq) = _meta_grad(first_order=False)
    w = learner.neck.proj.weight
    eps = 1e-3
    i, j = 1, 2
    with torch.no_grad():
        w[i, j] += eps
    lp, _ = learner.loss(s, ys, q, yq)
    with torch.no_grad():
        w[i, j] -= 2 * eps
    lm, _ = learner.loss(s, ys, q, yq)
    with torch.no_grad():
        w[i, j] += eps
    fd = (lp - lm).item() / (2 * eps)
    assert abs(fd - g[i, j].item()) < 1e-3 * max(1.0, abs(fd))
    _, g1, _ = _meta_grad(first_order=True)
    assert abs(fd - g1[i, j].item()) > abs(fd - g[i, j].item())


def test_learned_head_refuses_other_ways():
    learner = MAML(neck=None, embed_dim=4, head_init="learned", n_way=5)
    with pytest.raises(ValueError, match="5-way"):
        learner.fit(torch.randn(3, 4), torch.tensor([0, 1, 2]))


def test_learner_config_round_trip():
    a = MAML(neck={"name": "feature", "in_dim": 4}, adapt="head", head_init="proto",
             inner_steps=3, learn_inner_lr=True)
    b = build_learner(a.config())
    assert b.config() == a.config()
    assert build_learner(ProtoNet().config()).config() == ProtoNet().config()


def test_fit_under_inference_mode_works():
    (s, ys), (q, yq) = blobs()
    learner = MAML(neck=None, adapt="head", head_init="proto", inner_steps=2, inner_lr=0.1).eval()
    with torch.inference_mode():
        p = learner.fit(s, ys).predict_proba(q)
    assert (p.argmax(1) == yq).all()
