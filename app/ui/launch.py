"""Entry point of the desktop app: ``fewshot-label [FOLDER | PROJECT] [--model PATH]``.

Only Qt is imported before the window shows; torch and the model load in a worker.
"""
from __future__ import annotations

import argparse
import sys

from .. import __version__
from .platform_check import platform_problem


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="fewshot-label", description="Few-shot image labeling: drop a "
                                 "few examples per class, the whole folder is labelled live.")
    ap.add_argument("path", nargs="?", help="a folder of images to open, or a project file (.fsproj.json)")
    ap.add_argument("--model", help="model checkpoint (default: the shipped photo model)")
    ap.add_argument("--cache", help="embedding cache file (default: the user cache folder)")
    ap.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    problem = platform_problem()
    if problem:  # Qt would abort with a generic message and a core dump
        print(problem, file=sys.stderr)
        return 1
    from PySide6.QtWidgets import QApplication

    from .errors import install_excepthook, setup_logging
    from .icons import app_icon, style_sheet

    setup_logging()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("fewshot-label")
    app.setOrganizationName("fewshot-label")
    app.setWindowIcon(app_icon())
    app.setStyleSheet(style_sheet())
    install_excepthook()
    from .main_window import MainWindow

    folder = project = None
    if args.path:
        import os

        if os.path.isdir(args.path):
            folder = args.path
        else:
            project = args.path
    win = MainWindow(folder=folder, project=project, model_path=args.model, cache_path=args.cache)
    win.show()
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
