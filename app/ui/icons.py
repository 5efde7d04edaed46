"""Icons (small SVGs in ``resources/icons``) and the style sheet, shipped with the package
(``app.core.bundled``)."""
from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

from ..core.bundled import bundled_dir

RESOURCES = bundled_dir("resources")


@lru_cache(maxsize=None)
def icon(name: str) -> QIcon:
    """``resources/icons/NAME.svg``; an empty icon when the file is missing."""
    p = RESOURCES / "icons" / f"{name}.svg"
    return QIcon(str(p)) if p.exists() else QIcon()


def app_icon() -> QIcon:
    return icon("app")


def colour_icon(colour: str, size: int = 18) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor(colour))
    p.setPen(QColor(0, 0, 0, 90))
    p.drawRoundedRect(1, 1, size - 2, size - 2, 4, 4)
    p.end()
    return QIcon(pm)


def style_sheet() -> str:
    p = RESOURCES / "style.qss"
    return p.read_text(encoding="utf-8") if p.exists() else ""
