"""What the subcommands share: data flags (``train``, ``evaluate``), the device choice, the
cache opening and the error line. Heavy imports (torch, training) happen inside the
functions, so ``--help`` and argument errors stay instant."""
from __future__ import annotations

import argparse
import sys
from typing import TextIO


def add_data_flags(p: argparse.ArgumentParser, subset_default: str) -> None:
    g = p.add_argument_group("data (a folder whose leaf directories are the classes)")
    g.add_argument("--data", required=True, metavar="DIR", help="dataset root folder")
    g.add_argument("--rotations", action="store_true",
                   help="add each class rotated by 90, 180 and 270 degrees as three more classes")
    g.add_argument("--class-split", type=int, default=None, metavar="N",
                   help="split the classes (sorted by name, shuffled with --split-seed) into "
                        "N 'train' classes and the remaining 'test' classes "
                        "(Omniglot protocol: --class-split 1200 over all 1,623 characters)")
    g.add_argument("--subset", choices=["train", "test", "all", "val"] if subset_default == "test"
                   else ["train", "test", "all"], default=subset_default,
                   help=f"which part of --class-split to use (default: {subset_default}; "
                        "ignored without --class-split)")
    g.add_argument("--split-seed", type=int, default=0, help="seed of --class-split (default 0)")


def data_spec(args: argparse.Namespace):
    from ..training.data import DataSpec

    subset = args.subset if args.class_split is not None else "all"
    return DataSpec(root=args.data, rotations=args.rotations, class_split=args.class_split,
                    subset=subset, split_seed=args.split_seed,
                    val_classes=getattr(args, "val_classes", None) or 0)


def add_runtime_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default="auto", help="auto (CUDA/MPS if present), cpu, cuda, mps")
    g.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (default: torch's choice)")
    g.add_argument("--no-cache", action="store_true",
                   help="do not use the persistent embedding cache")
    g.add_argument("--quiet", action="store_true", help="no progress output")


def usable_device(pref: str, err: TextIO | None = None) -> str:
    """``pref`` if this machine has it, else "cpu" (or "auto" for an unknown name) with a
    warning, never a traceback."""
    import torch

    err = err or sys.stderr
    kind = pref.split(":")[0]
    ok = {"auto": True, "cpu": True, "cuda": torch.cuda.is_available(),
          "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())}
    if kind not in ok:
        print(f"warning: unknown device {pref!r}; using auto", file=err)
        return "auto"
    if not ok[kind]:
        print(f"warning: device {pref!r} is not available on this machine; using the CPU", file=err)
        return "cpu"
    return pref


def apply_runtime(args: argparse.Namespace) -> str:
    """Threads and device of ``train``/``evaluate``: the device as a string."""
    import torch

    from ..core.embedding import choose_device

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    return str(choose_device(usable_device(args.device)))


def open_cache(args: argparse.Namespace):
    """The persistent embedding cache, or None with ``--no-cache`` or when it cannot open
    (an unusable cache only costs speed)."""
    if args.no_cache:
        return None
    from ..core.cache import EmbeddingCache

    try:
        return EmbeddingCache()
    except Exception as e:
        print(f"warning: embedding cache unavailable ({e}); continuing without it", file=sys.stderr)
        return None


def fail(message: str, prog: str = "") -> int:
    print(f"{prog + ': ' if prog else ''}error: {message}", file=sys.stderr)
    return 2
