"""The Map view: made in a worker when shown (progress, cancel), kept per folder and model;
a lasso selects the points inside it, the grid selects the same images, and a digit key
assigns the class to all of them through the grid's undoable edit."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.core.errors import Cancelled
from app.core.projection import MapStore, project
from app.ui.map_view import inside
from tests.imaging_helpers import solid

from .conftest import coloured_folder, two_class_window, wait_idle


def test_inside_is_the_even_odd_rule():
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], float)
    pts = np.array([[1, 1], [3, 1], [1, -0.5], [1.99, 1.99]], float)
    assert inside(pts, square).tolist() == [True, False, False, True]
    assert not inside(pts, square[:2]).any()


def test_projection_reports_progress_and_stops_when_cancelled():
    rng = np.random.default_rng(0)
    x = rng.random((300, 16), dtype=np.float32)
    seen = []
    xy = project(lambda i: x[i], 300, progress=lambda d, t: seen.append((d, t)), threads=1)
    assert xy.shape == (300, 2) and np.isfinite(xy).all()
    assert seen and seen[-1][0] == seen[-1][1] == 750
    cancel = threading.Event()

    def stop_soon(done, total):
        if done >= 50:
            cancel.set()
    with pytest.raises(Cancelled):
        project(lambda i: x[i], 300, cancel=cancel, progress=stop_soon, threads=1)


def _window_with_map(make_window, qtbot, tmp_path, n=6):
    w, _, _, truth = two_class_window(make_window, qtbot, tmp_path, n)
    w.views.setCurrentWidget(w.map)                       # showing the map makes it
    qtbot.waitUntil(lambda: len(w.map.mapped()) == 2 * n, timeout=60_000)
    return w, truth


def test_lasso_selects_in_map_and_grid_and_a_digit_assigns_with_undo(make_window, qtbot, tmp_path):
    w, truth = _window_with_map(make_window, qtbot, tmp_path)
    m, view = w.image_model, w.map
    xy = view.xy
    # the review queue is starred on the map
    view.recolour()
    queue = [m.row_of[p] for p in w.session.suggestions()]
    starred = {(round(float(a), 4), round(float(b), 4)) for a, b in
               zip(view._queue.data["x"], view._queue.data["y"])}
    assert queue and starred == {(round(float(xy[r, 0]), 4), round(float(xy[r, 1]), 4))
                                 for r in queue}
    # a lasso around the left half of the map
    lo, hi = xy.min(0) - 1, xy.max(0) + 1
    mid = float(np.median(xy[:, 0]))
    poly = np.array([[lo[0], lo[1]], [mid, lo[1]], [mid, hi[1]], [lo[0], hi[1]]])
    view.view.lassoFinished.emit(poly)
    want = sorted(np.flatnonzero(xy[:, 0] < mid).tolist())
    assert view.selected.tolist() == want and want
    assert sorted(w.grid.selected_source_rows()) == want   # the grid selects the same images
    qtbot.keyClick(view, Qt.Key.Key_2)                     # all of them are blue
    wait_idle(qtbot, w)
    paths = [m.paths[r] for r in want]
    assert all(w.session.example(p) is not None for p in paths)
    assert w.session.undo_label.startswith("Undo")
    w.undo()
    wait_idle(qtbot, w)
    assert all(w.session.example(p) is None for p in paths)
    w.redo()
    wait_idle(qtbot, w)
    blue = w.session.class_at(1).id
    assert all(w.session.example(p).class_id == blue for p in paths)
    # a click on a point selects its image (in the grid too); a click on nothing clears
    from PySide6.QtCore import QPointF
    r = int(view.mapped()[0])
    view._click(QPointF(float(xy[r, 0]), float(xy[r, 1])))
    assert view.row_at(QPointF(float(xy[r, 0]), float(xy[r, 1]))) == r
    assert view.selected.tolist() == [r] and w.grid.selected_source_rows() == [r]
    view._click(QPointF(float(xy[:, 0].max()) + 1e6, 0.0))
    assert view.selected.tolist() == []
    # a click in the grid shows on the map
    one = m.model_row(paths[0])
    w.grid.select_paths([paths[0]])
    assert view.selected.tolist() == [m.source_row(one)]


def test_map_is_kept_per_folder_and_model_and_new_images_are_placed(make_window, qtbot, tmp_path):
    w, truth = _window_with_map(make_window, qtbot, tmp_path)
    key = w.engine.loaded.embedder.model_key
    kept = MapStore(tmp_path / "cache" / "maps").load(w.session.folder, key)
    assert set(kept) == set(truth)
    # one new image: placed on the map, the others stay where they are
    solid(tmp_path / "photos" / "red_new.png", "red", seed=999)
    w.files.open_folder(str(tmp_path / "photos"))
    qtbot.waitUntil(lambda: w.image_model.rowCount() == len(truth) + 1, timeout=10_000)
    wait_idle(qtbot, w)
    qtbot.waitUntil(lambda: len(w.map.mapped()) == len(truth) + 1 and not w.map_control.busy,
                    timeout=60_000)
    again = {p: tuple(w.map.xy[w.image_model.row_of[p]]) for p in truth}
    assert all(np.allclose(again[p], kept[p]) for p in truth)
    new = w.map.xy[w.image_model.row_of[str(tmp_path / "photos" / "red_new.png")]]
    assert np.isfinite(new).all()
    assert len(MapStore(tmp_path / "cache" / "maps").load(w.session.folder, key)) == len(truth) + 1


def test_making_the_map_can_be_cancelled(make_window, qtbot, tmp_path, monkeypatch):
    import app.ui.map_controller as mc
    started = threading.Event()

    def slow_project(rows, n, cancel, progress, **kw):
        started.set()
        while not cancel.is_set():
            progress(1, 10)
            cancel.wait(0.01)
        raise Cancelled()
    monkeypatch.setattr(mc, "project", slow_project)
    w = make_window()
    coloured_folder(tmp_path / "photos", 3, 3)
    w.files.open_folder(str(tmp_path / "photos"))
    qtbot.waitUntil(lambda: w.image_model.rowCount() == 6, timeout=10_000)
    wait_idle(qtbot, w)
    w.views.setCurrentWidget(w.map)
    qtbot.waitUntil(lambda: started.is_set() and w.map.cancel_button.isVisible(), timeout=10_000)
    qtbot.waitUntil(lambda: w.map.progress.maximum() == 10)
    qtbot.mouseClick(w.map.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.map_control.busy and not w.map.cancel_button.isVisible(),
                    timeout=10_000)
    assert "cancelled" in w.map.info.text() and len(w.map.mapped()) == 0
