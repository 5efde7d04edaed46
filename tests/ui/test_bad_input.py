"""Broken files in the folder: the good images are classified, the bad ones are listed in
the problems view with their reason, and nothing crashes."""
from __future__ import annotations

import re

from app.ui.image_model import Filter, Source
from tests.imaging_helpers import bad_files, solid

from .conftest import coloured_folder, drop_files, wait_idle


def test_truncated_empty_and_fake_images_are_reported(make_window, qtbot, tmp_path):
    w = make_window()
    red, blue = w.add_class("red"), w.add_class("blue")
    drop_files(w.class_panel.card(red.id), [solid(tmp_path / "ex" / "r.png", "red", seed=1)])
    drop_files(w.class_panel.card(blue.id), [solid(tmp_path / "ex" / "b.png", "blue", seed=2)])
    folder = tmp_path / "mixed"
    truth = coloured_folder(folder, 3, 3)
    bad = bad_files(folder / "broken")
    w.files.open_folder(str(folder))
    qtbot.waitUntil(lambda: w.image_model.rowCount() == len(truth) + len(bad), timeout=10_000)
    wait_idle(qtbot, w)
    m = w.image_model
    names = [c.name for c in m.classes]
    for p, colour in truth.items():
        i = m.row_of[p]
        assert m.source[i] == Source.PREDICTED and names[m.label[i]] == colour
    shown = w.problems.problems()
    assert set(shown) == set(bad)
    for p, pattern in bad.items():
        assert re.search(pattern, shown[p], re.I), (p, shown[p])
        assert m.source[m.row_of[p]] == Source.PROBLEM
    assert w.problems.isVisible()            # shown the first time problems appear
    assert m.counts()["problems"] == len(bad)
    m.set_view_options(filter_=Filter.PROBLEMS)
    assert sorted(m.path_at(r) for r in range(m.rowCount())) == sorted(bad)
    # the CSV leaves the skipped files out and keeps every good one
    out = tmp_path / "labels.csv"
    w.files.export_csv(str(out))
    text = out.read_text()
    assert all(p not in text for p in bad) and all(p in text for p in truth)


def test_bad_example_is_reported_not_fatal(make_window, qtbot, tmp_path):
    w = make_window()
    red, blue = w.add_class("red"), w.add_class("blue")
    bad = bad_files(tmp_path / "badex")
    drop_files(w.class_panel.card(red.id), list(bad) + [solid(tmp_path / "r.png", "red")])
    drop_files(w.class_panel.card(blue.id), [solid(tmp_path / "b.png", "blue", seed=3)])
    truth = coloured_folder(tmp_path / "photos", 2, 2)
    w.files.open_folder(str(tmp_path / "photos"))
    qtbot.waitUntil(lambda: w.image_model.rowCount() == 4, timeout=10_000)
    wait_idle(qtbot, w)
    assert set(bad) <= set(w.problems.problems())
    names = [c.name for c in w.image_model.classes]
    assert [names[w.image_model.label[w.image_model.row_of[p]]] for p in truth] == list(truth.values())
