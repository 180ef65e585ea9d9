"""The FuseCap main window: the live 3D view, the panels, recording.

Layout: the 3D view in the middle; the panels (Studio, Live, Takes) in a
dock on the left behind a side navigation; a toolbar with Record/Stop and
the take name; a status bar with the capture rate, solve rate, end-to-end
latency, dropped frames, compute device and model.

With IMUs alone (the Studio panel's "IMUs only" source) there is no camera
and no rig: the 3D view shows no frusta, a timer shows the calibration
routine's current step on the Studio panel while the session calibrates the
IMUs, and Record stays off until they are calibrated.

Threads (DESIGN.md): the session's capture, live solve and recording run
off the GUI thread (core.session via app.bridge); this window only renders
and reacts. Closing it stops the status timer, the session (worker,
capture, recorder, live link) and the 3D view, in that order.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.bridge import SessionBridge
from app.context import AppContext
from app.panels.cameras import CALIBRATION_KEY, CamerasPanel
from app.panels.imus import ImusPanel
from app.panels.live import LivePanel
from app.panels.studio import DEVICES, IMUS_ONLY, StudioPanel, routine_words
from app.panels.takes import TakesPanel
from app.panels.wear import WearOffsetsPanel
from app.playback import TakePlayer, imu_bone_arrows
from app.view3d import LiveView3D
from core.take.layout import TakeError


def default_takes_folder() -> Path:
    docs = QStandardPaths.writableLocation(QStandardPaths.DocumentsLocation) or str(Path.home())
    return Path(docs) / "FuseCap Takes"


def next_take_name(folder: Path, stem: str = "take") -> str:
    used = [int(m.group(1)) for p in (folder.iterdir() if folder.is_dir() else [])
            if (m := re.fullmatch(rf"{re.escape(stem)}-(\d+)", p.name))]
    return f"{stem}-{max(used, default=0) + 1:03d}"


def skeleton_status(lengths_mm, frozen: bool) -> str:
    """The status bar's word on the performer's skeleton: measuring, or its
    size once the bone lengths are frozen (arm = upper arm + forearm, leg =
    thigh + shin)."""
    if lengths_mm is None:
        return "skeleton –"
    from core import skeleton as sk

    j = sk.JOINT_INDEX
    arm = lengths_mm[j["LeftForeArm"]] + lengths_mm[j["LeftHand"]]
    leg = lengths_mm[j["LeftLeg"]] + lengths_mm[j["LeftFoot"]]
    state = "skeleton" if frozen else "measuring skeleton"
    return f"{state}: arm {arm / 10:.0f} cm, leg {leg / 10:.0f} cm"


class MainWindow(QMainWindow):
    PANELS = ("Studio", "Cameras", "IMUs", "Wear offsets", "Live", "Takes")

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings("FuseCap", "FuseCap")
        self.setWindowTitle("FuseCap")
        self.context = AppContext(self.settings)
        self.context.message_posted.connect(self.show_message)
        self._bridge: SessionBridge | None = None
        self._shut_down = False
        self._camera_states: dict[str, str] = {}  # this studio's cameras: the last state reported
        self.calibrated_rig = None  # a rig the Cameras panel applied; used from the next studio start
        self._announcing_rig = False
        self.context.rig_changed.connect(self._rig_applied)
        self.messages: list[tuple[str, str]] = []  # (level, text), newest last
        self.takes_folder = Path(str(self.settings.value("takes/folder", default_takes_folder())))

        self.view = LiveView3D(self)
        self.setCentralWidget(self.view)

        self.studio_panel = StudioPanel(self.settings)
        self.studio_panel.start_requested.connect(self.start_studio)
        self.studio_panel.stop_requested.connect(self.stop_studio)
        self.studio_panel.background_requested.connect(self.capture_background)
        self.live_panel = LivePanel(self.view, self.settings)
        self.live_panel.vmc_changed.connect(self._set_vmc)
        self.player = TakePlayer(self)
        self.player.frame_changed.connect(self._show_take_frame)
        self.player.unloaded.connect(self.view.clear)
        self.takes_panel = TakesPanel(self.takes_folder, self.player, settings=self.settings)
        self.takes_panel.message.connect(self.show_message)
        self.cameras_panel = CamerasPanel(self.context)
        self.imus_panel = ImusPanel(self.context)
        self.wear_panel = WearOffsetsPanel(self.context)
        self.nav = QListWidget()
        self.nav.addItems(self.PANELS)
        self.nav.setMaximumHeight(24 * len(self.PANELS) + 8)
        self.stack = QStackedWidget()
        self.panels = {"Studio": self.studio_panel, "Cameras": self.cameras_panel, "IMUs": self.imus_panel,
                       "Wear offsets": self.wear_panel,
                       "Live": self.live_panel, "Takes": self.takes_panel}
        for panel in (self.panels[name] for name in self.PANELS):
            self.stack.addWidget(panel)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        side = QWidget()
        lay = QVBoxLayout(side)
        lay.addWidget(self.nav)
        lay.addWidget(self.stack, 1)
        dock = QDockWidget("Panels", self)
        dock.setObjectName("panels")
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        dock.setWidget(side)
        self.addDockWidget(Qt.LeftDockWidgetArea, dock)

        self._build_toolbar()
        self._build_status_bar()
        self.status_timer = QTimer(self)
        self.status_timer.setInterval(500)
        self.status_timer.timeout.connect(self.update_status)
        self.status_timer.start()
        # While an IMU-only session calibrates: the routine's step, on the GUI thread.
        self.routine_timer = QTimer(self)
        self.routine_timer.setObjectName("routine")
        self.routine_timer.setInterval(200)
        self.routine_timer.timeout.connect(self.update_routine)
        self._routine_failure_shown = False
        self._load_remembered_calibration()
        self.nav.setCurrentRow(int(self.settings.value("window/panel", 0)))
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)

    def _load_remembered_calibration(self) -> None:
        """Real cameras: the calibration file last used, when it is still there."""
        path = str(self.settings.value(CALIBRATION_KEY, "") or "")
        if self.studio_panel.source_kind == DEVICES and path and Path(path).is_file():
            self.cameras_panel.load_calibration(path)

    @property
    def bridge(self) -> SessionBridge | None:
        return self._bridge

    @bridge.setter
    def bridge(self, bridge: SessionBridge | None) -> None:
        self._bridge = bridge
        self.context.bridge = bridge

    # -- toolbar and status bar --------------------------------------------------------
    def _build_toolbar(self) -> None:
        bar = QToolBar("Recording", self)
        bar.setObjectName("recording")
        self.addToolBar(bar)
        self.record_action = QAction("● Record", self)
        self.record_action.setShortcut(QKeySequence("Ctrl+R"))
        self.record_action.setToolTip("Start recording a take (Ctrl+R)")
        self.record_action.triggered.connect(self.start_recording)
        self.stop_action = QAction("■ Stop", self)
        self.stop_action.setShortcut(QKeySequence("Ctrl+."))
        self.stop_action.setToolTip("Stop recording (Ctrl+.)")
        self.stop_action.triggered.connect(self.stop_recording)
        bar.addAction(self.record_action)
        bar.addAction(self.stop_action)
        self.play_action = QAction("Play/Pause take", self)
        self.play_action.setShortcut(QKeySequence(Qt.Key_Space))
        self.play_action.setShortcutContext(Qt.WindowShortcut)
        self.play_action.triggered.connect(lambda: self.takes_panel.toggle_play())
        self.addAction(self.play_action)
        bar.addWidget(QLabel("  Take: "))
        self.take_name = QLineEdit(next_take_name(self.takes_folder))
        self.take_name.setMaximumWidth(220)
        bar.addWidget(self.take_name)
        self._update_actions()

    def _build_status_bar(self) -> None:
        self.status_labels = {k: QLabel("") for k in ("state", "capture", "solve", "latency", "dropped",
                                                      "skeleton", "device", "model")}
        for label in self.status_labels.values():
            self.statusBar().addPermanentWidget(label)

    def _waits_for_imu_calibration(self) -> bool:
        """An IMU-only session whose IMUs are not calibrated yet (it cannot record)."""
        session = None if self.bridge is None else self.bridge.session
        return session is not None and session.imus_only and session.imu_calibration is None

    def _update_actions(self) -> None:
        live = self.bridge is not None and self.bridge.state == "live"
        recording = live and self.bridge.session.recording is not None
        waiting = self._waits_for_imu_calibration()
        self.record_action.setEnabled(live and not recording and not waiting)
        self.record_action.setToolTip("Record after the IMU calibration routine: the IMUs are not calibrated yet"
                                      if waiting else "Start recording a take (Ctrl+R)")
        self.stop_action.setEnabled(recording)
        self.take_name.setEnabled(not recording)
        running = self.bridge is not None and self.bridge.state in ("preparing", "live")
        background = running and self.bridge.session.studio.can_capture_background and not self.bridge.session.imus_only
        self.studio_panel.set_running(running, background)

    def update_status(self) -> None:
        b = self.bridge
        labels = self.status_labels
        if b is None:
            labels["state"].setText("studio stopped")
            for k in ("capture", "solve", "latency", "dropped", "skeleton", "device", "model"):
                labels[k].setText("")
            self.studio_panel.state.setText("stopped")
            self.studio_panel.show_status([])
            return
        s = b.session.stats()
        calibrating = b.state == "live" and self._waits_for_imu_calibration()
        labels["state"].setText("● REC" if s.recording else "calibrating IMUs" if calibrating else b.state)
        labels["capture"].setText("no camera" if b.session.imus_only else f"capture {s.capture_fps:4.1f} fps")
        labels["solve"].setText(f"solve {s.solve_fps:4.1f} fps")
        labels["latency"].setText("latency –" if math.isnan(s.latency_ms) else f"latency {s.latency_ms:4.0f} ms")
        labels["dropped"].setText(f"dropped {s.dropped}")
        labels["skeleton"].setText(skeleton_status(s.bone_lengths_mm, s.skeleton_frozen))
        engine = b.session.engine
        labels["device"].setText("CPU" if engine is None else str(engine.device).upper())
        labels["model"].setText(f"model {b.label}")
        self.studio_panel.state.setText(b.state)
        self.studio_panel.show_status(b.session.camera_status(), b.session.background_states())
        self._update_actions()

    def _camera_changed(self, s) -> None:
        """A message when a camera is lost or fails (once each time it happens),
        and when it is back; the Studio table keeps the details."""
        was = self._camera_states.get(s.name)
        self._camera_states[s.name] = s.state
        if s.state in ("lost", "failed"):
            again = "; retrying every second" if s.state == "lost" else ""
            self.show_message("error", f"{s.name}: {s.last_error or s.state}{again}")
        elif s.state == "running" and was == "lost":
            self.show_message("info", f"{s.name} is back")

    def _recording_stopped(self, stopped) -> None:
        """A recording ended: stopped by the user, or because writing failed."""
        if stopped.error is not None:
            self.show_message("error", stopped.error)
        elif not stopped.stats.camera_frames:  # IMUs alone
            self.show_message("info", f"take {stopped.root.name} saved: {stopped.stats.imu_samples} IMU samples, "
                              "no camera")
        else:
            self.show_message("info", f"take {stopped.root.name} saved: "
                              f"{min(stopped.stats.camera_frames, default=0)} frames, "
                              f"{stopped.stats.imu_samples} IMU samples")
        self.takes_panel.refresh()
        self.take_name.setText(next_take_name(self.takes_folder))
        self._update_actions()

    def show_message(self, level: str, text: str) -> None:
        """A message in the status bar; errors also in a non-blocking dialog."""
        self.messages.append((level, text))
        self.statusBar().showMessage(text, 10_000)
        if level == "error":
            box = QMessageBox(QMessageBox.Warning, "FuseCap", text, QMessageBox.Ok, self)
            box.setAttribute(Qt.WA_DeleteOnClose)
            box.open()

    # -- the studio ------------------------------------------------------------------------
    def start_studio(self) -> bool:
        if self.bridge is not None:
            return True
        panel = self.studio_panel
        panel.remember()
        kind = panel.source_kind
        real_imus = (kind == DEVICES or (kind == IMUS_ONLY and not panel.simulated_imus.isChecked()))
        if real_imus and panel.device_setup().imu_port and self.imus_panel.link is not None:
            self.imus_panel.disconnect_serial()  # the session opens the port itself
        try:
            session = panel.open_session(self.calibrated_rig, self.show_message)
        except (OSError, ValueError) as exc:
            what = {DEVICES: "the cameras and IMUs", IMUS_ONLY: "the IMUs"}.get(kind, "the simulated studio")
            self.show_message("error", f"cannot start {what}: {exc}")
            return False
        if session.imus_only and session.pairing is None:
            # Real IMUs: the IMUs panel's pairing, from the first sample the routine sees.
            session.set_pairing(self.imus_panel.pairing)
            missing = self.imus_panel.pairing.missing()
            if missing:
                self.show_message("info", f"no sensor is paired to {', '.join(missing)} (IMUs panel): the "
                                  "calibration routine starts once every bone's sensor is in")
        self.bridge = SessionBridge(session)
        self.bridge.frame.connect(self._on_frame)
        self.bridge.state_changed.connect(self._on_state)
        self.bridge.camera_changed.connect(self._camera_changed)
        self.bridge.recording_stopped.connect(self._recording_stopped)
        self.bridge.imu_calibrated.connect(self._imus_calibrated)
        if session.imus_only:
            self._start_imus_only(session)
        else:
            self._start_with_cameras(session)
        self.bridge.start()
        self._update_actions()
        return True

    def _start_with_cameras(self, session) -> None:
        if session.imu_tracking is not None and session.imu_tracking.calibration is None:
            self.show_message("info", "the performer does the IMU calibration routine first (hold the T-pose, "
                              "bow, squat, heels: about 16 s); until the IMUs are calibrated from it, the solve "
                              "uses the cameras alone")
        if session.rig is not None:
            self.view.set_rig(session.rig)
            self.live_panel.set_cameras(session.rig.names)
            self._announcing_rig = True
            try:
                self.context.rig_changed.emit(session.rig)
            finally:
                self._announcing_rig = False
        else:
            self.show_message("info", "the cameras are not calibrated: they are captured for calibration only "
                              "(Cameras panel: calibrate cameras, then the rig, then the floor)")

    def _start_imus_only(self, session) -> None:
        """No camera: no frusta in the view, and the calibration routine's steps on the Studio panel."""
        self.view.set_rig(None)
        self.live_panel.set_cameras([])
        if session.imu_calibration is None:
            pose = session.imu_tracking.pose
            self.show_message("info", f"IMUs only: the performer holds the {pose}-pose, then does the "
                              "calibration routine the Studio panel shows (bow, squat, heels: about 17 s); "
                              "recording can start once the IMUs are calibrated from it")
            self._routine_failure_shown = False
            self.update_routine()
            self.routine_timer.start()

    def _imus_calibrated(self, calib) -> None:
        tracking = None if self.bridge is None else self.bridge.session.imu_tracking
        offset = ""
        if tracking is not None and tracking.offset is not None:
            offset = f", time offset {tracking.offset_s * 1e3:.0f} ms"
        weak = [f.bone for f in calib.fits if not f.observable]
        ready = "; ready to record" if tracking is not None and not tracking.cameras else ""
        self.show_message("info", "IMUs calibrated from the routine" + offset + ready
                          + (f"; headings weakly observed: {', '.join(weak)}" if weak else ""))
        self.update_routine()
        self._update_actions()

    def update_routine(self) -> None:
        """An IMU-only session calibrating: the routine's current step and
        progress on the Studio panel (the session's threads only set plain
        values; this reads them on the GUI thread)."""
        session = None if self.bridge is None else self.bridge.session
        tracking = None if session is None or not session.imus_only else session.imu_tracking
        if tracking is None:
            self.routine_timer.stop()
            self.studio_panel.show_routine(None)
            return
        state = tracking.state()
        text, progress = routine_words(state, tracking.capture_started_s, time.monotonic(), tracking.pose,
                                       tracking.capture_s)
        self.studio_panel.show_routine(text, progress)
        if state.stage == "tracking":
            self.routine_timer.stop()
            self._update_actions()
        elif state.stage == "failed":
            self.routine_timer.stop()
            if not self._routine_failure_shown:
                self._routine_failure_shown = True
                self.show_message("error", text)

    def capture_background(self) -> bool:
        """Real cameras: the next frames of every camera become its empty stage."""
        if self.bridge is None:
            self.show_message("error", "the background is captured from real cameras: start the studio "
                              "on \"Cameras and IMUs\" first")
            return False
        frames = self.studio_panel.background_frames.value()
        try:
            self.bridge.session.capture_background(frames)
        except ValueError as exc:
            self.show_message("error", str(exc))
            return False
        self.show_message("info", f"capturing the background: keep every camera's view empty for {frames} frames")
        return True

    def _rig_applied(self, rig) -> None:
        """A calibration the user applied: the studio restarts on it."""
        if self._announcing_rig:
            return
        self.calibrated_rig = rig
        if self.bridge is not None:
            if self.bridge.session.recording is not None:
                self.show_message("info", "the new calibration is used from the next studio start "
                                  "(a take is being recorded)")
                return
            self.stop_studio()
            self.start_studio()
            self.show_message("info", "the studio restarted on the new calibration")

    def stop_studio(self) -> None:
        if self.bridge is None:
            return
        self.stop_recording()
        self.routine_timer.stop()
        self.bridge.stop()
        self.bridge = None
        self.studio_panel.show_routine(None)
        self._camera_states = {}
        self.context.session_stopped.emit()
        self.view.clear()
        self._update_actions()
        self.update_status()

    def _on_state(self, state: str) -> None:
        if state == "live" and self.bridge is not None:
            self.context.session_started.emit(self.bridge)
        if state.startswith("failed"):
            self.show_message("error", f"the studio could not start: {state[len('failed: '):]}")
        self._update_actions()

    def _show_take_frame(self, i: int) -> None:
        p = self.player
        if p.take is None:
            return
        self.view.set_volume(None, None)
        self.view.set_skeleton(p.joints_mm[i])
        b = p.body
        if b is None:
            self.view.set_body(None)
        else:
            self.view.set_body(b.offsets_mm, b.positions_mm[i], b.rotations[i])
        if p.imu_origins is not None:
            self.view.set_imu_bones(p.imu_origins[i], p.imu_dirs[i])

    def _on_frame(self, frame) -> None:
        self.context.frame.emit(frame)
        if self.player.take is not None:
            return  # the view shows the take being played back
        r = frame.result
        self.view.set_volume(r.grid, r.volume)
        solved = getattr(frame, "solved", None)
        if solved is not None:  # the skeleton solve: what the animator receives
            joints = solved.positions_mm
            self.view.set_skeleton(joints, None if r.solve is None else r.solve.stage1_mm)
            self.view.set_body(solved.offsets_mm, solved.positions_mm, solved.glob)
        elif r.solve is not None:
            joints = frame.filtered_mm if frame.filtered_mm is not None else r.solve.joints_mm
            self.view.set_skeleton(joints, r.solve.stage1_mm, r.solve.confidence)
            self.view.set_body(None)
        else:
            return
        if r.bone_wxyz is not None:
            self.view.set_imu_bones(*imu_bone_arrows(joints, r.bone_wxyz))

    def _set_vmc(self, target: str) -> None:
        if self.bridge is None:
            if target:
                self.show_message("error", "start the studio first, then the VMC link")
                self.live_panel.vmc_on.setChecked(False)
            return
        if not target:
            self.bridge.session.set_vmc(None)
            self.live_panel.vmc_state.setText("not streaming")
            return
        from core.stream.vmc import VmcSender, parse_host_port

        try:
            host, port = parse_host_port(target)
            self.bridge.session.set_vmc(VmcSender(host, port))
        except (ValueError, OSError) as exc:
            self.show_message("error", f"VMC: {exc}")
            self.live_panel.vmc_on.setChecked(False)
            return
        self.live_panel.vmc_state.setText(f"streaming to {host}:{port}")

    # -- recording ----------------------------------------------------------------------------
    def start_recording(self) -> bool:
        if self.bridge is None or self.bridge.state != "live" or self.bridge.session.recording is not None:
            return False
        name = self.take_name.text().strip() or next_take_name(self.takes_folder)
        if "/" in name or "\\" in name:
            self.show_message("error", f"{name!r} is not a usable take name")
            return False
        try:
            self.takes_folder.mkdir(parents=True, exist_ok=True)
            self.bridge.session.start_recording(self.takes_folder / name)
        except (TakeError, OSError, ValueError) as exc:
            self.show_message("error", f"cannot start recording: {exc}")
            return False
        self.show_message("info", f"recording {name}")
        self._update_actions()
        return True

    def stop_recording(self):
        """Stop the recording; its stats (the take is announced by the
        session's recording_stopped event)."""
        if self.bridge is None:
            return None
        return self.bridge.session.stop_recording()

    # -- shutdown -------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self._shut_down:  # a second close (e.g. by a test's clean-up) has nothing left to do
            super().closeEvent(event)
            return
        self._shut_down = True
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/panel", self.nav.currentRow())
        self.settings.setValue("takes/folder", str(self.takes_folder))
        self.status_timer.stop()
        self.routine_timer.stop()
        for panel in self.panels.values():
            if hasattr(panel, "shutdown"):
                panel.shutdown()
        self.player.unload()
        self.stop_studio()
        task = self.takes_panel.task
        if task is not None:
            task.cancelled.set()
            task.thread.join(30.0)
        self.view.shutdown()
        self.statusBar().clearMessage()  # stops the status bar's message timer
        for box in self.findChildren(QMessageBox):  # messages still open go with the window
            box.close()
        super().closeEvent(event)
