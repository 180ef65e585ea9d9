"""The IMUs panel's pairing view: `BodyDiagram`, the IMU bones on a
clickable stick figure (each bone green with its sensor's name when paired,
orange when not, the selected one highlighted), and `PairingBox`, the
diagram with its controls. Geometry is in a 100 x 200 box scaled to the
widget; `bone_at` maps a click (widget pixels) back to a bone. Neither holds
pairing logic: the panel connects the controls and hands in the pairing.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from core import skeleton as sk
from core.imu.pairing import Pairing

# A front view of a T-pose in a 100 x 200 box (y down); the performer faces
# the viewer, so their left is on the right.
_POS = {
    "Hips": (50, 102), "Spine": (50, 86), "Chest": (50, 66), "Neck": (50, 50), "Head": (50, 44),
    "HeadTop": (50, 22), "LeftShoulder": (57, 53), "LeftArm": (65, 53), "LeftForeArm": (81, 53),
    "LeftHand": (96, 53), "RightShoulder": (43, 53), "RightArm": (35, 53), "RightForeArm": (19, 53),
    "RightHand": (4, 53), "LeftUpLeg": (58, 104), "LeftLeg": (60, 144), "LeftFoot": (61, 182),
    "LeftToeBase": (69, 192), "RightUpLeg": (42, 104), "RightLeg": (40, 144), "RightFoot": (39, 182),
    "RightToeBase": (31, 192),
}


class BodyDiagram(QWidget):
    """The 13 IMU bones on a stick figure; click one to select it. Paired
    bones are drawn green with their sensor's name, unpaired ones orange."""

    bone_clicked = Signal(int)
    PAIRED = QColor("#5cb85c")
    UNPAIRED = QColor("#f0ad4e")
    SELECTED = QColor(90, 160, 230)
    BODY = QColor(110, 112, 118)
    WIDTH = 7.0

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumSize(200, 300)
        self.setMouseTracking(False)
        self.labels = [""] * sk.NUM_IMUS   # the sensor on each bone ("" when unpaired)
        self._short = [""] * sk.NUM_IMUS   # what is drawn
        self.selected = 0
        self._pos = np.array([_POS[name] for name in sk.JOINTS], float)

    def set_pairing(self, pairing: Pairing) -> None:
        self.labels = [str(pairing.bones[b]) if b in pairing.bones else "" for b in range(sk.NUM_IMUS)]
        # Drawn short: "#3" when every paired sensor is on one source, else the source's tail too.
        sources = {k.source for k in pairing.bones.values()}
        self._short = [("" if b not in pairing.bones else
                        f"#{pairing.bones[b].sensor_id}" if len(sources) == 1 else
                        f"{pairing.bones[b].source.rsplit('/', 1)[-1][-8:]}#{pairing.bones[b].sensor_id}")
                       for b in range(sk.NUM_IMUS)]
        self.setToolTip("\n".join(f"{b.name}: {self.labels[i] or 'unpaired'}" for i, b in enumerate(sk.IMU_BONES)))
        self.update()

    def set_selected(self, bone: int) -> None:
        if bone != self.selected:
            self.selected = int(bone)
            self.update()

    def is_paired(self, bone: int) -> bool:
        return bool(self.labels[bone])

    # -- geometry ------------------------------------------------------------------------
    def _transform(self) -> tuple[float, float, float]:
        s = min(self.width() / 112.0, self.height() / 206.0)
        return s, (self.width() - 100.0 * s) / 2, (self.height() - 200.0 * s) / 2

    def point(self, joint: int) -> QPointF:
        s, ox, oy = self._transform()
        x, y = self._pos[joint]
        return QPointF(ox + s * x, oy + s * y)

    def bone_segment(self, bone: int) -> tuple[QPointF, QPointF]:
        b = sk.IMU_BONES[bone]
        return self.point(b.start), self.point(b.end)

    def bone_midpoint(self, bone: int) -> QPointF:
        a, b = self.bone_segment(bone)
        return (a + b) / 2

    def bone_at(self, pos: QPointF, tolerance_px: float = 9.0) -> int | None:
        """The IMU bone nearest `pos` (widget coordinates), if within the tolerance."""
        p = np.array([pos.x(), pos.y()])
        best, best_d = None, tolerance_px
        for k in range(sk.NUM_IMUS):
            a, b = (np.array([q.x(), q.y()]) for q in self.bone_segment(k))
            ab = b - a
            u = np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-9), 0.0, 1.0)
            d = float(np.linalg.norm(a + u * ab - p))
            if d <= best_d:
                best, best_d = k, d
        return best

    # -- Qt ------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        bone = self.bone_at(event.position())
        if bone is not None:
            self.set_selected(bone)
            self.bone_clicked.emit(bone)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        s, _, _ = self._transform()
        p.setPen(QPen(self.BODY, 2.0, Qt.SolidLine, Qt.RoundCap))
        for a, b in sk.BONES:
            p.drawLine(self.point(a), self.point(b))
        head = (self.point(sk.JOINT_INDEX["Head"]) + self.point(sk.JOINT_INDEX["HeadTop"])) / 2
        p.drawEllipse(head, 10 * s, 12 * s)
        a, b = self.bone_segment(self.selected)
        p.setPen(QPen(self.SELECTED, self.WIDTH + 7, Qt.SolidLine, Qt.RoundCap))
        p.drawLine(a, b)
        for k in range(sk.NUM_IMUS):
            a, b = self.bone_segment(k)
            p.setPen(QPen(self.PAIRED if self.labels[k] else self.UNPAIRED, self.WIDTH, Qt.SolidLine, Qt.FlatCap))
            p.drawLine(a, b)
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, 3.2 * s))
        p.setFont(font)
        for k in range(sk.NUM_IMUS):
            p.setPen(self.PAIRED if self.labels[k] else self.UNPAIRED)
            p.drawText(self._label_rect(k), Qt.AlignCenter, self._short[k] or "?")
        p.end()

    def _label_rect(self, bone: int) -> QRectF:
        """Beside the bone, never over its middle."""
        mid = self.bone_midpoint(bone)
        a, b = self.bone_segment(bone)
        w, h = 64.0, 14.0
        if abs(b.x() - a.x()) > abs(b.y() - a.y()):  # horizontal: above it
            return QRectF(mid.x() - w / 2, mid.y() - h - 7, w, h)
        side = 1.0 if mid.x() >= self.width() / 2 else -1.0
        x = mid.x() + side * (w / 2 + 8) - w / 2
        return QRectF(x, mid.y() - h / 2, w, h)


class PairingBox(QGroupBox):
    """The body diagram, the bone chooser, "Shake to identify", the assign /
    unpair / save / load buttons and what is still unpaired. The owner
    connects the buttons and signals."""

    def __init__(self, parent=None) -> None:
        super().__init__("Sensors on bones (click a bone)", parent)
        self.diagram = BodyDiagram()
        self.bone = QComboBox()
        for b in sk.IMU_BONES:
            self.bone.addItem(b.name)
        self.shake_button = QPushButton("Shake to identify")
        self.shake_button.setToolTip("Shake the sensor for the chosen bone for two seconds")
        self.assign_button = QPushButton("Assign selected sensor")
        self.unpair_button = QPushButton("Unpair bone")
        self.save_button = QPushButton("Save pairing…")
        self.load_button = QPushButton("Load pairing…")
        self.shake_state = QLabel("Pick a bone, then shake its sensor.")
        self.shake_state.setWordWrap(True)
        self.missing = QLabel("")
        self.missing.setWordWrap(True)
        self.diagram.setMinimumHeight(340)
        bone_row = QHBoxLayout()
        bone_row.addWidget(QLabel("Bone"))
        bone_row.addWidget(self.bone, 1)
        bone_row.addWidget(self.shake_button)
        edit_row = QGridLayout()
        for i, w in enumerate((self.assign_button, self.unpair_button, self.save_button, self.load_button)):
            edit_row.addWidget(w, i // 2, i % 2)
        pair = QVBoxLayout(self)
        pair.addWidget(self.diagram)
        pair.addLayout(bone_row)
        pair.addWidget(self.shake_state)
        pair.addLayout(edit_row)
        pair.addWidget(self.missing)

    def show_pairing(self, pairing: Pairing) -> None:
        self.diagram.set_pairing(pairing)
        missing = pairing.missing
        self.missing.setText("All 13 bones have a sensor." if not missing else
                             f"Unpaired ({len(missing)}): " + ", ".join(missing))
