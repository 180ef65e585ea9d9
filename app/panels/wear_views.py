"""The Wear offsets panel's displays: the stillness meter (the largest turn
of any sensor over the last second as a bar, green while still and amber
while moving, and its last 10 s as a plot: app.plots, pyqtgraph) and the
result table (per bone: heading, residual, observability, the check
against the vision skeleton)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QProgressBar,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.plots import StillnessPlot
from core import skeleton as sk

METER_MAX_DEG = 20.0
HISTORY_S = 10.0


class StillnessMeter(QGroupBox):
    def __init__(self, still_deg: float, parent=None) -> None:
        super().__init__(f"Stillness: largest turn of any sensor in the last second (still below {still_deg:g}°)",
                         parent)
        self.still_deg = still_deg
        self.meter = QProgressBar()
        self.meter.setRange(0, int(METER_MAX_DEG * 10))
        self.meter.setTextVisible(True)
        self.meter.setFormat("no IMU data")
        self.meter.setValue(0)
        self.plot = StillnessPlot(still_deg, window_s=HISTORY_S, max_deg=METER_MAX_DEG)
        self.plot.setMinimumHeight(110)
        self.plot.setMaximumHeight(170)
        self._t = np.full(200, np.nan)  # the last 20 s at the panel's 10 Hz, preallocated ring
        self._v = np.full(200, np.nan)
        self._n = 0
        self._colour = ""
        lay = QVBoxLayout(self)
        lay.addWidget(self.meter)
        lay.addWidget(self.plot)

    def show_turn(self, now_s: float, turn_deg: float) -> None:
        """The newest reading (NaN: no IMU data) at monotonic time `now_s`."""
        if np.isnan(turn_deg):
            self.meter.setFormat("no IMU data")
            self.meter.setValue(0)
        else:
            self.meter.setValue(int(min(turn_deg, METER_MAX_DEG) * 10))
            self.meter.setFormat(f"{turn_deg:.1f}° — " + ("still" if turn_deg <= self.still_deg else "moving"))
            colour = "#5cb85c" if turn_deg <= self.still_deg else "#f0ad4e"
            if colour != self._colour:  # a style sheet change restyles the widget: only on change
                self._colour = colour
                self.meter.setStyleSheet(f"QProgressBar::chunk {{ background: {colour}; }}")
        i = self._n % len(self._t)
        self._t[i], self._v[i] = now_s, turn_deg
        self._n += 1
        order = np.arange(max(0, self._n - len(self._t)), self._n) % len(self._t)
        t, v = self._t[order], self._v[order]
        keep = np.isfinite(v) & (t >= now_s - HISTORY_S)
        self.plot.show_series(t[keep] - now_s, v[keep])


class WearResultTable(QTableWidget):
    COLUMNS = ("bone", "heading (°)", "residual (°)", "observable", "vision check (°)")

    def __init__(self, parent=None) -> None:
        super().__init__(sk.NUM_IMUS, len(self.COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.setMinimumHeight(self.verticalHeader().defaultSectionSize() * sk.NUM_IMUS
                              + self.horizontalHeader().sizeHint().height() + 6)
        for k, bone in enumerate(sk.IMU_BONES):
            self.setItem(k, 0, QTableWidgetItem(bone.name))
            for c in range(1, len(self.COLUMNS)):
                item = QTableWidgetItem("")
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.setItem(k, c, item)

    def show_result(self, result) -> None:
        """One row per bone of an core.imu.wear_capture.WearResult; unobservable headings in amber."""
        warn = QColor("#f0ad4e")
        for k, fit in enumerate(result.calibration.fits):
            check = result.vision_check_deg[k]
            texts = (f"{fit.heading_deg:.1f}", f"{fit.residual_deg:.1f}",
                     "yes" if fit.observable else f"no ({fit.observability_deg:.1f}°)",
                     "–" if np.isnan(check) else f"{check:.1f}")
            for c, text in enumerate(texts, start=1):
                item = self.item(k, c)
                item.setText(text)
                item.setForeground(warn if (c == 3 and not fit.observable) else self.palette().text().color())

