"""``python -m app SUBCOMMAND ...``: the command line.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds a
parser and sets ``func`` (called with the parsed args, returning an exit code).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__

# Modules that register subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = [
    "app.cli.train",
    "app.cli.evaluate",
    "app.cli.classify",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fewshot",
                                     description="Few-shot image labeling: train, evaluate, classify "
                                     "(also run as python -m app).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
