"""Actions, menus and toolbar of the main window (kept out of main_window.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel

from .icons import icon

if TYPE_CHECKING:
    from .main_window import MainWindow

def make_action(w: "MainWindow", text: str, slot, shortcut=None,  # noqa: ANN001
                icon_name: str | None = None) -> QAction:
    a = QAction(icon(icon_name) if icon_name else QIcon(), text, w)
    if shortcut is not None:
        if isinstance(shortcut, (list, tuple)):
            a.setShortcuts([QKeySequence(s) for s in shortcut])
        else:
            a.setShortcut(QKeySequence(shortcut))
    a.triggered.connect(lambda _=False: slot())
    w.addAction(a)
    return a

def build_actions(w: "MainWindow") -> None:
    """Actions (with the labelImg/labelme shortcuts), menus and the toolbar of the window."""
    K = QKeySequence.StandardKey
    f = w.files
    w.act_open = make_action(w, "&Open folder...", f.open_folder, K.Open, "folder-open")
    w.act_open_project = make_action(w, "Open &project...", f.open_project, "Ctrl+Shift+O", "open-project")
    w.act_save = make_action(w, "&Save project", f.save_project, K.Save, "save")
    w.act_save_as = make_action(w, "Save project &as...", lambda: f.save_project(save_as=True), "Ctrl+Shift+S")
    w.act_export = make_action(w, "&Export CSV...", f.export_csv, "Ctrl+E", "export")
    w.act_copy = make_action(w, "&Copy into class folders...", lambda: f.to_folders("copy"), None, "copy-to-folders")
    w.act_move = make_action(w, "&Move into class folders...", lambda: f.to_folders("move"), None, "move-to-folders")
    w.act_quit = make_action(w, "&Quit", w.close, K.Quit)
    w.act_undo = make_action(w, "Undo", w.undo, K.Undo, "undo")
    w.act_redo = make_action(w, "Redo", w.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], "redo")
    w.act_add_class = make_action(w, "&Add class...", w.ask_add_class, "Ctrl+N", "add")
    w.act_classify = make_action(w, "&Classify / resume", w.engine.resume, "F5", "classify")
    w.act_settings = make_action(w, "&Settings...", w.show_settings, "Ctrl+,", "settings")
    w.act_problems = w.problems.toggleViewAction()
    w.act_problems.setIcon(icon("problems"))
    w.act_problems.setText("&Problems")
    mb = w.menuBar()
    m = mb.addMenu("&File")
    for a in (w.act_open, w.act_open_project, w.act_save, w.act_save_as, None,
              w.act_export, w.act_copy, w.act_move, None, w.act_settings, None, w.act_quit):
        m.addSeparator() if a is None else m.addAction(a)
    w.recent_menu = m.addMenu("Recent projects")
    w.recent_menu.aboutToShow.connect(lambda: fill_recent(w))
    w.act_recover = m.addAction("Open the autosaved session", lambda: recover(w))
    m = mb.addMenu("&Edit")
    for a in (w.act_undo, w.act_redo, None, w.act_add_class):
        m.addSeparator() if a is None else m.addAction(a)
    m = mb.addMenu("&View")
    m.addAction(w.act_problems)
    m.addAction(w.act_classify)
    tb = w.addToolBar("Main")
    tb.setObjectName("mainToolbar")
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for a in (w.act_open, w.act_save, w.act_export, w.act_copy, None, w.act_undo,
              w.act_redo, None):
        tb.addSeparator() if a is None else tb.addAction(a)
    tb.addWidget(QLabel(" Method: ", tb))
    w.method_combo = QComboBox(tb)
    w.method_combo.setObjectName("methodCombo")
    w.method_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    w.method_combo.setMinimumContentsLength(22)  # "Folder-aware ProtoNet" in full
    w.method_combo.setToolTip("How the model learns from your examples (the model's learners; "
                              "filled in when the model has loaded)")
    tb.addWidget(w.method_combo)
    tb.addSeparator()
    for a in (w.act_classify, w.act_problems, w.act_settings):
        tb.addAction(a)


def recover(w: "MainWindow") -> None:
    from .file_ops import autosave_path

    p = autosave_path()
    if p.exists():
        w.files.open_project(str(p))
        w.files.project_path = None  # "Save" asks where: the autosave file is not a home
        w._update_title()
    else:
        w.warn("Nothing to recover", "There is no autosaved session.")

def fill_recent(w: "MainWindow") -> None:
    w.recent_menu.clear()
    for p in w.settings.recent_projects:
        w.recent_menu.addAction(p, lambda p=p: w.files.open_project(p))
    w.recent_menu.setEnabled(True)
