"""Live 2D plots (pyqtgraph): a sensor's orientation over time and the
stillness of the sensors. Inside ``app`` this is the only module that
touches pyqtgraph.

Each plot is built once; a GUI timer of its owner hands it the newest
series with `show_series` and the plot only calls ``setData`` (no new items,
no ``processEvents``). The x axis is seconds before now (negative), so the
plot does not scroll its range every tick.
"""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtWidgets import QVBoxLayout, QWidget

# pyqtgraph takes the first Qt binding it finds installed unless told: FuseCap's is PySide6.
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
import pyqtgraph as pg  # noqa: E402

# One colour per series: x/roll red, y/pitch green, z/yaw blue, w grey.
_COLOURS = {"roll": "#e0605a", "pitch": "#6cc06c", "yaw": "#5a9be0",
            "w": "#c8c8c8", "x": "#e0605a", "y": "#6cc06c", "z": "#5a9be0"}

MODES: dict[str, tuple[tuple[str, ...], str, tuple[float, float]]] = {
    # mode -> (series names, y-axis label, fixed y range)
    "euler": (("roll", "pitch", "yaw"), "angle (deg)", (-180.0, 180.0)),
    "quaternion": (("w", "x", "y", "z"), "component", (-1.05, 1.05)),
}


class TimePlot(QWidget):
    """A few named series against seconds before now, over `window_s`."""

    def __init__(self, names: tuple[str, ...], y_label: str, y_range: tuple[float, float],
                 window_s: float = 10.0, parent=None) -> None:
        super().__init__(parent)
        self.window_s = float(window_s)
        self.widget = pg.PlotWidget()
        self.widget.setMenuEnabled(False)
        self.widget.setMouseEnabled(x=False, y=False)
        self.widget.hideButtons()
        self.widget.showGrid(x=True, y=True, alpha=0.25)
        self.widget.setLabel("bottom", "time (s before now)")
        self.widget.setLabel("left", y_label)
        self.widget.setXRange(-self.window_s, 0.0, padding=0.0)
        self.widget.setYRange(*y_range, padding=0.0)
        self.legend = self.widget.addLegend(offset=(6, 6))
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._build(names)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.widget)

    def _build(self, names: tuple[str, ...]) -> None:
        for curve in self.curves.values():
            self.widget.removeItem(curve)
        self.legend.clear()
        self.curves = {n: self.widget.plot([], [], name=n, pen=pg.mkPen(_COLOURS.get(n, "#dddddd"), width=1.5))
                       for n in names}

    def show_series(self, t_before_now_s: np.ndarray, values: np.ndarray) -> None:
        """t_before_now_s (N,) seconds (<= 0); values (N, C), one column per series."""
        t = np.asarray(t_before_now_s, float)
        if len(t) == 0:
            self.clear()
            return
        v = np.asarray(values, float).reshape(len(t), -1)
        for c, curve in enumerate(self.curves.values()):
            curve.setData(t, v[:, c] if c < v.shape[1] else np.zeros(len(t)))

    def clear(self) -> None:
        for curve in self.curves.values():
            curve.setData([], [])

    def series(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """What each curve shows now: name -> (x, y)."""
        out = {}
        for name, curve in self.curves.items():
            x, y = curve.getData()
            out[name] = (np.zeros(0) if x is None else np.asarray(x), np.zeros(0) if y is None else np.asarray(y))
        return out


class OrientationPlot(TimePlot):
    """One sensor's orientation: roll/pitch/yaw in degrees (Z-Y-X: yaw about
    the reference's Z, then pitch, then roll) or the quaternion's w, x, y, z."""

    def __init__(self, window_s: float = 10.0, mode: str = "euler", parent=None) -> None:
        names, label, y_range = MODES[mode]
        super().__init__(names, label, y_range, window_s, parent)
        self.mode = mode

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"plot mode is one of {sorted(MODES)}, got {mode!r}")
        if mode == self.mode:
            return
        self.mode = mode
        names, label, y_range = MODES[mode]
        self._build(names)
        self.widget.setLabel("left", label)
        self.widget.setYRange(*y_range, padding=0.0)


class StillnessPlot(TimePlot):
    """The largest turn of any sensor over the last second (degrees), with the
    threshold under which the sensors count as still."""

    def __init__(self, threshold_deg: float, window_s: float = 10.0, max_deg: float = 20.0, parent=None) -> None:
        super().__init__(("turn",), "turn in 1 s (deg)", (0.0, max_deg), window_s, parent)
        self.threshold = pg.InfiniteLine(pos=threshold_deg, angle=0, movable=False,
                                         pen=pg.mkPen("#f0ad4e", width=1, style=pg.QtCore.Qt.DashLine))
        self.widget.addItem(self.threshold)
        self.legend.setVisible(False)
