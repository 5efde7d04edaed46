"""Undo/redo of a class delete and of a correction (keyboard shortcuts on the real window);
review tools: threshold -> unknown, filter by class, least confident first; copy into
class folders never overwrites."""
from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import Qt

from app.ui.image_model import UNKNOWN, Filter, Sort, Source

from .conftest import two_class_window, wait_idle


def _setup(make_window, qtbot, tmp_path, n=4):
    w, red, blue, truth = two_class_window(make_window, qtbot, tmp_path, n)
    w.activateWindow()
    w.grid.setFocus()
    return w, red, blue, truth


def _labels(w):
    names = [c.name for c in w.image_model.classes]
    return {p: (names[l] if l >= 0 else l) for p, l in zip(w.image_model.paths, w.image_model.label)}


def test_undo_redo_class_delete_and_correction(make_window, qtbot, tmp_path):
    w, red, blue, truth = _setup(make_window, qtbot, tmp_path)
    before = _labels(w)
    assert before == truth

    w.class_panel.card(blue.id).delete_action.trigger()
    wait_idle(qtbot, w)
    assert [c.name for c in w.session.classes] == ["red"]
    qtbot.waitUntil(lambda: blue.id not in w.class_panel.cards)
    assert all(l == -1 for l in w.image_model.label)   # one class: nothing to classify with

    qtbot.keyClick(w.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    wait_idle(qtbot, w)
    assert [c.name for c in w.session.classes] == ["red", "blue"]
    assert [e.path for e in w.session.examples_of(blue.id)] == [str(tmp_path / "ex" / "b.png")]
    qtbot.waitUntil(lambda: blue.id in w.class_panel.cards)
    assert _labels(w) == before

    qtbot.keyClick(w.grid, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    wait_idle(qtbot, w)
    assert [c.name for c in w.session.classes] == ["red"]
    w.undo()
    wait_idle(qtbot, w)

    target = sorted(p for p, c in truth.items() if c == "blue")[0]
    w.grid.select_paths([target])
    qtbot.keyClick(w.grid, Qt.Key.Key_1)       # "this one is red"
    wait_idle(qtbot, w)
    assert _labels(w)[target] == "red"
    assert w.image_model.source[w.image_model.row_of[target]] == Source.CORRECTED
    qtbot.keyClick(w.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    wait_idle(qtbot, w)
    assert w.session.example(target) is None
    assert _labels(w) == before
    qtbot.keyClick(w.grid, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    wait_idle(qtbot, w)
    assert w.session.example(target).source == "corrected"
    # Delete on the grid removes the correction again
    w.grid.select_paths([target])
    qtbot.keyClick(w.grid, Qt.Key.Key_Delete)
    wait_idle(qtbot, w)
    assert w.session.example(target) is None and _labels(w) == before


def test_threshold_filter_and_sort(make_window, qtbot, tmp_path):
    w, red, blue, truth = _setup(make_window, qtbot, tmp_path)
    m = w.image_model
    conf = m.confidence.copy()
    above = int(np.ceil(conf.max() * 100))       # slider percent above every confidence
    w.review.threshold.setValue(above)            # the slider, as a user drags it
    wait_idle(qtbot, w)
    assert w.session.threshold == above / 100
    assert all(l == UNKNOWN for l in m.label)     # everything below it counts as unknown
    w.review.filter.setCurrentIndex(w.review.filter.findData(int(Filter.UNKNOWN)))
    assert m.rowCount() == len(truth)
    w.review.filter.setCurrentIndex(0)
    w.review.threshold.setValue(int(conf.min() * 100))
    wait_idle(qtbot, w)
    assert _labels(w) == truth
    assert w.session.undo_label.startswith("Undo Set threshold")  # one merged undo step
    # filter: only red predictions (no unknowns among them)
    w.review.filter.setCurrentIndex(w.review.filter.findData(0))
    shown = {m.path_at(r) for r in range(m.rowCount())}
    assert shown == {p for p, c in truth.items() if c == "red"}
    # least confident first over everything
    w.review.filter.setCurrentIndex(0)
    w.review.sort.setCurrentIndex(w.review.sort.findData(int(Sort.LEAST_CONFIDENT)))
    shown_conf = [m.confidence[m.source_row(r)] for r in range(m.rowCount())]
    assert m.rowCount() == len(truth) and shown_conf == sorted(shown_conf)
    # a digit key acts on the selected (sorted) row
    first = m.path_at(0)
    w.grid.selectionModel().select(m.index(0), w.grid.selectionModel().SelectionFlag.ClearAndSelect)
    qtbot.keyClick(w.grid, Qt.Key.Key_2)
    wait_idle(qtbot, w)
    assert w.session.example(first).class_id == blue.id


def test_copy_into_class_folders_never_overwrites(make_window, qtbot, tmp_path):
    w, red, blue, truth = _setup(make_window, qtbot, tmp_path, n=2)
    dest = tmp_path / "out"
    (dest / "red").mkdir(parents=True)
    clash = dest / "red" / "red_000.png"
    clash.write_bytes(b"precious")
    asked = []
    w.files.confirm = lambda title, text: asked.append(text) or True
    job = w.files.to_folders("copy", str(dest))
    assert job is not None and asked and "never overwritten" in asked[0]
    qtbot.waitUntil(lambda: job not in w.files.runner.jobs, timeout=10_000)
    assert clash.read_bytes() == b"precious"
    red_out = sorted(p.name for p in (dest / "red").iterdir())
    assert red_out == ["r.png", "red_000 (2).png", "red_000.png", "red_001.png"]
    assert sorted(p.name for p in (dest / "blue").iterdir()) == ["b.png", "blue_000.png", "blue_001.png"]
    assert all(os.path.exists(p) for p in truth)    # copy leaves the originals
    w.files.confirm = lambda title, text: False
    assert w.files.to_folders("move", str(dest)) is None and all(os.path.exists(p) for p in truth)


def test_move_into_class_folders_follows_the_files(make_window, qtbot, tmp_path, monkeypatch):
    w, red, blue, truth = _setup(make_window, qtbot, tmp_path, n=2)
    from app.core.embedding import Embedder

    inferred = []
    real_infer = Embedder._infer
    monkeypatch.setattr(Embedder, "_infer", lambda self, a, *args, **kw: inferred.append(len(a))
                        or real_infer(self, a, *args, **kw))
    w.files.confirm = lambda title, text: True
    dest = tmp_path / "sorted"
    job = w.files.to_folders("move", str(dest))
    qtbot.waitUntil(lambda: job not in w.files.runner.jobs, timeout=10_000)
    wait_idle(qtbot, w)
    assert not any(os.path.exists(p) for p in truth)
    moved = {str(dest / c / os.path.basename(p)): c for p, c in truth.items()}
    assert all(os.path.exists(p) for p in moved)
    assert sorted(w.image_model.paths) == sorted(moved)
    names = [c.name for c in w.image_model.classes]
    assert {p: names[w.image_model.label[w.image_model.row_of[p]]] for p in moved} == moved
    assert inferred == []                      # nothing embedded again after the move


def test_a_and_d_step_through_the_grid(make_window, qtbot, tmp_path):
    w, red, blue, truth = _setup(make_window, qtbot, tmp_path, n=2)
    m = w.image_model
    w.grid.setCurrentIndex(m.index(0))
    qtbot.keyClick(w.grid, Qt.Key.Key_D)
    qtbot.keyClick(w.grid, Qt.Key.Key_D)
    assert w.grid.currentIndex().row() == 2
    assert w.grid.selected_source_rows() == [m.source_row(2)]
    qtbot.keyClick(w.grid, Qt.Key.Key_A)
    assert w.grid.currentIndex().row() == 1
    qtbot.keyClick(w.grid, Qt.Key.Key_2)      # and a digit labels the image under the cursor
    assert w.session.example(m.path_at(1)).class_id == blue.id


def test_context_menu_assigns_the_selection(make_window, qtbot, tmp_path):
    w, red, blue, truth = _setup(make_window, qtbot, tmp_path, n=2)
    reds = sorted(p for p, c in truth.items() if c == "red")
    w.grid.select_paths(reds)
    menu = w.grid.context_menu()
    sub = next(a.menu() for a in menu.actions() if a.menu() is not None)
    assert [a.text().split("\t")[0] for a in sub.actions()] == ["red", "blue"]
    sub.actions()[1].trigger()
    wait_idle(qtbot, w)
    assert all(w.session.example(p).class_id == blue.id for p in reds)
    assert all(w.session.example(p).source == "corrected" for p in reds)


def test_label_these_next_lists_the_queue_and_a_digit_key_labels_from_it(make_window, qtbot,
                                                                         tmp_path):
    w, red, blue, truth = _setup(make_window, qtbot, tmp_path, n=6)
    m = w.image_model
    w.acts.label_next.trigger()                      # Ctrl+L
    assert w.review.current_filter() == int(Filter.SUGGESTED)
    queue = w.session.suggestions()
    assert queue and [m.path_at(r) for r in range(m.rowCount())] == queue
    assert not {e.path for e in w.session.examples} & set(queue)
    first = m.path_at(0)
    w.grid.select_paths([first])
    qtbot.keyClick(w.grid, Qt.Key.Key_2 if truth[first] == "blue" else Qt.Key.Key_1)
    wait_idle(qtbot, w)
    assert w.session.example(first) is not None       # labelled: it leaves the queue
    qtbot.waitUntil(lambda: first not in {m.path_at(r) for r in range(m.rowCount())})
    w.undo()
    wait_idle(qtbot, w)
    assert w.session.example(first) is None
    qtbot.waitUntil(lambda: first in {m.path_at(r) for r in range(m.rowCount())})
