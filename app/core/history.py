"""Undo/redo with the command pattern: each user edit is a reversible ``Command``.

    history.push(Command("Rename class", do=..., undo=...))   # runs do()
    history.undo(); history.redo()
    history.undo_label  # "Undo Rename class" for a menu

Consecutive commands with the same ``merge_key`` (e.g. dragging the threshold slider)
merge into one undo step: the first one's ``undo`` and the last one's ``do``, until
``seal()`` (e.g. when the slider is released).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass
class Command:
    label: str
    do: Callable[[], None]
    undo: Callable[[], None]
    merge_key: str | None = None


class History:
    def __init__(self, limit: int = 1000) -> None:
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self.limit = limit
        self._sealed = False

    def push(self, cmd: Command, execute: bool = True) -> None:
        if execute:
            cmd.do()
        last = self._done[-1] if self._done else None
        if (cmd.merge_key is not None and last is not None and last.merge_key == cmd.merge_key
                and not self._undone and not self._sealed):
            self._done[-1] = Command(cmd.label, cmd.do, last.undo, cmd.merge_key)
        else:
            self._done.append(cmd)
            if len(self._done) > self.limit:
                del self._done[0]
        self._undone.clear()
        self._sealed = False

    def seal(self) -> None:
        """End a merge run: the next command starts a new undo step (e.g. slider released)."""
        self._sealed = True

    def undo(self) -> str | None:
        """Undo the last edit; returns its label, or None when there is nothing to undo."""
        if not self._done:
            return None
        cmd = self._done.pop()
        cmd.undo()
        self._undone.append(cmd)
        return cmd.label

    def redo(self) -> str | None:
        if not self._undone:
            return None
        cmd = self._undone.pop()
        cmd.do()
        self._done.append(cmd)
        return cmd.label

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def undo_label(self) -> str:
        return f"Undo {self._done[-1].label}" if self._done else "Undo"

    @property
    def redo_label(self) -> str:
        return f"Redo {self._undone[-1].label}" if self._undone else "Redo"
