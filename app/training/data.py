"""Class-folder datasets for episodic training and evaluation.

A dataset is any folder whose *leaf* directories hold images; a class is the leaf
directory's path relative to the root (``Alphabet/character01`` for Omniglot). Passing
the Omniglot root finds all 1,623 characters of ``images_background`` and
``images_evaluation`` (class names then start with the sub-folder name).

On top of discovery:

* ``split_classes``: a seeded split of the (sorted) classes into a first part of
  ``n_first`` classes and the rest -- the Omniglot protocol's 1,200 / 423 characters.
* rotations: each class rotated by 90/180/270 degrees becomes a separate class
  (``name@90`` ...), as in the ProtoNet and MAML papers.
* ``ItemTable``: the flat table (file, rotation, class) that samplers index into.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.images import is_image_path

ROTATIONS = (0, 90, 180, 270)


class DatasetError(ValueError):
    """A dataset that cannot serve the request; the message is meant for people."""


@dataclass(frozen=True)
class ClassFolder:
    name: str            # leaf directory relative to the root, "/"-separated
    files: tuple[str, ...]  # image files, sorted


def discover_classes(root: str | os.PathLike[str]) -> list[ClassFolder]:
    """Every leaf directory under ``root`` (no sub-directories) holding image files is a
    class. Sorted by name; hidden files and folders are ignored.

    Several roots joined with ``os.pathsep`` (":" on Linux/macOS, ";" on Windows) are
    pooled: classes of the same name in different roots become one class (e.g.
    clothing-small's ``train``, ``validation`` and ``test`` folders as one pool)."""
    parts = [s for s in os.fspath(root).split(os.pathsep) if s]
    if len(parts) > 1:
        pooled: dict[str, list[str]] = {}
        for part in parts:
            for c in discover_classes(part):
                pooled.setdefault(c.name, []).extend(c.files)
        return [ClassFolder(n, tuple(sorted(f))) for n, f in sorted(pooled.items())]
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    classes: list[ClassFolder] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if dirnames:
            continue
        files = sorted(os.path.join(dirpath, f) for f in filenames
                       if not f.startswith(".") and is_image_path(f))
        if files:
            rel = Path(dirpath).relative_to(root).as_posix()
            classes.append(ClassFolder("." if rel == "" else rel, tuple(files)))
    classes.sort(key=lambda c: c.name)
    if not classes:
        raise DatasetError(f"{root}: no class folders with images found (expected "
                           "ROOT/<class>/<image files>, any depth)")
    return classes


def split_classes(classes: Sequence[ClassFolder], n_first: int, seed: int
                  ) -> tuple[list[ClassFolder], list[ClassFolder]]:
    """Seeded split of the classes (sorted by name first, so it depends only on the class
    names and the seed): ``n_first`` classes and the rest."""
    if not 0 < n_first < len(classes):
        raise DatasetError(f"--class-split {n_first}: the dataset has {len(classes)} classes; "
                           f"the split needs 0 < N < {len(classes)}")
    ordered = sorted(classes, key=lambda c: c.name)
    perm = np.random.default_rng(seed).permutation(len(ordered))
    first = sorted((ordered[i] for i in perm[:n_first]), key=lambda c: c.name)
    rest = sorted((ordered[i] for i in perm[n_first:]), key=lambda c: c.name)
    return first, rest


@dataclass
class ItemTable:
    """Flat table of examples: item i is ``files[item_file[i]]`` rotated by
    ``item_rot[i]`` degrees, of class ``item_class[i]`` (index into ``class_names``)."""

    root: str
    class_names: list[str]
    files: list[str]
    item_file: np.ndarray
    item_rot: np.ndarray
    item_class: np.ndarray
    class_items: list[np.ndarray] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # warnings about skipped classes

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.item_file)

    @property
    def rotated(self) -> bool:
        return bool((self.item_rot != 0).any())

    def describe(self) -> str:
        return f"{self.num_classes} classes, {len(self)} examples from {len(self.files)} files"


def build_items(root: str | os.PathLike[str], classes: Sequence[ClassFolder],
                rotations: bool = False, min_images: int = 1) -> ItemTable:
    """Item table of ``classes`` (optionally x4 rotations). Classes with fewer than
    ``min_images`` images are skipped, each with a warning in ``skipped``."""
    files: list[str] = []
    item_file: list[int] = []
    item_rot: list[int] = []
    item_class: list[int] = []
    names: list[str] = []
    class_items: list[np.ndarray] = []
    skipped: list[str] = []
    for c in classes:
        if len(c.files) < min_images:
            skipped.append(f"class {c.name!r} skipped: {len(c.files)} images, an episode "
                           f"needs {min_images} (shot + query)")
            continue
        first = len(files)
        files.extend(c.files)
        for rot in (ROTATIONS if rotations else (0,)):
            start = len(item_file)
            names.append(c.name if rot == 0 else f"{c.name}@{rot}")
            item_file.extend(range(first, first + len(c.files)))
            item_rot.extend([rot] * len(c.files))
            item_class.extend([len(names) - 1] * len(c.files))
            class_items.append(np.arange(start, len(item_file)))
    return ItemTable(str(root), names, files, np.asarray(item_file, dtype=np.int64),
                     np.asarray(item_rot, dtype=np.int64), np.asarray(item_class, dtype=np.int64),
                     class_items, skipped)


@dataclass(frozen=True)
class DataSpec:
    """Which classes of which folder: the CLI's dataset flags in one place."""

    root: str
    rotations: bool = False
    class_split: int | None = None   # number of classes in the "train" part
    subset: str = "all"              # "train" | "test" | "all" | "val"
    split_seed: int = 0
    val_classes: int = 0             # "val": the classes ``train`` holds out for validation

    def describe(self) -> dict[str, object]:
        d: dict[str, object] = {"data": self.root, "rotations": self.rotations}
        if self.class_split is not None:
            d.update(class_split=self.class_split, subset=self.subset, split_seed=self.split_seed)
        return d


def select_classes(spec: DataSpec) -> list[ClassFolder]:
    classes = discover_classes(spec.root)
    if spec.class_split is None:
        if spec.subset not in ("all", "train"):
            raise DatasetError(f"--subset {spec.subset} needs --class-split N")
        return classes
    train, test = split_classes(classes, spec.class_split, spec.split_seed)
    if spec.subset == "val":
        if spec.val_classes <= 0:
            raise DatasetError("--subset val needs --val-classes N (as given to train)")
        return carve_validation(train, spec.val_classes, spec.split_seed)[1]
    return {"train": train, "test": test, "all": classes}[spec.subset]


def carve_validation(classes: Sequence[ClassFolder], n_val: int, seed: int
                     ) -> tuple[list[ClassFolder], list[ClassFolder]]:
    """Hold out ``n_val`` of the training classes (seeded) for model selection."""
    if n_val <= 0:
        return list(classes), []
    if n_val >= len(classes):
        raise DatasetError(f"--val-classes {n_val}: only {len(classes)} training classes")
    val, train = split_classes(classes, n_val, seed + 1)
    return train, val


def load_table(spec: DataSpec, min_images: int, classes: Sequence[ClassFolder] | None = None,
               warn: bool = True) -> ItemTable:
    table = build_items(spec.root, select_classes(spec) if classes is None else classes,
                        spec.rotations, min_images)
    if warn:
        for msg in table.skipped:
            print(f"warning: {msg}", file=sys.stderr)
    return table


def check_way(table: ItemTable, way: int, what: str = "dataset") -> None:
    if way < 1:
        raise DatasetError("--way must be at least 1")
    if way > table.num_classes:
        extra = f" ({len(table.skipped)} skipped for too few images)" if table.skipped else ""
        raise DatasetError(f"asked for {way}-way episodes but the {what} has only "
                           f"{table.num_classes} usable classes{extra}")
