"""IMUs panel: serial IMU sources, each sensor's health, which sensor sits on
which bone (shake to identify, a clickable body diagram, pairing files) and
the selected sensor's orientation over the last 10 s.

Threads: samples arrive on other threads, from the panel's own serial link
(a Python thread that opens the port, so a busy or missing port is a message,
not a frozen window) and from the running session's IMU thread (a listener).
Both only append to `ImuFeed`, a locked ring per sensor; one GUI timer
(~20 Hz) reads it for the plot and, four times a second, for the table.
`shutdown` stops the timers, the serial link (its thread is joined) and
detaches from the session.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QScrollArea,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.context import AppContext
from app.plots import OrientationPlot
from core import skeleton as sk
from core.devices import DeviceError, ImuSample
from core.imu.pairing import Pairing, SensorKey, ShakeResult, identify_shaken
from core.rotations import from_wxyz

TICK_MS = 50            # plot refresh (~20 Hz)
TABLE_EVERY = 5         # table refresh every 5 ticks (~4 Hz)
RATE_WINDOW_S = 2.0     # rates are counted over the last 2 s of arrivals
PLOT_WINDOW_S = 10.0
SHAKE_S = 2.0           # how long the user shakes a sensor


# -- the sample feed -----------------------------------------------------------------------

@dataclass(frozen=True)
class SensorStats:
    key: SensorKey
    samples: int
    rate_hz: float          # arrivals per second over the last RATE_WINDOW_S (0 once it stops)
    age_s: float            # since the newest sample arrived


class _Ring:
    """One sensor's recent samples, preallocated."""

    def __init__(self, capacity: int, arrival_s: float) -> None:
        self.t = np.zeros(capacity)
        self.arrival = np.zeros(capacity)
        self.q = np.zeros((capacity, 4))
        self.n = 0
        self.first_arrival = arrival_s

    def put(self, t_s: float, arrival_s: float, q_wxyz) -> None:
        i = self.n % len(self.t)
        self.t[i], self.arrival[i] = t_s, arrival_s
        self.q[i] = q_wxyz
        self.n += 1

    def order(self) -> np.ndarray:
        cap = len(self.t)
        return np.arange(max(0, self.n - cap), self.n) % cap


class ImuFeed:
    """Recent samples of every sensor seen, keyed by (source, sensor id).

    `put` may be called from any thread; the readers copy what they return.
    Times: ``t`` is the sample's own time (host monotonic seconds for every
    FuseCap source), ``arrival`` when `put` received it."""

    def __init__(self, capacity: int = 4096, clock=time.monotonic) -> None:
        self.capacity = int(capacity)  # 10 s at 400 Hz
        self._clock = clock
        self._lock = threading.Lock()
        self._rings: dict[SensorKey, _Ring] = {}

    def put(self, source: str, samples: Sequence[ImuSample]) -> None:
        now = self._clock()
        with self._lock:
            for s in samples:
                key = SensorKey(source, int(s.sensor_id))
                ring = self._rings.get(key)
                if ring is None:
                    ring = self._rings[key] = _Ring(self.capacity, now)
                ring.put(float(s.t_s), now, s.quat_wxyz)

    def keys(self) -> list[SensorKey]:
        with self._lock:
            return sorted(self._rings)

    def forget(self, source: str) -> None:
        with self._lock:
            for key in [k for k in self._rings if k.source == source]:
                del self._rings[key]

    def stats(self) -> list[SensorStats]:
        now = self._clock()
        out = []
        with self._lock:
            for key in sorted(self._rings):
                r = self._rings[key]
                arr = r.arrival[r.order()]
                span = min(RATE_WINDOW_S, now - r.first_arrival)
                recent = int(np.count_nonzero(arr > now - RATE_WINDOW_S))
                rate = recent / span if span > 0.2 else 0.0
                out.append(SensorStats(key, r.n, rate, now - float(arr[-1]) if len(arr) else math.inf))
        return out

    def recent(self, key: SensorKey, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """The sensor's samples within `seconds` of its newest: times (N,) and wxyz (N, 4), oldest first."""
        with self._lock:
            r = self._rings.get(key)
            if r is None or r.n == 0:
                return np.zeros(0), np.zeros((0, 4))
            idx = r.order()
            t, q = r.t[idx], r.q[idx]
        keep = t >= t[-1] - seconds
        return t[keep], q[keep]

    def since(self, arrival_s: float) -> list[tuple[str, ImuSample]]:
        """Every sample that arrived at or after `arrival_s`, as (source, sample)."""
        out = []
        with self._lock:
            for key, r in self._rings.items():
                idx = r.order()
                idx = idx[r.arrival[idx] >= arrival_s]
                out += [(key.source, ImuSample(key.sensor_id, float(r.t[i]), r.q[i].copy())) for i in idx]
        return out


# -- a serial source on its own thread ---------------------------------------------------------

class SerialLink(QObject):
    """Opens an IMU source and reads it into a feed on a Python thread.
    `opened` / `failed` arrive on the GUI thread (queued)."""

    opened = Signal(object)        # the link
    failed = Signal(object, str)   # the link, why it could not be opened

    def __init__(self, source, feed: ImuFeed) -> None:
        super().__init__()
        self.source = source
        self.name = str(getattr(source, "name", "imu"))
        self.feed = feed
        self.state = "connecting"
        self.read_error = ""
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"imu-link {self.name}", daemon=True)

    def start(self) -> "SerialLink":
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.source.open()
        except (DeviceError, OSError, ValueError) as exc:
            self.state = "failed"
            self.failed.emit(self, str(exc))
            return
        self.state = "open"
        self.opened.emit(self)
        while not self._stop.is_set():
            try:
                samples = self.source.read(0.05)
            except (DeviceError, OSError) as exc:
                self.read_error = str(exc)
                self._stop.wait(0.5)
                continue
            if samples:
                self.feed.put(self.name, samples)

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        self.thread.join(timeout_s)
        try:
            self.source.close()
        except (DeviceError, OSError):
            pass
        self.state = "closed"

    def counters(self):
        get = getattr(self.source, "counters", None)
        return get() if get is not None and self.state == "open" else None


# -- the body diagram ----------------------------------------------------------------------------

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


# -- the panel --------------------------------------------------------------------------------

class ImusPanel(QWidget):
    COLUMNS = ("sensor", "bone", "rate (Hz)", "samples", "dropped", "last update")

    def __init__(self, context: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.feed = ImuFeed()
        self.pairing = Pairing()
        self.link: SerialLink | None = None
        self.shake_s = SHAKE_S
        self.last_shake: ShakeResult | None = None
        self._shake_since = 0.0
        self._shake_bone = 0
        self._session = None          # the CaptureSession we listen to
        self._session_source = ""     # the name its samples are filed under
        self._listener = None
        self._ticks = 0
        self._rows: list[SensorKey] = []
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        self._shake_timer = QTimer(self)
        self._shake_timer.setSingleShot(True)
        self._shake_timer.timeout.connect(self._finish_shake)
        context.session_started.connect(self._on_session_started)
        context.session_stopped.connect(self._on_session_stopped)
        bridge = context.bridge
        if bridge is not None and getattr(bridge, "state", "") == "live":
            self._on_session_started(bridge)

    # -- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        self.ports = QComboBox()
        self.port_path = QLineEdit()
        self.port_path.setPlaceholderText("or a port path, e.g. /dev/serial/by-id/… or /dev/pts/3")
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh_ports)
        self.protocol = QComboBox()
        for name, label in (("fusecap", "FuseCap hub"), ("witmotion", "WitMotion"), ("xsens", "Xsens MTi")):
            self.protocol.addItem(label, name)
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(lambda: self.connect_serial())
        self.disconnect_button = QPushButton("Disconnect")
        self.disconnect_button.clicked.connect(self.disconnect_serial)
        self.link_state = QLabel("not connected")
        self.link_state.setWordWrap(True)
        port_row = QHBoxLayout()
        port_row.addWidget(self.ports, 1)
        port_row.addWidget(refresh)
        buttons = QHBoxLayout()
        buttons.addWidget(self.connect_button)
        buttons.addWidget(self.disconnect_button)
        conn = QGroupBox("Serial IMUs")
        form = QFormLayout(conn)
        form.addRow("Port", port_row)
        form.addRow("", self.port_path)
        form.addRow("Protocol", self.protocol)
        form.addRow(buttons)
        form.addRow(self.link_state)

        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setMinimumHeight(160)
        self.table.setWordWrap(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.line_state = QLabel("")
        self.line_state.setWordWrap(True)

        self.diagram = BodyDiagram()
        self.diagram.bone_clicked.connect(self.select_bone)
        self.bone = QComboBox()
        for b in sk.IMU_BONES:
            self.bone.addItem(b.name)
        self.bone.currentIndexChanged.connect(self.select_bone)
        self.shake_button = QPushButton("Shake to identify")
        self.shake_button.setToolTip("Shake the sensor for the chosen bone for two seconds")
        self.shake_button.clicked.connect(lambda: self.identify_by_shaking())
        assign = QPushButton("Assign selected sensor")
        assign.clicked.connect(self._assign_selected)
        unpair = QPushButton("Unpair bone")
        unpair.clicked.connect(lambda: self.unassign(self.diagram.selected))
        save = QPushButton("Save pairing…")
        save.clicked.connect(self._ask_save)
        load = QPushButton("Load pairing…")
        load.clicked.connect(self._ask_load)
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
        for i, w in enumerate((assign, unpair, save, load)):
            edit_row.addWidget(w, i // 2, i % 2)
        pair_box = QGroupBox("Sensors on bones (click a bone)")
        pair = QVBoxLayout(pair_box)
        pair.addWidget(self.diagram)
        pair.addLayout(bone_row)
        pair.addWidget(self.shake_state)
        pair.addLayout(edit_row)
        pair.addWidget(self.missing)

        self.plot = OrientationPlot(PLOT_WINDOW_S)
        self.plot.setMinimumHeight(180)
        self.plot_mode = QComboBox()
        self.plot_mode.addItem("Roll / pitch / yaw (deg)", "euler")
        self.plot_mode.addItem("Quaternion w, x, y, z", "quaternion")
        self.plot_mode.currentIndexChanged.connect(lambda _: self.plot.set_mode(self.plot_mode.currentData()))
        self.plot_title = QLabel("Select a sensor in the table")
        plot_box = QGroupBox("Orientation, last 10 s")
        pl = QVBoxLayout(plot_box)
        head = QHBoxLayout()
        head.addWidget(self.plot_title, 1)
        head.addWidget(self.plot_mode)
        pl.addLayout(head)
        pl.addWidget(self.plot)

        content = QWidget()
        lay = QVBoxLayout(content)
        lay.addWidget(conn)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.line_state)
        lay.addWidget(pair_box)
        lay.addWidget(plot_box)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.refresh_ports()
        self._show_pairing()
        self._update_buttons()

    # -- serial link ---------------------------------------------------------------------
    def refresh_ports(self) -> None:
        self.ports.clear()
        try:
            from plugins.imu.serial_source import list_ports

            ports = list_ports()
        except (ImportError, OSError) as exc:
            self.ports.addItem(f"cannot list ports: {exc}", "")
            return
        for p in ports:
            self.ports.addItem(f"{p.device} — {p.description}" if p.description else p.device, p.device)
        if not ports:
            self.ports.addItem("no serial ports found", "")

    def connect_serial(self, port: str | None = None, protocol: str | None = None) -> bool:
        """Open `port` (default: the typed path, else the chosen port) on a
        thread; the outcome arrives as a message. False if it cannot start."""
        port = (port or self.port_path.text().strip() or self.ports.currentData() or "").strip()
        protocol = protocol or self.protocol.currentData()
        if not port:
            self.context.message("error", "choose a serial port or type its path")
            return False
        if self.link is not None:
            self.context.message("error", f"already connected to {self.link.name}: disconnect first")
            return False
        from core.registry import registry

        factory = registry().imu_sources.get("serial")
        if factory is None:
            self.context.message("error", "the serial IMU plugin is not installed")
            return False
        try:
            source = factory(port, protocol=protocol)
        except ValueError as exc:
            self.context.message("error", f"cannot use {port}: {exc}")
            return False
        link = SerialLink(source, self.feed)
        # Slots of this widget: queued onto the GUI thread.
        link.opened.connect(self._on_link_opened)
        link.failed.connect(self._on_link_failed)
        self.link = link
        self.link_state.setText(f"connecting to {port} ({protocol})…")
        link.start()
        self._update_buttons()
        return True

    def _on_link_opened(self, link: SerialLink) -> None:
        if link is self.link:
            self.context.message("info", f"IMUs connected: {link.name}")

    def _on_link_failed(self, link: SerialLink, why: str) -> None:
        link.stop()
        if link is not self.link:
            return
        self.link = None
        self.link_state.setText("not connected")
        self.context.message("error", f"cannot connect the IMUs: {why}")
        self._update_buttons()

    def disconnect_serial(self) -> None:
        link, self.link = self.link, None
        if link is None:
            return
        link.stop()
        self.feed.forget(link.name)
        self.link_state.setText("not connected")
        self.context.message("info", f"IMUs disconnected: {link.name}")
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.connect_button.setEnabled(self.link is None)
        self.disconnect_button.setEnabled(self.link is not None)

    # -- the session's IMUs ---------------------------------------------------------------
    def _on_session_started(self, bridge) -> None:
        self._detach_session()
        session = bridge.session
        imu = session.capture.imu
        names = [str(getattr(s, "name", f"source {i}")) for i, s in enumerate(imu.sources)]
        # The IMU thread's listeners are not told which source a batch came
        # from; with one source (the simulated studio's hub) that is no loss.
        self._session_source = names[0] if len(names) == 1 else "session"
        source = self._session_source
        self._listener = lambda samples: self.feed.put(source, samples)
        imu.listeners.append(self._listener)
        self._session = session
        if session.pairing is not None:
            self.set_pairing(session.pairing)
        else:
            session.pairing = self.pairing

    def _on_session_stopped(self) -> None:
        self._detach_session()

    def _detach_session(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            session.capture.imu.listeners.remove(self._listener)
        except ValueError:
            pass
        self._listener = None
        self.feed.forget(self._session_source)

    # -- pairing ------------------------------------------------------------------------------
    def select_bone(self, bone: int) -> None:
        bone = int(bone)
        if not 0 <= bone < sk.NUM_IMUS:
            return
        self.diagram.set_selected(bone)
        if self.bone.currentIndex() != bone:
            self.bone.setCurrentIndex(bone)

    def set_pairing(self, pairing: Pairing) -> None:
        self.pairing = pairing
        if self._session is not None:
            self._session.pairing = pairing
        self._show_pairing()

    def assign(self, bone: int, key: SensorKey) -> None:
        self.pairing.assign(bone, key)
        self._show_pairing()

    def unassign(self, bone: int) -> None:
        self.pairing.unassign(bone)
        self._show_pairing()

    def _assign_selected(self) -> None:
        key = self.selected_sensor()
        if key is None:
            self.context.message("error", "select a sensor in the table first")
            return
        self.assign(self.diagram.selected, key)

    def _show_pairing(self) -> None:
        self.diagram.set_pairing(self.pairing)
        missing = self.pairing.missing
        self.missing.setText("All 13 bones have a sensor." if not missing else
                             f"Unpaired ({len(missing)}): " + ", ".join(missing))
        self._show_bones()

    def _show_bones(self) -> None:
        for r, key in enumerate(self._rows):
            bone = self.pairing.bone_of(key)
            item = self.table.item(r, 1)
            if item is not None:
                item.setText("" if bone is None else sk.IMU_BONES[bone].name)

    def identify_by_shaking(self, bone: int | None = None) -> bool:
        """Start a shake window for `bone` (default: the selected one); when it
        ends, the shaken sensor is assigned to the bone (or a message says why not)."""
        if self._shake_timer.isActive():
            return False
        if not self.feed.keys():
            self.context.message("error", "no IMU is sending: connect the sensors or start the studio first")
            return False
        if bone is not None:
            self.select_bone(bone)
        self._shake_bone = self.diagram.selected
        self._shake_since = time.monotonic()
        self.last_shake = None
        self.shake_state.setText(f"Shake the sensor for {sk.IMU_BONES[self._shake_bone].name} now "
                                 f"({self.shake_s:g} s)…")
        self.shake_button.setEnabled(False)
        self._shake_timer.start(int(self.shake_s * 1000))
        return True

    def _finish_shake(self) -> None:
        self.shake_button.setEnabled(True)
        res = identify_shaken(self.feed.since(self._shake_since))
        self.last_shake = res
        name = sk.IMU_BONES[self._shake_bone].name
        if res.key is None:
            self.shake_state.setText(f"Not identified: {res.message}")
            self.context.message("error", f"shake to identify ({name}): {res.message}")
            return
        self.assign(self._shake_bone, res.key)
        self.shake_state.setText(f"{res.key} is on {name}")
        self.context.message("info", f"{name}: {res.message}")

    def _ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save IMU pairing", "imu-pairing.json", "JSON (*.json)")
        if path:
            self.save_pairing(path)

    def _ask_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load IMU pairing", "", "JSON (*.json)")
        if path:
            self.load_pairing(path)

    def save_pairing(self, path) -> bool:
        try:
            self.pairing.save(path)
        except (OSError, ValueError) as exc:
            self.context.message("error", f"cannot save the pairing: {exc}")
            return False
        self.context.message("info", f"pairing saved to {path}")
        return True

    def load_pairing(self, path) -> bool:
        try:
            pairing = Pairing.load(path)
        except (OSError, ValueError) as exc:
            self.context.message("error", f"cannot load the pairing: {exc}")
            return False
        self.set_pairing(pairing)
        self.context.message("info", f"pairing loaded: {sk.NUM_IMUS - len(pairing.missing)} of "
                                     f"{sk.NUM_IMUS} bones paired")
        return True

    # -- the sensor table and the plot ------------------------------------------------------
    def selected_sensor(self) -> SensorKey | None:
        row = self.table.currentRow()
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def _tick(self) -> None:
        if not self.isVisible():  # behind another panel: nothing to draw
            return
        self._ticks += 1
        if self._ticks % TABLE_EVERY == 1 or not self._rows:
            self.refresh_table()
        self.refresh_plot()

    def _dropped(self) -> dict[SensorKey, int]:
        out = {}
        sources = []
        if self.link is not None:
            sources.append((self.link.name, self.link.counters()))
        if self._session is not None and self._session_source != "session":
            src = self._session.capture.imu.sources[0]
            get = getattr(src, "counters", None)
            sources.append((self._session_source, get() if get is not None else None))
        for name, counters in sources:
            if counters is not None:
                for s in counters.sensors:
                    out[SensorKey(name, s.sensor_id)] = s.dropped
        return out

    def refresh_table(self) -> None:
        stats = self.feed.stats()
        keys = [s.key for s in stats]
        if keys != self._rows:
            current = self.selected_sensor()
            self._rows = keys
            self.table.setRowCount(len(keys))
            for r, key in enumerate(keys):
                self.table.setItem(r, 0, QTableWidgetItem(str(key)))
                self.table.setItem(r, 1, QTableWidgetItem(""))
                for c in range(2, len(self.COLUMNS)):
                    item = QTableWidgetItem("")
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                    self.table.setItem(r, c, item)
            row = keys.index(current) if current in keys else (0 if keys else -1)
            self.table.setCurrentCell(row, 0)
            self._show_bones()
        dropped = self._dropped()
        for r, s in enumerate(stats):
            self.table.item(r, 2).setText(f"{s.rate_hz:.1f}")
            self.table.item(r, 3).setText(str(s.samples))
            self.table.item(r, 4).setText(str(dropped.get(s.key, 0)))
            self.table.item(r, 5).setText(f"{s.age_s:.2f} s ago" if s.age_s < 60 else "over a minute ago")
        self._show_line_state()

    def _show_line_state(self) -> None:
        lines = []
        link = self.link
        if link is not None:
            c = link.counters()
            if c is None:
                self.link_state.setText(f"{link.name}: {link.state}")
            else:
                state = "reconnecting (device lost)" if c.state == "lost" else c.state
                self.link_state.setText(f"{link.name}: {state}")
                lines.append(f"{link.name}: {c.packets} packets, {c.corrupt} corrupt, {c.invalid} unusable, "
                             f"{c.skipped_bytes} bytes skipped, {c.resyncs} resyncs, {c.reconnects} reconnects")
        if self._session is not None:
            imu = self._session.capture.imu
            text = f"studio IMUs: {imu.samples} samples"
            if imu.errors:
                text += f", {len(imu.errors)} errors (last: {imu.errors[-1]})"
            lines.append(text)
        self.line_state.setText("\n".join(lines))

    def refresh_plot(self) -> None:
        key = self.selected_sensor()
        if key is None:
            self.plot.clear()
            return
        t, q = self.feed.recent(key, PLOT_WINDOW_S)
        bone = self.pairing.bone_of(key)
        self.plot_title.setText(f"{key}" + ("" if bone is None else f" on {sk.IMU_BONES[bone].name}"))
        if len(t) == 0:
            self.plot.clear()
            return
        if self.plot.mode == "euler":
            values = from_wxyz(q).as_euler("ZYX", degrees=True)[:, ::-1]  # roll, pitch, yaw
        else:
            values = q
        self.plot.show_series(t - t[-1], values)

    # -- shutdown -----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop the timers and the serial link (its thread joined); leave the session."""
        self.timer.stop()
        self._shake_timer.stop()
        link, self.link = self.link, None
        if link is not None:
            link.stop()
        self._detach_session()
        for signal, slot in ((self.context.session_started, self._on_session_started),
                             (self.context.session_stopped, self._on_session_stopped)):
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
