"""The problems view: files that were skipped, with the reason (a dock widget)."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QDockWidget, QHeaderView, QTableWidget,
                               QTableWidgetItem, QWidget)


class ProblemsView(QDockWidget):
    countChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Problems", parent)
        self.setObjectName("problemsDock")
        self.table = QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(["File", "Reason"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setWidget(self.table)
        self._rows: dict[str, int] = {}

    def set_problems(self, problems: dict[str, str]) -> None:
        """Show exactly these (path -> reason)."""
        self.table.setRowCount(0)
        self._rows.clear()
        self.add_problems(problems)

    def add_problems(self, problems: dict[str, str]) -> None:
        for path, reason in problems.items():
            r = self._rows.get(path)
            if r is None:
                r = self.table.rowCount()
                self.table.insertRow(r)
                self._rows[path] = r
            item = QTableWidgetItem(path)
            item.setToolTip(path)
            self.table.setItem(r, 0, item)
            self.table.setItem(r, 1, QTableWidgetItem(reason))
        self.countChanged.emit(len(self._rows))

    def problems(self) -> dict[str, str]:
        out = {}
        for r in range(self.table.rowCount()):
            out[self.table.item(r, 0).text()] = self.table.item(r, 1).text()
        return out

    def count(self) -> int:
        return len(self._rows)

    def title_for(self, n: int) -> str:
        return f"Problems ({n})" if n else "Problems"
