"""Plain records of a labeling session (no behaviour): classes, examples, predictions."""
from __future__ import annotations

import os
from dataclasses import dataclass

UNKNOWN = "unknown"
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
           "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3")


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    colour: str


@dataclass(frozen=True)
class Example:
    path: str
    class_id: int
    source: str = "example"  # "example" (added by the user) | "corrected" (assigned in review)


@dataclass(frozen=True)
class Prediction:
    class_id: int | None     # None: unknown (below threshold) or not scored yet
    label: str | None        # class name, "unknown", or None when not scored yet
    confidence: float | None
    source: str              # "example" | "corrected" | "predicted" | "pending" | "problem"


@dataclass(frozen=True)
class ResultRow:
    path: str
    label: str
    confidence: float
    source: str
    class_id: int | None


def is_uri(path: str) -> bool:
    """``s3://...``, ``gs://...``, ``file://...``: read through a file system, not a path."""
    return "://" in path


def norm_path(path: str | os.PathLike[str]) -> str:
    """Absolute local path; a URI stays as it is."""
    path = os.fspath(path)
    return path if is_uri(path) else os.path.abspath(path)


def valid_colour(c: str) -> str:
    c = c.strip()
    if len(c) == 7 and c[0] == "#" and all(ch in "0123456789abcdefABCDEF" for ch in c[1:]):
        return c.lower()
    raise ValueError(f"colour must look like #rrggbb, not {c!r}")
