"""Keeps the Map view's positions: made in a worker (progress, cancel), kept per folder and
model (``MapStore`` in the user's cache folder), images added later placed on the map as
they come instead of a new projection."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np
from PySide6.QtCore import QObject

from ..core.cache import default_cache_dir
from ..core.projection import MapStore, place, project
from .map_view import MapView
from .workers import Job, JobRunner

if TYPE_CHECKING:
    from app.core.session import Session

REMAP_BELOW = 0.8   # a full projection again when under 80% of the images are on the map


class MapController(QObject):
    def __init__(self, view: MapView, session: Callable[[], "Session | None"],
                 model_key: Callable[[], str | None], store: MapStore | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.session = session
        self.model_key = model_key
        self.store = store or MapStore(default_cache_dir() / "maps")
        self.runner = JobRunner(1, self)   # never holds up embedding or scoring
        self.job: Job | None = None
        self.key: tuple[str, str] | None = None
        self.positions: dict[str, tuple[float, float]] = {}
        view.updateRequested.connect(lambda: self.update(full=True))
        view.cancelRequested.connect(self.cancel)

    def follow(self, grid, tabs, idle) -> None:  # noqa: ANN001
        """Keep the map's selection and the grid's the same, and update the map whenever
        it is shown or embedding ends (``idle``) while it is."""
        model = self.view.model
        handing = [False]   # the map's own selection echoing back from the grid

        def to_grid(rows: list[int]) -> None:
            handing[0] = True
            try:  # the grid shows what of it passes its filter; the map keeps all of it
                grid.select_paths([model.paths[r] for r in rows])
            finally:
                handing[0] = False

        self.view.rowsSelected.connect(to_grid)
        grid.selectionModel().selectionChanged.connect(
            lambda *_: handing[0] or self.view.show_selection(grid.selected_source_rows()))

        def if_shown(*_) -> None:  # noqa: ANN002
            if tabs.currentWidget() is self.view:
                self.update()
        tabs.currentChanged.connect(if_shown)
        idle.connect(if_shown)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.done

    def update(self, full: bool = False) -> Job | None:
        """Show the map of the open folder: the kept one at once, new images placed on it,
        or (``full``, or most images new) a new projection in a worker."""
        s, key = self.session(), self.model_key()
        if s is None or key is None or not s.folder or self.busy:
            return None
        first = self.key != (s.folder, key)   # another folder or model: its kept map
        if first:
            self.key = (s.folder, key)
            self.positions = self.store.load(s.folder, key)
        paths = list(s.images)
        pos, rows = s.feature_reader(paths)
        have = [paths[i] for i in pos]
        placed = np.fromiter((p in self.positions for p in have), bool, len(have))
        if not full and placed.all():
            self.view.set_positions(self.positions, fit=first)
            return None
        incremental = not full and placed.sum() >= max(5, REMAP_BELOW * len(have))
        known = dict(self.positions) if incremental else {}
        folder, mkey = self.key

        def work(ctx) -> dict[str, tuple[float, float]]:  # noqa: ANN001
            if incremental:
                ki, ni = np.flatnonzero(placed), np.flatnonzero(~placed)
                kxy = np.array([known[have[i]] for i in ki], np.float32)
                xy = place(lambda i: rows(ki[i]), kxy, lambda i: rows(ni[i]), len(ni))
                out = dict(known)
                out.update({have[i]: (float(a), float(b)) for i, (a, b) in zip(ni, xy)})
            else:
                xy = project(rows, len(have), ctx.cancel_event, ctx.progress)
                out = {p: (float(a), float(b)) for p, (a, b) in zip(have, xy)}
            keep = [p for p in paths if p in out]
            self.store.save(folder, mkey, keep, np.array([out[p] for p in keep], np.float32))
            return out

        job = Job(work, name="Making the map")
        self.view.begin()
        job.signals.progress.connect(self.view.update_progress)
        job.signals.result.connect(lambda out, inc=incremental: self._done(out, not inc))
        job.signals.cancelled.connect(lambda: self.view.finish("Map cancelled."))
        job.signals.error.connect(lambda m: self.view.finish(f"The map could not be made: {m}"))
        self.job = job
        return self.runner.start(job)

    def _done(self, positions: dict[str, tuple[float, float]], fit: bool) -> None:
        self.positions = positions
        self.view.finish()
        self.view.set_positions(positions, fit=fit)

    def shutdown(self, msecs: int = 5000) -> None:
        self.cancel()
        self.runner.wait(msecs)
