"""Batched embedding of image files: decoding (threads) overlaps backbone inference.

    embedder = Embedder(model, cache=EmbeddingCache())
    for batch in embedder.iter_embed(paths, cancel=event):   # streams as it goes
        batch.paths, batch.features, batch.problems
    result = embedder.embed_paths(paths)                      # all at once

Cached vectors come first (no decode, no inference); the rest is decoded by a thread pool
(Pillow and NumPy release the GIL while they work) while earlier batches run through the
backbone. A file that cannot be used is reported in ``problems`` with its reason and
skipped; nothing raises for bad images.

Backends (``backend="auto"``): on the CPU, ONNX Runtime when it is installed and the
exported backbone matches PyTorch (about 10x PyTorch eager for MobileNetV2), else PyTorch
eager, with the reason in ``backend_note`` and the log. On CUDA, PyTorch in half precision
with channels-last memory; on Apple MPS, PyTorch in float32. The backend is built lazily,
on the first image that needs inference, so constructing an ``Embedder`` on the GUI thread
is cheap and a fully cached folder never exports anything.
"""
from __future__ import annotations

import copy
import logging
import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from .cache import EmbeddingCache, FileKey
from .images import ImageError, load_for_model
from .errors import Cancelled
from .model import FewShotModel, backbone_id

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnxruntime", "torch")
CANCEL_POLL_S = 0.05  # how often a wait for decoding looks at the cancel flag
CACHE_CHUNK = 4096    # cached vectors fetched and yielded per batch


@dataclass
class Problem:
    path: str
    reason: str


@dataclass
class EmbedBatch:
    paths: list[str]
    features: np.ndarray  # (len(paths), D) float32
    problems: list[Problem] = field(default_factory=list)
    from_cache: bool = False


@dataclass
class EmbedResult:
    paths: list[str]
    features: np.ndarray
    problems: list[Problem]

    def as_dict(self) -> dict[str, np.ndarray]:
        return dict(zip(self.paths, self.features))


def choose_device(preference: str = "auto") -> torch.device:
    """"auto" -> CUDA, else Apple MPS, else CPU; or an explicit torch device string."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(preference)


def default_workers(device: torch.device) -> int:
    """Decode threads: on the CPU inference needs the cores too (and ONNX Runtime uses all
    of them), so a few; with a GPU, decoding is the bottleneck, so one per core (max 16)."""
    cores = os.cpu_count() or 2
    return max(1, min(4, cores) if device.type == "cpu" else min(16, cores))


class TorchRunner:
    """PyTorch inference. CPU: the model's own backbone, float32. CUDA: a half-precision,
    channels-last copy (the caller's model is never moved). MPS: a float32 copy."""

    def __init__(self, model: FewShotModel, device: torch.device) -> None:
        self.device = device
        self.half = device.type == "cuda"
        if device.type == "cpu":
            self.backbone = model.backbone
        else:
            self.backbone = copy.deepcopy(model.backbone).to(device)
            if self.half:
                self.backbone = self.backbone.half().to(memory_format=torch.channels_last)
        self.backbone.eval()

    @torch.inference_mode()
    def __call__(self, images: np.ndarray, between: Callable[[], None] | None = None) -> np.ndarray:
        x = torch.from_numpy(images)
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True).half()
            x = x.contiguous(memory_format=torch.channels_last)
        elif self.device.type != "cpu":
            x = x.to(self.device)
        return self.backbone(x).float().cpu().numpy()


class Embedder:
    def __init__(self, model: FewShotModel, device: str | torch.device = "auto",
                 batch_size: int = 32, cache: EmbeddingCache | None = None,
                 workers: int | None = None, backend: str = "auto",
                 threads: int | None = None, onnx_dir: str | os.PathLike[str] | None = None
                 ) -> None:
        """``backend``: "auto", "onnxruntime" (CPU only; falls back to torch with a logged
        reason when unusable) or "torch". ``threads``: inference threads for ONNX Runtime
        (default: all cores). ``onnx_dir``: where exported backbones are kept (default:
        the user's cache dir)."""
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        self.model = model.eval()
        self.device = choose_device(device) if isinstance(device, str) else device
        self.batch_size = max(1, int(batch_size))
        self.cache = cache
        self.workers = workers or default_workers(self.device)
        self.model_key = backbone_id(model)
        self.requested_backend = backend
        self.threads = threads
        self.onnx_dir = onnx_dir
        self.backend: str | None = None      # "onnxruntime" | "torch" once built
        self.backend_note = ""               # why this backend (fallback reason)
        self._runner: Callable[..., np.ndarray] | None = None
        self._runner_lock = threading.Lock()
        self._cache_warned = False

    # -- backend -------------------------------------------------------------------------
    def runner(self) -> Callable[..., np.ndarray]:
        """The inference callable (built on first use; may export ONNX, ~1-2 s)."""
        with self._runner_lock:
            if self._runner is None:
                self._runner = self._build_runner()
            return self._runner

    def _build_runner(self) -> Callable[..., np.ndarray]:
        want_onnx = self.requested_backend == "onnxruntime" or (
            self.requested_backend == "auto" and self.device.type == "cpu")
        if want_onnx and self.device.type != "cpu":
            self.backend_note = f"ONNX Runtime runs on the CPU only; using PyTorch on {self.device}"
            log.info(self.backend_note)
        elif want_onnx:
            from .onnx_backend import OnnxBackbone, OnnxUnavailable

            try:
                runner = OnnxBackbone.for_model(self.model, self.onnx_dir, self.threads)
                self.backend = "onnxruntime"
                self.backend_note = f"ONNX Runtime on CPU, {runner.threads} threads"
                return runner
            except (OnnxUnavailable, OSError) as e:
                self.backend_note = f"PyTorch on CPU (ONNX Runtime not used: {e})"
                log.warning(self.backend_note)
        self.backend = "torch"
        if not self.backend_note:
            self.backend_note = f"PyTorch on {self.device}" + (
                " (half precision, channels-last)" if self.device.type == "cuda" else "")
        return TorchRunner(self.model, self.device)

    def describe(self) -> str:
        """One line for a status bar or a log: which backend runs inference."""
        return self.backend_note or f"not started (backend {self.requested_backend}, {self.device})"

    # -- decoding ------------------------------------------------------------------------
    def _decode(self, path: str) -> np.ndarray | Problem:
        try:
            return load_for_model(path, self.model.input_spec)
        except ImageError as e:
            return Problem(path, e.reason)
        except Exception as e:  # never let one odd file stop a folder
            return Problem(path, f"cannot decode image ({type(e).__name__}: {e})")

    def _infer(self, arrays: list[np.ndarray],
               between: Callable[[], None] | None = None) -> np.ndarray:
        return np.asarray(self.runner()(np.stack(arrays), between), dtype=np.float32)

    def _cache_put(self, items: list[tuple[FileKey, np.ndarray]]) -> None:
        try:
            self.cache.put_many(self.model_key, items)  # type: ignore[union-attr]
        except Exception as e:  # a full disk or a locked cache must not stop labeling
            if not self._cache_warned:
                log.warning("embedding cache not written (%s: %s); continuing without it",
                            type(e).__name__, e)
                self._cache_warned = True

    # -- public --------------------------------------------------------------------------
    def embed_arrays(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """Features (n, D) of images already decoded with ``load_for_model`` (no cache)."""
        return self._infer(list(arrays))

    def iter_embed(self, paths: Sequence[str | os.PathLike[str]],
                   cancel: threading.Event | None = None,
                   progress: Callable[[int, int], None] | None = None) -> Iterator[EmbedBatch]:
        """Yield batches as they are ready. ``progress(done, total)`` after each batch.
        Raises ``Cancelled`` when ``cancel`` is set: checked while waiting for decoding
        (every ~50 ms), between ONNX Runtime runs inside a batch (every ``run_batch``
        images) and before each yield, so no batch is yielded after it is set."""
        def check() -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled()

        paths = [os.fspath(p) for p in paths]
        total, done = len(paths), 0
        keys: dict[str, FileKey] = {}
        problems: list[Problem] = []
        for i, p in enumerate(paths):
            if i % 1024 == 0:
                check()
            try:
                keys[p] = FileKey.of(p)
            except OSError as e:
                problems.append(Problem(p, "file not found" if isinstance(e, FileNotFoundError)
                                        else f"cannot read file ({e.strerror or e})"))
        check()
        if problems:
            done += len(problems)
            yield EmbedBatch([], np.zeros((0, 0), np.float32), problems)
        todo = [p for p in paths if p in keys]
        if self.cache is not None and todo:
            misses: list[str] = []
            for i in range(0, len(todo), CACHE_CHUNK):  # streamed: bounded memory, early rows
                check()
                chunk = todo[i:i + CACHE_CHUNK]
                try:
                    hits = self.cache.get_many(self.model_key, [keys[p] for p in chunk])
                except Exception as e:
                    log.warning("embedding cache not read (%s: %s)", type(e).__name__, e)
                    misses += todo[i:]
                    break
                hit_paths = [p for p in chunk if keys[p] in hits]
                misses += [p for p in chunk if keys[p] not in hits]
                if hit_paths:
                    done += len(hit_paths)
                    yield EmbedBatch(hit_paths, np.stack([hits[keys[p]] for p in hit_paths]),
                                     from_cache=True)
                    if progress:
                        progress(done, total)
            todo = misses
        if not todo:
            return
        batches = [todo[i:i + self.batch_size] for i in range(0, len(todo), self.batch_size)]
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="decode")
        pending: list[list[Future]] = []
        ahead = 2  # batches being decoded ahead of inference

        def submit(b: int) -> None:
            if b < len(batches):
                pending.append([pool.submit(self._decode, p) for p in batches[b]])

        try:
            for b in range(ahead):
                submit(b)
            for b in range(len(batches)):
                futures = pending.pop(0)
                submit(b + ahead)
                not_done = set(futures)
                while not_done:
                    check()
                    _, not_done = wait(not_done, timeout=CANCEL_POLL_S, return_when=FIRST_COMPLETED)
                check()
                good_paths, arrays, bad = [], [], []
                for p, f in zip(batches[b], futures):
                    r = f.result()
                    if isinstance(r, Problem):
                        bad.append(r)
                    else:
                        good_paths.append(p)
                        arrays.append(r)
                feats = self._infer(arrays, check) if arrays else np.zeros((0, 0), np.float32)
                if self.cache is not None and good_paths:  # kept even when cancelled now
                    self._cache_put([(keys[p], f) for p, f in zip(good_paths, feats)])
                check()
                done += len(batches[b])
                yield EmbedBatch(good_paths, feats, bad)
                if progress:
                    progress(done, total)
        finally:
            # Queued decodes are dropped; at most ``workers`` running ones finish.
            for fs in pending:
                for f in fs:
                    f.cancel()
            pool.shutdown(wait=False, cancel_futures=True)

    def embed_paths(self, paths: Sequence[str | os.PathLike[str]],
                    cancel: threading.Event | None = None,
                    progress: Callable[[int, int], None] | None = None) -> EmbedResult:
        """Embed everything; ``features`` rows follow ``paths`` order minus the problems."""
        got: dict[str, np.ndarray] = {}
        problems: list[Problem] = []
        for batch in self.iter_embed(paths, cancel, progress):
            got.update(zip(batch.paths, batch.features))
            problems.extend(batch.problems)
        order = [os.fspath(p) for p in paths if os.fspath(p) in got]
        feats = np.stack([got[p] for p in order]) if order else np.zeros((0, 0), np.float32)
        return EmbedResult(order, feats, problems)

