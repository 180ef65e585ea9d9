"""The Cameras panel's widgets: `CameraTile`, one camera's preview (its
name and a small RGB image: a silhouette, a camera's image with its
silhouette, or a board view; or "no signal"); `PreviewGrid`, the tiles of
every camera drawn from the newest live frame only; and `CalibrationBox`,
the calibration buttons with the per-camera error table and a summary."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.calibration.guided import ErrorRow, colour_preview, fmt, silhouette_preview
from core.devices import IMAGE_SILHOUETTE


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


class PreviewGrid(QWidget):
    """The tiles, two a row. `take_frame` keeps a reference to the newest
    LiveFrame; `refresh` (the panel's timer) draws it once, unless a board
    view (`overlays`, by camera) stands in a tile. A frame older than
    `stale_s` shows as "no signal"."""

    def __init__(self, width_px: int, stale_s: float, parent=None) -> None:
        super().__init__(parent)
        self.width_px, self.stale_s = width_px, stale_s
        self.tiles: list[CameraTile] = []
        self.overlays: dict = {}  # camera index -> core.calibration.guided.BoardOverlay
        self.shown_frame = None  # the LiveFrame the tiles show
        self.shown_serial = -1
        self._newest, self._newest_at, self._serial = None, 0.0, 0
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)

    def set_tiles(self, names: list[str]) -> None:
        if [t.name for t in self.tiles] == list(names):
            return
        for t in self.tiles:
            self._grid.removeWidget(t)
            t.deleteLater()
        self.tiles = [CameraTile(n, self.width_px) for n in names]
        for k, t in enumerate(self.tiles):
            self._grid.addWidget(t, k // 2, k % 2)
        self.shown_serial = -1

    def take_frame(self, frame) -> None:
        self._newest, self._newest_at = frame, time.monotonic()
        self._serial += 1

    def clear_overlays(self) -> None:
        self.overlays.clear()
        self.shown_serial = -1

    def refresh(self, rig, camera_frames) -> None:
        """rig: the calibration in use (for the tiles' names) or None;
        camera_frames: a callable giving each camera's newest CameraFrame, or None."""
        frame = self._newest
        stale = frame is not None and time.monotonic() - self._newest_at > self.stale_s
        if frame is not None and not stale and len(frame.bundle.silhouettes) != len(self.tiles):
            n = len(frame.bundle.silhouettes)
            self.set_tiles(rig.names if rig is not None and len(rig) == n else [f"camera {k + 1}" for k in range(n)])
        if self._serial == self.shown_serial and not stale and not self.overlays:
            return
        self.shown_serial = self._serial
        self.shown_frame = None if frame is None or stale else frame
        shots = [] if camera_frames is None or self.shown_frame is None else camera_frames()
        for k, tile in enumerate(self.tiles):
            overlay = self.overlays.get(k)
            if overlay is not None:
                tile.show_rgb(overlay.rgb, f"{tile.name} — board")
                continue
            shot = shots[k] if k < len(shots) else None
            if shot is not None and (shot.colour is not None or shot.kind != IMAGE_SILHOUETTE):
                # A real camera: its image, with the silhouette cut from it once there is a background.
                image = shot.colour if shot.colour is not None else shot.image
                mask = shot.image if shot.kind == IMAGE_SILHOUETTE else None
                tile.show_rgb(colour_preview(image, mask, self.width_px))
                continue
            mask = None if self.shown_frame is None else self.shown_frame.bundle.silhouettes[k]
            if mask is None:
                tile.show_no_signal()
            else:
                tile.show_rgb(silhouette_preview(mask, self.width_px))


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

