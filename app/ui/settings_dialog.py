"""Settings: device (auto/CPU/CUDA/MPS), model file, batch size, autosave interval."""
from __future__ import annotations

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QWidget)

from .settings import AppSettings

DEVICE_LABELS = {"auto": "Automatic (CUDA, then Apple MPS, then CPU)", "cpu": "CPU",
                 "cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU (MPS)"}


class SettingsDialog(QDialog):
    def __init__(self, settings: AppSettings, available: dict[str, bool] | None = None,
                 current_device: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        form = QFormLayout(self)
        self.device = QComboBox(self)
        for key, label in DEVICE_LABELS.items():
            ok = True if available is None else available.get(key, key in ("auto", "cpu"))
            self.device.addItem(label if ok else f"{label} - not available", key)
        self.device.setCurrentIndex(max(0, self.device.findData(settings.device)))
        form.addRow("Device:", self.device)
        if current_device:
            form.addRow("", QLabel(f"Now running on: {current_device}", self))
        row = QHBoxLayout()
        self.model = QLineEdit(settings.model_path, self)
        self.model.setPlaceholderText("default: the shipped photo model")
        browse = QPushButton("Browse...", self)
        browse.clicked.connect(self._browse)
        row.addWidget(self.model)
        row.addWidget(browse)
        form.addRow("Model:", row)
        self.batch = QSpinBox(self)
        self.batch.setRange(1, 512)
        self.batch.setValue(settings.batch_size)
        form.addRow("Batch size:", self.batch)
        self.autosave = QSpinBox(self)
        self.autosave.setRange(0, 120)
        self.autosave.setSuffix(" min")
        self.autosave.setSpecialValueText("off")
        self.autosave.setValue(settings.autosave_minutes)
        form.addRow("Autosave every:", self.autosave)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        f, _ = QFileDialog.getOpenFileName(self, "Choose a model", "",
                                           "Few-shot models (*.safetensors *.json)")
        if f:
            self.model.setText(f)

    def apply(self) -> dict[str, tuple[object, object]]:
        """Write the choices to settings; returns {key: (old, new)} for what changed."""
        s = self.settings
        new = {"device": self.device.currentData(), "model_path": self.model.text().strip(),
               "batch_size": self.batch.value(), "autosave_minutes": self.autosave.value()}
        changed = {}
        for k, v in new.items():
            old = getattr(s, k)
            if old != v:
                setattr(s, k, v)
                changed[k] = (old, v)
        return changed
