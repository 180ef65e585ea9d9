"""Live panel: what the 3D view shows (the character and its overlays), the live filter and the VMC link."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)


class LivePanel(QWidget):
    vmc_changed = Signal(str)  # "HOST:PORT" to stream, "" to stop

    def __init__(self, view, settings, parent=None) -> None:
        super().__init__(parent)
        self.view = view
        self.settings = settings
        self.stage = QComboBox()
        self.stage.addItem("Stage 2: fused (cameras + IMUs)", 2)
        self.stage.addItem("Stage 1: vision only", 1)
        self.stage.currentIndexChanged.connect(lambda _: view.set_stage(self.stage.currentData()))
        self.channel = QComboBox()
        self.channel.addItem("Hull (all cameras)", None)
        self.channel.currentIndexChanged.connect(lambda _: view.set_volume_channel(self.channel.currentData()))
        self.follow = QCheckBox("Camera follows the performer")
        self.follow.setChecked(settings.value("live/follow", "true") == "true")
        self.follow.toggled.connect(view.set_follow)
        self.follow.toggled.connect(lambda on: settings.setValue("live/follow", "true" if on else "false"))
        view.set_follow(self.follow.isChecked())
        # What the 3D view draws: the character and its overlays (remembered between runs).
        self.layers: dict[str, QCheckBox] = {}
        shown = QHBoxLayout()
        for layer, label in (("body", "Character"), ("skeleton", "Skeleton"), ("volume", "Volume"),
                             ("cameras", "Cameras")):
            box = QCheckBox(label)
            box.setChecked(settings.value(f"live/show_{layer}", "true") == "true")
            box.toggled.connect(lambda on, lay=layer: view.set_layer_visible(lay, on))
            box.toggled.connect(lambda on, lay=layer: settings.setValue(f"live/show_{lay}", "true" if on else "false"))
            view.set_layer_visible(layer, box.isChecked())
            self.layers[layer] = box
            shown.addWidget(box)
        form = QFormLayout()
        form.addRow("Show", shown)
        form.addRow("Skeleton", self.stage)
        form.addRow("Volume", self.channel)
        form.addRow(self.follow)
        box = QGroupBox("VMC live link (OSC over UDP)")
        self.vmc_target = QLineEdit(str(settings.value("live/vmc_target", "127.0.0.1:39539")))
        self.vmc_on = QCheckBox("Stream the live pose")
        self.vmc_on.toggled.connect(self._vmc_toggled)
        self.vmc_state = QLabel("")
        vmc = QFormLayout(box)
        vmc.addRow("Receiver", self.vmc_target)
        vmc.addRow(self.vmc_on)
        vmc.addRow(self.vmc_state)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(box)
        lay.addStretch(1)

    def set_cameras(self, names: list[str]) -> None:
        self.channel.blockSignals(True)
        self.channel.clear()
        self.channel.addItem("Hull (all cameras)", None)
        for k, n in enumerate(names):
            self.channel.addItem(f"Camera {n}", k)
        self.channel.blockSignals(False)

    def _vmc_toggled(self, on: bool) -> None:
        target = self.vmc_target.text().strip()
        self.settings.setValue("live/vmc_target", target)
        self.vmc_target.setEnabled(not on)
        self.vmc_changed.emit(target if on else "")
