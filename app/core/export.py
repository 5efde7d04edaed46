"""Output: a CSV of labels, or the files copied/moved into one sub-folder per class.

    write_csv(path, session.result_rows())            # atomic; columns path,label,confidence,source
    write_parquet(path, rows, embeddings)              # the same columns (+ embedding), pyarrow
    plan = plan_files(rows, dest, include_unknown=True)  # what would happen (for a dialog)
    report = apply_plan(plan, mode="copy" | "move")    # never overwrites: "x (2).jpg"

CSV cells starting with = + - @ (or a tab / carriage return) get a leading apostrophe so a
spreadsheet shows them as text instead of running them as formulas.
"""
from __future__ import annotations

import csv
import io
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

from .atomic import atomic_write_bytes, atomic_write_text

CSV_COLUMNS = ("path", "label", "confidence", "source")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class Row(Protocol):
    path: str
    label: str
    confidence: float
    source: str


def neutralise(cell: str) -> str:
    """Prefix a cell a spreadsheet would treat as a formula with an apostrophe."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def csv_text(rows: Iterable[Row]) -> str:
    buf = io.StringIO()
    # RFC 4180 line ends; the writer then also quotes cells holding a bare CR or LF
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([neutralise(str(r.path)), neutralise(str(r.label)),
                    f"{float(r.confidence):.4f}", r.source])
    return buf.getvalue()


def write_csv(path: str | os.PathLike[str], rows: Iterable[Row]) -> int:
    """Write the CSV atomically (a kill mid-write leaves the old file); returns the row count."""
    rows = list(rows)
    atomic_write_text(path, csv_text(rows))
    return len(rows)


def write_parquet(path: str | os.PathLike[str], rows: Iterable[Row],
                  embeddings: Callable[[str], Sequence[float] | None] | None = None) -> int:
    """The CSV's columns as a Parquet file (atomic), for large runs; with ``embeddings``
    (path -> vector or None) also an ``embedding`` list<float32> column. Needs pyarrow
    (the ``cluster`` extra brings it)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise OSError("writing Parquet needs pyarrow (pip install pyarrow, or the "
                      "'cluster' extra)") from None
    rows = list(rows)
    cols = {"path": [str(r.path) for r in rows], "label": [str(r.label) for r in rows],
            "confidence": pa.array([float(r.confidence) for r in rows], pa.float32()),
            "source": [r.source for r in rows]}
    if embeddings is not None:
        import numpy as np

        vecs = [embeddings(str(r.path)) for r in rows]
        dim = next((len(v) for v in vecs if v is not None), 0)
        flat = np.zeros((len(rows), dim), np.float32)
        for i, v in enumerate(vecs):
            if v is not None:
                flat[i] = v
        missing = pa.array([v is None for v in vecs])
        cols["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), dim,
                                                               mask=missing)
    buf = pa.BufferOutputStream()
    pq.write_table(pa.table(cols), buf)
    atomic_write_bytes(path, buf.getvalue().to_pybytes())
    return len(rows)


def read_csv(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# -- class folders ---------------------------------------------------------------------------
_BAD_CHARS = '<>:"/\\|?*'


def safe_folder_name(label: str) -> str:
    """A class name as a folder name on every platform."""
    name = "".join("_" if (ch in _BAD_CHARS or ord(ch) < 32) else ch for ch in label).strip(" .")
    return name or "_"


@dataclass(frozen=True)
class FileOp:
    source: str
    target: str
    label: str


@dataclass
class FilePlan:
    dest: str
    ops: list[FileOp]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def counts(self) -> dict[str, int]:
        return dict(Counter(op.label for op in self.ops))

    def summary(self, mode: str = "copy") -> str:
        verb = "Move" if mode == "move" else "Copy"
        parts = ", ".join(f"{n} to {label}" for label, n in sorted(self.counts().items()))
        text = f"{verb} {len(self.ops)} file{'s' * (len(self.ops) != 1)} into {self.dest}"
        return text + (f": {parts}" if parts else "")


@dataclass
class FileReport:
    done: list[FileOp] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def summary(self, mode: str = "copy") -> str:
        verb = "moved" if mode == "move" else "copied"
        s = f"{len(self.done)} file{'s' * (len(self.done) != 1)} {verb}"
        return s + (f", {len(self.failed)} failed" if self.failed else "")


def _free_name(target: Path, taken: set[str]) -> Path:
    """``target`` or ``stem (2).ext``, ``stem (3).ext``... that neither exists nor is planned."""
    cand, n = target, 1
    while cand.exists() or str(cand) in taken:
        n += 1
        cand = target.with_name(f"{target.stem} ({n}){target.suffix}")
    return cand


def plan_files(rows: Sequence[Row], dest: str | os.PathLike[str],
               include_unknown: bool = True) -> FilePlan:
    """Where every file would go; nothing is touched. Targets never collide with existing
    files or each other."""
    dest_p = Path(os.path.abspath(os.fspath(dest)))
    ops: list[FileOp] = []
    skipped: list[tuple[str, str]] = []
    taken: set[str] = set()
    for r in rows:
        if r.label == "unknown" and not include_unknown:
            skipped.append((r.path, "unknown (below the confidence threshold)"))
            continue
        if not os.path.isfile(r.path):
            skipped.append((r.path, "file not found"))
            continue
        target = _free_name(dest_p / safe_folder_name(r.label) / Path(r.path).name, taken)
        if os.path.abspath(r.path) == str(target):
            continue
        taken.add(str(target))
        ops.append(FileOp(r.path, str(target), r.label))
    return FilePlan(str(dest_p), ops, skipped)


def apply_plan(plan: FilePlan, mode: str = "copy", cancel=None) -> FileReport:
    """Copy or move as planned. A target that appeared since planning gets a new free name;
    an existing file is never overwritten. Errors are collected, not raised."""
    if mode not in ("copy", "move"):
        raise ValueError(f"mode must be 'copy' or 'move', not {mode!r}")
    report = FileReport()
    for op in plan.ops:
        if cancel is not None and cancel.is_set():
            break
        try:
            target = Path(op.target)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                target = _free_name(target, set())
            if mode == "copy":
                _copy_exclusive(op.source, target)
            else:
                _move_exclusive(op.source, target)
            report.done.append(FileOp(op.source, str(target), op.label))
        except OSError as e:
            report.failed.append((op.source, e.strerror or str(e)))
    return report


def _copy_exclusive(src: str, target: Path) -> None:
    # "xb" fails instead of overwriting if the name was taken in the meantime
    with open(src, "rb") as fi, open(target, "xb") as fo:
        shutil.copyfileobj(fi, fo, 1 << 20)
    shutil.copystat(src, target)


def _move_exclusive(src: str, target: Path) -> None:
    try:
        os.link(src, target)  # atomic, fails if target exists; same filesystem only
        os.unlink(src)
        return
    except FileExistsError:
        raise
    except OSError:
        pass
    _copy_exclusive(src, target)
    os.unlink(src)
