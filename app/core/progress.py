"""The one progress bar of the command line and the training code: tqdm (rate, elapsed,
ETA) on stderr.

On a terminal it redraws one line; into a log file (``nohup ... > log``) tqdm writes at most
one update every ``every`` seconds, so the log stays readable.
"""
from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

FORMAT = ("{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
          "[elapsed {elapsed}, ETA {remaining}, {rate_fmt}{postfix}]")


class _Lines:
    """A log file's view of the bar: each redraw becomes a line of its own."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


class Progress:
    def __init__(self, total: int, desc: str, stream: TextIO | None = None,
                 every: float = 10.0, start_at: int = 0, quiet: bool = False) -> None:
        stream = stream or sys.stderr
        tty = bool(getattr(stream, "isatty", lambda: False)())
        self.bar = tqdm(total=max(1, total), desc=desc, initial=start_at,
                        file=stream if tty else _Lines(stream),
                        disable=quiet, mininterval=0.2 if tty else every, dynamic_ncols=tty,
                        ascii=not tty, leave=True, bar_format=FORMAT)

    def update(self, done: int, note: str = "") -> None:
        if note:
            self.bar.set_postfix_str(note, refresh=False)
        self.bar.update(done - self.bar.n)

    def message(self, text: str) -> None:
        if not self.bar.disable:
            self.bar.write(text, file=self.bar.fp)

    def close(self) -> None:
        self.bar.close()

    def callback(self, note: str = ""):
        """A ``(done, total)`` callable, as the embedder's progress hook takes."""
        def cb(done: int, total: int) -> None:
            if total != self.bar.total:
                self.bar.total = max(1, total)
            self.update(done, note)
        return cb
