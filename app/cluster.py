"""``classify --engine ray``: embed a folder of millions of images on a Ray cluster.

The job is the one-machine ``classify``, with one step moved: the images are decoded and
embedded by a pool of Ray Data actors (``map_batches`` over a callable class), each holding
one ONNX Runtime session of the model's backbone, built by the project's own ``Embedder``
and decoded by the project's own ``load_for_model``. Everything else stays on the driver, in
the same code as one machine: the examples' learner is fitted once, the embeddings are
gathered (``N x D`` float32: 5 GB per million images at 1,280-d), scored by the same
``Session`` (a folder-aware learner reads them all) and written by the same writers. So
the labels are the one-machine labels.

Images come from a local or shared folder (scanned here, as one machine does), a list file
(one path or URI a line) or any URI Ray Data's file systems read (``s3://``, ``gs://``,
...): Ray Data's file systems (pyarrow's) list them and the actors read them through the
same file systems, no storage code of ours. (Ray Data's own read operator is not used: on
a cluster whose CPUs the actor pool takes whole, its read tasks wait forever for a CPU.)
A file that cannot be read or decoded comes back as a problem row (path and reason); it
never stops the run.

Ray is an optional extra (``pip install -e '.[cluster]'``); nothing else imports this
module, and it imports ray only when called.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from .core.images import IMAGE_EXTENSIONS
from .core.records import is_uri


@dataclass
class RayOptions:
    address: str | None = None     # None: start a local Ray instance on this machine
    num_workers: int = 2           # actors, one ONNX Runtime session each
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0   # > 0: GPU actors (the backbone runs with PyTorch on CUDA)
    batch_size: int = 64


def ray_available() -> str | None:
    """None when ``ray[data]`` imports, else a one-line reason."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except Exception as e:  # ImportError, or a broken install
        return (f"Ray is not installed ({type(e).__name__}: {e}); install the extra: "
                "pip install -e '.[cluster]'")
    return None


class EmbedActor:
    """One actor of the pool: the model's backbone in one ONNX Runtime session (or PyTorch on
    its GPU), fed rows ``{"path"}``: a local/shared path, or a URI it reads through pyarrow's
    file systems (the ones Ray Data uses)."""

    def __init__(self, model_path: str, onnx_dir: str | None, threads: int, device: str) -> None:
        from .core.checkpoints import load_checkpoint
        from .core.embedding import Embedder
        from .core.model import feature_dim

        model, _ = load_checkpoint(model_path)
        self.spec = model.input_spec
        self.dim = feature_dim(model)
        self.embedder = Embedder(model, device=device, cache=None, onnx_dir=onnx_dir,
                                 threads=threads, workers=2)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        out = np.zeros((len(paths), self.dim), np.float32)
        problems = [""] * len(paths)
        row = {p: i for i, p in enumerate(paths)}
        local = [p for p in paths if not is_uri(p)]
        if local:  # the one-machine pipeline: decode threads overlapping inference
            got = self.embedder.embed_paths(local)
            if got.paths:
                out[[row[p] for p in got.paths]] = got.features
            for pr in got.problems:
                problems[row[pr.path]] = pr.reason
        remote = [p for p in paths if is_uri(p)]
        arrays, good = [], []
        for path in remote:  # read through pyarrow's file systems (Ray Data's own)
            i = row[path]
            try:
                arrays.append(self._decode_uri(path))
                good.append(i)
            except Exception as e:  # unreadable or undecodable: a problem row, never fatal
                problems[i] = getattr(e, "reason", None) or f"cannot read ({type(e).__name__}: {e})"
        if arrays:
            out[good] = self.embedder.embed_arrays(arrays)
        return {"path": np.asarray(paths, dtype=object), "feature": out,
                "problem": np.asarray(problems, dtype=object)}

    def _decode_uri(self, uri: str) -> np.ndarray:
        from pyarrow import fs

        from .core.images import load_for_model

        filesystem, path = fs.FileSystem.from_uri(uri)
        with filesystem.open_input_file(path) as f:
            data = f.read()
        return load_for_model(uri, self.spec, data)


def list_uri(uri: str) -> list[str]:
    """The image files under ``uri``, listed by Ray Data's file systems, as URIs of the same
    scheme (the file systems drop it: ``s3://b/k`` lists as ``b/k``), sorted."""
    import ray.data

    scheme = uri.split("://", 1)[0]
    ds = ray.data.read_binary_files(uri, file_extensions=sorted(e[1:] for e in IMAGE_EXTENSIONS))
    return sorted(p if is_uri(p) else f"{scheme}://{p}" for p in ds.input_files())


def embed(paths: Sequence[str], model_path: str, options: RayOptions,
          onnx_dir: str | None = None) -> Iterator[tuple[list[str], np.ndarray, list[tuple[str, str]]]]:
    """Embed ``paths`` (local/shared paths and URIs may mix) in a Ray actor pool; yields
    ``(paths, features, problems)`` batches as they finish, in no particular order."""
    import ray.data

    if not paths:
        return
    device = "cuda" if options.gpus_per_worker > 0 else "cpu"
    threads = max(1, int(options.cpus_per_worker))
    ds = ray.data.from_items([{"path": p} for p in paths]).map_batches(
        EmbedActor, batch_size=options.batch_size, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=max(1, options.num_workers)),
        num_cpus=options.cpus_per_worker, num_gpus=options.gpus_per_worker or None,
        fn_constructor_kwargs={"model_path": os.fspath(model_path), "onnx_dir": onnx_dir,
                               "threads": threads, "device": device})
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        names = [str(p) for p in batch["path"]]
        bad = [(p, str(r)) for p, r in zip(names, batch["problem"]) if r]
        ok = [i for i, r in enumerate(batch["problem"]) if not r]
        yield [names[i] for i in ok], np.asarray(batch["feature"])[ok], bad


_started = False


def start(options: RayOptions) -> None:
    """Connect to the cluster at ``options.address``, or start a local Ray instance (unless
    this process already joined one: then that one is used, and left running)."""
    global _started
    import ray

    if ray.is_initialized():
        return
    ray.init(address=options.address or None, include_dashboard=False, log_to_driver=False)
    _started = True


def stop() -> None:
    """Leave the cluster that ``start`` joined (a local instance stops with it)."""
    global _started
    import ray

    if _started and ray.is_initialized():
        ray.shutdown()
    _started = False
