"""IMUs panel: serial IMU sources, each sensor's health, which sensor sits on
which bone (shake to identify, a clickable body diagram, pairing files) and
the selected sensor's orientation over the last 10 s.

Threads: samples arrive on other threads, from the panel's own serial link
(a Python thread that opens the port, so a busy or missing port is a message,
not a frozen window) and from the running session's IMU thread (a listener).
Both only append to `ImuFeed` (app.imu_feed), a locked ring per sensor; one
GUI timer (~20 Hz) reads it for the plot and, four times a second, the table.
`shutdown` stops the timers, the serial link (its thread is joined) and
detaches from the session.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.context import AppContext
from app.imu_feed import ImuFeed, NoSerialPlugin, SerialLink, dropped_per_sensor, serial_source
from app.panels.body_diagram import PairingBox
from app.panels.imu_widgets import PortChooser, SensorTable
from app.plots import OrientationPlot
from core import skeleton as sk
from core.imu.pairing import Pairing, SensorKey, ShakeResult, identify_shaken
from core.rotations import from_wxyz

TICK_MS = 50            # plot refresh (~20 Hz)
TABLE_EVERY = 5         # table refresh every 5 ticks (~4 Hz)
PLOT_WINDOW_S = 10.0
SHAKE_S = 2.0           # how long the user shakes a sensor


class ImusPanel(QWidget):

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
        self._session_sources: list[str] = []  # the names its sources' samples are filed under
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
        if bridge is not None and bridge.state == "live":
            self._on_session_started(bridge)

    # -- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        self.chooser = PortChooser()
        self.ports, self.port_path = self.chooser.ports, self.chooser.port_path
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(lambda: self.connect_serial())
        self.disconnect_button = QPushButton("Disconnect")
        self.disconnect_button.clicked.connect(self.disconnect_serial)
        self.link_state = QLabel("not connected")
        self.link_state.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.connect_button)
        buttons.addWidget(self.disconnect_button)
        conn = QGroupBox("Serial IMUs")
        form = QVBoxLayout(conn)
        form.addWidget(self.chooser)
        form.addLayout(buttons)
        form.addWidget(self.link_state)

        self.table = SensorTable()
        self.line_state = QLabel("")
        self.line_state.setWordWrap(True)

        self.pair_box = pair_box = PairingBox()
        self.diagram, self.bone, self.shake_button = pair_box.diagram, pair_box.bone, pair_box.shake_button
        self.shake_state, self.missing = pair_box.shake_state, pair_box.missing
        self.diagram.bone_clicked.connect(self.select_bone)
        self.bone.currentIndexChanged.connect(self.select_bone)
        self.shake_button.clicked.connect(lambda: self.identify_by_shaking())
        pair_box.assign_button.clicked.connect(self._assign_selected)
        pair_box.unpair_button.clicked.connect(lambda: self.unassign(self.diagram.selected))
        pair_box.save_button.clicked.connect(self._ask_save)
        pair_box.load_button.clicked.connect(self._ask_load)

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
        self._show_pairing()
        self._update_buttons()

    # -- serial link ---------------------------------------------------------------------
    def refresh_ports(self) -> None:
        self.chooser.refresh()

    def connect_serial(self, port: str | None = None, protocol: str | None = None) -> bool:
        """Open `port` (default: the typed path, else the chosen port) on a
        thread; the outcome arrives as a message. False if it cannot start."""
        port = (port or self.chooser.port()).strip()
        protocol = protocol or self.chooser.protocol()
        if not port:
            self.context.message("error", "choose a serial port or type its path")
            return False
        if self.link is not None:
            self.context.message("error", f"already connected to {self.link.name}: disconnect first")
            return False
        try:
            source = serial_source(port, protocol)
        except NoSerialPlugin as exc:
            self.context.message("error", str(exc))
            return False
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
        # The sensors as they come (before the pairing renumbers them to bones).
        self._session_sources = session.imu_source_names
        self._listener = session.events.imu_raw.connect(self.feed.put)
        self._session = session
        if session.pairing is not None:
            self.set_pairing(session.pairing)
        else:
            session.set_pairing(self.pairing)

    def _on_session_stopped(self) -> None:
        self._detach_session()

    def _detach_session(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        session.events.imu_raw.disconnect(self._listener)
        self._listener = None
        for name in self._session_sources:
            self.feed.forget(name)

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
            self._session.set_pairing(pairing)
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
        self.pair_box.show_pairing(self.pairing)
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
        sources = []
        if self.link is not None:
            sources.append((self.link.name, self.link.counters()))
        if self._session is not None:
            sources.extend(zip(self._session_sources, self._session.imu_counters()))
        return dropped_per_sensor(sources)

    def refresh_table(self) -> None:
        stats = self.feed.stats()
        keys = [st.key for st in stats]
        if keys != self._rows:
            current = self.selected_sensor()
            self._rows = keys
            self.table.set_sensors(keys, current)
            self._show_bones()
        self.table.show_stats(stats, self._dropped())
        self._show_line_state()

    def _show_line_state(self) -> None:
        lines = []
        link = self.link
        if link is not None:
            state, counters = link.describe()
            self.link_state.setText(state)
            if counters:
                lines.append(counters)
        if self._session is not None:
            imu = self._session.imu_status()
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
