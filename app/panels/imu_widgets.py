"""Serial IMU widgets: `PortChooser` picks a port and its protocol (the
ports present with their descriptions, a path typed in such as a stable
/dev/serial/by-id/… link or a pseudo-terminal, a refresh), for the IMUs and
Studio panels; `SensorTable` lists the sensors seen, one row each: the
bone it is paired with, its rate, samples, dropped packets and the age of
its newest sample."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.imu_feed import serial_ports

PROTOCOLS = (("FuseCap hub", "fusecap"), ("WitMotion", "witmotion"), ("Xsens MTi", "xsens"))


class PortChooser(QWidget):
    """`port()` is the typed path, else the chosen port ("" for none);
    `protocol()` the protocol's name. `optional`: the list starts with
    "none" (no IMUs)."""

    def __init__(self, optional: bool = False, parent=None) -> None:
        super().__init__(parent)
        self.optional = optional
        self.ports = QComboBox()
        self.port_path = QLineEdit()
        self.port_path.setPlaceholderText("or a port path, e.g. /dev/serial/by-id/… or /dev/pts/3")
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        self.protocol_box = QComboBox()
        for label, name in PROTOCOLS:
            self.protocol_box.addItem(label, name)
        row = QHBoxLayout()
        row.addWidget(self.ports, 1)
        row.addWidget(refresh)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Port", row)
        form.addRow("", self.port_path)
        form.addRow("Protocol", self.protocol_box)
        self.refresh()

    def refresh(self) -> None:
        """List the ports present again (a listing that fails says why in the list)."""
        self.ports.clear()
        if self.optional:
            self.ports.addItem("none (no IMUs)", "")
        try:
            ports = serial_ports()
        except (ImportError, OSError) as exc:
            self.ports.addItem(f"cannot list ports: {exc}", "")
            return
        for label, device in ports:
            self.ports.addItem(label, device)
        if not ports and not self.optional:
            self.ports.addItem("no serial ports found", "")

    def port(self) -> str:
        return (self.port_path.text().strip() or self.ports.currentData() or "").strip()

    def protocol(self) -> str:
        return self.protocol_box.currentData()

    def set_port(self, port: str) -> None:
        """Choose `port` in the list when it is there, else type it in."""
        i = self.ports.findData(port) if port else -1
        if i >= 0:
            self.ports.setCurrentIndex(i)
            self.port_path.clear()
        else:
            self.port_path.setText(port)

    def set_protocol(self, name: str) -> None:
        self.protocol_box.setCurrentIndex(max(0, self.protocol_box.findData(name)))


class SensorTable(QTableWidget):
    COLUMNS = ("sensor", "bone", "rate (Hz)", "samples", "dropped", "last update")

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(self.COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        self.setMinimumHeight(160)
        self.setWordWrap(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)

    def set_sensors(self, keys: list, current=None) -> None:
        """One empty row per sensor key; `current` (a key) stays selected when it is still there."""
        self.setRowCount(len(keys))
        for r, key in enumerate(keys):
            self.setItem(r, 0, QTableWidgetItem(str(key)))
            self.setItem(r, 1, QTableWidgetItem(""))
            for c in range(2, len(self.COLUMNS)):
                item = QTableWidgetItem("")
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.setItem(r, c, item)
        self.setCurrentCell(keys.index(current) if current in keys else (0 if keys else -1), 0)

    def show_stats(self, stats, dropped: dict) -> None:
        """app.imu_feed.SensorStats per row (in set_sensors' order); dropped: per key."""
        for r, st in enumerate(stats):
            self.item(r, 2).setText(f"{st.rate_hz:.1f}")
            self.item(r, 3).setText(str(st.samples))
            self.item(r, 4).setText(str(dropped.get(st.key, 0)))
            self.item(r, 5).setText(f"{st.age_s:.2f} s ago" if st.age_s < 60 else "over a minute ago")

