"""The Cameras panel's preview tiles: one per camera, its name and a small
RGB image (a silhouette, a camera's image with its silhouette, or a board
view), or "no signal"."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


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
