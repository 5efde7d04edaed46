"""MAML (Finn et al., 2017) and its head-only / Proto-MAML variants, behind one class.

The model is ``neck`` (features -> embedding) followed by a linear head ``W e + b``.
``fit`` runs ``inner_steps`` of SGD on the support cross-entropy, starting from the
meta-learned initialisation, with *explicit* parameter dicts ("fast weights") evaluated
through ``torch.func.functional_call``; the module's own parameters are never modified.

* ``adapt="all"``: the inner loop updates the neck and the head (the paper's MAML; with a
  Conv-4 neck over raw pixels this is the paper's Omniglot model).
* ``adapt="head"``: the neck is meta-learned in the outer loop only; the inner loop
  updates the head over fixed embeddings (ANIL-style). This is what the app runs over its
  cached backbone features: adaptation costs milliseconds.
* ``head_init``: ``"learned"`` (the paper: a meta-learned N-way head, so only N-way
  episodes work), ``"zero"`` (W = 0, b = 0: the "zeroing trick" of Kao et al. 2022, any
  number of classes), ``"proto"`` (Proto-MAML, Triantafillou et al. 2020: W = 2 c_k,
  b = -|c_k|^2 from the class prototypes c_k, so step 0 equals ProtoNet; any N).
* Second-order by default: inner gradients are taken with ``create_graph=True`` so the
  meta-gradient flows through them. ``first_order=True`` treats them as constants
  (FOMAML); the update p' = p - lr * g still passes the identity term to p.
* ``learn_inner_lr=True`` meta-learns one learning rate per step and per parameter
  tensor (MAML++'s LSLR), initialised at ``inner_lr``.

Batch norm: a Conv-4 neck built with ``track_running_stats=False`` keeps no running
statistics; every forward pass, in training and at test time, normalises with the
statistics of the batch it is given (the reference MAML implementation's
"transductive" setting). Support batches and query batches are normalised separately.
The app only uses full-network MAML for the Omniglot model; its photo model adapts the
head (``adapt="head"``), whose neck has no batch norm.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .base import Adapted, Capabilities, MetaLearner, class_means, infer_num_classes
from .neck import apply_neck, build_neck, neck_config, task_mean


class MAMLAdapted(Adapted):
    def __init__(self, learner: "MAML", fast: dict[str, torch.Tensor],
                 weight: torch.Tensor, bias: torch.Tensor,
                 tmean: torch.Tensor | None = None) -> None:
        self.learner = learner
        self.fast = fast
        self.tmean = tmean
        self.weight = weight
        self.bias = bias
        self.num_classes = weight.shape[0]

    def logits(self, query: torch.Tensor) -> torch.Tensor:
        emb = self.learner.embed(query, self.fast, self.tmean)
        return emb @ self.weight.T + self.bias


class MAML(MetaLearner):
    method = "maml"
    label = "MAML"
    capabilities = Capabilities(gradient_steps=True)

    def __init__(self, neck: dict[str, Any] | None = None, embed_dim: int | None = None,
                 adapt: str = "all", head_init: str = "zero", n_way: int | None = None,
                 inner_steps: int = 1, inner_lr: float = 0.4, learn_inner_lr: bool = False,
                 first_order: bool = False, label: str | None = None) -> None:
        super().__init__(label)
        if adapt not in ("all", "head"):
            raise ValueError(f"adapt must be 'all' or 'head', not {adapt!r}")
        if head_init not in ("zero", "proto", "learned"):
            raise ValueError(f"head_init must be 'zero', 'proto' or 'learned', not {head_init!r}")
        if head_init == "learned" and (n_way is None or embed_dim is None):
            raise ValueError("head_init='learned' needs n_way and embed_dim")
        if inner_steps < 0:
            raise ValueError("inner_steps must be >= 0")
        self.neck: nn.Module = build_neck(neck)
        self.embed_dim = embed_dim
        self.adapt = adapt
        self.head_init = head_init
        self.n_way = n_way
        self.inner_steps = inner_steps
        self.inner_lr = inner_lr
        self.learn_inner_lr = learn_inner_lr
        self.first_order = first_order
        if head_init == "learned":
            assert n_way is not None and embed_dim is not None
            self.head_weight = nn.Parameter(torch.zeros(n_way, embed_dim))
            self.head_bias = nn.Parameter(torch.zeros(n_way))
            nn.init.kaiming_uniform_(self.head_weight, a=5 ** 0.5)
        n_tensors = 2 + (len(list(self.neck.parameters())) if adapt == "all" else 0)
        lrs = torch.full((max(inner_steps, 1), n_tensors), float(inner_lr))
        if learn_inner_lr:
            self.inner_lrs = nn.Parameter(lrs)
        else:
            self.register_buffer("inner_lrs", lrs)

    @classmethod
    def from_options(cls, neck, embed_dim, full_network, o) -> "MAML":  # noqa: ANN001
        adapt = o.adapt if o.adapt != "auto" else ("all" if full_network else "head")
        return cls(neck=neck, embed_dim=embed_dim, adapt=adapt, head_init=o.head_init,
                   n_way=o.way if o.head_init == "learned" else None,
                   inner_steps=o.inner_steps, inner_lr=o.inner_lr,
                   learn_inner_lr=o.learn_inner_lr, first_order=o.first_order)

    # -- pieces -----------------------------------------------------------------------
    def embed(self, x: torch.Tensor, fast: dict[str, torch.Tensor] | None = None,
              tmean: torch.Tensor | None = None) -> torch.Tensor:
        """``tmean``: the support set's statistic of a task-centring neck (see neck.py)."""
        if not fast:
            return apply_neck(self.neck, x, tmean)
        args = (x,) if tmean is None else (x, tmean)
        return functional_call(self.neck, {**dict(self.neck.named_buffers()), **fast}, args)

    def _initial_head(self, emb: torch.Tensor, labels: torch.Tensor, n: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.head_init == "learned":
            if n != self.n_way:
                raise ValueError(f"this MAML model has a learned {self.n_way}-way head; "
                                 f"it cannot classify {n} classes")
            return self.head_weight, self.head_bias
        if self.head_init == "proto":
            protos = class_means(emb, labels, n)
            return 2.0 * protos, -(protos * protos).sum(1)
        d = emb.shape[1]
        return emb.new_zeros(n, d), emb.new_zeros(n)

    # -- the interface ------------------------------------------------------------------
    def fit(self, support: torch.Tensor, labels: torch.Tensor,
            num_classes: int | None = None, pool: Any = None) -> MAMLAdapted:
        n = infer_num_classes(labels, num_classes)
        # Keep the graph only when meta-training; at test time every tensor is detached
        # after each step so memory stays flat.
        meta = self.training and torch.is_grad_enabled()
        create_graph = meta and not self.first_order
        with torch.inference_mode(False), torch.enable_grad():
            if support.is_inference():
                support = support.clone()
            if self.adapt == "all":
                fast = {k: (p if meta else p.detach().requires_grad_(True))
                        for k, p in self.neck.named_parameters()}
            else:
                fast = {}
            tmean = task_mean(self.neck, support)  # per-task centring (None unless enabled)
            if tmean is not None and not meta:
                tmean = tmean.detach()
            emb = self.embed(support, fast, tmean)
            if self.adapt == "head" and not meta:
                emb = emb.detach()
            weight, bias = self._initial_head(emb, labels, n)
            if not meta:
                weight, bias = weight.detach(), bias.detach()
            for step in range(self.inner_steps):
                if step > 0 and self.adapt == "all":
                    emb = self.embed(support, fast, tmean)
                if not meta:
                    weight, bias = weight.detach().requires_grad_(True), bias.detach().requires_grad_(True)
                elif not weight.requires_grad:  # zero init while meta-training
                    weight, bias = weight.requires_grad_(True), bias.requires_grad_(True)
                loss = F.cross_entropy(emb @ weight.T + bias, labels)
                names = list(fast)
                params = [fast[k] for k in names] + [weight, bias]
                grads = torch.autograd.grad(loss, params, create_graph=create_graph)
                lrs = self.inner_lrs[step]
                new = [p - lrs[i] * g for i, (p, g) in enumerate(zip(params, grads))]
                if not meta:
                    new = [t.detach().requires_grad_(True) for t in new]
                fast = dict(zip(names, new[:-2]))
                weight, bias = new[-2], new[-1]
            if not meta:
                weight, bias = weight.detach(), bias.detach()
                fast = {k: v.detach() for k, v in fast.items()}
        return MAMLAdapted(self, fast, weight, bias, tmean)

    def config(self) -> dict[str, Any]:
        return {"method": self.method, "neck": neck_config(self.neck),
                "embed_dim": self.embed_dim, "adapt": self.adapt,
                "head_init": self.head_init, "n_way": self.n_way,
                "inner_steps": self.inner_steps, "inner_lr": self.inner_lr,
                "learn_inner_lr": self.learn_inner_lr, "first_order": self.first_order,
                **self.label_config()}
