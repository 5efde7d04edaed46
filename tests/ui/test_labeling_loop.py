"""The whole loop a user goes through, on the real window: classes, dropped examples, open
a folder, live predictions, a digit-key correction, CSV export, save, reopen."""
from __future__ import annotations

import csv

import numpy as np
from PySide6.QtCore import Qt

from app.ui.image_model import Source
from tests.imaging_helpers import solid

from .conftest import coloured_folder, drop_files, wait_idle


def _csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_label_a_folder_end_to_end(make_window, qtbot, tmp_path, monkeypatch):
    w = make_window()
    red_ex = [solid(tmp_path / "ex" / f"r{i}.png", "red", seed=i) for i in range(2)]
    blue_ex = [solid(tmp_path / "ex" / "blue" / f"b{i}.png", "blue", seed=50 + i) for i in range(2)]
    red = w.add_class("red")
    blue = w.add_class("blue")
    # a file drop on the red card, a folder drop on the blue card
    drop_files(w.class_panel.card(red.id), red_ex)
    drop_files(w.class_panel.card(blue.id), [tmp_path / "ex" / "blue"])
    qtbot.waitUntil(lambda: len(w.session.examples_of(blue.id)) == 2, timeout=10_000)
    assert sorted(e.path for e in w.session.examples_of(red.id)) == sorted(map(str, red_ex))
    qtbot.waitUntil(lambda: w.class_panel.card(red.id).strip.count() == 2)  # card shows them

    truth = coloured_folder(tmp_path / "photos", 6, 5)
    w.files.open_folder(str(tmp_path / "photos"))
    qtbot.waitUntil(lambda: w.image_model.rowCount() == len(truth), timeout=10_000)
    wait_idle(qtbot, w)
    m = w.image_model
    assert m.counts()["done"] == len(truth)
    names = [c.name for c in m.classes]
    for i, p in enumerate(m.paths):
        assert m.source[i] == Source.PREDICTED
        assert names[m.label[i]] == truth[p], p
        assert 0.5 <= m.confidence[i] <= 1.0

    # correct one image with a digit key: the first red one becomes "blue" (class 2)
    target = sorted(p for p, c in truth.items() if c == "red")[0]
    w.grid.setFocus()
    w.grid.select_paths([target])
    qtbot.keyClick(w.grid, Qt.Key.Key_2)
    ex = w.session.example(target)
    assert ex is not None and ex.class_id == blue.id and ex.source == "corrected"
    wait_idle(qtbot, w)
    assert m.source[m.row_of[target]] == Source.CORRECTED

    out = tmp_path / "labels.csv"
    assert w.files.export_csv(str(out)) is not None
    rows = {r["path"]: r for r in _csv(out)}
    expected = dict(truth)
    expected[target] = "blue"
    for p in list(map(str, red_ex)):
        expected[p] = "red"
    for p in (str(x) for x in blue_ex):
        expected[p] = "blue"
    assert set(rows) == set(expected)
    for p, r in rows.items():
        assert r["label"] == expected[p], p
        src = ("corrected" if p == target else "example" if p in map(str, red_ex + blue_ex)
               else "predicted")
        assert r["source"] == src
        assert 0.0 <= float(r["confidence"]) <= 1.0
        if src != "predicted":
            assert float(r["confidence"]) == 1.0

    proj = tmp_path / "job.fsproj.json"
    assert w.files.save_project(str(proj))
    assert not w.session.modified
    state = _state(w)
    w.close()

    from app.core.embedding import Embedder

    inferred = []
    real_infer = Embedder._infer
    monkeypatch.setattr(Embedder, "_infer", lambda self, arrays, *a, **k: inferred.append(len(arrays))
                        or real_infer(self, arrays, *a, **k))
    w2 = make_window(project=str(proj))
    qtbot.waitUntil(lambda: w2.image_model.rowCount() == len(truth), timeout=10_000)
    wait_idle(qtbot, w2)
    assert _state(w2) == state
    assert inferred == []  # reopening reuses the cached embeddings: no backbone pass at all
    assert w2.files.project_path == str(proj)
    assert not w2.session.modified


def _state(w):
    s = w.session
    cls, conf = s.prediction_arrays()
    names = {c.id: c.name for c in s.classes}
    return {
        "classes": [(c.name, c.colour) for c in s.classes],
        "examples": sorted((e.path, names[e.class_id], e.source) for e in s.examples),
        "threshold": s.threshold, "method": s.method, "folder": s.folder,
        "labels": [names.get(int(c), "?") for c in cls],
        "conf": np.round(conf, 5).tolist(),
    }


def test_project_brings_its_own_model(make_window, qtbot, tmp_path):
    from app.core.checkpoints import save_checkpoint
    from tests.imaging_helpers import tiny_model

    other = tmp_path / "other" / "other"
    save_checkpoint(tiny_model(seed=1), other, {})   # other weights: other embeddings
    w = make_window()
    first_model = w.engine.loaded.path
    first_key = w.engine.loaded.embedder.model_key
    w.settings.model_path = ""  # the window's model comes from the command line
    red, blue = w.add_class("red"), w.add_class("blue")
    drop_files(w.class_panel.card(red.id), [solid(tmp_path / "r.png", "red")])
    drop_files(w.class_panel.card(blue.id), [solid(tmp_path / "b.png", "blue", seed=4)])
    truth = coloured_folder(tmp_path / "photos", 2, 2)
    w.files.open_folder(str(tmp_path / "photos"))
    qtbot.waitUntil(lambda: w.image_model.rowCount() == 4, timeout=10_000)
    wait_idle(qtbot, w)
    w.session.set_model_path(str(other))      # as if chosen for this project
    qtbot.waitUntil(lambda: w.engine.loaded.path == str(other), timeout=60_000)
    wait_idle(qtbot, w)
    assert w.engine.loaded.embedder.model_key != first_key
    names = [c.name for c in w.image_model.classes]
    assert {p: names[w.image_model.label[w.image_model.row_of[p]]] for p in truth} == truth
    proj = tmp_path / "p.fsproj.json"
    w.files.save_project(str(proj))
    w.close()
    w2 = make_window(project=str(proj))       # started on the first model
    assert first_model != str(other)
    qtbot.waitUntil(lambda: w2.engine.loaded.path == str(other), timeout=60_000)
    qtbot.waitUntil(lambda: w2.image_model.rowCount() == 4, timeout=10_000)
    wait_idle(qtbot, w2)
    names = [c.name for c in w2.image_model.classes]
    assert {p: names[w2.image_model.label[w2.image_model.row_of[p]]] for p in truth} == truth
