"""A dependency-free progress bar with ETA for the command line (stderr).

On a terminal it redraws one line; into a log file it writes a line every ``every``
seconds, so ``nohup ... > log`` stays readable.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "--:--"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


class Progress:
    def __init__(self, total: int, desc: str, stream: TextIO | None = None,
                 every: float = 10.0, start_at: int = 0, quiet: bool = False) -> None:
        self.total = max(1, total)
        self.desc = desc
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = 0.2 if self.tty else every
        self.start = time.monotonic()
        self.start_at = start_at
        self.last = 0.0
        self.quiet = quiet
        self.done = start_at

    def eta(self, done: int) -> float | None:
        elapsed = time.monotonic() - self.start
        n = done - self.start_at
        if n <= 0 or elapsed <= 0:
            return None
        return (self.total - done) * elapsed / n

    def update(self, done: int, note: str = "", force: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        if self.quiet or (not force and now - self.last < self.every and done < self.total):
            return
        self.last = now
        pct = 100.0 * done / self.total
        width = 24
        fill = int(width * done / self.total)
        bar = "#" * fill + "-" * (width - fill)
        line = (f"{self.desc} [{bar}] {done}/{self.total} {pct:5.1f}% "
                f"elapsed {fmt_seconds(now - self.start)} ETA {fmt_seconds(self.eta(done))}"
                + (f" {note}" if note else ""))
        if self.tty:
            self.stream.write("\r" + line + "\033[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.quiet:
            return
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()

    def callback(self, note: str = ""):
        def cb(done: int, total: int) -> None:
            self.total = max(1, total)
            self.update(done, note)
        return cb
