"""Fixtures for the GUI tests: the real MainWindow on a tiny random-weight model, generated
images, settings and embedding cache under tmp_path (nothing of the user's is touched)."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.ui.main_window import MainWindow
from app.ui.settings import AppSettings
from tests.imaging_helpers import save_tiny_model, solid

REPO_ROOT = Path(__file__).resolve().parents[2]
LOAD_TIMEOUT = 60_000
WORK_TIMEOUT = 60_000


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWSHOT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def model_path(tmp_path) -> Path:
    return save_tiny_model(tmp_path / "models")


@pytest.fixture
def make_window(qtbot, tmp_path, model_path):
    made: list[MainWindow] = []

    def make(**kw) -> MainWindow:
        w = MainWindow(model_path=str(model_path), settings=AppSettings(str(tmp_path / "settings.ini")),
                       cache_path=str(tmp_path / "cache" / "embeddings.sqlite"), **kw)
        qtbot.addWidget(w)
        w.show()
        qtbot.waitUntil(lambda: w.session is not None and w.engine.loaded is not None,
                        timeout=LOAD_TIMEOUT)
        made.append(w)
        return w

    yield make
    for w in made:
        if w.isVisible():
            w.close()


def coloured_folder(folder: Path, n_red: int, n_blue: int, seed: int = 100) -> dict[str, str]:
    """Images named after their true colour; returns path -> colour."""
    out = {}
    for i in range(n_red):
        out[str(solid(folder / f"red_{i:03d}.png", "red", seed=seed + i))] = "red"
    for i in range(n_blue):
        out[str(solid(folder / "sub" / f"blue_{i:03d}.png", "blue", seed=seed + 500 + i))] = "blue"
    return out


def two_class_window(make_window, qtbot, tmp_path, n: int):
    """A window with classes red and blue (one example each, outside the folder) and a
    classified folder of ``n`` red and ``n`` blue images: (window, red, blue, path -> colour)."""
    w = make_window()
    red, blue = w.add_class("red"), w.add_class("blue")
    drop_files(w.class_panel.card(red.id), [solid(tmp_path / "ex" / "r.png", "red", seed=1)])
    drop_files(w.class_panel.card(blue.id), [solid(tmp_path / "ex" / "b.png", "blue", seed=2)])
    truth = coloured_folder(tmp_path / "photos", n, n)
    w.files.open_folder(str(tmp_path / "photos"))
    qtbot.waitUntil(lambda: w.image_model.rowCount() == 2 * n, timeout=10_000)
    wait_idle(qtbot, w)
    return w, red, blue, truth


def drop_files(widget, paths) -> None:
    """What the file manager does: a QDropEvent with file URLs, delivered to dropEvent."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(ev)
    assert ev.isAccepted()


def wait_idle(qtbot, w: MainWindow, timeout: int = WORK_TIMEOUT) -> None:
    """Until nothing is being scanned, embedded or scored and no rescore is due."""
    s = w.session
    qtbot.waitUntil(lambda: not w.engine.working and not w.files.runner.jobs and not s.scores_stale
                    and not s.paths_needing_features() and not w.binder._timer.isActive(),
                    timeout=timeout)
