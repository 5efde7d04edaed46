"""Build the model that ``train`` meta-trains, from command-line choices.

* ``conv4`` + ``protonet``: Conv-4 backbone -> ProtoNet (the ProtoNet paper).
* ``conv4`` + ``maml``: Identity backbone (features = pixels) -> MAML whose neck is the
  whole Conv-4 (the MAML paper; batch norm with batch statistics only).
* ``mobilenetv2`` + either: MobileNetV2 features (ImageNet weights via ``--init-weights``)
  -> a ``FeatureNeck`` -> ProtoNet, or MAML adapting a linear head (Proto-MAML init).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.backbones import Conv4, Identity, MobileNetV2Features, output_dim
from ..core.learners import LEARNERS, MAML, TRAINABLE, ProtoNet
from ..core.learners.base import MetaLearner
from ..core.model import OMNIGLOT_INPUT, FewShotModel, InputSpec

IMAGENET_INPUT = InputSpec()


@dataclass
class LearnerOptions:
    method: str = ProtoNet.method
    neck: str = "auto"                  # "auto" | "none" | "feature"
    neck_out_dim: int | None = None
    neck_center: bool = True
    neck_l2norm: bool = True
    neck_scale: float | None = 10.0
    adapt: str = "auto"                 # MAML: "auto" | "all" | "head"
    head_init: str = "zero"
    way: int = 5
    inner_steps: int = 1
    inner_lr: float = 0.4
    learn_inner_lr: bool = False
    first_order: bool = False


def input_spec_for(backbone: str, image_size: int | None, channels: int | None) -> InputSpec:
    if backbone == "conv4":
        base = OMNIGLOT_INPUT
        if image_size or channels:
            c = channels or base.channels
            return InputSpec(size=(image_size or 28,) * 2, channels=c,
                             mean=(0.0,) * c if c == 1 else IMAGENET_INPUT.mean,
                             std=(1.0,) * c if c == 1 else IMAGENET_INPUT.std,
                             resize="stretch", crop_fraction=1.0)
        return base
    if image_size:
        return InputSpec(size=(image_size, image_size))
    return IMAGENET_INPUT


def load_backbone_weights(backbone: torch.nn.Module, path: str) -> None:
    """Backbone weights from safetensors, or a torch file read with weights_only=True
    (never unpickled). torchvision MobileNetV2 state dicts load as they are (their
    classifier is ignored)."""
    p = Path(path)
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(p))
    else:
        state = torch.load(str(p), map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a state dict")
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    own = backbone.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in usable]
    if missing:
        raise ValueError(f"{path}: does not fit the backbone ({len(missing)} tensors missing, "
                         f"e.g. {missing[0]})")
    backbone.load_state_dict(usable)


def build_learner_for(backbone_name: str, feat_dim: int, spec: InputSpec,
                      o: LearnerOptions) -> MetaLearner:
    neck_kind = o.neck if o.neck != "auto" else ("none" if backbone_name in ("conv4", "identity")
                                                 else "feature")
    neck: dict[str, Any] | None = None
    if neck_kind == "feature":
        neck = {"name": "feature", "in_dim": feat_dim, "out_dim": o.neck_out_dim,
                "center": o.neck_center, "l2norm": o.neck_l2norm, "scale": o.neck_scale}
    if o.method not in TRAINABLE:
        raise ValueError(f"unknown method {o.method!r}; trainable: {', '.join(TRAINABLE)}")
    full_network = backbone_name == "identity"
    if full_network:  # the learner adapts the whole Conv-4: it is the neck
        neck = {"name": "conv4", "input_shape": list(spec.shape), "in_channels": spec.channels,
                "track_running_stats": False}
        embed = output_dim(Conv4(spec.channels, track_running_stats=False), spec.shape)
    else:
        embed = o.neck_out_dim or feat_dim
    return LEARNERS[o.method].from_options(neck, embed, full_network, o)


def build_model(backbone: str, o: LearnerOptions, image_size: int | None = None,
                channels: int | None = None, init_weights: str | None = None) -> FewShotModel:
    spec = input_spec_for(backbone, image_size, channels)
    if backbone == "conv4" and LEARNERS[o.method].capabilities.gradient_steps:
        # gradient-step learners adapt the whole Conv-4 (the MAML paper): features = pixels
        bb: torch.nn.Module = Identity(spec.shape)
        name = "identity"
    elif backbone == "conv4":
        bb, name = Conv4(spec.channels), "conv4"
    elif backbone == "mobilenetv2":
        bb, name = MobileNetV2Features(), "mobilenetv2"
    else:
        raise ValueError(f"unknown backbone {backbone!r}")
    if init_weights:
        load_backbone_weights(bb, init_weights)
    feat_dim = output_dim(bb, spec.shape)
    learner = build_learner_for(name, feat_dim, spec, o)
    return FewShotModel(bb, {o.method: learner}, spec, default_method=o.method)


def add_learner(model: FewShotModel, o: LearnerOptions) -> None:
    """Add (or replace) the ``o.method`` learner of an existing model, keeping the others."""
    name = model.backbone.config()["name"]  # type: ignore[operator]
    feat_dim = output_dim(model.backbone, model.input_spec.shape)
    model.learners[o.method] = build_learner_for(name, feat_dim, model.input_spec, o)


def set_inner_steps(learner: MetaLearner, steps: int) -> None:
    """Run a MAML learner with ``steps`` inner steps (more than in training is allowed:
    extra steps reuse the last step's learning rates)."""
    if not isinstance(learner, MAML) or steps == learner.inner_steps:
        return
    lrs = learner.inner_lrs.detach()
    rows = [lrs[min(i, lrs.shape[0] - 1)] for i in range(max(steps, 1))]
    new = torch.stack(rows).clone()
    if isinstance(learner.inner_lrs, torch.nn.Parameter):
        learner.inner_lrs = torch.nn.Parameter(new)
    else:
        learner.register_buffer("inner_lrs", new)
    learner.inner_steps = steps
