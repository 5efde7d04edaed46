"""``python -m app classify``: label a folder from a script, as the GUI would.

    python -m app classify --support examples/ --images photos/ --out labels.csv
    python -m app classify --engine ray [--address HOST:6379] --support examples/ \
        --images s3://bucket/photos/ --out labels.parquet [--with-embeddings]

``--support`` has one sub-folder per class (its name is the class name) holding a few
example images. Writes the same CSV as the GUI (path,label,confidence,source; the support
images appear with source=example). Progress with ETA, bad files with their reason and a
summary line go to stderr. Exit status: 0 when a CSV was written, 2 when nothing could be
done (unloadable model, fewer than two usable classes, missing folders).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .common import fail, open_cache, usable_device
from ..core.progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classify", help="label a folder of images from example folders (no GUI)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, metavar="PATH",
                   help="checkpoint (pretrained/NAME, NAME.json or NAME.safetensors); "
                        "default: the shipped default model")
    p.add_argument("--support", required=True, metavar="DIR",
                   help="folder with one sub-folder of example images per class")
    p.add_argument("--images", required=True, metavar="DIR|LIST|URI",
                   help="folder to classify (recursive), a text file listing one image path "
                        "or URI a line, or (with --engine ray) a URI such as s3://bucket/dir/")
    p.add_argument("--out", required=True, metavar="CSV|PARQUET",
                   help="file to write: CSV, or Parquet when it ends in .parquet")
    p.add_argument("--with-embeddings", action="store_true",
                   help="Parquet only: add each image's feature vector (column 'embedding')")
    p.add_argument("--method", default=None, metavar="LEARNER",
                   help="one of the model's learners (listed in its card; "
                        "default: the model's own choice)")
    p.add_argument("--threshold", type=float, default=0.0, metavar="T",
                   help="confidence below which an image is labelled 'unknown' (0..1, default 0)")
    p.add_argument("--project", default=None, metavar="FILE",
                   help="also save a project file the desktop app can open")
    p.add_argument("--device", default="auto", help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda, mps")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="images per batch (default 32)")
    p.add_argument("--no-cache", action="store_true", help="do not use the persistent embedding cache")
    p.add_argument("--quiet", action="store_true", help="no progress bar (problems and summary still shown)")
    g = p.add_argument_group("engine (where the images are embedded)")
    g.add_argument("--engine", choices=sorted(ENGINES), default="local",
                   help="local: this process (default); ray: a Ray Data actor pool on this "
                        "machine or a cluster (pip install -e '.[cluster]')")
    g.add_argument("--address", default=None, metavar="ADDR",
                   help="ray: the cluster's head (ray start --head prints it); default: a "
                        "local Ray instance")
    g.add_argument("--num-workers", type=int, default=2, metavar="N",
                   help="ray: actors, one ONNX Runtime session each (default 2)")
    g.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="C")
    g.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G",
                   help="ray: > 0 puts the actors on GPUs (PyTorch on CUDA)")
    p.set_defaults(func=run)


def _fail(msg: str) -> int:
    return fail(msg, "classify")


def _embed_local(args: argparse.Namespace, model, model_path: Path, todo: list[str], err,
                 bar: Progress):  # noqa: ANN001
    """This process: the project's Embedder with the persistent cache (what the window runs)."""
    from ..core.embedding import Embedder

    cache = open_cache(args)
    device = usable_device(args.device, err)
    try:
        embedder = Embedder(model, device=device, batch_size=args.batch_size, cache=cache)
    except (RuntimeError, AssertionError, ValueError) as e:  # e.g. --device cuda without CUDA
        print(f"warning: device {args.device!r} is not usable ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
              "using the CPU", file=err)
        model.to("cpu")
        embedder = Embedder(model, device="cpu", batch_size=args.batch_size, cache=cache)
    try:
        for batch in embedder.iter_embed(todo, progress=bar.callback()):
            yield batch.paths, batch.features, batch.problems
    finally:
        if cache is not None:
            cache.close()


def _embed_ray(args: argparse.Namespace, model, model_path: Path, todo: list[str], err,
               bar: Progress):  # noqa: ANN001
    """A Ray Data actor pool (``app/cluster.py``); the driver gathers the embeddings."""
    from .. import cluster
    from ..core.onnx_backend import OnnxBackbone, OnnxUnavailable, onnx_cache_dir

    onnx_dir = str(onnx_cache_dir())
    try:  # export (and verify) the backbone once, here, before the actors load it
        OnnxBackbone.for_model(model, onnx_dir)
    except OnnxUnavailable as e:
        print(f"warning: no ONNX backbone ({e}); the actors run PyTorch", file=err)
    options = cluster.RayOptions(address=args.address, num_workers=args.num_workers,
                                 cpus_per_worker=args.cpus_per_worker,
                                 gpus_per_worker=args.gpus_per_worker, batch_size=args.batch_size)
    done = 0
    for paths, feats, problems in cluster.embed(todo, str(model_path), options, onnx_dir=onnx_dir):
        done += len(paths) + len(problems)
        bar.update(done)
        yield paths, feats, problems


# Where the images are embedded: each engine yields (paths, features, problems) batches.
ENGINES = {"local": _embed_local, "ray": _embed_ray}


def image_records(images: str, engine: str):  # noqa: ANN201
    """(records, problems) of ``--images``: a folder (scanned), a list file, or a URI (Ray
    lists it); a ValueError says why it cannot be used."""
    from ..core.records import is_uri, norm_path
    from ..core.scan import ImageRecord, scan

    if is_uri(images):
        if engine != "ray":
            raise ValueError(f"{images}: a URI needs --engine ray (Ray Data reads it)")
        from .. import cluster

        paths = cluster.list_uri(images)
        return [ImageRecord(p, 0, 0) for p in paths], []
    path = Path(images)
    if path.is_dir():
        result = scan(path)
        return result.records, result.problems
    if path.is_file():
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        paths = [ln if is_uri(ln) else norm_path(path.parent / ln)
                 for ln in lines if ln and not ln.startswith("#")]
        if engine != "ray" and any(is_uri(p) for p in paths):
            raise ValueError(f"{images} lists URIs: they need --engine ray")
        return [ImageRecord(p, 0, 0) for p in dict.fromkeys(paths)], []
    raise ValueError(f"{path.resolve()}: images folder or list file not found")


def support_classes(support: Path) -> list[tuple[str, list[str]]]:
    """(class name, image paths) for each non-hidden sub-folder, sorted by name."""
    from ..core.scan import scan_folder

    out = []
    for d in sorted(support.iterdir(), key=lambda p: p.name.casefold()):
        if d.is_dir() and not d.name.startswith("."):
            out.append((d.name, [r.path for r in scan_folder(d)]))
    return out


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.threshold <= 1.0:
        return _fail("--threshold must be between 0 and 1")
    if args.batch_size < 1:
        return _fail("--batch-size must be at least 1")
    support = Path(args.support).resolve()
    if not support.is_dir():
        return _fail(f"{support}: support folder not found")
    parquet = args.out.lower().endswith(".parquet")
    if args.with_embeddings and not parquet:
        return _fail("--with-embeddings needs a Parquet --out (NAME.parquet)")
    if args.engine == "ray":
        from .. import cluster

        reason = cluster.ray_available()
        if reason:
            return _fail(reason)
        cluster.start(cluster.RayOptions(address=args.address))
    try:
        return _classify(args, support, parquet)
    finally:
        if args.engine == "ray":
            cluster.stop()


def _classify(args: argparse.Namespace, support: Path, parquet: bool) -> int:
    err = sys.stderr
    from ..core.checkpoints import CheckpointError, load_checkpoint
    from ..core.defaults import default_model_path
    from ..core.errors import ScoringError
    from ..core.export import write_csv, write_parquet
    from ..core.records import norm_path
    from ..core.session import Session

    model_path = Path(args.model) if args.model else default_model_path()
    if model_path is None:
        return _fail("no --model given and no shipped model found in pretrained/")
    try:
        model, card = load_checkpoint(model_path)
    except CheckpointError as e:
        return _fail(f"cannot load the model: {e}")
    method = args.method or model.default_method
    if method not in model.methods:
        return _fail(f"the model {model_path} has no {method!r} method (it has "
                     f"{', '.join(model.methods)})")

    classes = [(n, paths) for n, paths in support_classes(support)]
    for name, paths in classes:
        if not paths:
            print(f"warning: class folder {name!r} has no images; ignored", file=err)
    classes = [(n, p) for n, p in classes if p]
    if len(classes) < 2:
        return _fail(f"{support} needs at least two sub-folders with example images "
                     f"(one per class); found {len(classes)}")

    session = Session(threshold=args.threshold, method=method, model_path=str(model_path))
    for name, paths in classes:
        try:
            c = session.add_class(name)
        except ValueError as e:
            print(f"warning: class folder {name!r} ignored ({e})", file=err)
            continue
        session.add_examples(c.id, paths)
    try:
        records, scan_problems = image_records(args.images, args.engine)
    except (ValueError, OSError) as e:
        return _fail(str(e))
    for path, reason in scan_problems:
        print(f"skipped {path}: {reason}", file=err)
    images = norm_path(args.images)
    session.set_folder(images, records)
    if not records:
        print(f"warning: no images found in {images}", file=err)

    todo = session.paths_needing_features()
    bar = Progress(len(todo), "embedding", stream=err, every=5.0, quiet=args.quiet)
    try:
        for paths, feats, problems in ENGINES[args.engine](args, model, model_path, todo, err, bar):
            session.add_features(paths, feats, problems)
    finally:
        bar.close()
    for path, reason in sorted(session.problems.items()):
        print(f"skipped {path}: {reason}", file=err)

    try:
        scored = session.rescore(model)
    except ScoringError as e:
        return _fail(str(e))
    if not scored:
        return _fail("fewer than two classes have a usable example image (see the skipped files above)")
    rows = session.result_rows()
    try:
        if parquet:
            write_parquet(args.out, rows, session.features.get if args.with_embeddings else None)
        else:
            write_csv(args.out, rows)
    except OSError as e:
        return _fail(f"cannot write {args.out}: {e.strerror or e}")
    if args.project:
        from ..core.project import save_project
        try:
            save_project(session, args.project)
        except OSError as e:
            print(f"warning: cannot save project {args.project}: {e.strerror or e}", file=err)

    n_ex = sum(r.source == "example" for r in rows)
    n_unknown = sum(r.label == "unknown" for r in rows)
    n_pred = len(rows) - n_ex
    skipped = len(session.problems) + len(scan_problems)
    print(f"classified {n_pred} image{'s' * (n_pred != 1)} "
          f"({n_pred - n_unknown} labelled, {n_unknown} unknown) + {n_ex} example"
          f"{'s' * (n_ex != 1)}; skipped {skipped} file{'s' * (skipped != 1)}; "
          f"model {card.get('name', model_path.name)} ({model.learner(method).label}); "
          f"wrote {os.path.abspath(args.out)}", file=err)
    return 0
