"""Studio panel: the device source, start/stop, and each camera's status."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QPushButton,
                               QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)


class StudioPanel(QWidget):
    start_requested = Signal()
    stop_requested = Signal()

    def __init__(self, settings, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.source = QComboBox()
        self.source.addItem("Simulated studio (no hardware)", "simulated")
        self.seed = QSpinBox()
        self.seed.setRange(0, 1_000_000)
        self.seed.setValue(int(settings.value("studio/seed", 0)))
        self.fps = QDoubleSpinBox()
        self.fps.setRange(5.0, 60.0)
        self.fps.setValue(float(settings.value("studio/fps", 15.0)))
        self.model = QComboBox()
        for label, spec in (("DeepFuse lite", "lite"), ("DeepFuse full", "full"), ("No live solve", "none")):
            self.model.addItem(label, spec)
        i = self.model.findData(settings.value("studio/model", "lite"))
        self.model.setCurrentIndex(max(i, 0))
        form = QFormLayout()
        form.addRow("Source", self.source)
        form.addRow("Performer seed", self.seed)
        form.addRow("Frame rate", self.fps)
        form.addRow("Live model", self.model)
        self.start_button = QPushButton("Start studio")
        self.stop_button = QPushButton("Stop studio")
        self.start_button.clicked.connect(self.start_requested)
        self.stop_button.clicked.connect(self.stop_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        self.state = QLabel("stopped")
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["camera", "state", "fps", "dropped", "error"])
        self.table.verticalHeader().setVisible(False)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.state)
        lay.addWidget(self.table, 1)
        self.set_running(False)

    def remember(self) -> None:
        self.settings.setValue("studio/seed", self.seed.value())
        self.settings.setValue("studio/fps", self.fps.value())
        self.settings.setValue("studio/model", self.model.currentData())

    def set_running(self, running: bool) -> None:
        for w in (self.source, self.seed, self.fps, self.model, self.start_button):
            w.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def show_status(self, statuses) -> None:
        self.table.setRowCount(len(statuses))
        for r, s in enumerate(statuses):
            for c, v in enumerate((s.name, s.state, f"{s.fps:.1f}", str(s.dropped), s.last_error)):
                item = self.table.item(r, c)
                if item is None:
                    self.table.setItem(r, c, QTableWidgetItem(v))
                elif item.text() != v:
                    item.setText(v)
