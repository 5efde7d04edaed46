"""Few-shot learners: one class per method, one interface (see ``base.py``)."""
from __future__ import annotations

from typing import Any

from .base import Adapted, Capabilities, MetaLearner
from .ensemble import Ensemble
from .folder import FolderPool, FolderProtoNet
from .maml import MAML
from .protonet import ProtoNet

# Every learner class, by its ``method`` key (the form cards store). Which learners a model
# offers, and under which keys, is the model's card (``FewShotModel.learners``).
LEARNERS: dict[str, type[MetaLearner]] = {c.method: c for c in (ProtoNet, MAML, FolderProtoNet,
                                                                Ensemble)}
TRAINABLE = [k for k, c in LEARNERS.items() if c.capabilities.trainable]


def build_learner(config: dict[str, Any]) -> MetaLearner:
    """Rebuild a learner from the dict its ``config()`` returned."""
    config = dict(config)
    method = config.pop("method", None)
    if method not in LEARNERS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(sorted(LEARNERS))}")
    return LEARNERS[method](**config)


__all__ = ["Adapted", "Capabilities", "MetaLearner", "ProtoNet", "MAML", "FolderProtoNet",
           "FolderPool", "Ensemble", "LEARNERS", "TRAINABLE", "build_learner"]
