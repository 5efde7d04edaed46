from pathlib import Path

import numpy as np
import pytest

from app.training.data import (DataSpec, DatasetError, build_items, carve_validation,
                               discover_classes, load_table, select_classes, split_classes)

from .conftest import make_dataset


def test_leaf_directories_are_classes_named_by_relative_path(tiny_data: Path) -> None:
    (tiny_data / "alpha0" / "notes.txt").write_text("not an image")
    classes = discover_classes(tiny_data)
    names = [c.name for c in classes]
    assert names == sorted(names)
    assert "alpha0/char0" in names and "alpha1/small" in names
    assert len(names) == 9
    assert all(len(c.files) == 6 for c in classes if c.name != "alpha1/small")
    assert all(f.endswith(".png") for c in classes for f in c.files)


def test_missing_or_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        discover_classes(tmp_path / "nope")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no class folders"):
        discover_classes(tmp_path / "empty")


def test_small_classes_are_skipped_with_a_warning(tiny_data: Path, capsys) -> None:
    table = load_table(DataSpec(str(tiny_data)), min_images=3)
    assert "alpha1/small" not in table.class_names
    assert table.num_classes == 8
    err = capsys.readouterr().err
    assert "warning" in err and "alpha1/small" in err and "2 images" in err


def test_rotations_make_four_classes_per_folder(tiny_data: Path) -> None:
    classes = [c for c in discover_classes(tiny_data) if c.name != "alpha1/small"]
    table = build_items(str(tiny_data), classes, rotations=True)
    assert table.num_classes == 4 * len(classes)
    assert "alpha0/char0@90" in table.class_names
    for items in table.class_items:
        assert len(items) == 6
        assert len(set(table.item_rot[items].tolist())) == 1
        assert len(set(table.item_class[items].tolist())) == 1
    assert sorted(set(table.item_rot.tolist())) == [0, 90, 180, 270]
    assert len(table.files) == 6 * len(classes)


def test_class_split_is_seeded_disjoint_and_complete(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", {f"c{i:02d}": 2 for i in range(20)})
    classes = discover_classes(root)
    a1, b1 = split_classes(classes, 12, seed=0)
    a2, b2 = split_classes(list(reversed(classes)), 12, seed=0)
    a3, _ = split_classes(classes, 12, seed=1)
    assert [c.name for c in a1] == [c.name for c in a2]
    assert {c.name for c in a1} != {c.name for c in a3}
    assert len(a1) == 12 and len(b1) == 8
    assert not {c.name for c in a1} & {c.name for c in b1}
    spec_train = DataSpec(str(root), class_split=12, subset="train")
    spec_test = DataSpec(str(root), class_split=12, subset="test")
    assert [c.name for c in select_classes(spec_train)] == [c.name for c in a1]
    assert [c.name for c in select_classes(spec_test)] == [c.name for c in b1]
    with pytest.raises(DatasetError, match="class-split"):
        split_classes(classes, 20, seed=0)


def test_validation_is_carved_from_training_classes(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", {f"c{i:02d}": 2 for i in range(10)})
    train, val = carve_validation(discover_classes(root), 3, seed=0)
    assert len(val) == 3 and len(train) == 7
    assert not {c.name for c in train} & {c.name for c in val}
    assert np.all([c.name.startswith("c") for c in train + val])


def test_validation_subset_is_what_train_held_out(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", {f"c{i:02d}": 2 for i in range(20)})
    train, _ = split_classes(discover_classes(root), 12, seed=4)
    kept, held = carve_validation(train, 3, seed=4)
    val = select_classes(DataSpec(str(root), class_split=12, subset="val", split_seed=4,
                                  val_classes=3))
    assert [c.name for c in val] == [c.name for c in held]
    assert not {c.name for c in val} & {c.name for c in kept}
    with pytest.raises(DatasetError, match="val-classes"):
        select_classes(DataSpec(str(root), class_split=12, subset="val"))
