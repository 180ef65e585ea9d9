"""Choosing a serial IMU port and its protocol: the ports present (with
their descriptions), a path typed in (a stable /dev/serial/by-id/… link, a
pseudo-terminal), a refresh, and the protocol. The IMUs panel and the
Studio panel both use it."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLineEdit, QPushButton, QWidget

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
