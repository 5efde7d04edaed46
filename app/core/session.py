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
    s.move_class(id, index)   # reorder (digit keys)
    s.history.seal()          # consecutive set_threshold calls merge into one step until sealed
    s.modified; s.mark_saved()                # unsaved-changes flag (event "modified")

Folder and features::

    s.set_folder(folder, records)            # ImageRecords from scan.scan(); not undoable
    s.images -> list[str]; s.folder
    s.paths_needing_features() -> list[str]  # examples first, then folder images
    s.add_features(paths, feats, problems=[(path, reason)])   # streamed Embedder batches;
                                             # predicts the new rows at once when a fit exists
    s.problems -> dict[path, reason]
    s.relocate([(old, new), ...])            # files moved on disk (export "move")
    s.clear_features()                       # after switching to a model with another backbone
    s.load_state(classes, examples, threshold, method, model_path)   # project.apply_project

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

Observers: ``unsubscribe = s.subscribe(fn)``; ``fn(event: SessionEvent)``, typed events
(``app/core/events.py``): ``event.topic`` a ``Topic`` (CLASSES, EXAMPLES, FOLDER, FEATURES,
PROBLEMS, PREDICTIONS, THRESHOLD, METHOD, MODEL, HISTORY, STALE, MODIFIED) and
``event.paths`` for the topics about images (``None``: all of them).
"""
from __future__ import annotations

import os
from dataclasses import replace
from typing import Callable, Iterable, Sequence

import numpy as np

from .edits import SessionEdits
from .events import Listener, SessionEvent, Topic
from .history import History
from .records import (PALETTE, UNKNOWN, ClassInfo, Example, Prediction, ResultRow,
                      norm_path as _norm, valid_colour as _valid_colour)
from .scan import ImageRecord
from .errors import Cancelled, ScoringError
from .jobs import FeatureTable, FolderJob, ScoreJob, ScoreOutcome, from_bf16


class Session(SessionEdits):
    def __init__(self, threshold: float = 0.0, method: str = "",
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
        self._located: tuple = ((), None)  # (key, what _located_folder gives)
        self.features = FeatureTable()
        self.problems: dict[str, str] = {}
        self.history = History()
        self.modified = False
        self._listeners: list[Listener] = []
        self._generation = 0       # bumps whenever scoring inputs change
        self._applied_generation = -1
        self._features_epoch = 0   # generation at the last clear_features (model switch)
        self._folder_epoch = 0     # bumps with every set_folder
        self._adapted = None       # fitted learner of the last applied job
        self._adapted_ids: list[int] = []
        self._pool_cache: dict = {}  # the folder's FolderPool (a folder-aware learner's work)
        self._pred_class = np.zeros(0, np.int64)   # class id, -1 = none
        self._pred_conf = np.zeros(0, np.float32)  # nan = not scored

    # -- folder and features ------------------------------------------------------------
    def set_folder(self, folder: str | os.PathLike[str] | None,
                   records: Sequence[ImageRecord | str] = ()) -> None:
        folder = _norm(folder) if folder else None
        changed = folder != self.folder
        self.folder = folder
        self.images = [r.path if isinstance(r, ImageRecord) else _norm(r) for r in records]
        self._folder_epoch += 1
        self._image_index = {p: i for i, p in enumerate(self.images)}
        self._pred_class = np.full(len(self.images), -1, np.int64)
        self._pred_conf = np.full(len(self.images), np.nan, np.float32)
        self.features.reserve(len(self.features) + len(self.images) + 256)  # one allocation
        self._emit(Topic.FOLDER)
        if changed:  # re-scanning the same folder (e.g. after opening a project) is no edit
            self._touch(stale=False)
        if self._adapted is not None:
            self._predict_positions(*self._located_folder()[:2], emit=False)
        self._emit(Topic.PREDICTIONS)

    def _located_folder(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(positions of the embedded folder images, their feature rows, their paths), kept
        while neither the folder's list nor the features change: each change of examples
        needs them twice (the job, then installing its labels), 10-20 ms a time at 100,000
        images (bench_folder.py)."""
        key = (self._folder_epoch, self.features.version)  # (relocate renames: a new version)
        if self._located[0] != key:
            pos, rows = self.features.locate(self.images)
            self._located = (key, (pos, rows, [self.images[i] for i in pos.tolist()]))
        return self._located[1]

    def relocate(self, moves: Iterable[tuple[str, str]]) -> None:
        """Files were moved on disk (export "move", ``FileReport.done`` as (source, target)
        pairs): examples, features, problems and predictions follow them, so nothing is
        embedded again. Not an undoable edit (the undo history keeps the old paths)."""
        m = {_norm(a): _norm(b) for a, b in moves}
        m = {a: b for a, b in m.items() if a != b}
        if not m:
            return
        moved_examples = []
        for old, new in m.items():
            e = self._examples.pop(old, None)
            if e is not None:
                self._examples[new] = replace(e, path=new)
                moved_examples += [old, new]
            self.features.rename(old, new)
            if old in self.problems:
                self.problems[new] = self.problems.pop(old)
        self.images = [m.get(p, p) for p in self.images]
        self._image_index = {p: i for i, p in enumerate(self.images)}
        if moved_examples:
            self._emit(Topic.EXAMPLES, moved_examples)
            self._touch(stale=False)
        self._emit(Topic.FOLDER)
        self._emit(Topic.PREDICTIONS)

    def clear_features(self) -> None:
        """Forget all features and predictions (after switching to another model)."""
        self.features.clear()
        self.problems.clear()
        self._adapted = None
        self._pred_class[:] = -1
        self._pred_conf[:] = np.nan
        self._generation += 1
        self._features_epoch = self._generation
        self._emit(Topic.STALE)
        self._emit(Topic.PREDICTIONS)

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
            self._emit(Topic.PROBLEMS, list(bad))
        paths = [_norm(p) for p in paths]
        if not paths:
            return
        self.features.add(paths, features)
        self._emit(Topic.FEATURES, paths)
        if any(p in self._examples for p in paths):
            self._generation += 1
            self._emit(Topic.STALE)
        if self._adapted is not None:
            in_folder = [p for p in paths if p in self._image_index]
            if in_folder:
                pos, rows = self.features.locate(in_folder)
                self._predict_positions(
                    np.asarray([self._image_index[in_folder[i]] for i in pos], np.int64), rows)

    # -- scoring ------------------------------------------------------------------------
    @property
    def scores_stale(self) -> bool:
        return self._applied_generation != self._generation

    def make_score_job(self, refine: bool = True) -> ScoreJob | None:
        """Snapshot of everything scoring needs, or None when < 2 classes have an embedded
        example. Classes whose examples are not embedded (yet) are left out. ``refine``:
        a folder-aware learner may read the folder (the window waits for embedding to end,
        so the folder it reads is complete)."""
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
        pos, qrows, paths = self._located_folder()
        return ScoreJob(self._generation, self.method, ids, np.concatenate(rows),
                        np.asarray(labels, np.int64), paths,
                        self.features.matrix(), qrows, pos, self._folder_epoch, refine,
                        self._pool_key(len(pos)), self._pool_cache)

    def _pool_key(self, n: int) -> tuple:
        """What the folder's ``n`` embedded images' features are: a folder-aware learner's
        work on them (the pool cache) holds while this does. Examples from outside the
        folder add rows, not folder images, so the folder is not read again for them
        (unless the feature matrix is reallocated: a new key frees the old matrix)."""
        return (self._features_epoch, self._folder_epoch, self.features.allocation, n)

    def make_folder_job(self) -> FolderJob | None:
        """Reading the folder ahead of the examples, or None when there is nothing (new) to
        read: fewer than 2 embedded images, or the folder read already."""
        pos, qrows, _ = self._located_folder()
        key = self._pool_key(len(pos))
        pool = self._pool_cache.get(key)
        if len(pos) < 2 or (pool is not None and pool.complete):
            return None
        return FolderJob(self.method, self.features.matrix(), qrows, key, self._pool_cache)

    def apply_scores(self, outcome: ScoreOutcome) -> bool:
        """Install a finished job's predictions; images embedded since the snapshot are
        predicted now. Returns whether the job was current (else a rescore is due).
        A job from before ``clear_features`` (another model's features) is ignored."""
        if outcome.job.generation < self._features_epoch:
            return False
        if not outcome.final and outcome.job.generation != self._generation:
            return False  # a stale quick pass: its final result (or a newer job) follows
        self._adapted = outcome.adapted
        self._adapted_ids = list(outcome.job.class_ids)
        ids = np.asarray(self._adapted_ids, np.int64)
        job = outcome.job
        labels, conf = outcome.labels, outcome.confidences
        if job.image_positions is not None and job.folder_epoch == self._folder_epoch:
            idx = job.image_positions
        else:  # the folder changed meanwhile: map by path
            idx = np.asarray([self._image_index.get(p, -1) for p in job.query_paths], np.int64)
            keep = idx >= 0
            idx, labels, conf = idx[keep], labels[keep], conf[keep]
        self._pred_class[:] = -1
        self._pred_conf[:] = np.nan
        self._pred_class[idx] = ids[labels]
        self._pred_conf[idx] = conf
        pos, rows, _ = self._located_folder()  # (and images embedded since the snapshot)
        late = np.isnan(self._pred_conf[pos])
        self._predict_positions(pos[late], rows[late], emit=False)
        if outcome.final:
            self._applied_generation = outcome.job.generation
        self._emit(Topic.PREDICTIONS)
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
            self._emit(Topic.PREDICTIONS)
            return False
        self.apply_scores(job.run(model))
        return True

    def _predict_positions(self, positions: np.ndarray, rows: np.ndarray,
                           emit: bool = True) -> None:
        """Predict images ``self.images[positions]`` from feature ``rows`` with the current fit."""
        if self._adapted is None or len(positions) == 0:
            return
        from .scoring import predict  # a fit exists, so torch is loaded already

        try:
            labels, conf = predict(self._adapted, self.features.matrix(), rows=rows)
        except RuntimeError:  # features of another model (shape mismatch): wait for a rescore
            self._adapted = None
            return
        self._pred_class[positions] = np.asarray(self._adapted_ids, np.int64)[labels]
        self._pred_conf[positions] = conf
        if emit:
            self._emit(Topic.PREDICTIONS, [self.images[i] for i in positions])

    # -- results ------------------------------------------------------------------------
    def feature_reader(self, paths: Sequence[str]
                       ) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        """(positions in ``paths`` that have features, ``rows(i)``: the float32 features of
        those positions' entries ``i``), read from the stored rows only when asked."""
        pos, rows = self.features.locate(paths)
        matrix = self.features.matrix()
        return pos, lambda i: from_bf16(matrix[rows[i]])

    def suggestions(self, k: int = 24) -> list[str]:
        """Label these next: up to ``k`` folder images whose labels would help the model
        most (unsure, typical of many others, unlike each other; ``app.core.suggest``),
        best first. Examples and images without features are never suggested."""
        from .suggest import suggest

        pos, rows = self.feature_reader(self.images)
        if len(pos) == 0:
            return []
        examples = {e.path for e in self._examples.values()}
        labelled = np.fromiter((self.images[i] in examples for i in pos), bool, len(pos))
        picks = suggest(rows, self._pred_conf[pos], labelled, k)
        return [self.images[pos[i]] for i in picks]

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
        self._pred_class[:] = -1     # old predictions refer to the old classes' ids
        self._pred_conf[:] = np.nan
        self._generation += 1
        self.modified = False
        for topic in (Topic.CLASSES, Topic.EXAMPLES, Topic.THRESHOLD, Topic.METHOD, Topic.MODEL,
                      Topic.HISTORY, Topic.STALE, Topic.MODIFIED, Topic.PREDICTIONS):
            self._emit(topic, list(self._examples) if topic is Topic.EXAMPLES else None)

__all__ = ["Session", "SessionEvent", "Topic", "ClassInfo", "Example", "Prediction", "ResultRow",
           "ScoreJob", "FolderJob", "Listener",
           "ScoreOutcome", "ScoringError", "Cancelled", "UNKNOWN", "PALETTE",
           "_valid_colour"]
