"""The background engine of the window: core import + model loading, embedding the images
batch by batch, and (re)scoring from cached features. Qt glue only; the work is core code.

* ``start()``: a job imports the core (torch) and loads the model after the window shows.
* ``ensure_features()``: embeds ``session.paths_needing_features()`` (examples first) in a
  job that streams ``EmbedBatch``es into ``session.add_features``; restarted when new
  examples need features first. A stopped run resumes on the next change or ``resume()``.
* ``schedule_rescore()``: runs ``session.make_score_job()`` in a job (MAML adaptation
  included) and applies the outcome; a newer change cancels and restarts it. A learner
  that reads the folder streams its quick inductive result first, then the folder-aware
  one; it reads the folder only while no embedding runs (and once more when it ends).
  Embedded with no examples yet, the folder is read ahead (``session.make_folder_job()``,
  the learner's ``prepare``), so the first examples get folder-aware labels at once.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from .workers import Job, JobContext, JobRunner

if TYPE_CHECKING:
    from app.core.session import Session

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    model: Any          # FewShotModel
    card: dict
    embedder: Any       # Embedder
    path: str
    device: str
    note: str = ""      # e.g. "CUDA is not available; using the CPU"


def describe(card: dict, path: str) -> str:
    name = card.get("name") or path.rsplit("/", 1)[-1]
    return str(name)


def load_model(path: str | None, device_pref: str, batch_size: int,
               cache_path: str | None) -> LoadedModel:
    """Worker-thread function: import the core, load the checkpoint, open the cache and
    build the inference backend (ONNX export on first use), so the GUI thread never waits."""
    import torch
    from PIL import Image

    Image.init()  # all Pillow format plugins, before the decode threads open files at once

    from app.core import scoring  # noqa: F401 - the score jobs' code: imported here, with torch
    from app.core.cache import EmbeddingCache
    from app.core.checkpoints import load_checkpoint
    from app.core.embedding import Embedder, choose_device

    try:
        torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    except RuntimeError:
        pass
    if not path:
        from app.core.defaults import default_model_path

        p = default_model_path()
        if p is None:
            raise FileNotFoundError("no model found in pretrained/; choose one in Settings")
        path = str(p)
    note = ""
    try:
        device = choose_device(device_pref)
        torch.empty(1, device=device)
    except Exception as e:  # asked for CUDA/MPS where there is none
        note = f"device {device_pref!r} is not usable here ({str(e).splitlines()[0]}); using the CPU"
        device = torch.device("cpu")
    path = os.path.abspath(path)
    model, card = load_checkpoint(path, device=device)
    cache = EmbeddingCache(cache_path) if cache_path else EmbeddingCache()
    onnx_dir = os.path.join(os.path.dirname(os.path.abspath(cache_path)), "onnx") if cache_path else None
    embedder = Embedder(model, device=device, batch_size=batch_size, cache=cache, workers=2,
                        onnx_dir=onnx_dir)
    try:
        embedder.runner()  # build the backend now (its imports too), not in the first batch
    except Exception as e:  # the first batch retries and reports
        log.warning("inference backend not ready yet: %s", e)
    return LoadedModel(model, card, embedder, str(path), str(device), note)


def available_devices() -> dict[str, bool]:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return {"auto": True, "cpu": True, "cuda": torch.cuda.is_available(),
            "mps": bool(mps is not None and mps.is_available())}


class Engine(QObject):
    modelLoaded = Signal(object)          # LoadedModel
    modelFailed = Signal(str)
    busy = Signal(str, int, bool)         # task text, total (0 = unknown), cancellable
    progress = Signal(int, int)
    idle = Signal(str)                    # message for the status bar ("" for none)
    error = Signal(str)

    def __init__(self, cache_path: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache_path = cache_path
        self.runner = JobRunner(3, self)
        self.session: Session | None = None
        self.loaded: LoadedModel | None = None
        self.embed_job: Job | None = None
        self.score_job: Job | None = None
        self.folder_job: Job | None = None  # a folder-aware learner reading the folder ahead
        self.model_job: Job | None = None
        self._rescore_due = False
        self._embed_due = False
        self.stopped = False     # the user pressed Cancel: do not restart embedding by itself
        self.closed = False      # the window is closing: start nothing new
        self._rescore_timer = QTimer(self)
        self._rescore_timer.setSingleShot(True)
        self._rescore_timer.setInterval(30)
        self._rescore_timer.timeout.connect(self._start_rescore)

    # model ---------------------------------------------------------------------------
    def load(self, path: str | None, device: str, batch_size: int) -> None:
        if self.closed:
            return
        if self.embed_job is not None:
            self.embed_job.cancel()
        cache = self.cache_path
        job = Job(lambda ctx: load_model(path, device, batch_size, cache), name="Loading the model")
        self.model_job = job
        job.signals.result.connect(lambda lm, j=job: self._model_ready(lm) if j is self.model_job else None)
        job.signals.error.connect(lambda m, j=job: self._model_failed(m) if j is self.model_job else None)
        self.busy.emit("Loading the model...", 0, False)
        self.runner.start(job)

    def _model_ready(self, lm: LoadedModel) -> None:
        old = self.loaded
        self.loaded = lm
        if self.session is not None and old is not None and old.embedder.model_key != lm.embedder.model_key:
            self.session.clear_features()
        self.modelLoaded.emit(lm)
        self.idle.emit(f"Model {describe(lm.card, lm.path)} on {lm.device}"
                       + (f" ({lm.note})" if lm.note else ""))
        self.restart()  # a run of the previous model stops; this one takes over
        self.schedule_rescore()

    def _model_failed(self, msg: str) -> None:
        self.idle.emit("")
        self.modelFailed.emit(msg)

    # embedding ----------------------------------------------------------------------
    def restart(self) -> None:
        """The folder changed: stop embedding the old one and start on the new one."""
        self.stopped = False
        if self._running(self.embed_job):
            self._embed_due = True
            self.embed_job.cancel()  # type: ignore[union-attr]
        else:
            self.ensure_features()

    def resume(self, examples_first: bool = False) -> None:
        """Embed what lacks features again after a stop (F5, new examples, an opened project)."""
        self.stopped = False
        self.ensure_features(examples_first)

    def _running(self, job: Job | None) -> bool:
        """Started and its ``finished`` not yet handled in this (the GUI) thread."""
        return job is not None and job in self.runner.jobs

    def ensure_features(self, examples_first: bool = False) -> bool:
        """Start embedding what lacks features; if a run is going and new examples need
        features, restart it so they come first."""
        s, lm = self.session, self.loaded
        if s is None or lm is None or self.stopped or self.closed:
            return False
        if self._running(self.embed_job):
            if examples_first and any(p not in s.features and p not in s.problems
                                      for p in (e.path for e in s.examples)):
                self._embed_due = True
                self.embed_job.cancel()  # type: ignore[union-attr]
            return True
        todo = s.paths_needing_features()
        if not todo:
            return False
        embedder = lm.embedder

        def run(ctx: JobContext) -> int:
            for batch in embedder.iter_embed(todo, cancel=ctx.cancel_event, progress=ctx.progress):
                ctx.emit(batch)
            return len(todo)

        job = Job(run, name="Classifying")
        job.model = lm  # type: ignore[attr-defined]
        self.embed_job = job
        job.signals.partial.connect(lambda b, j=job: self._batch(j, b))
        job.signals.progress.connect(self.progress)
        job.signals.error.connect(lambda m, j=job: self._embed_failed(j, m))
        job.signals.finished.connect(lambda j=job: self._embed_finished(j))
        self.busy.emit(f"Classifying {len(todo):,} image{'s' * (len(todo) != 1)}", len(todo), True)
        self.runner.start(job)
        return True

    def _batch(self, job: Job, batch: Any) -> None:
        if self.session is None or job.model is not self.loaded:  # type: ignore[attr-defined]
            return  # a run of a replaced model
        self.session.add_features(batch.paths, batch.features, batch.problems)

    def _embed_failed(self, job: Job, message: str) -> None:
        """An unexpected failure (not a bad image: those are problems) stops the run until
        the user changes something or presses F5: no retry loop."""
        job.failed = True  # type: ignore[attr-defined]
        self.stopped = True
        self._embed_due = False
        self.error.emit(message)

    def _embed_finished(self, job: Job) -> None:
        if job is not self.embed_job:
            return
        self.embed_job = None
        if self.closed:
            return
        if self._reads_pool():
            self.schedule_rescore()  # the folder is complete (or stopped): read it now
        if self._embed_due or (not job.is_cancelled and not getattr(job, "failed", False)
                               and self.session is not None and self.session.paths_needing_features()):
            self._embed_due = False
            if not self.stopped:
                QTimer.singleShot(0, lambda: self._continue(job))
                return
        self.idle.emit(self._summary(job))

    def _continue(self, job: Job) -> None:
        if not self.closed and not self.ensure_features():
            self.idle.emit(self._summary(job))

    def _summary(self, job: Job) -> str:
        s = self.session
        if s is None:
            return ""
        if getattr(job, "failed", False):
            return "Classification stopped by an error; F5 tries again"
        if job.is_cancelled and self.stopped:
            return "Classification stopped; it goes on after the next change (or F5)"
        n = sum(1 for p in s.images if p in s.features)
        bad = sum(1 for p in s.images if p in s.problems)
        return f"Classified {n:,} image{'s' * (n != 1)}" + (f", {bad} skipped (see Problems)" if bad else "")

    def cancel(self) -> None:
        """The Cancel button: stop embedding and any running adaptation."""
        self.stopped = True
        self._embed_due = False
        if self.embed_job is not None:
            self.embed_job.cancel()
        for job in (self.score_job, self.folder_job):
            if job is not None:
                job.cancel()

    # scoring ---------------------------------------------------------------------------
    def _learner(self, method: str):  # noqa: ANN202
        """The loaded model's learner for ``method``, or None (no model, or no such learner)."""
        from app.core.scoring import ScoringError, learner_of

        if self.loaded is None:
            return None
        try:
            return learner_of(self.loaded.model, method)
        except ScoringError:
            return None

    def _reads_pool(self) -> bool:
        learner = self._learner(self.session.method) if self.session is not None else None
        return bool(learner is not None and learner.capabilities.reads_pool)

    def schedule_rescore(self) -> None:
        self._rescore_timer.start()

    def _start_rescore(self) -> None:
        s, lm = self.session, self.loaded
        if s is None or self.closed:
            return
        if self._running(self.score_job):
            self._rescore_due = True
            self.score_job.cancel()
            return
        # While the folder is embedded or read ahead, the quick inductive labels only; the
        # folder-aware ones follow when it is complete (``_embed_finished``, ``_folder_read``).
        sj = s.make_score_job(refine=not (self._running(self.embed_job)
                                          or self._running(self.folder_job)))
        if sj is None:
            s.rescore(None)  # nothing to score with: clears the predictions
            self._read_folder()
            return
        if lm is None:
            return

        model = lm.model
        job = Job(lambda ctx: sj.run(model, ctx.cancel_event, partial=ctx.emit), name="Scoring")
        self.score_job = job
        self._rescore_due = False
        job.signals.partial.connect(lambda o: self.session.apply_scores(o) if self.session else None)
        job.signals.result.connect(self._scored)
        job.signals.error.connect(self.error)
        job.signals.finished.connect(lambda j=job: self._score_finished(j))
        learner = self._learner(sj.method)
        if learner is not None and not self._running(self.embed_job):
            if learner.capabilities.gradient_steps:
                self.busy.emit(f"Adapting {learner.label} to the examples...", 0, True)
            elif learner.capabilities.reads_pool and sj.refine:
                doing = "learning from the folder" if sj.folder_read else "reading the folder"
                self.busy.emit(f"{learner.label}: {doing}...", 0, True)
        self.runner.start(job)

    def _read_folder(self) -> None:
        """No examples yet and the folder embedded: a folder-aware learner reads the folder
        now (its ``prepare``: seconds at 100,000 images), so the first examples are
        labelled folder-aware at once instead of after that wait."""
        s, lm = self.session, self.loaded
        if (s is None or lm is None or self.stopped or self.closed or not self._reads_pool()
                or self._running(self.embed_job) or self._running(self.folder_job)):
            return
        fj = s.make_folder_job()
        if fj is None:
            return
        model, learner = lm.model, self._learner(fj.method)
        job = Job(lambda ctx: fj.run(model, ctx.cancel_event), name="Reading the folder")
        self.folder_job = job
        job.signals.error.connect(self.error)
        job.signals.cancelled.connect(lambda: self.idle.emit(
            "Reading the folder cancelled; it is read with the first examples"))
        job.signals.result.connect(lambda _: self._folder_read())
        job.signals.finished.connect(lambda j=job: setattr(self, "folder_job", None)
                                     if j is self.folder_job else None)
        self.busy.emit(f"{learner.label}: reading the folder...", 0, True)
        self.runner.start(job)

    def _folder_read(self) -> None:
        if not self.closed:
            self.idle.emit("Folder read: examples are labelled as soon as they are given")
            self.schedule_rescore()  # examples given meanwhile: their folder-aware labels

    def _scored(self, outcome: Any) -> None:
        if self.session is None:
            return
        if not self.session.apply_scores(outcome):
            self._rescore_due = True

    def _score_finished(self, job: Job) -> None:
        if job is self.score_job:
            self.score_job = None
        if self._rescore_due:
            self._rescore_due = False
            self.schedule_rescore()
        elif not self._running(self.embed_job):
            self.idle.emit("Adaptation cancelled" if job.is_cancelled else "")

    @property
    def working(self) -> bool:
        """A job is running or its last signals are still queued for the GUI thread."""
        return bool(self.runner.jobs) or self._rescore_timer.isActive()

    def shutdown(self, msecs: int = 10000) -> None:
        self.closed = True
        self._rescore_timer.stop()
        self.runner.cancel_all()
        self.runner.wait(msecs)
