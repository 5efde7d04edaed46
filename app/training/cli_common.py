"""Command-line flags shared by ``train`` and ``evaluate``: which data, which device."""
from __future__ import annotations

import argparse
import sys

import torch

from .data import DataSpec, DatasetError


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


def data_spec(args: argparse.Namespace) -> DataSpec:
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


def apply_runtime(args: argparse.Namespace) -> str:
    from ..core.embedding import choose_device

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    return str(choose_device(args.device))


def open_cache(args: argparse.Namespace):
    if args.no_cache:
        return None
    from ..core.cache import EmbeddingCache

    try:
        return EmbeddingCache()
    except Exception as e:  # an unwritable cache only costs speed
        print(f"warning: embedding cache unavailable ({e}); continuing without it", file=sys.stderr)
        return None


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


__all__ = ["add_data_flags", "data_spec", "add_runtime_flags", "apply_runtime", "open_cache",
           "fail", "DatasetError"]
