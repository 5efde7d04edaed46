"""Cheap trainable maps applied to cached backbone features before a learner."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class FeatureNeck(nn.Module):
    """center -> optional linear projection -> optional L2 normalisation -> scale.

    * ``center``: subtract a fixed mean feature (a buffer, set from training data with
      ``set_mean``) -- the "centering" of SimpleShot (Wang et al. 2019).
    * ``out_dim``: a learned linear projection (initialised to the identity's leading
      rows when ``out_dim <= in_dim``).
    * ``l2norm``: project onto the unit sphere.
    * ``scale``: a learnable multiplier (log-parametrised). Squared distances between unit
      vectors lie in [0, 4]; without a scale the softmax over them is nearly flat.
    * ``task_center``: after L2 normalisation, subtract the mean of the *support set's*
      normalised embeddings and normalise again (a per-task centring that needs no
      training-set statistic, so it follows the user's domain). Learners pass that mean
      (``task_mean(support)``) to ``forward`` for support and queries alike.
    """

    def __init__(self, in_dim: int, out_dim: int | None = None, center: bool = True,
                 l2norm: bool = True, scale: float | None = 10.0,
                 learn_scale: bool = True, task_center: bool = False) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.center = center
        self.l2norm = l2norm
        self.learn_scale = learn_scale
        self.task_center = task_center
        self.register_buffer("mean", torch.zeros(in_dim))
        if out_dim is not None:
            self.proj = nn.Linear(in_dim, out_dim, bias=False)
            with torch.no_grad():
                self.proj.weight.copy_(torch.eye(out_dim, in_dim))
        else:
            self.proj = None
        self.scale_init = scale
        if scale is None:
            self.log_scale = None
        else:
            value = torch.tensor(float(scale)).log()
            self.log_scale = nn.Parameter(value) if learn_scale else None
            if not learn_scale:
                self.register_buffer("fixed_log_scale", value)

    @torch.no_grad()
    def set_mean(self, features: torch.Tensor) -> None:
        self.mean.copy_(features.mean(0))

    def _unscaled(self, x: torch.Tensor) -> torch.Tensor:
        if self.center:
            x = x - self.mean
        if self.proj is not None:
            x = self.proj(x)
        if self.l2norm:
            x = F.normalize(x, dim=-1)
        return x

    def task_mean(self, support: torch.Tensor) -> torch.Tensor | None:
        """The support set's mean embedding for ``task_center`` (None when off)."""
        if not self.task_center:
            return None
        return self._unscaled(support).mean(0)

    def forward(self, x: torch.Tensor, task_mean: torch.Tensor | None = None) -> torch.Tensor:
        x = self._unscaled(x)
        if task_mean is not None:
            x = F.normalize(x - task_mean, dim=-1)
        if self.log_scale is not None:
            x = x * self.log_scale.exp()
        elif self.scale_init is not None:
            x = x * self.fixed_log_scale.exp()
        return x

    def config(self) -> dict[str, Any]:
        return {"name": "feature", "in_dim": self.in_dim, "out_dim": self.out_dim,
                "center": self.center, "l2norm": self.l2norm, "scale": self.scale_init,
                "learn_scale": self.learn_scale, "task_center": self.task_center}


def build_neck(config: dict[str, Any] | None) -> nn.Module:
    """``None`` -> identity; ``{"name": "feature", ...}`` -> FeatureNeck;
    ``{"name": "conv4", ...}`` -> an Unflatten + Conv-4 (full-network MAML)."""
    if config is None:
        return nn.Identity()
    config = dict(config)
    name = config.pop("name")
    if name == "feature":
        return FeatureNeck(**config)
    if name == "conv4":
        from ..backbones import Conv4, Unflatten

        shape = config.pop("input_shape")
        net = nn.Sequential(Unflatten(shape), Conv4(**config))
        net.neck_config = {"name": "conv4", "input_shape": list(shape), **config}  # type: ignore[attr-defined]
        return net
    raise ValueError(f"unknown neck {name!r}")


def task_mean(neck: nn.Module, support: torch.Tensor) -> torch.Tensor | None:
    """Per-task statistic of a neck (``FeatureNeck(task_center=True)``), else None."""
    fn = getattr(neck, "task_mean", None)
    return fn(support) if fn is not None else None


def apply_neck(neck: nn.Module, x: torch.Tensor, tmean: torch.Tensor | None) -> torch.Tensor:
    return neck(x) if tmean is None else neck(x, tmean)


def neck_config(neck: nn.Module) -> dict[str, Any] | None:
    if isinstance(neck, nn.Identity):
        return None
    if hasattr(neck, "neck_config"):
        return dict(neck.neck_config)
    return neck.config()  # type: ignore[operator]
