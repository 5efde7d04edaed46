"""Never crash: unexpected exceptions are logged and shown in a dialog."""
from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

log = logging.getLogger("fewshot-label")
_showing = False
_open_boxes: list[QMessageBox] = []


def log_file() -> Path:
    try:
        from platformdirs import user_log_dir

        d = Path(user_log_dir("fewshot-label"))
    except Exception:
        d = Path.home() / ".fewshot-label"
    return d / "fewshot-label.log"


def setup_logging() -> Path | None:
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        handler, path = logging.StreamHandler(), None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


def show_error(title: str, message: str, details: str = "") -> None:
    """A modal message box (or stderr when there is no application)."""
    app = QApplication.instance()
    if app is None:
        print(f"{title}: {message}\n{details}", file=sys.stderr)
        return
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok,
                      app.activeWindow())
    if details:
        box.setDetailedText(details)
    _open_boxes.append(box)  # keep it alive until closed (it may have no parent)
    box.finished.connect(lambda _=0, b=box: _open_boxes.remove(b) if b in _open_boxes else None)
    box.open()  # not exec(): never nest event loops from inside a slot


def excepthook(etype: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    global _showing
    text = "".join(traceback.format_exception(etype, value, tb))
    log.error("Unexpected error:\n%s", text)
    if issubclass(etype, KeyboardInterrupt):
        QApplication.quit()
        return
    if _showing:
        return
    _showing = True
    msg = f"{value}" if str(value) else etype.__name__
    QTimer.singleShot(0, lambda: _show(msg, text))


def _show(msg: str, text: str) -> None:
    global _showing
    try:
        show_error("Something went wrong",
                   f"{msg}\n\nYour work is not lost: the app keeps running. Details are in "
                   f"{log_file()}.", text)
    finally:
        _showing = False


def _qt_message(mode, context, message: str) -> None:  # noqa: ANN001
    """Qt's own warnings (e.g. a corrupt JPEG while drawing its thumbnail) go to the log,
    not to the terminal of a user who never opened one."""
    from PySide6.QtCore import QtMsgType

    level = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
             QtMsgType.QtWarningMsg: logging.WARNING}.get(mode, logging.ERROR)
    logging.getLogger("qt").log(level, "%s", message)


def install_excepthook() -> None:
    """Unexpected exceptions -> log + dialog; Qt messages -> log."""
    from PySide6.QtCore import qInstallMessageHandler

    sys.excepthook = excepthook
    qInstallMessageHandler(_qt_message)
