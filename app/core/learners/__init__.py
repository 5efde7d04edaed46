"""Few-shot learners: one class per method, one interface (see ``base.py``)."""
from __future__ import annotations

from typing import Any

from .base import Adapted, MetaLearner
from .maml import MAML
from .protonet import ProtoNet

LEARNERS: dict[str, type[MetaLearner]] = {"protonet": ProtoNet, "maml": MAML}


def build_learner(config: dict[str, Any]) -> MetaLearner:
    """Rebuild a learner from the dict its ``config()`` returned."""
    config = dict(config)
    method = config.pop("method", None)
    if method not in LEARNERS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(sorted(LEARNERS))}")
    return LEARNERS[method](**config)


__all__ = ["Adapted", "MetaLearner", "ProtoNet", "MAML", "LEARNERS", "build_learner"]
