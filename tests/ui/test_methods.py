"""Method switch from the toolbar, which lists the model's learners by their labels; MAML
adaptation runs in the background and the Cancel button abandons it (the previous
predictions stay); the folder-aware learner gives its quick result, then the folder's."""
from __future__ import annotations

import threading

import app.core.scoring as session_module
from tests.imaging_helpers import solid

from .conftest import coloured_folder, drop_files, wait_idle


def _ready(make_window, qtbot, tmp_path):
    w = make_window()
    red, blue = w.add_class("red"), w.add_class("blue")
    drop_files(w.class_panel.card(red.id), [solid(tmp_path / "ex" / "r.png", "red", seed=1)])
    drop_files(w.class_panel.card(blue.id), [solid(tmp_path / "ex" / "b.png", "blue", seed=2)])
    truth = coloured_folder(tmp_path / "photos", 3, 3)
    w.files.open_folder(str(tmp_path / "photos"))
    qtbot.waitUntil(lambda: w.image_model.rowCount() == 6, timeout=10_000)
    wait_idle(qtbot, w)
    return w, truth


def _labels(w):
    names = [c.name for c in w.image_model.classes]
    return {p: (names[l] if l >= 0 else int(l)) for p, l in zip(w.image_model.paths, w.image_model.label)}


def test_switch_to_maml_and_back(make_window, qtbot, tmp_path):
    w, truth = _ready(make_window, qtbot, tmp_path)
    proto_conf = w.image_model.confidence.copy()
    w.acts.method_combo.setCurrentIndex(w.acts.method_combo.findData("maml"))
    assert w.session.method == "maml"
    wait_idle(qtbot, w)
    assert _labels(w) == truth
    assert (w.image_model.confidence != proto_conf).any()   # really another learner's output
    w.undo()                                                # method switch is undoable
    assert w.acts.method_combo.currentData() == "protonet"
    wait_idle(qtbot, w)
    assert (abs(w.image_model.confidence - proto_conf) < 1e-6).all()


def test_cancel_maml_adaptation(make_window, qtbot, tmp_path, monkeypatch):
    w, truth = _ready(make_window, qtbot, tmp_path)
    before = w.image_model.confidence.copy()
    started, release = threading.Event(), threading.Event()
    real_fit = session_module.fit

    def slow_fit(*a, **k):
        started.set()
        release.wait(10)
        return real_fit(*a, **k)

    monkeypatch.setattr(session_module, "fit", slow_fit)
    w.acts.method_combo.setCurrentIndex(w.acts.method_combo.findData("maml"))
    qtbot.waitUntil(started.is_set, timeout=10_000)
    assert w.status.cancel.isVisible()
    w.status.cancel.click()
    release.set()
    qtbot.waitUntil(lambda: not w.engine.working, timeout=10_000)
    qtbot.wait(200)
    assert (w.image_model.confidence == before).all()   # the abandoned adaptation changed nothing
    assert w.session.method == "maml" and w.session.scores_stale
    assert not w.status.cancel.isVisible()
    # the next change re-scores with MAML
    monkeypatch.setattr(session_module, "fit", real_fit)
    w.engine.stopped = False
    w.engine.schedule_rescore()
    wait_idle(qtbot, w)
    assert _labels(w) == truth and (w.image_model.confidence != before).any()


def test_menu_lists_the_models_learners_and_each_one_labels_the_folder(make_window, qtbot, tmp_path):
    w, truth = _ready(make_window, qtbot, tmp_path)
    items = {w.acts.method_combo.itemData(i): w.acts.method_combo.itemText(i)
             for i in range(w.acts.method_combo.count())}
    assert items == {"protonet": "ProtoNet", "maml": "MAML", "centroid": "Centroid",
                     "folder": "Folder-aware ProtoNet"}
    for key in ("centroid", "folder"):
        w.acts.method_combo.setCurrentIndex(w.acts.method_combo.findData(key))
        assert w.session.method == key
        wait_idle(qtbot, w)
        assert _labels(w) == truth, key
    # the folder-aware pass ran and left the folder's derived data for the next change
    assert any(pool.complete for pool in w.session._pool_cache.values())


def test_folder_aware_pass_shows_the_quick_result_and_can_be_cancelled(make_window, qtbot, tmp_path,
                                                                       monkeypatch):
    w, truth = _ready(make_window, qtbot, tmp_path)
    started, release = threading.Event(), threading.Event()
    real_fit = session_module.fit

    def slow_folder_fit(*a, pool=None, **k):
        if pool is not None:  # only the pass that reads the folder waits
            started.set()
            release.wait(10)
        return real_fit(*a, pool=pool, **k)

    monkeypatch.setattr(session_module, "fit", slow_folder_fit)
    w.acts.method_combo.setCurrentIndex(w.acts.method_combo.findData("folder"))
    qtbot.waitUntil(started.is_set, timeout=10_000)
    # the quick inductive result is already on the grid while the folder is being read
    qtbot.waitUntil(lambda: _labels(w) == truth, timeout=10_000)
    assert w.status.cancel.isVisible()
    w.status.cancel.click()
    release.set()
    qtbot.waitUntil(lambda: not w.engine.working, timeout=10_000)
    assert _labels(w) == truth                       # cancelling kept the quick result
    assert not any(p.complete for p in w.session._pool_cache.values())


def test_the_folder_is_read_before_the_first_examples(make_window, qtbot, tmp_path, monkeypatch):
    w = make_window()
    w.acts.method_combo.setCurrentIndex(w.acts.method_combo.findData("folder"))
    red, blue = w.add_class("red"), w.add_class("blue")
    truth = coloured_folder(tmp_path / "photos", 3, 3)
    w.files.open_folder(str(tmp_path / "photos"))
    qtbot.waitUntil(lambda: w.image_model.rowCount() == 6, timeout=10_000)
    wait_idle(qtbot, w)
    # embedded, no examples yet: the folder has been read ahead
    assert any(pool.complete for pool in w.session._pool_cache.values())
    fits = []
    real_fit = session_module.fit
    monkeypatch.setattr(session_module, "fit",
                        lambda *a, pool=None, **k: fits.append(pool) or real_fit(*a, pool=pool, **k))
    drop_files(w.class_panel.card(red.id), [p for p, c in truth.items() if c == "red"][:1])
    drop_files(w.class_panel.card(blue.id), [p for p, c in truth.items() if c == "blue"][:1])
    wait_idle(qtbot, w)
    assert _labels(w) == truth
    # every fit read the folder: none had to give a quick inductive pass first
    assert fits and all(pool is not None and pool.complete for pool in fits)
