"""The problems view: files that were skipped, with the reason (a dock widget).

A table model over a plain list, so thousands of broken files cost nothing to show."""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QDockWidget, QHeaderView, QTableView, QWidget

Index = QModelIndex | QPersistentModelIndex


class ProblemsModel(QAbstractTableModel):
    HEADERS = ("File", "Reason")

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str]] = []
        self.index_of: dict[str, int] = {}

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else 2

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: ANN201
        if index.isValid() and role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self.rows[index.row()][index.column()]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole):  # noqa: ANN201
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None

    def reset(self, problems: dict[str, str]) -> None:
        self.beginResetModel()
        self.rows = list(problems.items())
        self.index_of = {p: i for i, (p, _) in enumerate(self.rows)}
        self.endResetModel()

    def add(self, problems: dict[str, str]) -> None:
        new = [(p, r) for p, r in problems.items() if p not in self.index_of]
        for p, r in problems.items():
            i = self.index_of.get(p)
            if i is not None and self.rows[i][1] != r:
                self.rows[i] = (p, r)
                self.dataChanged.emit(self.index(i, 1), self.index(i, 1))
        if new:
            n = len(self.rows)
            self.beginInsertRows(QModelIndex(), n, n + len(new) - 1)
            for k, (p, r) in enumerate(new):
                self.index_of[p] = n + k
                self.rows.append((p, r))
            self.endInsertRows()


class ProblemsView(QDockWidget):
    countChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Problems", parent)
        self.setObjectName("problemsDock")
        self.model = ProblemsModel()
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().resizeSection(1, 320)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setWidget(self.table)

    def set_problems(self, problems: dict[str, str]) -> None:
        """Show exactly these (path -> reason)."""
        self.model.reset(problems)
        self.countChanged.emit(self.count())

    def add_problems(self, problems: dict[str, str]) -> None:
        self.model.add(problems)
        self.countChanged.emit(self.count())

    def problems(self) -> dict[str, str]:
        return dict(self.model.rows)

    def count(self) -> int:
        return len(self.model.rows)

    def title_for(self, n: int) -> str:
        return f"Problems ({n:,})" if n else "Problems"
