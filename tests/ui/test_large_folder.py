"""100,000 images are one model behind one view: only what is on screen asks for a
thumbnail, and filtering/sorting work on the whole folder at once."""
from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QApplication

from app.ui.image_grid import ImageGrid
from app.ui.image_model import UNKNOWN, ClassStyle, Filter, ImageListModel, Sort, Source
from app.ui.thumbnails import ThumbnailCache

N = 100_000


def test_hundred_thousand_images_stay_lazy(qtbot, tmp_path):
    model = ImageListModel()
    thumbs = ThumbnailCache(capacity=500)
    requested: list[str] = []
    real_request = thumbs._request
    thumbs._request = lambda p: (requested.append(p), real_request(p))  # type: ignore[method-assign]
    grid = ImageGrid(model, thumbs)
    qtbot.addWidget(grid)
    grid.resize(900, 600)
    grid.show()
    paths = [str(tmp_path / f"d{i // 1000:03d}" / f"img{i:06d}.jpg") for i in range(N)]
    model.set_paths(paths)
    model.set_classes([ClassStyle("cat", "#e6194b"), ClassStyle("dog", "#3cb44b")])
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, N).astype(np.int32)
    conf = rng.uniform(0.5, 1.0, N).astype(np.float32)
    label[conf < 0.55] = UNKNOWN
    model.set_state(label, conf, np.full(N, Source.PREDICTED, np.uint8))
    QApplication.processEvents()
    assert model.rowCount() == N
    on_screen = len(requested)
    assert 0 < on_screen < 200                    # only the visible cells
    # the layout of 100,000 cells is done in slices between events; wait for the last one
    cols = max(1, grid.viewport().width() // grid.gridSize().width())
    full = -(-N // cols) * grid.gridSize().height() - grid.viewport().height()
    qtbot.waitUntil(lambda: grid.verticalScrollBar().maximum() >= full - grid.gridSize().height(),
                    timeout=20_000)
    assert len(requested) == on_screen            # laying out decodes nothing
    grid.scrollToBottom()
    QApplication.processEvents()
    grid.verticalScrollBar().setValue(grid.verticalScrollBar().maximum() // 2)
    QApplication.processEvents()
    assert len(requested) < 600                   # three screens, not 100,000 files
    assert paths[-1] in requested
    model.set_view_options(filter_=Filter.UNKNOWN, sort=Sort.LEAST_CONFIDENT)
    shown = model.view
    assert len(shown) == int((conf < 0.55).sum())
    assert np.all(np.diff(conf[shown]) >= 0)
    model.set_view_options(filter_=1, sort=Sort.MOST_CONFIDENT)
    assert np.all(label[model.view] == 1) and np.all(np.diff(conf[model.view]) <= 0)
    thumbs.wait(5000)


def test_resorting_keeps_the_selection(qtbot, tmp_path):
    model = ImageListModel()
    grid = ImageGrid(model, ThumbnailCache())
    qtbot.addWidget(grid)
    paths = [str(tmp_path / f"{i}.jpg") for i in range(50)]
    model.set_paths(paths)
    model.set_classes([ClassStyle("a", "#ff0000"), ClassStyle("b", "#00ff00")])
    src = np.full(50, Source.PREDICTED, np.uint8)
    model.set_state(np.zeros(50, np.int32), np.linspace(0.5, 1.0, 50, dtype=np.float32), src)
    model.set_view_options(sort=Sort.LEAST_CONFIDENT)
    grid.select_paths([paths[10], paths[20]])
    # new confidences arrive (streaming): the order changes, the selected images stay selected
    model.set_state(np.zeros(50, np.int32), np.linspace(1.0, 0.5, 50, dtype=np.float32), src)
    assert model.path_at(0) == paths[49]
    assert sorted(model.paths[r] for r in grid.selected_source_rows()) == [paths[10], paths[20]]
