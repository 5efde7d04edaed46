"""Remembered settings (QSettings): window geometry, last folder, device, threshold,
model, autosave interval and recent projects. Tests pass an ini file path."""
from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

DEVICES = ("auto", "cpu", "cuda", "mps")
MAX_RECENT = 8


class AppSettings:
    def __init__(self, ini_path: str | None = None) -> None:
        if ini_path:
            self.q = QSettings(ini_path, QSettings.Format.IniFormat)
        else:
            self.q = QSettings("fewshot-label", "fewshot-label")

    def _get(self, key: str, default, type_):  # noqa: ANN001,ANN202
        v = self.q.value(key, default)
        try:
            return type_(v) if v is not None else default
        except (TypeError, ValueError):
            return default

    @property
    def device(self) -> str:
        d = self._get("device", "auto", str)
        return d if d in DEVICES else "auto"

    @device.setter
    def device(self, v: str) -> None:
        self.q.setValue("device", v)

    @property
    def threshold(self) -> float:
        return min(1.0, max(0.0, self._get("threshold", 0.0, float)))

    @threshold.setter
    def threshold(self, v: float) -> None:
        self.q.setValue("threshold", float(v))

    @property
    def last_folder(self) -> str:
        return self._get("last_folder", "", str)

    @last_folder.setter
    def last_folder(self, v: str) -> None:
        self.q.setValue("last_folder", v)

    @property
    def model_path(self) -> str:
        return self._get("model_path", "", str)

    @model_path.setter
    def model_path(self, v: str) -> None:
        self.q.setValue("model_path", v)

    @property
    def autosave_minutes(self) -> int:
        return max(0, self._get("autosave_minutes", 2, int))

    @autosave_minutes.setter
    def autosave_minutes(self, v: int) -> None:
        self.q.setValue("autosave_minutes", int(v))

    @property
    def batch_size(self) -> int:
        return min(512, max(1, self._get("batch_size", 32, int)))

    @batch_size.setter
    def batch_size(self, v: int) -> None:
        self.q.setValue("batch_size", int(v))

    @property
    def recent_projects(self) -> list[str]:
        v = self.q.value("recent_projects", [])
        if isinstance(v, str):
            v = [v] if v else []
        return [str(x) for x in (v or [])][:MAX_RECENT]

    def add_recent_project(self, path: str) -> None:
        rec = [path] + [p for p in self.recent_projects if p != path]
        self.q.setValue("recent_projects", rec[:MAX_RECENT])

    def geometry(self) -> QByteArray | None:
        v = self.q.value("geometry")
        return v if isinstance(v, QByteArray) else None

    def set_geometry(self, g: QByteArray, state: QByteArray) -> None:
        self.q.setValue("geometry", g)
        self.q.setValue("window_state", state)

    def window_state(self) -> QByteArray | None:
        v = self.q.value("window_state")
        return v if isinstance(v, QByteArray) else None

    def sync(self) -> None:
        self.q.sync()
