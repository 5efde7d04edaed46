"""Class panel edits through its dialogs, a folder dropped on the grid, settings that are
remembered (QSettings), autosave and recovery, and the command-line entry point."""
from __future__ import annotations

import subprocess
import sys

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QColorDialog, QInputDialog

from app.ui import file_ops
from tests.imaging_helpers import solid

from .conftest import REPO_ROOT, coloured_folder, drop_files, wait_idle


def test_rename_recolour_and_refused_names(make_window, qtbot, monkeypatch):
    w = make_window()
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("Cats", True)))
    w.ask_add_class()
    c = w.session.classes[0]
    assert c.name == "Cats"
    card = w.class_panel.card(c.id)
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("Kittens", True)))
    card.ask_name()
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a, **k: QColor("#123456")))
    card.ask_colour()
    assert w.session.classes[0].name == "Kittens" and w.session.classes[0].colour == "#123456"
    qtbot.waitUntil(lambda: card.name_label.text() == "Kittens")
    w.add_class("dogs")
    card2 = w.class_panel.card(w.session.classes[1].id)
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("kittens", True)))
    card2.ask_name()                       # a duplicate name is refused with a message
    assert w.session.classes[1].name == "dogs"
    assert w.last_warning[0] == "Not possible" and "kittens" in w.last_warning[1].lower()
    w.undo()                               # removes "dogs"
    w.undo()                               # the colour change
    assert [(c.name, c.colour != "#123456") for c in w.session.classes] == [("Kittens", True)]
    w.undo()
    assert w.session.classes[0].name == "Cats"
    qtbot.waitUntil(lambda: card.name_label.text() == "Cats")


def test_folder_dropped_on_grid_opens_it(make_window, qtbot, tmp_path):
    w = make_window()
    truth = coloured_folder(tmp_path / "photos", 2, 2)
    w.stack.setCurrentWidget(w.views)
    drop_files(w.grid, [tmp_path / "photos"])
    qtbot.waitUntil(lambda: sorted(w.image_model.paths) == sorted(truth), timeout=10_000)
    assert w.settings.last_folder == str(tmp_path / "photos")


def test_settings_are_remembered(make_window, qtbot, tmp_path):
    w = make_window()
    w.settings.device = "cpu"
    w.review.threshold.setValue(40)
    assert w.session.threshold == 0.4
    w.resize(1000, 700)
    w.close()
    w2 = make_window()
    assert w2.settings.device == "cpu"
    assert w2.session.threshold == 0.4 and w2.review.threshold.value() == 40
    assert w2.settings.geometry() is not None and w2.size().height() == 700  # geometry restored
    assert w2.engine.loaded.device == "cpu"


def test_autosave_and_recover(make_window, qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(file_ops, "autosave_path", lambda: tmp_path / "auto" / "autosave.fsproj.json")
    w = make_window()
    red, blue = w.add_class("red"), w.add_class("blue")
    drop_files(w.class_panel.card(red.id), [solid(tmp_path / "r.png", "red")])
    drop_files(w.class_panel.card(blue.id), [solid(tmp_path / "b.png", "blue", seed=5)])
    coloured_folder(tmp_path / "photos", 2, 2)
    w.files.open_folder(str(tmp_path / "photos"))
    qtbot.waitUntil(lambda: w.image_model.rowCount() == 4, timeout=10_000)
    wait_idle(qtbot, w)
    saved = w.files.autosave()                 # what the timer does
    assert saved == str(tmp_path / "auto" / "autosave.fsproj.json")
    assert w.session.modified                  # still unsaved: autosave is not "Save"
    labels = list(w.image_model.label)
    w.close()
    w2 = make_window()
    w2.acts.recover.trigger()
    qtbot.waitUntil(lambda: w2.image_model.rowCount() == 4, timeout=10_000)
    wait_idle(qtbot, w2)
    assert [c.name for c in w2.session.classes] == ["red", "blue"]
    assert list(w2.image_model.label) == labels
    assert w2.files.project_path is None


def test_autosave_writes_the_project_file(make_window, qtbot, tmp_path):
    w = make_window()
    proj = tmp_path / "p.fsproj.json"
    assert w.files.save_project(str(proj))
    w.add_class("later")
    assert w.session.modified
    assert w.files.autosave() == str(proj)
    assert "later" in proj.read_text() and not w.session.modified


def test_command_line_help_is_fast_and_light():
    code = ("import sys; from app.ui.launch import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "FOLDER" in r.stdout.upper() and "--model" in r.stdout


def test_unexpected_error_shows_a_dialog_and_is_logged(qtbot, caplog):
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.ui import errors

    try:
        raise RuntimeError("disk on fire")
    except RuntimeError as e:
        errors.excepthook(type(e), e, e.__traceback__)
    box = []
    qtbot.waitUntil(lambda: bool(box.extend(w for w in QApplication.topLevelWidgets()
                                            if isinstance(w, QMessageBox) and w.isVisible()) or box))
    assert "disk on fire" in box[0].text()
    assert "disk on fire" in caplog.text
    box[0].close()


def test_folder_given_on_the_command_line_opens_after_the_model(make_window, qtbot, tmp_path):
    truth = coloured_folder(tmp_path / "photos", 1, 2)
    w = make_window(folder=str(tmp_path / "photos"))
    qtbot.waitUntil(lambda: sorted(w.image_model.paths) == sorted(truth), timeout=10_000)
    assert w.stack.currentWidget() is w.views


def test_a_model_that_does_not_load_is_a_message_not_a_crash(qtbot, tmp_path):
    from app.ui.main_window import MainWindow
    from app.ui.settings import AppSettings

    bad = tmp_path / "broken"
    (tmp_path / "broken.json").write_text("{not json")
    w = MainWindow(model_path=str(bad), settings=AppSettings(str(tmp_path / "s.ini")),
                   cache_path=str(tmp_path / "c.sqlite"))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: hasattr(w, "last_warning"), timeout=60_000)
    assert w.last_warning[0] == "The model could not be loaded" and "broken" in w.last_warning[1]
    assert w.session is not None and w.engine.loaded is None
    assert w.add_class("still works") is not None   # the session is usable; choose a model later
    w.close()


def test_settings_dialog_switches_device_and_reloads(make_window, qtbot, monkeypatch):
    from app.ui.settings_dialog import SettingsDialog

    w = make_window()
    first = w.engine.loaded

    def fake_exec(dlg):
        dlg.device.setCurrentIndex(dlg.device.findData("cpu"))
        dlg.batch.setValue(8)
        return 1

    monkeypatch.setattr(SettingsDialog, "exec", fake_exec)
    w.show_settings()
    qtbot.waitUntil(lambda: w.engine.loaded is not first and not w.engine.working, timeout=60_000)
    assert w.settings.device == "cpu" and w.settings.batch_size == 8
    assert w.engine.loaded.device == "cpu" and w.engine.loaded.embedder.batch_size == 8
