"""Review controls above the grid: filter by predicted class, sort by confidence,
confidence threshold (below it an image counts as "unknown")."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QSlider, QWidget

from .image_model import ClassStyle, Filter, Sort
from .icons import colour_icon

FIXED_FILTERS = [("All images", Filter.ALL), ("Label these next", Filter.SUGGESTED),
                 ("Unknown (below threshold)", Filter.UNKNOWN),
                 ("Examples and corrections", Filter.EXAMPLES),
                 ("Not classified yet", Filter.PENDING), ("Problems (skipped)", Filter.PROBLEMS)]
SORTS = [("File name", Sort.NAME), ("Least confident first", Sort.LEAST_CONFIDENT),
         ("Most confident first", Sort.MOST_CONFIDENT)]


class ReviewBar(QWidget):
    filterChanged = Signal(int)
    sortChanged = Signal(int)
    thresholdChanged = Signal(float)      # while dragging too
    thresholdCommitted = Signal(float)    # released / keyboard

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewBar")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        self.filter = QComboBox(self)
        self.filter.setObjectName("filterCombo")
        self.filter.setMinimumContentsLength(10)
        self.filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.sort = QComboBox(self)
        self.sort.setObjectName("sortCombo")
        for text, v in SORTS:
            self.sort.addItem(text, int(v))
        self.threshold = QSlider(Qt.Orientation.Horizontal, self)
        self.threshold.setObjectName("thresholdSlider")
        self.threshold.setRange(0, 100)
        self.threshold.setMinimumWidth(80)
        self.threshold.setMaximumWidth(160)
        self.threshold.setToolTip("Images whose confidence is below this count as \"unknown\"")
        self.threshold_label = QLabel(self)
        self.threshold_label.setMinimumWidth(36)
        self.counts = QLabel(self)
        self.counts.setObjectName("countsLabel")
        self.counts.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.counts.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for w in (QLabel("Show:", self), self.filter, QLabel("Sort:", self), self.sort,
                  QLabel("Unknown below:", self), self.threshold, self.threshold_label):
            lay.addWidget(w)
        lay.addWidget(self.counts, 1)
        self._classes: list[ClassStyle] = []
        self.set_classes([])
        self.filter.currentIndexChanged.connect(lambda _: self.filterChanged.emit(self.current_filter()))
        self.sort.currentIndexChanged.connect(lambda _: self.sortChanged.emit(int(self.sort.currentData())))
        self.threshold.valueChanged.connect(self._slider_moved)
        self.threshold.sliderReleased.connect(
            lambda: self.thresholdCommitted.emit(self.threshold.value() / 100))
        self._programmatic = False
        self.set_threshold(0.0)

    def show_filter(self, filter_: int) -> None:
        """Pick a filter as if chosen in the list (emits ``filterChanged``)."""
        self.filter.setCurrentIndex(max(0, self.filter.findData(int(filter_))))

    def current_filter(self) -> int:
        v = self.filter.currentData()
        return int(v) if v is not None else int(Filter.ALL)

    def set_classes(self, classes: list[ClassStyle]) -> None:
        if classes == self._classes and self.filter.count():
            return
        current = self.filter.currentData()
        self.filter.blockSignals(True)
        self.filter.clear()
        for text, v in FIXED_FILTERS[:2]:
            self.filter.addItem(text, int(v))
        for k, c in enumerate(classes):
            self.filter.addItem(colour_icon(c.color), f"{c.name}", k)
        for text, v in FIXED_FILTERS[2:]:
            self.filter.addItem(text, int(v))
        i = self.filter.findData(current)
        self.filter.setCurrentIndex(max(0, i))
        self.filter.blockSignals(False)
        self._classes = list(classes)
        if i < 0 and current is not None and current != Filter.ALL:
            self.filterChanged.emit(self.current_filter())

    def set_threshold(self, t: float) -> None:
        self._programmatic = True
        self.threshold.setValue(int(round(t * 100)))
        self.threshold_label.setText(f"{t:.0%}")
        self._programmatic = False

    def _slider_moved(self, v: int) -> None:
        self.threshold_label.setText(f"{v}%")
        if self._programmatic:
            return
        self.thresholdChanged.emit(v / 100)
        if not self.threshold.isSliderDown():
            self.thresholdCommitted.emit(v / 100)
