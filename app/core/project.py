"""Save and open a labeling project (JSON): classes, examples, corrections, threshold,
method, model, folder.

    save_project(session, "labels.fsproj.json")          # atomic; also for autosave
    data = load_project("labels.fsproj.json")            # ProjectData, or ProjectError
    apply_project(session, data)                         # restores the session (not the scan)

Paths are stored absolute and relative to the project file. On opening, an absolute path
that no longer exists but whose relative path does (the project and its images were moved
or copied together to another place or machine) resolves to the relative one.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .records import ClassInfo, Example, valid_colour as _valid_colour
from .session import Session

FORMAT = "fewshot-label-project"
VERSION = 1
SUFFIX = ".fsproj.json"


class ProjectError(ValueError):
    """A project file that cannot be opened; ``str(e)`` names the file and the problem."""


@dataclass
class ProjectData:
    classes: list[ClassInfo]
    examples: list[Example]
    threshold: float = 0.0
    method: str = ""
    model_path: str | None = None
    folder: str | None = None
    missing: list[str] = field(default_factory=list)  # example files not found on disk


def _rel(path: str, base: Path) -> str | None:
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive on Windows
        return None


def _path_entry(path: str | None, base: Path) -> dict[str, Any] | None:
    if not path:
        return None
    path = os.path.abspath(path)
    return {"abs": path, "rel": _rel(path, base)}


def _resolve(entry: Any, base: Path, where: str) -> str | None:
    if entry is None:
        return None
    if isinstance(entry, str):
        entry = {"abs": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("abs"), str):
        raise ValueError(f"{where}: a path entry must have an 'abs' string")
    ab = entry["abs"]
    rel = entry.get("rel")
    if not os.path.exists(ab) and isinstance(rel, str):
        cand = os.path.normpath(os.path.join(base, rel))
        if os.path.exists(cand):
            return cand
    return ab


def project_dict(session: Session, project_path: str | os.PathLike[str]) -> dict[str, Any]:
    base = Path(os.path.abspath(os.fspath(project_path))).parent
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": _path_entry(session.model_path, base),
        "method": session.method,
        "threshold": session.threshold,
        "folder": _path_entry(session.folder, base),
        "classes": [{"id": c.id, "name": c.name, "colour": c.colour} for c in session.classes],
        "examples": [{"class": e.class_id, "source": e.source, **(_path_entry(e.path, base) or {})}
                     for e in session.examples],
    }


def save_project(session: Session, path: str | os.PathLike[str], mark_saved: bool = True) -> Path:
    """Write atomically (a kill mid-save leaves the previous file intact). Autosave passes
    its own path and ``mark_saved=False`` so the window still shows unsaved changes."""
    path = Path(os.path.abspath(os.fspath(path)))
    atomic_write_text(path, json.dumps(project_dict(session, path), indent=2) + "\n")
    if mark_saved:
        session.mark_saved()
    return path


def parse_project(data: Any, path: Path) -> ProjectData:
    base = path.parent
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("not a fewshot-label project (missing format field)")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ValueError(f"project version {version!r} is not supported by this version of "
                         f"the app (it reads up to {VERSION})")
    classes: list[ClassInfo] = []
    names: set[str] = set()
    for i, c in enumerate(data.get("classes") or []):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or not isinstance(c.get("name"), str):
            raise ValueError(f"class #{i + 1} needs an integer id and a name")
        if c["name"].casefold() in names or any(x.id == c["id"] for x in classes):
            raise ValueError(f"class {c['name']!r} appears twice")
        names.add(c["name"].casefold())
        try:
            colour = _valid_colour(str(c.get("colour", "#808080")))
        except ValueError as e:
            raise ValueError(f"class {c['name']!r}: {e}") from None
        classes.append(ClassInfo(c["id"], c["name"], colour))
    ids = {c.id for c in classes}
    examples: list[Example] = []
    missing: list[str] = []
    for i, e in enumerate(data.get("examples") or []):
        if not isinstance(e, dict) or e.get("class") not in ids:
            raise ValueError(f"example #{i + 1} refers to no class of the project")
        source = e.get("source", "example")
        if source not in ("example", "corrected"):
            raise ValueError(f"example #{i + 1}: unknown source {source!r}")
        p = _resolve(e, base, f"example #{i + 1}")
        assert p is not None
        if not os.path.exists(p):
            missing.append(p)
        examples.append(Example(p, e["class"], source))
    method = data.get("method", "")  # a learner key of the model; "" = the model's default
    if not isinstance(method, str):
        raise ValueError(f"method must be a learner's name, not {method!r}")
    threshold = data.get("threshold", 0.0)
    if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a number between 0 and 1, not {threshold!r}")
    return ProjectData(classes, examples, float(threshold), method,
                       _resolve(data.get("model"), base, "model"),
                       _resolve(data.get("folder"), base, "folder"), missing)


def load_project(path: str | os.PathLike[str]) -> ProjectData:
    path = Path(os.path.abspath(os.fspath(path)))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError(f"{path}: project file not found") from None
    except IsADirectoryError:
        raise ProjectError(f"{path}: is a folder, not a project file") from None
    except UnicodeDecodeError:
        raise ProjectError(f"{path}: not a text file (expected a JSON project)") from None
    except OSError as e:
        raise ProjectError(f"{path}: cannot read ({e.strerror or e})") from None
    if not text.strip():
        raise ProjectError(f"{path}: empty file (not a project)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProjectError(f"{path}: corrupt project file (invalid JSON at line {e.lineno}, "
                           f"column {e.colno})") from None
    try:
        return parse_project(data, path)
    except (ValueError, TypeError, KeyError) as e:
        raise ProjectError(f"{path}: {e}") from None


def apply_project(session: Session, data: ProjectData) -> None:
    """Restore classes, examples and settings into ``session`` (undo history cleared).
    The caller scans ``data.folder`` and calls ``session.set_folder`` (slow work)."""
    session.load_state(data.classes, data.examples, data.threshold, data.method, data.model_path)
    session.folder = data.folder
