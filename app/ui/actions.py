"""Actions, menus and toolbar of the main window (kept out of main_window.py).

``build_actions(window, slots)`` adds them to ``window`` and returns them as one
``WindowActions``; it knows nothing of the window but the slots it is handed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QComboBox, QDockWidget, QLabel, QMainWindow, QMenu

from .icons import icon


@dataclass
class Slots:
    """What the actions do (the window's and its file operations' methods)."""
    open_folder: Callable[[], object]
    open_project: Callable[[], object]
    save: Callable[[], object]
    save_as: Callable[[], object]
    export_csv: Callable[[], object]
    copy_to_folders: Callable[[], object]
    move_to_folders: Callable[[], object]
    quit: Callable[[], object]
    undo: Callable[[], object]
    redo: Callable[[], object]
    add_class: Callable[[], object]
    classify: Callable[[], object]
    settings: Callable[[], object]
    recover: Callable[[], object]
    fill_recent: Callable[[QMenu], object]
    label_next: Callable[[], object]


@dataclass
class WindowActions:
    open: QAction
    open_project: QAction
    save: QAction
    save_as: QAction
    export: QAction
    copy: QAction
    move: QAction
    quit: QAction
    undo: QAction
    redo: QAction
    add_class: QAction
    classify: QAction
    settings: QAction
    problems: QAction
    recover: QAction
    label_next: QAction
    recent_menu: QMenu
    method_combo: QComboBox

    def need_session(self) -> tuple[QAction, ...]:
        """The actions that wait for the session (disabled until it exists)."""
        return (self.open, self.open_project, self.save, self.save_as, self.export, self.copy,
                self.move, self.add_class, self.classify, self.settings, self.recover,
                self.label_next)


def make_action(w: QMainWindow, text: str, slot: Callable[[], object], shortcut=None,  # noqa: ANN001
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


def build_actions(w: QMainWindow, do: Slots, problems: QDockWidget) -> WindowActions:
    """Actions (with the labelImg/labelme shortcuts), menus and the toolbar of ``w``."""
    K = QKeySequence.StandardKey
    act = lambda *a: make_action(w, *a)  # noqa: E731
    problems_action = problems.toggleViewAction()
    problems_action.setIcon(icon("problems"))
    problems_action.setText("&Problems")
    mb = w.menuBar()
    file_menu = mb.addMenu("&File")
    acts = WindowActions(
        open=act("&Open folder...", do.open_folder, K.Open, "folder-open"),
        open_project=act("Open &project...", do.open_project, "Ctrl+Shift+O", "open-project"),
        save=act("&Save project", do.save, K.Save, "save"),
        save_as=act("Save project &as...", do.save_as, "Ctrl+Shift+S"),
        export=act("&Export CSV...", do.export_csv, "Ctrl+E", "export"),
        copy=act("&Copy into class folders...", do.copy_to_folders, None, "copy-to-folders"),
        move=act("&Move into class folders...", do.move_to_folders, None, "move-to-folders"),
        quit=act("&Quit", do.quit, K.Quit),
        undo=act("Undo", do.undo, K.Undo, "undo"),
        redo=act("Redo", do.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], "redo"),
        add_class=act("&Add class...", do.add_class, "Ctrl+N", "add"),
        classify=act("&Classify / resume", do.classify, "F5", "classify"),
        settings=act("&Settings...", do.settings, "Ctrl+,", "settings"),
        problems=problems_action,
        recover=QAction("Open the autosaved session", w),
        label_next=act("&Label these next", do.label_next, "Ctrl+L"),
        recent_menu=QMenu("Recent projects", w),
        method_combo=QComboBox(w))
    acts.recover.triggered.connect(lambda _=False: do.recover())
    for a in (acts.open, acts.open_project, acts.save, acts.save_as, None, acts.export,
              acts.copy, acts.move, None, acts.settings, None, acts.quit):
        file_menu.addSeparator() if a is None else file_menu.addAction(a)
    file_menu.addMenu(acts.recent_menu)
    acts.recent_menu.aboutToShow.connect(lambda: do.fill_recent(acts.recent_menu))
    file_menu.addAction(acts.recover)
    m = mb.addMenu("&Edit")
    for a in (acts.undo, acts.redo, None, acts.add_class):
        m.addSeparator() if a is None else m.addAction(a)
    m = mb.addMenu("&View")
    acts.label_next.setToolTip("Show the images whose labels would help the model most; "
                               "label them with 1-9")
    m.addAction(acts.label_next)
    m.addAction(acts.problems)
    m.addAction(acts.classify)
    tb = w.addToolBar("Main")
    tb.setObjectName("mainToolbar")
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for a in (acts.open, acts.save, acts.export, acts.copy, None, acts.undo, acts.redo, None):
        tb.addSeparator() if a is None else tb.addAction(a)
    tb.addWidget(QLabel(" Method: ", tb))
    combo = acts.method_combo
    combo.setParent(tb)
    combo.setObjectName("methodCombo")
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)  # labels in full
    combo.setMinimumContentsLength(22)
    combo.setToolTip("How the model learns from your examples (the model's learners; "
                     "filled in when the model has loaded)")
    tb.addWidget(combo)
    tb.addSeparator()
    for a in (acts.classify, acts.problems, acts.settings):
        tb.addAction(a)
    return acts
