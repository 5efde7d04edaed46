"""The user's edits of a session -- classes, examples, corrections, settings -- each one an
undoable command, with observer callbacks. ``Session`` (session.py) adds the folder,
features and predictions on top; see its docstring for the whole API."""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace
from typing import Callable, Iterable

from .history import Command, History
from .records import PALETTE, UNKNOWN, ClassInfo, Example, norm_path as _norm
from .records import valid_colour as _valid_colour
from .events import Listener, SessionEvent, Topic
from .scan import expand_paths

log = logging.getLogger(__name__)


class SessionEdits:
    """Mixin: needs ``_listeners``, ``_classes``, ``_examples``, ``_next_id``, ``history``,
    ``modified``, ``_generation``, ``threshold``, ``method``, ``model_path``, ``_image_index``
    (set up by ``Session.__init__``)."""

    _listeners: list[Listener]
    _classes: list[ClassInfo]
    _examples: dict[str, Example]
    _next_id: int
    history: History
    modified: bool
    _generation: int
    threshold: float
    method: str
    model_path: str | None
    _image_index: dict[str, int]

    # -- observers ----------------------------------------------------------------------
    def subscribe(self, fn: Listener) -> Callable[[], None]:
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def _emit(self, topic: Topic, paths: Iterable[str] | None = None) -> None:
        """Tell every listener. A failing listener is logged and skipped: it must not leave
        an edit half-done (the undo history and the state would disagree)."""
        event = SessionEvent(topic, None if paths is None else tuple(paths))
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception:
                log.exception("session listener %r failed on %s", fn, topic)

    def _touch(self, stale: bool = True) -> None:
        if stale:
            self._generation += 1
            self._emit(Topic.STALE)
        if not self.modified:
            self.modified = True
            self._emit(Topic.MODIFIED)

    def mark_saved(self) -> None:
        self.modified = False
        self._emit(Topic.MODIFIED)

    # -- history ------------------------------------------------------------------------
    def _push(self, label: str, do: Callable[[], None], undo: Callable[[], None],
              merge_key: str | None = None) -> None:
        self.history.push(Command(label, do, undo, merge_key))
        self._emit(Topic.HISTORY)

    def undo(self) -> str | None:
        label = self.history.undo()
        self._emit(Topic.HISTORY)
        return label

    def redo(self) -> str | None:
        label = self.history.redo()
        self._emit(Topic.HISTORY)
        return label

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    @property
    def undo_label(self) -> str:
        return self.history.undo_label

    @property
    def redo_label(self) -> str:
        return self.history.redo_label

    # -- classes ------------------------------------------------------------------------
    @property
    def classes(self) -> list[ClassInfo]:
        return list(self._classes)

    def class_by_id(self, class_id: int) -> ClassInfo | None:
        return next((c for c in self._classes if c.id == class_id), None)

    def class_at(self, index: int) -> ClassInfo | None:
        return self._classes[index] if 0 <= index < len(self._classes) else None

    def class_by_name(self, name: str) -> ClassInfo | None:
        key = name.strip().casefold()
        return next((c for c in self._classes if c.name.casefold() == key), None)

    def class_index(self, class_id: int) -> int:
        return next((i for i, c in enumerate(self._classes) if c.id == class_id), -1)

    def _check_name(self, name: str, exclude: int | None = None) -> str:
        name = " ".join(str(name).split())
        if not name:
            raise ValueError("a class name cannot be empty")
        if name.casefold() == UNKNOWN:
            raise ValueError(f"{UNKNOWN!r} is reserved for images below the threshold")
        other = self.class_by_name(name)
        if other is not None and other.id != exclude:
            raise ValueError(f"there is already a class named {other.name!r}")
        return name

    def _require(self, class_id: int) -> ClassInfo:
        c = self.class_by_id(class_id)
        if c is None:
            raise KeyError(f"no class with id {class_id}")
        return c

    def add_class(self, name: str | None = None, colour: str | None = None) -> ClassInfo:
        if name is None:
            n = len(self._classes) + 1
            while self.class_by_name(f"Class {n}") is not None:
                n += 1
            name = f"Class {n}"
        name = self._check_name(name)
        colour = _valid_colour(colour) if colour else PALETTE[(self._next_id - 1) % len(PALETTE)]
        info = ClassInfo(self._next_id, name, colour)
        self._next_id += 1
        index = len(self._classes)
        self._push(f"Add class {name}", lambda: self._insert_class(index, info),
                   lambda: self._remove_class(info.id))
        return info

    def rename_class(self, class_id: int, name: str) -> None:
        old = self._require(class_id)
        new = replace(old, name=self._check_name(name, exclude=class_id))
        if new != old:
            self._push(f"Rename class {old.name} to {new.name}",
                       lambda: self._replace_class(new), lambda: self._replace_class(old))

    def recolour_class(self, class_id: int, colour: str) -> None:
        old = self._require(class_id)
        new = replace(old, colour=_valid_colour(colour))
        if new != old:
            self._push(f"Change colour of {old.name}",
                       lambda: self._replace_class(new), lambda: self._replace_class(old))

    def move_class(self, class_id: int, index: int) -> None:
        """Reorder (changes which digit key assigns to it)."""
        old = self.class_index(class_id)
        info = self._require(class_id)
        index = max(0, min(index, len(self._classes) - 1))
        if old != index:
            def do() -> None:
                self._remove_class(class_id)
                self._insert_class(index, info)

            def undo() -> None:
                self._remove_class(class_id)
                self._insert_class(old, info)
            self._push(f"Move class {info.name}", do, undo)

    def delete_class(self, class_id: int) -> None:
        """Delete a class and its examples (one undo step restores both)."""
        info = self._require(class_id)
        index = self.class_index(class_id)
        examples = {e.path: e for e in self._examples.values() if e.class_id == class_id}

        def do() -> None:
            self._set_examples({p: None for p in examples})
            self._remove_class(class_id)

        def undo() -> None:
            self._insert_class(index, info)
            self._set_examples(dict(examples))
        self._push(f"Delete class {info.name}", do, undo)

    def _insert_class(self, index: int, info: ClassInfo) -> None:
        self._classes.insert(index, info)
        self._emit(Topic.CLASSES)
        self._touch()

    def _remove_class(self, class_id: int) -> None:
        self._classes = [c for c in self._classes if c.id != class_id]
        self._emit(Topic.CLASSES)
        self._touch()
        self._emit(Topic.PREDICTIONS)  # predictions of that class become unknown

    def _replace_class(self, info: ClassInfo) -> None:
        self._classes = [info if c.id == info.id else c for c in self._classes]
        self._emit(Topic.CLASSES)
        self._touch(stale=False)
        self._emit(Topic.PREDICTIONS)  # names/colours shown on every thumbnail

    # -- examples -----------------------------------------------------------------------
    @property
    def examples(self) -> list[Example]:
        return list(self._examples.values())

    def example(self, path: str) -> Example | None:
        return self._examples.get(_norm(path))

    def examples_of(self, class_id: int) -> list[Example]:
        return [e for e in self._examples.values() if e.class_id == class_id]

    def _change(self, label: str, after: dict[str, Example | None]) -> list[str]:
        before = {p: self._examples.get(p) for p in after}
        after = {p: e for p, e in after.items() if before[p] != e}
        if not after:
            return []
        before = {p: before[p] for p in after}
        self._push(label, lambda: self._set_examples(after), lambda: self._set_examples(before))
        return list(after)

    def _set_examples(self, mapping: dict[str, Example | None]) -> None:
        for p, e in mapping.items():
            if e is None:
                self._examples.pop(p, None)
            else:
                self._examples[p] = e
        self._emit(Topic.EXAMPLES, list(mapping))
        self._touch()
        self._emit(Topic.PREDICTIONS, [p for p in mapping if p in self._image_index])

    def add_examples(self, class_id: int, paths: Iterable[str | os.PathLike[str]],
                     cancel: threading.Event | None = None) -> list[str]:
        """Files and/or folders (scanned recursively) become examples of the class.
        An image that was an example of another class moves. Returns the changed paths."""
        info = self._require(class_id)
        files = expand_paths(paths, cancel)
        n = len(files)
        return self._change(f"Add {n} example{'s' * (n != 1)} to {info.name}",
                            {p: Example(p, class_id, "example") for p in files})

    def assign(self, paths: Iterable[str | os.PathLike[str]], class_id: int) -> list[str]:
        """The user says these images belong to the class (e.g. a digit key in review):
        they become examples with source "corrected"."""
        info = self._require(class_id)
        files = list(dict.fromkeys(_norm(p) for p in paths))
        after: dict[str, Example | None] = {}
        for p in files:
            cur = self._examples.get(p)
            after[p] = cur if cur is not None and cur.class_id == class_id else Example(p, class_id, "corrected")
        n = len(files)
        return self._change(f"Assign {n} image{'s' * (n != 1)} to {info.name}", after)

    def remove_examples(self, paths: Iterable[str | os.PathLike[str]]) -> list[str]:
        files = [p for p in dict.fromkeys(_norm(p) for p in paths) if p in self._examples]
        n = len(files)
        return self._change(f"Remove {n} example{'s' * (n != 1)}", {p: None for p in files})

    # -- settings -----------------------------------------------------------------------
    def set_threshold(self, value: float) -> None:
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError("the threshold is a confidence between 0 and 1")
        old = self.threshold
        if value != old:
            self._push(f"Set threshold to {value:.2f}", lambda: self._set_attr("threshold", value),
                       lambda: self._set_attr("threshold", old), merge_key="threshold")

    def set_method(self, method: str) -> None:
        if not isinstance(method, str) or not method:
            raise ValueError(f"a method is the key of one of the model's learners, not {method!r}")
        old = self.method
        if method != old:
            self._push(f"Switch to {method}", lambda: self._set_attr("method", method),
                       lambda: self._set_attr("method", old))

    def set_model_path(self, path: str | None) -> None:
        """The model file; the caller loads it and calls ``clear_features`` if it changed."""
        path = _norm(path) if path else None
        old = self.model_path
        if path != old:
            self._push("Change model", lambda: self._set_attr("model_path", path),
                       lambda: self._set_attr("model_path", old))

    def _set_attr(self, name: str, value: object) -> None:
        setattr(self, name, value)
        self._emit(Topic.MODEL if name == "model_path" else Topic(name))
        if name == "threshold":
            self._touch(stale=False)
            self._emit(Topic.PREDICTIONS)
        else:
            self._touch()
