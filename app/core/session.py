"""The labeling session: classes, examples, the folder's images and their predictions. No Qt.

API summary (all methods run on one thread -- the GUI thread; heavy work is in jobs):

Classes (ordered; the index is the digit key 1..9)::

    c = s.add_class("cat", colour=None) -> ClassInfo(id, name, colour "#rrggbb")
    s.rename_class(c.id, "kitten"); s.recolour_class(c.id, "#ff0000"); s.delete_class(c.id)
    s.classes -> list[ClassInfo]; s.class_by_id(id); s.class_at(index); s.class_by_name(name)

Examples (an image path belongs to at most one class)::

    s.add_examples(class_id, paths_or_folders) -> list[str] added   (source "example")
    s.assign(paths, class_id) -> list[str] changed   (a correction: source "corrected")
    s.remove_examples(paths)
    s.examples -> list[Example(path, class_id, source)]; s.examples_of(class_id); s.example(path)

Every edit above (and set_threshold/set_method/set_model_path) is undoable::

    s.undo(); s.redo(); s.can_undo; s.can_redo; s.undo_label; s.redo_label

Folder and features::

    s.set_folder(folder, records)            # ImageRecords from scan.scan(); not undoable
    s.images -> list[str]; s.folder
    s.paths_needing_features() -> list[str]  # examples first, then folder images
    s.add_features(paths, feats, problems=[(path, reason)])   # streamed Embedder batches;
                                             # predicts the new rows at once when a fit exists
    s.problems -> dict[path, reason]

Scoring (>= 2 classes with >= 1 embedded example each)::

    s.rescore(model)                         # synchronous: fit + predict everything
    job = s.make_score_job()                 # snapshot, or None when scoring is impossible
    outcome = job.run(model, cancel)         # pure; run it in a worker thread (MAML)
    s.apply_scores(outcome) -> bool          # GUI thread; False when the snapshot was stale
    s.scores_stale                           # examples/classes/method changed since last apply

Reading results::

    s.prediction(path) -> Prediction(class_id|None, label, confidence|None, source)
    s.prediction_arrays() -> (class_ids int64 [-1 = unknown/pending], confidences float32 [nan
                              = pending]) aligned with s.images, threshold applied,
                              examples override predictions
    s.result_rows() -> list[ResultRow(path, label, confidence, source)]   # for export.py

Observers: ``unsubscribe = s.subscribe(fn)``; ``fn(event: str, info: dict)`` with events
"classes", "examples" (info["paths"]), "folder", "features" (info["paths"]), "problems",
"predictions" (info["paths"]: list or None for all), "threshold", "method", "model",
"history", "stale" (scoring inputs changed: schedule a rescore), "modified".
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Sequence

import numpy as np

from .history import Command, History
from .scan import ImageRecord, expand_paths
from .scoring import FeatureTable, ScoringError, fit, predict

UNKNOWN = "unknown"
METHODS = ("protonet", "maml")
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
           "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3")


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    colour: str


@dataclass(frozen=True)
class Example:
    path: str
    class_id: int
    source: str = "example"  # "example" (added by the user) | "corrected" (assigned in review)


@dataclass(frozen=True)
class Prediction:
    class_id: int | None     # None: unknown (below threshold) or not scored yet
    label: str | None        # class name, "unknown", or None when not scored yet
    confidence: float | None
    source: str              # "example" | "corrected" | "predicted" | "pending" | "problem"


@dataclass(frozen=True)
class ResultRow:
    path: str
    label: str
    confidence: float
    source: str
    class_id: int | None


Listener = Callable[[str, dict], None]


def _norm(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.fspath(path))


def _valid_colour(c: str) -> str:
    c = c.strip()
    if len(c) == 7 and c[0] == "#" and all(ch in "0123456789abcdefABCDEF" for ch in c[1:]):
        return c.lower()
    raise ValueError(f"colour must look like #rrggbb, not {c!r}")


class Session:
    def __init__(self, threshold: float = 0.0, method: str = "protonet",
                 model_path: str | None = None) -> None:
        self._classes: list[ClassInfo] = []
        self._examples: dict[str, Example] = {}
        self._next_id = 1
        self.threshold = float(threshold)
        self.method = method
        self.model_path = model_path
        self.folder: str | None = None
        self.images: list[str] = []
        self._image_index: dict[str, int] = {}
        self.features = FeatureTable()
        self.problems: dict[str, str] = {}
        self.history = History()
        self.modified = False
        self._listeners: list[Listener] = []
        self._generation = 0       # bumps whenever scoring inputs change
        self._applied_generation = -1
        self._adapted = None       # fitted learner of the last applied job
        self._adapted_ids: list[int] = []
        self._pred_class = np.zeros(0, np.int64)   # class id, -1 = none
        self._pred_conf = np.zeros(0, np.float32)  # nan = not scored

    # -- observers ----------------------------------------------------------------------
    def subscribe(self, fn: Listener) -> Callable[[], None]:
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def _emit(self, event: str, **info: object) -> None:
        for fn in list(self._listeners):
            fn(event, info)

    def _touch(self, stale: bool = True) -> None:
        if stale:
            self._generation += 1
            self._emit("stale")
        if not self.modified:
            self.modified = True
            self._emit("modified")

    def mark_saved(self) -> None:
        self.modified = False
        self._emit("modified")

    # -- history ------------------------------------------------------------------------
    def _push(self, label: str, do: Callable[[], None], undo: Callable[[], None],
              merge_key: str | None = None) -> None:
        self.history.push(Command(label, do, undo, merge_key))
        self._emit("history")

    def undo(self) -> str | None:
        label = self.history.undo()
        self._emit("history")
        return label

    def redo(self) -> str | None:
        label = self.history.redo()
        self._emit("history")
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
        self._emit("classes")
        self._touch()

    def _remove_class(self, class_id: int) -> None:
        self._classes = [c for c in self._classes if c.id != class_id]
        self._emit("classes")
        self._touch()
        self._emit("predictions", paths=None)  # predictions of that class become unknown

    def _replace_class(self, info: ClassInfo) -> None:
        self._classes = [info if c.id == info.id else c for c in self._classes]
        self._emit("classes")
        self._touch(stale=False)
        self._emit("predictions", paths=None)  # names/colours shown on every thumbnail

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
        self._emit("examples", paths=list(mapping))
        self._touch()
        self._emit("predictions", paths=[p for p in mapping if p in self._image_index])

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
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
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
        self._emit({"model_path": "model"}.get(name, name))
        if name == "threshold":
            self._touch(stale=False)
            self._emit("predictions", paths=None)
        else:
            self._touch()

    # -- folder and features ------------------------------------------------------------
    def set_folder(self, folder: str | os.PathLike[str] | None,
                   records: Sequence[ImageRecord | str] = ()) -> None:
        folder = _norm(folder) if folder else None
        changed = folder != self.folder
        self.folder = folder
        self.images = [r.path if isinstance(r, ImageRecord) else _norm(r) for r in records]
        self._image_index = {p: i for i, p in enumerate(self.images)}
        self._pred_class = np.full(len(self.images), -1, np.int64)
        self._pred_conf = np.full(len(self.images), np.nan, np.float32)
        self._emit("folder")
        if changed:  # re-scanning the same folder (e.g. after opening a project) is no edit
            self._touch(stale=False)
        if self._adapted is not None:
            self._predict_into(self.images)
        self._emit("predictions", paths=None)

    def clear_features(self) -> None:
        """Forget all features and predictions (after switching to another model)."""
        self.features.clear()
        self.problems.clear()
        self._adapted = None
        self._pred_class[:] = -1
        self._pred_conf[:] = np.nan
        self._generation += 1
        self._emit("stale")
        self._emit("predictions", paths=None)

    def paths_needing_features(self) -> list[str]:
        """Examples first (scoring needs them), then folder images; without known problems."""
        out = [p for p in self._examples if p not in self.features and p not in self.problems]
        seen = set(out)
        out += [p for p in self.images
                if p not in self.features and p not in self.problems and p not in seen]
        return out

    def add_features(self, paths: Sequence[str], features: np.ndarray,
                     problems: Iterable[tuple[str, str] | object] = ()) -> None:
        """Feed one Embedder batch. ``problems``: (path, reason) pairs or objects with
        ``.path`` and ``.reason`` (embedding.Problem)."""
        bad = {}
        for pr in problems:
            p, r = pr if isinstance(pr, tuple) else (pr.path, pr.reason)  # type: ignore[attr-defined]
            bad[_norm(p)] = r
        if bad:
            self.problems.update(bad)
            self._emit("problems", paths=list(bad))
        paths = [_norm(p) for p in paths]
        if not paths:
            return
        self.features.add(paths, features)
        self._emit("features", paths=paths)
        if any(p in self._examples for p in paths):
            self._generation += 1
            self._emit("stale")
        if self._adapted is not None:
            self._predict_into([p for p in paths if p in self._image_index])

    # -- scoring ------------------------------------------------------------------------
    @property
    def scores_stale(self) -> bool:
        return self._applied_generation != self._generation

    def make_score_job(self) -> "ScoreJob | None":
        """Snapshot of everything scoring needs, or None when < 2 classes have an embedded
        example. Classes whose examples are not embedded (yet) are left out."""
        ids, rows, labels = [], [], []
        for c in self._classes:
            paths = [e.path for e in self._examples.values() if e.class_id == c.id]
            present, feats = self.features.gather(paths)
            if present:
                labels += [len(ids)] * len(present)
                rows.append(feats)
                ids.append(c.id)
        if len(ids) < 2:
            return None
        qpaths, qfeats = self.features.gather(self.images)
        return ScoreJob(self._generation, self.method, ids, np.concatenate(rows),
                        np.asarray(labels, np.int64), qpaths, qfeats)

    def apply_scores(self, outcome: "ScoreOutcome") -> bool:
        """Install a finished job's predictions; images embedded since the snapshot are
        predicted now. Returns whether the job was current (else a rescore is due)."""
        self._adapted = outcome.adapted
        self._adapted_ids = list(outcome.job.class_ids)
        ids = np.asarray(self._adapted_ids, np.int64)
        idx = np.asarray([self._image_index.get(p, -1) for p in outcome.job.query_paths], np.int64)
        keep = idx >= 0
        self._pred_class[:] = -1
        self._pred_conf[:] = np.nan
        self._pred_class[idx[keep]] = ids[outcome.labels[keep]]
        self._pred_conf[idx[keep]] = outcome.confidences[keep]
        done = set(outcome.job.query_paths)
        self._predict_into([p for p in self.images if p in self.features and p not in done],
                           emit=False)
        self._applied_generation = outcome.job.generation
        self._emit("predictions", paths=None)
        return not self.scores_stale

    def rescore(self, model) -> bool:  # model: FewShotModel
        """Fit and predict synchronously. False when scoring is impossible (< 2 classes
        with embedded examples); raises ScoringError for e.g. a method the model lacks."""
        job = self.make_score_job()
        if job is None:
            self._adapted = None
            self._pred_class[:] = -1
            self._pred_conf[:] = np.nan
            self._applied_generation = self._generation
            self._emit("predictions", paths=None)
            return False
        self.apply_scores(job.run(model))
        return True

    def _predict_into(self, paths: list[str], emit: bool = True) -> None:
        if not paths or self._adapted is None:
            return
        present, feats = self.features.gather(paths)
        if not present:
            return
        labels, conf = predict(self._adapted, feats)
        idx = np.asarray([self._image_index[p] for p in present], np.int64)
        self._pred_class[idx] = np.asarray(self._adapted_ids, np.int64)[labels]
        self._pred_conf[idx] = conf
        if emit:
            self._emit("predictions", paths=present)

    # -- results ------------------------------------------------------------------------
    def prediction(self, path: str) -> Prediction:
        path = _norm(path)
        ex = self._examples.get(path)
        if ex is not None:
            c = self.class_by_id(ex.class_id)
            return Prediction(ex.class_id, c.name if c else None, 1.0, ex.source)
        if path in self.problems:
            return Prediction(None, None, None, "problem")
        i = self._image_index.get(path)
        if i is None or np.isnan(self._pred_conf[i]):
            return Prediction(None, None, None, "pending")
        conf = float(self._pred_conf[i])
        c = self.class_by_id(int(self._pred_class[i]))
        if c is None or conf < self.threshold:
            return Prediction(None, UNKNOWN, conf, "predicted")
        return Prediction(c.id, c.name, conf, "predicted")

    def prediction_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(class id or -1, confidence or nan) per folder image, threshold applied,
        examples shown as their class with confidence 1."""
        cls = self._pred_class.copy()
        conf = self._pred_conf.copy()
        live = np.isin(cls, np.asarray([c.id for c in self._classes], np.int64))
        cls[~live | (conf < self.threshold)] = -1
        for p, e in self._examples.items():
            i = self._image_index.get(p)
            if i is not None:
                cls[i], conf[i] = e.class_id, 1.0
        return cls, conf

    def result_rows(self) -> list[ResultRow]:
        """One row per scored folder image, then examples outside the folder. Pending and
        problem images are left out (see ``problems``)."""
        rows: list[ResultRow] = []
        for p in self.images:
            pr = self.prediction(p)
            if pr.source in ("pending", "problem") or pr.label is None:
                continue
            rows.append(ResultRow(p, pr.label, float(pr.confidence or 0.0), pr.source, pr.class_id))
        for e in self._examples.values():
            if e.path not in self._image_index:
                c = self.class_by_id(e.class_id)
                if c is not None:
                    rows.append(ResultRow(e.path, c.name, 1.0, e.source, c.id))
        return rows

    # -- whole-state load (projects) ------------------------------------------------------
    def load_state(self, classes: Sequence[ClassInfo], examples: Sequence[Example],
                   threshold: float, method: str, model_path: str | None) -> None:
        """Replace classes/examples/settings (opening a project). Clears undo history."""
        self._classes = list(classes)
        self._next_id = max([c.id for c in classes], default=0) + 1
        self._examples = {_norm(e.path): replace(e, path=_norm(e.path)) for e in examples}
        self.threshold, self.method, self.model_path = float(threshold), method, model_path
        self.history.clear()
        self._adapted = None
        self._generation += 1
        self.modified = False
        for ev in ("classes", "examples", "threshold", "method", "model", "history", "stale",
                   "modified"):
            self._emit(ev, **({"paths": list(self._examples)} if ev == "examples" else {}))


@dataclass
class ScoreOutcome:
    job: "ScoreJob"
    adapted: object
    labels: np.ndarray        # index into job.class_ids, per job.query_paths
    confidences: np.ndarray


@dataclass
class ScoreJob:
    """Everything one scoring run needs, copied out of the session (thread-safe to run)."""
    generation: int
    method: str
    class_ids: list[int]
    example_feats: np.ndarray
    example_labels: np.ndarray
    query_paths: list[str]
    query_feats: np.ndarray

    def run(self, model, cancel: threading.Event | None = None) -> ScoreOutcome:
        adapted = fit(model, self.method, self.example_feats, self.example_labels)
        labels, conf = predict(adapted, self.query_feats, cancel=cancel)
        return ScoreOutcome(self, adapted, labels, conf)


__all__ = ["Session", "ClassInfo", "Example", "Prediction", "ResultRow", "ScoreJob",
           "ScoreOutcome", "ScoringError", "UNKNOWN", "METHODS", "PALETTE"]
