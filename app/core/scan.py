"""Find the images under a folder, fast (``os.scandir``), recursively, without hanging.

    records = scan_folder("/photos", progress=lambda n: ..., cancel=event)

* Extensions: ``images.IMAGE_EXTENSIONS`` in any case (``.JPG``, ``.Tiff``, ...).
* Hidden files and folders (name starting with ".") and non-images are skipped silently.
* Symbolic links to folders are followed once: the real path of every visited folder is
  remembered, so a link loop (``a/loop -> a``) cannot make the scan run forever.
* Unreadable folders are skipped (listed in ``ScanResult.problems`` by ``scan``).
* ``cancel`` (a ``threading.Event``) stops the scan within one folder entry; ``progress(n)``
  is called every ``progress_every`` images found.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .images import IMAGE_EXTENSIONS
from .errors import Cancelled


@dataclass(frozen=True, order=True)
class ImageRecord:
    path: str        # absolute, not resolved (keeps the user's folder names)
    size: int        # bytes
    mtime_ns: int


@dataclass
class ScanResult:
    records: list[ImageRecord]
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    cancelled: bool = False


def _path_key(r: ImageRecord) -> str:
    return r.path


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def scan(folder: str | os.PathLike[str], cancel: threading.Event | None = None,
         progress: Callable[[int], None] | None = None,
         progress_every: int = 1000) -> ScanResult:
    """Scan ``folder`` recursively. Never raises for content problems; returns the records
    sorted by path, the folders that could not be read, and whether it was cancelled."""
    root = os.path.abspath(os.fspath(folder))
    records: list[ImageRecord] = []
    problems: list[tuple[str, str]] = []
    if not os.path.isdir(root):
        reason = "folder not found" if not os.path.exists(root) else "not a folder"
        return ScanResult([], [(root, reason)])
    visited: set[str] = set()
    stack = [root]
    next_report = progress_every
    while stack:
        d = stack.pop()
        try:
            real = os.path.realpath(d)
        except OSError:
            continue
        if real in visited:
            continue
        visited.add(real)
        try:
            it = os.scandir(d)
        except PermissionError:
            problems.append((d, "permission denied"))
            continue
        except OSError as e:
            problems.append((d, f"cannot read folder ({e.strerror or e})"))
            continue
        subdirs: list[str] = []
        with it:
            for entry in it:
                if cancel is not None and cancel.is_set():
                    return ScanResult(sorted(records, key=_path_key), problems, cancelled=True)
                name = entry.name
                if _is_hidden(name):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=True):
                        subdirs.append(entry.path)
                        continue
                    if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                        continue
                    if not entry.is_file(follow_symlinks=True):
                        continue
                    st = entry.stat(follow_symlinks=True)
                except OSError:  # broken link, vanished file: not an image we can use
                    continue
                records.append(ImageRecord(entry.path, int(st.st_size), int(st.st_mtime_ns)))
                if progress is not None and len(records) >= next_report:
                    progress(len(records))
                    next_report += progress_every
        # depth-first, in name order (sorted at the end anyway)
        stack.extend(sorted(subdirs, reverse=True))
    records.sort(key=_path_key)
    if progress is not None:
        progress(len(records))
    return ScanResult(records, problems)


def scan_folder(folder: str | os.PathLike[str], cancel: threading.Event | None = None,
                progress: Callable[[int], None] | None = None) -> list[ImageRecord]:
    """The sorted image records under ``folder``; raises ``Cancelled`` when cancelled."""
    result = scan(folder, cancel, progress)
    if result.cancelled:
        raise Cancelled()
    return result.records


def expand_paths(paths: Iterable[str | os.PathLike[str]],
                 cancel: threading.Event | None = None) -> list[str]:
    """Files and folders (e.g. dropped from a file manager) -> absolute image file paths.

    Folders are scanned recursively; files are kept when they have an image extension
    (whether they decode is checked later, with a reason). Order: as given, folders
    expanded in place, duplicates removed."""
    out: list[str] = []
    seen: set[str] = set()
    for p in paths:
        p = os.path.abspath(os.fspath(p))
        if os.path.isdir(p):
            found = [r.path for r in scan_folder(p, cancel)]
        elif os.path.splitext(p)[1].lower() in IMAGE_EXTENSIONS and not _is_hidden(os.path.basename(p)):
            found = [p]
        else:
            found = []
        for f in found:
            if f not in seen:
                seen.add(f)
                out.append(f)
    return out
