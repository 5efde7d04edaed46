"""Score images from their cached features: fit a learner on the examples, predict the rest.

Pure functions, no session state, so the GUI can run them in a worker thread:

    adapted = fit(model, method, example_feats, example_labels)        # e.g. MAML's inner loop
    labels, confidences = predict(adapted, query_feats)                 # one matmul, chunked
    labels, confidences = score(model, method, ex_feats, ex_labels, query_feats)
    run_job(job, model, cancel, partial)   # ScoreJob.run: a folder-aware learner gives a
                                           # quick pass, then reads the folder

The data these work on (``ScoreJob``, ``FeatureTable``) lives torch-free in ``jobs.py``.
"""
from __future__ import annotations

import threading

import numpy as np
import torch

from .errors import Cancelled, ScoringError
from .jobs import FolderJob, ScoreJob, ScoreOutcome
from .learners import Adapted, FolderPool
from .model import FewShotModel


def as_tensor(features: np.ndarray) -> torch.Tensor:
    """A feature matrix as a tensor without a copy: bfloat16 bits (``uint16``, as
    ``FeatureTable`` keeps them) as ``torch.bfloat16``, anything else as float32."""
    if features.dtype == np.uint16:
        return torch.from_numpy(features).view(torch.bfloat16)
    return torch.from_numpy(np.asarray(features, dtype=np.float32))


def _learner_device(learner: torch.nn.Module) -> torch.device:
    for t in list(learner.parameters()) + list(learner.buffers()):
        return t.device
    return torch.device("cpu")


def learner_of(model: FewShotModel, method: str):  # noqa: ANN201
    """The model's learner for ``method`` ("" = the model's default), or ScoringError."""
    method = method or model.default_method
    if method not in model.methods:
        raise ScoringError(f"this model has no {method!r} method (it has {', '.join(model.methods)})")
    return model.learner(method)


def _examples(learner: torch.nn.Module, example_feats: np.ndarray, example_labels: np.ndarray
              ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The examples as tensors on the learner's device, and their number of classes."""
    labels = np.asarray(example_labels, dtype=np.int64)
    n = int(labels.max()) + 1 if labels.size else 0
    if n < 2 or len(set(labels.tolist())) < 2:
        raise ScoringError("scoring needs at least two classes with at least one example each")
    dev = _learner_device(learner)
    s = torch.from_numpy(np.ascontiguousarray(example_feats, dtype=np.float32)).to(dev)
    return s, torch.from_numpy(labels).to(dev), n


def fit(model: FewShotModel, method: str, example_feats: np.ndarray,
        example_labels: np.ndarray, pool: FolderPool | None = None) -> Adapted:
    """Adapt ``model``'s learner for ``method`` to the examples (labels 0..N-1, N >= 2);
    a learner that reads the folder also gets ``pool`` (the folder's features)."""
    learner = learner_of(model, method)
    learner.eval()
    s, y, n = _examples(learner, example_feats, example_labels)
    try:
        with torch.no_grad():  # MAML re-enables grad for its inner loop itself
            if pool is not None and learner.capabilities.reads_pool:
                return learner.fit(s, y, num_classes=n, pool=pool)
            return learner.fit(s, y, num_classes=n)
    except ValueError as e:
        raise ScoringError(str(e)) from None


@torch.no_grad()
def predict(adapted: Adapted, query_feats: np.ndarray, batch_size: int = 1024,
            cancel: threading.Event | None = None,
            rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(argmax class index int64, its probability float32) for every query row, or for
    ``query_feats[rows]`` when ``rows`` is given (gathered chunk by chunk, no big copy).

    Small chunks keep the distance temporaries in cache: 100k x 1280-d rows take ~0.2 s on
    one CPU thread with 1024-row chunks against ~1.2 s with 16k-row chunks."""
    q = as_tensor(query_feats)
    n = q.shape[0] if rows is None else len(rows)
    index = None if rows is None else torch.from_numpy(np.asarray(rows, np.int64))
    labels = np.empty(n, np.int64)
    conf = np.empty(n, np.float32)
    dev = _device_of(adapted)
    for i in range(0, n, batch_size):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        chunk = q[i:i + batch_size] if index is None else q[index[i:i + batch_size]]
        x = chunk.to(dev, torch.float32)
        p = torch.softmax(adapted.logits(x).float(), dim=-1)
        c, l = p.max(dim=1)
        labels[i:i + batch_size] = l.cpu().numpy()
        conf[i:i + batch_size] = c.cpu().numpy()
    return labels, conf


def _device_of(adapted: Adapted) -> torch.device:
    for name in ("prototypes", "weight"):
        t = getattr(adapted, name, None)
        if isinstance(t, torch.Tensor):
            return t.device
    learner = getattr(adapted, "learner", None)
    return _learner_device(learner) if isinstance(learner, torch.nn.Module) else torch.device("cpu")


def score(model: FewShotModel, method: str, example_feats: np.ndarray, example_labels: np.ndarray,
          query_feats: np.ndarray, cancel: threading.Event | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """``fit`` then ``predict``: class indices (into the example label space) and confidences."""
    adapted = fit(model, method, example_feats, example_labels)
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    return predict(adapted, query_feats, cancel=cancel)


def _pool(job: ScoreJob | FolderJob, cancel: threading.Event | None) -> FolderPool:
    cache = job.pool_cache if job.pool_cache is not None else {}
    pool = cache.get(job.pool_key)
    if pool is None:
        rows = None if job.query_rows is None else torch.from_numpy(job.query_rows)
        pool = FolderPool(as_tensor(job.query_feats), rows)
        cache.clear()
        cache[job.pool_key] = pool
    pool.cancel = cancel
    return pool


def read_folder(job: FolderJob, model: FewShotModel,
                cancel: threading.Event | None = None) -> None:
    """``FolderJob.run``: the learner derives what it reads from the folder (its
    ``prepare``) into the session's pool cache, so the first fit after it is quick."""
    learner = learner_of(model, job.method)
    if learner.capabilities.reads_pool:
        learner.prepare(_pool(job, cancel))


def _top(job: ScoreJob, adapted: Adapted, final: bool = True) -> ScoreOutcome:
    """The outcome of a fit's pool scores: each image's top class and its probability,
    1 / sum(exp(score - top)), with no softmax of the whole (images, classes) matrix (two
    passes fewer at 100,000 images)."""
    scores = adapted.pool_logits
    assert scores is not None
    top, l = scores.max(dim=1)
    c = (scores - top[:, None]).exp_().sum(1).reciprocal_()
    return ScoreOutcome(job, adapted, l.numpy().astype(np.int64, copy=False),
                        c.numpy().astype(np.float32, copy=False), final=final)


def _preview(job: ScoreJob, model: FewShotModel, pool: FolderPool) -> ScoreOutcome | None:
    """The learner's quick inductive result on a folder it has read (``preview``), if it
    offers one."""
    learner = learner_of(model, job.method)
    learner.eval()
    s, y, n = _examples(learner, job.example_feats, job.example_labels)
    try:
        with torch.no_grad():
            quick = learner.preview(s, y, n, pool)
    except ValueError as e:
        raise ScoringError(str(e)) from None
    return None if quick is None else _top(job, quick, final=False)


def run_job(job: ScoreJob, model: FewShotModel, cancel: threading.Event | None = None,
            partial=None) -> ScoreOutcome:  # noqa: ANN001
    """``ScoreJob.run``: fit and predict, folder-aware when the learner reads the folder.
    With ``partial`` (the window), a quick inductive result goes to it first: on a folder
    the learner has read, its ``preview`` (one product); before, a fit on the examples alone
    while the folder is read."""
    reads_pool = learner_of(model, job.method).capabilities.reads_pool
    refine = job.refine and reads_pool and len(job.query_paths) > 1
    read = job.folder_read
    if refine and read and partial is not None:
        quick = _preview(job, model, _pool(job, cancel))
        if quick is not None:
            partial(quick)
    # The quick inductive pass: the result itself, or shown while the folder is read (no
    # one to show it to, e.g. `classify`: skipped).
    if not refine or (partial is not None and not read):
        adapted = fit(model, job.method, job.example_feats, job.example_labels)
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        labels, conf = predict(adapted, job.query_feats, cancel=cancel, rows=job.query_rows)
        if not refine:
            return ScoreOutcome(job, adapted, labels, conf)
        partial(ScoreOutcome(job, adapted, labels, conf, final=False))
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    return _top(job, fit(model, job.method, job.example_feats, job.example_labels,
                         pool=_pool(job, cancel)))
