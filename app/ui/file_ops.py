"""Folder, project and output operations of the window (dialogs + core calls + jobs).

Every method takes an optional path: with it, no dialog is shown (scripts and tests);
without it, the usual file dialog asks. Confirmations go through ``confirm``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from ..core.export import apply_plan, plan_files, write_csv
from ..core.project import ProjectError, apply_project, load_project, save_project
from ..core.scan import scan
from ..core.session import Session
from .settings import AppSettings
from .workers import Job, JobContext, JobRunner

log = logging.getLogger(__name__)
PROJECT_FILTER = "Labeling projects (*.fsproj.json *.json)"


def autosave_path() -> Path:
    """In the user's data folder (platformdirs), like the cache and the logs: never beside
    the installed program, which may be read-only."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("fewshot-label", appauthor=False)) / "autosave.fsproj.json"


class FileOps(QObject):
    """Runs its jobs (scans, copies and moves) on its own ``runner``; the window connects
    ``folderOpened`` and ``projectLoaded`` to the engine (embedding and scoring)."""
    folderOpened = Signal(str)     # a scanned folder is the session's now
    projectLoaded = Signal()       # a project's classes and examples are the session's now
    projectChanged = Signal(str)   # project file path ("" for none)
    message = Signal(str)
    failed = Signal(str, str)      # title, message
    busy = Signal(str, int, bool)  # like Engine.busy: task text, total (0 = unknown), cancellable
    idle = Signal(str)             # like Engine.idle: message for the status bar

    def __init__(self, window: QWidget, settings: AppSettings,
                 session_getter: Callable[[], "Session | None"]) -> None:
        super().__init__(window)
        self.window = window
        self.runner = JobRunner(2, self)
        self.settings = settings
        self._session = session_getter
        self.project_path: str | None = None
        self.scan_job: Job | None = None
        self.file_job: Job | None = None
        self.confirm: Callable[[str, str], bool] = self._ask
        self.autosave_timer = QTimer(self)
        self.autosave_timer.timeout.connect(self.autosave)
        self.set_autosave_minutes(settings.autosave_minutes)

    # folders ----------------------------------------------------------------------------
    def open_folder(self, folder: str | None = None) -> None:
        s = self._session()
        if s is None:
            return
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self.window, "Open a folder of images",
                                                      self.settings.last_folder or "")
            if not folder:
                return
        folder = os.path.abspath(folder)
        if self.scan_job is not None and not self.scan_job.done:
            self.scan_job.cancel()
        def run(ctx: JobContext):  # noqa: ANN202
            return scan(folder, ctx.cancel_event, lambda n: ctx.progress(n, 0))

        job = Job(run, name="Scanning")
        self.scan_job = job
        job.signals.progress.connect(lambda n, _t: self.busy.emit(f"Scanning: {n:,} images found", 0, True))
        job.signals.result.connect(lambda r, f=folder: self._scanned(f, r))
        job.signals.error.connect(lambda m: self.failed.emit("Cannot open the folder", m))
        job.signals.cancelled.connect(lambda: self.idle.emit("Scan cancelled"))
        self.busy.emit(f"Scanning {folder}...", 0, True)
        self.runner.start(job)

    def _scanned(self, folder: str, result) -> None:  # noqa: ANN001
        s = self._session()
        if s is None:
            return
        if result.cancelled:
            self.idle.emit("Scan cancelled")
            return
        if not result.records and result.problems and result.problems[0][0] == folder:
            self.idle.emit("")
            self.failed.emit("Cannot open the folder", f"{folder}: {result.problems[0][1]}")
            return
        s.set_folder(folder, result.records)
        if result.problems:
            s.add_features([], [], result.problems)
        self.settings.last_folder = folder
        n = len(result.records)
        self.idle.emit(f"{n:,} image{'s' * (n != 1)} in {folder}")
        self.folderOpened.emit(folder)

    def recover_autosave(self) -> None:
        p = autosave_path()
        if p.exists():
            self.open_project(str(p))
            self.project_path = None  # "Save" asks where: the autosave file is not a home
            self.projectChanged.emit("")
        else:
            self.failed.emit("Nothing to recover", "There is no autosaved session.")

    def cancel_scan(self) -> None:
        if self.scan_job is not None:
            self.scan_job.cancel()

    # projects ---------------------------------------------------------------------------
    def save_project(self, path: str | None = None, save_as: bool = False) -> bool:
        s = self._session()
        if s is None:
            return False
        path = path or (None if save_as else self.project_path)
        if path is None:
            start = self.project_path or os.path.join(s.folder or self.settings.last_folder or "",
                                                      "labels.fsproj.json")
            path, _ = QFileDialog.getSaveFileName(self.window, "Save project", start, PROJECT_FILTER)
            if not path:
                return False
        try:
            saved = save_project(s, path)
        except OSError as e:
            self.failed.emit("Cannot save the project", f"{path}: {e.strerror or e}")
            return False
        self.project_path = str(saved)
        self.settings.add_recent_project(self.project_path)
        self.projectChanged.emit(self.project_path)
        self.message.emit(f"Saved {self.project_path}")
        return True

    def open_project(self, path: str | None = None) -> bool:
        s = self._session()
        if s is None:
            return False
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self.window, "Open project",
                                                  self.settings.last_folder or "", PROJECT_FILTER)
            if not path:
                return False
        try:
            data = load_project(path)
        except ProjectError as e:
            self.failed.emit("Cannot open the project", str(e))
            return False
        apply_project(s, data)  # its "model" event makes the window load the project's model
        self.project_path = os.path.abspath(path)
        self.settings.add_recent_project(self.project_path)
        self.projectChanged.emit(self.project_path)
        if data.missing:
            n = len(data.missing)
            self.failed.emit("Some examples are missing",
                             f"{n} example file{'s' * (n != 1)} of the project no longer exist "
                             f"(e.g. {data.missing[0]}); they are skipped.")
        if data.folder:
            self.open_folder(data.folder)
        else:
            s.set_folder(None, [])
        self.projectLoaded.emit()
        return True

    def shutdown(self, msecs: int = 5000) -> None:
        self.runner.cancel_all()
        self.runner.wait(msecs)

    def set_autosave_minutes(self, minutes: int) -> None:
        if minutes > 0:
            self.autosave_timer.start(minutes * 60_000)
        else:
            self.autosave_timer.stop()

    def autosave(self) -> str | None:
        """Save to the project file if there is one, else to a recovery file."""
        s = self._session()
        if s is None or not s.modified:
            return None
        try:
            if self.project_path:
                save_project(s, self.project_path)
                return self.project_path
            p = autosave_path()
            p.parent.mkdir(parents=True, exist_ok=True)
            save_project(s, p, mark_saved=False)
            return str(p)
        except OSError as e:
            log.warning("autosave failed: %s", e)
            self.message.emit(f"Autosave failed: {e.strerror or e}")
            return None

    # output ---------------------------------------------------------------------------------
    def export_csv(self, path: str | None = None) -> int | None:
        s = self._session()
        if s is None:
            return None
        if path is None:
            start = os.path.join(s.folder or self.settings.last_folder or "", "labels.csv")
            path, _ = QFileDialog.getSaveFileName(self.window, "Export CSV", start, "CSV (*.csv)")
            if not path:
                return None
        rows = s.result_rows()
        try:
            n = write_csv(path, rows)
        except OSError as e:
            self.failed.emit("Cannot write the CSV", f"{path}: {e.strerror or e}")
            return None
        pending = sum(1 for p in s.images if p not in s.features and p not in s.problems
                      and s.example(p) is None)
        self.message.emit(f"Exported {n:,} rows to {path}"
                          + (f" ({pending:,} images not classified yet were left out)" if pending else ""))
        return n

    def to_folders(self, mode: str, dest: str | None = None) -> Job | None:
        """Copy or move every labelled image into DEST/<class>/ (after a confirmation)."""
        s = self._session()
        if s is None:
            return None
        if dest is None:
            dest = QFileDialog.getExistingDirectory(self.window, f"{mode.title()} images into class folders under...",
                                                    s.folder or "")
            if not dest:
                return None
        plan = plan_files(s.result_rows(), dest)
        if not plan.ops:
            self.failed.emit("Nothing to do", "No labelled images to copy or move yet.")
            return None
        text = plan.summary(mode) + ".\n\nExisting files are never overwritten (a new name is used)."
        if mode == "move":
            text += "\nThe files are removed from their current place."
        if not self.confirm(f"{mode.title()} into class folders", text):
            return None
        job = Job(lambda ctx: apply_plan(plan, mode, cancel=ctx.cancel_event), name=f"{mode.title()} files")
        self.file_job = job
        job.signals.result.connect(lambda rep: self._files_done(rep, mode))
        job.signals.error.connect(lambda m: self.failed.emit(f"{mode.title()} failed", m))
        self.busy.emit(f"{mode.title()}ing {len(plan.ops):,} files...", 0, True)
        self.runner.start(job)
        return job

    def _files_done(self, report, mode: str) -> None:  # noqa: ANN001
        self.idle.emit(report.summary(mode))
        if report.failed:
            lines = "\n".join(f"{p}: {r}" for p, r in report.failed[:20])
            self.failed.emit(f"Some files could not be {mode}d", lines)
        s = self._session()
        if mode == "move" and s is not None and report.done:
            # examples, features and predictions follow the files: nothing is embedded again
            s.relocate([(op.source, op.target) for op in report.done])

    def _ask(self, title: str, text: str) -> bool:
        r = QMessageBox.question(self.window, title, text,
                                 QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel)
        return r == QMessageBox.StandardButton.Ok
