"""The Cameras panel's widgets: `CameraTile`, one camera's preview (its
name and a small RGB image: a silhouette, a camera's image with its
silhouette, or a board view; or "no signal"), and `CalibrationBox`, the
calibration buttons with the per-camera error table and a summary."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.camera_calibration import ErrorRow, fmt


class CameraTile(QWidget):
    """One camera's preview: its name and a small image (or "no signal")."""

    def __init__(self, name: str, width_px: int, parent=None) -> None:
        super().__init__(parent)
        self.caption = QLabel(name)
        self.image = QLabel("no signal")
        self.image.setAlignment(Qt.AlignCenter)
        self.image.setFixedSize(width_px, max(1, width_px * 9 // 16) + 2)
        self.image.setStyleSheet("background: #282828; color: #aaaaaa;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.caption)
        lay.addWidget(self.image)
        self.name = name
        self.signal = False
        self.shown_rgb: np.ndarray | None = None  # what the tile shows, RGB

    def show_rgb(self, rgb: np.ndarray, caption: str | None = None) -> None:
        h, w, _ = rgb.shape
        rgb = np.ascontiguousarray(rgb)
        img = QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()  # owns its pixels
        self.image.setPixmap(QPixmap.fromImage(img))
        self.caption.setText(caption or self.name)
        self.signal = True
        self.shown_rgb = rgb

    def show_no_signal(self) -> None:
        if self.signal or self.image.text() != "no signal":
            self.image.setText("no signal")
            self.caption.setText(self.name)
        self.signal = False
        self.shown_rgb = None


class ErrorTable(QTableWidget):
    """Per camera: board views used, RMS reprojection error (px), the same at the performer (mm), verdict."""

    COLUMNS = ("Camera", "Views", "RMS px", "At performer mm", "Verdict")

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(self.COLUMNS), parent)
        self.setHorizontalHeaderLabels(self.COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)

    def show_rows(self, rows: list[ErrorRow]) -> None:
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            cells = (row.camera, str(row.views) if row.views else "–", fmt(row.rms_px, 2),
                     fmt(row.error_mm, 1), row.verdict or "–")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.setItem(r, c, item)


class CalibrationBox(QGroupBox):
    """actions: (key, label, tooltip, slot) per button; the first four go in
    the top row, the rest under the table. boards: what to print."""

    def __init__(self, actions, boards: str, parent=None) -> None:
        super().__init__("Calibration", parent)
        self.buttons: dict[str, QPushButton] = {}
        for key, label, tip, slot in actions:
            b = QPushButton(label)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            self.buttons[key] = b
        self.table = ErrorTable()
        self.summary = QLabel("No calibration yet.")
        self.summary.setWordWrap(True)
        words = QLabel(boards)
        words.setWordWrap(True)
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        for b in list(self.buttons.values())[:4]:
            row1.addWidget(b)
        for b in list(self.buttons.values())[4:]:
            row2.addWidget(b)
        row2.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addWidget(words)
        lay.addLayout(row1)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.summary)
        lay.addLayout(row2)

