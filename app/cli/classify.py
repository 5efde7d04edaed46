"""``python -m app classify``: label a folder from a script, as the GUI would.

    python -m app classify --support examples/ --images photos/ --out labels.csv

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
    p.add_argument("--images", required=True, metavar="DIR", help="folder to classify (recursive)")
    p.add_argument("--out", required=True, metavar="CSV", help="CSV file to write")
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
    p.set_defaults(func=run)


def _fail(msg: str) -> int:
    return fail(msg, "classify")


def support_classes(support: Path) -> list[tuple[str, list[str]]]:
    """(class name, image paths) for each non-hidden sub-folder, sorted by name."""
    from ..core.scan import scan_folder

    out = []
    for d in sorted(support.iterdir(), key=lambda p: p.name.casefold()):
        if d.is_dir() and not d.name.startswith("."):
            out.append((d.name, [r.path for r in scan_folder(d)]))
    return out


def run(args: argparse.Namespace) -> int:
    err = sys.stderr
    if not 0.0 <= args.threshold <= 1.0:
        return _fail("--threshold must be between 0 and 1")
    if args.batch_size < 1:
        return _fail("--batch-size must be at least 1")
    support, images = Path(args.support).resolve(), Path(args.images).resolve()
    if not support.is_dir():
        return _fail(f"{support}: support folder not found")
    if not images.is_dir():
        return _fail(f"{images}: images folder not found")

    from ..core.checkpoints import CheckpointError, load_checkpoint
    from ..core.defaults import default_model_path
    from ..core.embedding import Embedder
    from ..core.errors import Cancelled, ScoringError
    from ..core.export import write_csv
    from ..core.scan import scan
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
    result = scan(images)
    for path, reason in result.problems:
        print(f"skipped {path}: {reason}", file=err)
    session.set_folder(images, result.records)
    if not result.records:
        print(f"warning: no images found in {images}", file=err)

    cache = open_cache(args)
    device = usable_device(args.device, err)
    try:
        embedder = Embedder(model, device=device, batch_size=args.batch_size, cache=cache)
    except (RuntimeError, AssertionError, ValueError) as e:  # e.g. --device cuda without CUDA
        print(f"warning: device {args.device!r} is not usable ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
              "using the CPU", file=err)
        model.to("cpu")
        embedder = Embedder(model, device="cpu", batch_size=args.batch_size, cache=cache)
    todo = session.paths_needing_features()
    bar = Progress(len(todo), "embedding", stream=err, every=5.0, quiet=args.quiet)
    try:
        for batch in embedder.iter_embed(todo, progress=bar.callback()):
            session.add_features(batch.paths, batch.features, batch.problems)
    except Cancelled:  # pragma: no cover - no cancel event here
        pass
    finally:
        bar.close()
        if cache is not None:
            cache.close()
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
    skipped = len(session.problems) + len(result.problems)
    print(f"classified {n_pred} image{'s' * (n_pred != 1)} "
          f"({n_pred - n_unknown} labelled, {n_unknown} unknown) + {n_ex} example"
          f"{'s' * (n_ex != 1)}; skipped {skipped} file{'s' * (skipped != 1)}; "
          f"model {card.get('name', model_path.name)} ({model.learner(method).label}); "
          f"wrote {os.path.abspath(args.out)}", file=err)
    return 0
