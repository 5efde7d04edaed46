"""The main window: a thin controller wiring the views to the session and the engine.

Heavy imports (torch) and the model load run in a job after the window shows; until the
core is ready the panels are disabled and the status bar says so.
"""
from __future__ import annotations

import logging
import os

from PySide6.QtCore import Qt, QTimer
from PySide6.QtCore import QUrl
from PySide6.QtGui import QCloseEvent, QDesktopServices
from PySide6.QtWidgets import (QInputDialog, QLabel, QMainWindow, QMessageBox,
                               QPushButton, QSplitter, QStackedWidget, QTabWidget, QVBoxLayout,
                               QWidget)

from ..core.events import SessionEvent, Topic
from ..core.scan import expand_paths
from ..core.session import Session
from .actions import Slots, build_actions
from .class_panel import ClassPanel
from .engine import Engine, LoadedModel, available_devices
from .file_ops import FileOps
from .icons import app_icon, icon
from .image_grid import ImageGrid
from .image_model import Filter, ImageListModel
from .map_controller import MapController
from .map_view import MapView
from .problems_view import ProblemsView
from .review_bar import ReviewBar
from .session_binder import SessionBinder
from .settings import AppSettings
from .settings_dialog import SettingsDialog
from .status_bar import ProgressStatusBar
from .thumbnails import ThumbnailCache

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(self, folder: str | None = None, project: str | None = None,
                 model_path: str | None = None, settings: AppSettings | None = None,
                 cache_path: str | None = None, autostart: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("fewshot-label")
        self.setWindowIcon(app_icon())
        self.settings = settings or AppSettings()
        self.session: Session | None = None
        self.binder: SessionBinder | None = None
        self._model_path = model_path
        self._pending = (folder, project)
        self._problems_shown = False
        self.thumbnails = ThumbnailCache(parent=self)
        self.image_model = ImageListModel(self)
        self.grid = ImageGrid(self.image_model, self.thumbnails, self)
        self.map = MapView(self.image_model, self.thumbnails, self)
        self.class_panel = ClassPanel(self.thumbnails, self)
        self.review = ReviewBar(self)
        self.problems = ProblemsView(self)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.problems)
        self.problems.hide()
        self.status = ProgressStatusBar(self)
        self.setStatusBar(self.status)
        self.engine = Engine(cache_path, self)
        self.files = FileOps(self, self.settings, lambda: self.session)
        self.map_control = MapController(
            self.map, lambda: self.session,
            lambda: self.engine.loaded.embedder.model_key if self.engine.loaded else None, parent=self)
        self._build_layout()
        f = self.files
        self.acts = build_actions(self, Slots(
            open_folder=f.open_folder, open_project=f.open_project, save=f.save_project,
            save_as=lambda: f.save_project(save_as=True), export_csv=f.export_csv,
            copy_to_folders=lambda: f.to_folders("copy"), move_to_folders=lambda: f.to_folders("move"),
            quit=self.close, undo=self.undo, redo=self.redo, add_class=self.ask_add_class,
            classify=self.engine.resume, settings=self.show_settings,
            recover=f.recover_autosave, fill_recent=self._fill_recent,
            label_next=lambda: self.review.show_filter(Filter.SUGGESTED)), self.problems)
        self._connect()
        self._set_enabled(False)
        g = self.settings.geometry()
        if g is not None:
            self.restoreGeometry(g)
        else:
            self.resize(1280, 800)
        if autostart:
            QTimer.singleShot(0, self.start)

    # construction ---------------------------------------------------------------------------
    def _build_layout(self) -> None:
        right = QWidget(self)
        lay = QVBoxLayout(right)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.review)
        self.stack = QStackedWidget(right)
        welcome = QWidget(self.stack)
        wl = QVBoxLayout(welcome)
        text = QLabel("1. Add a class for each kind of image (left).\n"
                      "2. Drop a few example images on each class.\n"
                      "3. Open the folder to label (Ctrl+O): it is classified live.\n"
                      "4. Review the least confident first; press 1-9 to correct.\n"
                      "5. Export a CSV (Ctrl+E) or copy the images into class folders.", welcome)
        text.setObjectName("welcome")
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.open_button = QPushButton(icon("folder-open"), "Open folder...", welcome)
        self.open_button.clicked.connect(lambda: self.files.open_folder())
        wl.addStretch(1)
        wl.addWidget(text)
        wl.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignCenter)
        wl.addStretch(1)
        self.stack.addWidget(welcome)
        self.views = QTabWidget(self.stack)
        self.views.setDocumentMode(True)
        self.views.addTab(self.grid, "Grid")
        self.views.setTabToolTip(self.views.addTab(self.map, "Map"), MapView.TAB_TIP)
        self.stack.addWidget(self.views)
        lay.addWidget(self.stack)
        split = QSplitter(self)
        split.addWidget(self.class_panel)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setCollapsible(0, False)
        split.setSizes([330, 950])
        self.setCentralWidget(split)

    def _connect(self) -> None:
        e, cp, g = self.engine, self.class_panel, self.grid
        e.modelLoaded.connect(self._model_loaded)
        e.modelFailed.connect(lambda m: self.warn("The model could not be loaded", m))
        e.busy.connect(self.status.begin)
        e.progress.connect(self.status.update_progress)
        e.idle.connect(lambda msg: self.status.finish(msg, 0 if msg else 5000))
        e.idle.connect(lambda _: self._model_label())  # the inference backend is known by now
        e.error.connect(lambda m: self.warn("Classification failed", m))
        self.status.cancelRequested.connect(self.cancel_work)
        self.files.failed.connect(self.warn)
        self.files.busy.connect(self.status.begin)
        self.files.idle.connect(lambda msg: self.status.finish(msg, 0 if msg else 5000))
        self.files.message.connect(lambda m: self.status.showMessage(m, 8000))
        self.files.projectChanged.connect(lambda _: self._update_title())
        self.files.folderOpened.connect(lambda _: (self.stack.setCurrentWidget(self.views), e.restart()))
        self.files.projectLoaded.connect(lambda: (e.resume(), e.schedule_rescore()))
        cp.addClassRequested.connect(self.ask_add_class)
        cp.filesDropped.connect(self.add_examples)
        cp.renameRequested.connect(lambda cid, name: self._edit(lambda s: s.rename_class(cid, name)))
        cp.recolourRequested.connect(lambda cid, c: self._edit(lambda s: s.recolour_class(cid, c)))
        cp.deleteRequested.connect(self.delete_class)
        cp.removeExamplesRequested.connect(lambda paths: self._edit(lambda s: s.remove_examples(paths)))
        g.assignRequested.connect(self.assign_rows)
        self.map.assignRequested.connect(self.assign_rows)
        self.map_control.follow(g, self.views, e.idle)
        g.removeRequested.connect(self.remove_rows)
        g.folderDropped.connect(lambda p: self.files.open_folder(p))
        g.openRequested.connect(lambda p: QDesktopServices.openUrl(QUrl.fromLocalFile(p)))
        self.review.filterChanged.connect(lambda f: self.image_model.set_view_options(filter_=f))
        self.review.sortChanged.connect(lambda s: self.image_model.set_view_options(sort=s))
        self.review.thresholdChanged.connect(lambda t: self._edit(lambda s: s.set_threshold(t)))
        self.review.thresholdCommitted.connect(lambda _: self._edit(lambda s: s.history.seal()))
        self.acts.method_combo.currentIndexChanged.connect(
            lambda _: self._edit(lambda s: s.set_method(self.acts.method_combo.currentData())))
        self.problems.countChanged.connect(self._problems_counted)

    # startup --------------------------------------------------------------------------------------
    def start(self) -> None:
        """After the window shows: the model loads in a worker; the session comes at once, so
        a folder opens and scans meanwhile (a project naming another model loads that one
        instead)."""
        self.engine.load(self._model_path or self.settings.model_path or None,
                         self.settings.device, self.settings.batch_size)
        self._make_session()

    def _make_session(self) -> None:
        if self.session is not None:
            return
        s = Session(threshold=self.settings.threshold)
        self.session = s
        self.engine.session = s
        b = SessionBinder(s, self.image_model, self.class_panel, self.review, self.problems, self)
        self.binder = b
        b.historyChanged.connect(self._update_history)
        b.modifiedChanged.connect(lambda _: self._update_title())
        b.countsChanged.connect(self._counts)
        b.stale.connect(self.engine.schedule_rescore)
        b.examplesChanged.connect(lambda: QTimer.singleShot(0, self._examples_changed))
        s.subscribe(self._session_event)
        self.review.set_threshold(s.threshold)
        self._set_enabled(True)
        self._update_history()
        self._update_title()
        folder, project = self._pending
        self._pending = (None, None)
        if project:
            self.files.open_project(project)
        elif folder:
            self.files.open_folder(folder)

    def _model_loaded(self, lm: LoadedModel) -> None:
        s = self.session
        if s is not None and s.model_path != lm.path:
            s.model_path = lm.path  # what is running (not an undoable edit)
        methods = list(lm.model.methods)
        self.acts.method_combo.blockSignals(True)
        self.acts.method_combo.clear()
        for key in methods:  # the model's learners, as its card names them
            self.acts.method_combo.addItem(lm.model.learner(key).label or key, key)
        self.acts.method_combo.blockSignals(False)
        fresh = s is not None and not s.can_undo and self.files.project_path is None
        if s is not None and (s.method not in methods or fresh) and s.method != lm.model.default_method:
            s.method = lm.model.default_method  # the model's own choice until the user picks
            self.engine.schedule_rescore()
        self._sync_method()
        self._update_title()
        self._model_label()

    def _model_label(self) -> None:
        lm = self.engine.loaded
        if lm is None:
            return
        how = lm.embedder.describe() if getattr(lm.embedder, "backend", None) else lm.device
        self.status.set_counts(f"Model: {lm.card.get('name', os.path.basename(lm.path))} ({how})")

    def _session_event(self, event: SessionEvent) -> None:
        if event.topic is Topic.METHOD:
            self._sync_method()
        elif event.topic is Topic.MODEL and self.session is not None and self.session.model_path:
            lm = self.engine.loaded
            if lm is None or os.path.abspath(lm.path) != self.session.model_path:
                self.engine.load(self.session.model_path, self.settings.device, self.settings.batch_size)

    def _sync_method(self) -> None:
        if self.session is not None:
            self.acts.method_combo.blockSignals(True)
            self.acts.method_combo.setCurrentIndex(max(0, self.acts.method_combo.findData(self.session.method)))
            self.acts.method_combo.blockSignals(False)

    def _examples_changed(self) -> None:
        self.engine.resume(examples_first=True)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.class_panel, self.review, self.grid, self.open_button, self.acts.method_combo):
            w.setEnabled(on)
        for a in self.acts.need_session():
            a.setEnabled(on)

    # user edits ---------------------------------------------------------------------------------
    def _edit(self, fn) -> object:  # noqa: ANN001
        """Run a session edit; a refused edit (ValueError/KeyError) becomes a message."""
        if self.session is None:
            return None
        try:
            return fn(self.session)
        except (ValueError, KeyError) as e:
            self.warn("Not possible", str(e).strip("'\""))
            return None

    def add_class(self, name: str | None = None, colour: str | None = None):  # noqa: ANN201
        return self._edit(lambda s: s.add_class(name, colour))

    def ask_add_class(self) -> None:
        if self.session is None:
            return
        name, ok = QInputDialog.getText(self, "Add class", "Name of the new class:",
                                        text=f"Class {len(self.session.classes) + 1}")
        if ok:
            self.add_class(name)

    def delete_class(self, class_id: int) -> None:
        s = self.session
        c = s.class_by_id(class_id) if s else None
        if c is not None:
            self._edit(lambda s: s.delete_class(class_id))
            self.status.showMessage(f"Deleted class {c.name} - Ctrl+Z brings it back", 8000)

    def add_examples(self, class_id: int, paths: list[str]) -> None:
        """The drop / "Add images..." path: files directly, folders scanned in a job."""
        if self.session is None:
            return
        if not any(os.path.isdir(p) for p in paths):
            added = self._edit(lambda s: s.add_examples(class_id, paths))
            if added == [] and paths:
                self.status.showMessage("No new image files among what was dropped", 6000)
            return
        from .workers import Job

        job = Job(lambda ctx: expand_paths(paths, ctx.cancel_event), name="Reading the dropped folders")
        job.signals.result.connect(lambda files: self._edit(lambda s: s.add_examples(class_id, files)))
        job.signals.error.connect(lambda m: self.warn("Cannot add the examples", m))
        self.files.runner.start(job)

    def assign_rows(self, class_index: int, rows: list[int]) -> None:
        s = self.session
        c = s.class_at(class_index) if s else None
        if c is None:
            self.status.showMessage(f"There is no class {class_index + 1}", 5000)
            return
        paths = [self.image_model.paths[r] for r in rows]
        self._edit(lambda s: s.assign(paths, c.id))
        self.status.showMessage(f"{len(paths)} image{'s' * (len(paths) != 1)} assigned to {c.name}", 5000)

    def remove_rows(self, rows: list[int]) -> None:
        paths = [self.image_model.paths[r] for r in rows]
        removed = self._edit(lambda s: s.remove_examples(paths))
        if not removed:
            self.status.showMessage("Only examples and corrections can be removed (Delete)", 5000)

    def undo(self) -> None:
        label = self._edit(lambda s: s.undo())
        if label:
            self.status.showMessage(f"Undone: {label}", 5000)

    def redo(self) -> None:
        label = self._edit(lambda s: s.redo())
        if label:
            self.status.showMessage(f"Redone: {label}", 5000)

    def cancel_work(self) -> None:
        self.files.cancel_scan()
        if self.files.file_job is not None:
            self.files.file_job.cancel()
        self.engine.cancel()

    def show_settings(self) -> None:
        try:
            avail = available_devices()
        except Exception:
            avail = None
        lm = self.engine.loaded
        dlg = SettingsDialog(self.settings, avail, lm.device if lm else "", self)
        if dlg.exec():
            changed = dlg.apply()
            self.files.set_autosave_minutes(self.settings.autosave_minutes)
            if changed.keys() & {"device", "model_path", "batch_size"}:
                self.engine.load(self.settings.model_path or self._model_path or None,
                                 self.settings.device, self.settings.batch_size)

    # view updates ------------------------------------------------------------------------------
    def _update_history(self) -> None:
        s = self.session
        self.acts.undo.setEnabled(bool(s and s.can_undo))
        self.acts.redo.setEnabled(bool(s and s.can_redo))
        self.acts.undo.setToolTip(s.undo_label if s else "Undo")
        self.acts.redo.setToolTip(s.redo_label if s else "Redo")
        self.acts.undo.setText(s.undo_label if s else "Undo")
        self.acts.redo.setText(s.redo_label if s else "Redo")

    def _update_title(self) -> None:
        p = self.files.project_path
        name = os.path.basename(p) if p else "untitled"
        star = "*" if self.session is not None and self.session.modified else ""
        self.setWindowTitle(f"{name}{star} - fewshot-label")

    def _counts(self, c: dict) -> None:
        parts = [f"{c['total']:,} images", f"{c['done']:,} classified"]
        if c["unknown"]:
            parts.append(f"{c['unknown']:,} unknown")
        if c["problems"]:
            parts.append(f"{c['problems']:,} skipped")
        self.review.counts.setText(" · ".join(parts))
        if c["total"]:
            self.stack.setCurrentWidget(self.grid)

    def _problems_counted(self, n: int) -> None:
        self.problems.setWindowTitle(self.problems.title_for(n))
        if n and not self._problems_shown:
            self._problems_shown = True
            self.problems.show()

    def _fill_recent(self, menu) -> None:  # noqa: ANN001 - a QMenu
        menu.clear()
        for p in self.settings.recent_projects:
            menu.addAction(p, lambda p=p: self.files.open_project(p))
        menu.setEnabled(True)

    def warn(self, title: str, message: str) -> None:
        log.warning("%s: %s", title, message)
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.last_warning = (title, message)

    def closeEvent(self, e: QCloseEvent) -> None:  # noqa: N802
        saved = self.files.autosave()  # never lose work; no blocking question on quit
        if saved:
            log.info("autosaved to %s", saved)
        if self.session is not None:
            self.settings.threshold = self.session.threshold
        self.settings.set_geometry(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.engine.shutdown()
        self.files.shutdown()
        self.map_control.shutdown()
        self.thumbnails.wait(5000)
        if self.binder is not None:
            self.binder.detach()
        super().closeEvent(e)
