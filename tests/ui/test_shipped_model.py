"""The window on the shipped default photo model labels real photos (clothing-small):
three classes, three examples each, thirty test photos; far better than chance."""
from __future__ import annotations

import pytest

from app.core.defaults import default_model_path
from app.ui.main_window import MainWindow
from app.ui.settings import AppSettings
from tests.conftest import shared_data

from .conftest import drop_files, wait_idle

CLASSES = ("pants", "shoes", "t-shirt")


@pytest.mark.shared_data
def test_default_model_labels_clothing_photos(qtbot, tmp_path):
    data = shared_data("clothing-small")
    model = default_model_path()
    if model is None:
        pytest.skip("no shipped model in pretrained/")
    w = MainWindow(settings=AppSettings(str(tmp_path / "s.ini")),
                   cache_path=str(tmp_path / "cache" / "embeddings.sqlite"))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.session is not None and w.engine.loaded is not None, timeout=120_000)
    assert w.engine.loaded.path == str(model)            # no --model: the default one
    photos = tmp_path / "photos"
    photos.mkdir()
    truth = {}
    for c in CLASSES:
        info = w.add_class(c)
        drop_files(w.class_panel.card(info.id), sorted((data / "train" / c).glob("*.jpg"))[:3])
        for i, f in enumerate(sorted((data / "test" / c).glob("*.jpg"))[:10]):
            link = photos / f"{c[:1]}{i:02d}_{f.name}"
            link.symlink_to(f)
            truth[str(link)] = c
    w.files.open_folder(str(photos))
    qtbot.waitUntil(lambda: w.image_model.rowCount() == len(truth), timeout=30_000)
    wait_idle(qtbot, w, timeout=300_000)
    m = w.image_model
    names = [c.name for c in m.classes]
    right = sum(names[m.label[m.row_of[p]]] == c for p, c in truth.items() if m.label[m.row_of[p]] >= 0)
    assert right / len(truth) >= 0.7, f"{right} of {len(truth)} right"
    w.close()
