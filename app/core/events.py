"""What a session tells its observers: one typed event per change.

    unsubscribe = session.subscribe(fn)      # fn(event: SessionEvent)
    event.topic is Topic.EXAMPLES, event.paths == ("a.jpg", ...)

``paths`` names the images concerned for EXAMPLES, FEATURES, PROBLEMS and PREDICTIONS
(``None``: all of them); other topics carry no payload -- observers read the new state from
the session. ``Topic`` is a ``str`` enum, so logs and tests can still print it plainly.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable


class Topic(str, Enum):
    CLASSES = "classes"            # added, removed, renamed, recoloured, reordered
    EXAMPLES = "examples"          # examples added, moved or removed (paths)
    FOLDER = "folder"              # a folder was opened or images were added
    FEATURES = "features"          # embeddings arrived (paths)
    PROBLEMS = "problems"          # files that could not be used (paths)
    PREDICTIONS = "predictions"    # labels/confidences changed (paths, None = all)
    THRESHOLD = "threshold"
    METHOD = "method"
    MODEL = "model"
    HISTORY = "history"            # the undo stack changed
    STALE = "stale"                # scoring inputs changed: schedule a rescore
    MODIFIED = "modified"          # the unsaved-changes flag changed

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SessionEvent:
    topic: Topic
    paths: tuple[str, ...] | None = None


Listener = Callable[[SessionEvent], None]
