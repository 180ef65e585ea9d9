"""Studio panel: the device source, start/stop, and each camera's status.

Three sources:

- "Simulated studio": a virtual performer, cameras and IMUs (no hardware);
- "Cameras and IMUs": real cameras (device numbers, stream URLs, video
  files, or a folder of recorded footage) and one serial IMU port, with the
  calibration the Cameras panel applied (core.session.opening). Their
  silhouettes come from a background model per camera: the first frames
  after the start are taken as the empty stage when "Capture the background
  at the start" is ticked, and "Capture background" takes a new one at any
  time (step out of every view first). The status table shows each
  camera's background.
- "IMUs only (no cameras)": one serial IMU port (or the simulated studio's
  IMUs, "Simulated IMUs", with no hardware) and no camera: the performer's
  height sizes a template skeleton the IMUs pose
  (core.session.opening.open_imu_session). As the studio starts the
  performer holds the known pose (T or N) and does the calibration routine;
  the panel shows its current step and how far it is (`routine_words`), and
  recording waits until the IMUs are calibrated from it.

Everything the user sets here is remembered between runs (QSettings).
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.panels.imu_widgets import PortChooser
from core.imu.wear_capture import STEPS
from core.session.studios import DEVICES, IMUS_ONLY, SIMULATED, DeviceSetup

STATURE_RANGE_MM = (1000, 2500)  # as core.session.opening.open_imu_session accepts


def routine_words(state, started_s: float | None, now_s: float, pose: str, capture_s: float
                  ) -> tuple[str, float]:
    """What the performer does now in the IMU calibration routine, and how
    far the routine is (0-1). state: the tracking's TrackingState
    (core.imu.tracking); started_s: when its capture started (monotonic s,
    None: not yet); capture_s: how long the capture lasts. The steps are
    core.imu.wear_capture.STEPS."""
    if state.stage == "failed":
        return (f"{state.message}. Stop and start the studio to do the routine again.", 0.0)
    if state.stage == "tracking":
        return ("IMUs calibrated: ready to record.", 1.0)
    if state.stage == "solving":
        return ("Calibrating the IMUs from the routine…", 1.0)
    if started_s is None:
        return (f"Stand still in the {pose}-pose, facing the way the animation should face: the routine "
                "starts once every sensor is in.", 0.0)
    elapsed = max(0.0, now_s - started_s)
    i = max(k for k, (t, _) in enumerate(STEPS) if t <= elapsed or k == 0)
    step = STEPS[i][1].format(pose=pose)
    ends = STEPS[i + 1][0] if i + 1 < len(STEPS) else capture_s
    left = max(0, math.ceil(ends - elapsed))
    then = "next step" if i + 1 < len(STEPS) else "calibration"
    return (f"Step {i + 1} of {len(STEPS)}: {step} ({then} in {left} s; routine {min(elapsed, capture_s):.0f} "
            f"of {capture_s:.0f} s)", min(1.0, elapsed / capture_s))


class StudioPanel(QWidget):
    start_requested = Signal()
    stop_requested = Signal()
    background_requested = Signal()

    def __init__(self, settings, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.source = QComboBox()
        self.source.addItem("Simulated studio (no hardware)", SIMULATED)
        self.source.addItem("Cameras and IMUs", DEVICES)
        self.source.addItem("IMUs only (no cameras)", IMUS_ONLY)
        self.source.setCurrentIndex(max(0, self.source.findData(settings.value("studio/source", SIMULATED))))
        self.seed = QSpinBox()
        self.seed.setRange(0, 1_000_000)
        self.seed.setValue(int(settings.value("studio/seed", 0)))
        self.body = QComboBox()
        for label, kind in (("Human mesh (Anny)", "mesh"), ("Capsules", "capsule")):
            self.body.addItem(label, kind)
        self.body.setCurrentIndex(max(0, self.body.findData(settings.value("studio/body", "mesh"))))
        self.body.setToolTip("The simulated performer's body: a skinned human mesh, some in loose clothing, "
                             "or capsules and ellipsoids (docs/BODIES.md)")
        self.fps = QDoubleSpinBox()
        self.fps.setRange(5.0, 60.0)
        self.fps.setValue(float(settings.value("studio/fps", 15.0)))
        self.model = QComboBox()
        for label, spec in (("DeepFuse lite", "lite"), ("DeepFuse full", "full"), ("No live solve", "none")):
            self.model.addItem(label, spec)
        i = self.model.findData(settings.value("studio/model", "lite"))
        self.model.setCurrentIndex(max(i, 0))
        form = QFormLayout()
        form.addRow("Source", self.source)
        self.seed_label = QLabel("Performer seed")
        form.addRow(self.seed_label, self.seed)
        self.body_label = QLabel("Performer body")
        form.addRow(self.body_label, self.body)
        form.addRow("Frame rate", self.fps)
        self.model_label = QLabel("Live model")
        form.addRow(self.model_label, self.model)
        self.devices_box = self._build_devices()
        self.imus_only_box = self._build_imus_only()
        self.routine_box = self._build_routine()
        self.start_button = QPushButton("Start studio")
        self.stop_button = QPushButton("Stop studio")
        self.start_button.clicked.connect(self.start_requested)
        self.stop_button.clicked.connect(self.stop_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        self.state = QLabel("stopped")
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["camera", "state", "fps", "dropped", "silhouettes", "error"])
        self.table.verticalHeader().setVisible(False)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.imus_only_box)
        lay.addWidget(self.devices_box)
        lay.addLayout(buttons)
        lay.addWidget(self.state)
        lay.addWidget(self.routine_box)
        lay.addWidget(self.table, 1)
        self.source.currentIndexChanged.connect(self._source_changed)
        self._running = False
        self._source_changed()
        self.set_running(False)

    def _build_devices(self) -> QGroupBox:
        s = self.settings
        box = QGroupBox("Cameras and IMUs")
        self.cameras = QLineEdit(str(s.value("devices/cameras", "0, 1")))
        self.cameras.setPlaceholderText("0, 1, 2, 3  or  rtsp://…, video files, or one footage folder")
        self.cameras.setToolTip("One entry per calibrated camera, in the calibration's order: a device number, "
                                "a stream URL or a video file; or a single folder of recorded footage")
        browse = QPushButton("Footage folder…")
        browse.clicked.connect(self._ask_folder)
        row = QHBoxLayout()
        row.addWidget(self.cameras, 1)
        row.addWidget(browse)
        self.imus = PortChooser(optional=True)
        self.imus.set_port(str(s.value("devices/imu_port", "")))
        self.imus.set_protocol(str(s.value("devices/imu_protocol", "fusecap")))
        self.background_at_start = QCheckBox("Capture the background at the start (stage empty)")
        self.background_at_start.setChecked(str(s.value("devices/background_at_start", "true")) == "true")
        self.background_frames = QSpinBox()
        self.background_frames.setRange(2, 300)
        self.background_frames.setValue(int(s.value("devices/background_frames", 15)))
        self.background_button = QPushButton("Capture background")
        self.background_button.setToolTip("Step out of every camera's view, then press: the next frames "
                                           "become the empty stage the silhouettes are cut from")
        self.background_button.clicked.connect(self.background_requested)
        form = QFormLayout(box)
        form.addRow("Cameras", row)
        form.addRow("IMUs", self.imus)
        form.addRow(self.background_at_start)
        form.addRow("Background frames", self.background_frames)
        form.addRow(self.background_button)
        self._devices_form = form
        # The rows an IMU-only studio hides (all but "IMUs").
        self._camera_rows = (row, self.background_at_start, self.background_frames, self.background_button)
        return box

    def _build_imus_only(self) -> QGroupBox:
        s = self.settings
        box = QGroupBox("IMUs only")
        self.stature = QSpinBox()
        self.stature.setRange(*STATURE_RANGE_MM)
        self.stature.setSuffix(" mm")
        self.stature.setSingleStep(10)
        try:
            stature = int(float(s.value("imus_only/stature_mm", 1750)))
        except (TypeError, ValueError):
            stature = 1750
        self.stature.setValue(stature)
        self.stature.setToolTip("The performer's height: with no camera to measure the body, it sizes the "
                                "skeleton the IMUs pose")
        self.pose = QComboBox()
        for label, pose in (("T-pose (arms out sideways)", "T"), ("N-pose (arms down)", "N")):
            self.pose.addItem(label, pose)
        self.pose.setCurrentIndex(max(0, self.pose.findData(s.value("imus_only/pose", "T"))))
        self.pose.setToolTip("The known pose the performer holds as the calibration routine starts")
        self.simulated_imus = QCheckBox("Simulated IMUs (no hardware)")
        self.simulated_imus.setChecked(str(s.value("imus_only/simulated", "false")) == "true")
        self.simulated_imus.setToolTip("The simulated studio's 13 IMUs on a virtual performer (Performer "
                                       "seed) instead of a serial port")
        self.simulated_imus.toggled.connect(self._source_changed)
        form = QFormLayout(box)
        form.addRow("Performer height", self.stature)
        form.addRow("Known pose", self.pose)
        form.addRow(self.simulated_imus)
        return box

    def _build_routine(self) -> QGroupBox:
        box = QGroupBox("IMU calibration routine")
        self.routine = QLabel("")
        self.routine.setWordWrap(True)
        self.routine.setTextFormat(Qt.PlainText)
        font = self.routine.font()
        font.setBold(True)
        self.routine.setFont(font)
        self.routine_bar = QProgressBar()
        self.routine_bar.setRange(0, 100)
        lay = QVBoxLayout(box)
        lay.addWidget(self.routine)
        lay.addWidget(self.routine_bar)
        box.setVisible(False)
        return box

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Footage folder (one video per camera)")
        if folder:
            self.cameras.setText(folder)

    def _source_changed(self) -> None:
        kind = self.source_kind
        imus_only = kind == IMUS_ONLY
        simulated_imus = imus_only and self.simulated_imus.isChecked()
        self.devices_box.setVisible(kind == DEVICES or (imus_only and not simulated_imus))
        self.devices_box.setTitle("IMUs" if imus_only else "Cameras and IMUs")
        for row in self._camera_rows:
            self._devices_form.setRowVisible(row, not imus_only)
        self.imus_only_box.setVisible(imus_only)
        self.table.setVisible(not imus_only)  # the cameras' status: none here
        for w in (self.seed, self.seed_label):
            w.setVisible(kind == SIMULATED or simulated_imus)
        for w in (self.body, self.body_label):
            w.setVisible(kind == SIMULATED)
        for w in (self.model, self.model_label):  # no camera, no network: the IMUs pose the skeleton
            w.setVisible(not imus_only)

    @property
    def source_kind(self) -> str:
        return self.source.currentData()

    def device_setup(self) -> DeviceSetup:
        return DeviceSetup(cameras=DeviceSetup.parse_cameras(self.cameras.text()),
                           imu_port=self.imus.port(), imu_protocol=self.imus.protocol(),
                           fps=self.fps.value(), background_frames=self.background_frames.value(),
                           background_at_start=self.background_at_start.isChecked())

    def open_session(self, rig, say):
        """The session for the chosen source (core.session.CaptureSession),
        not started yet; raises ValueError or OSError with what is wrong.
        rig: the calibration applied on the Cameras panel (or None);
        say(level, text) reports."""
        from core.session.opening import open_device_session, open_simulated_session, simulated_rig

        model = self.model.currentData()
        if self.source_kind == DEVICES:
            return open_device_session(self.device_setup(), rig, model)
        if self.source_kind == IMUS_ONLY:
            return self._open_imu_session()
        from core.sim.studio import StudioConfig

        # The simulated performer holds the calibration pose 4 s when asked (Wear
        # offsets panel): a live solve slowed by a busy machine still sees 2 s still.
        config = StudioConfig(seed=self.seed.value(), camera_fps=self.fps.value(), calibration_hold_s=4.0,
                              body=self.body.currentData())
        if rig is not None and not rig.fits(simulated_rig(config)):
            say("info", f"the calibration in use is for {len(rig)} other cameras: the simulated studio runs on its own")
            rig = None
        return open_simulated_session(config, model, rig=rig)

    def _open_imu_session(self):
        """IMUs alone: the serial port's, or the simulated studio's (then
        paired one to one, as the simulated studio's always are)."""
        from core.session.opening import identity_pairing, open_imu_session

        stature, pose = float(self.stature.value()), self.pose.currentData()
        setup = DeviceSetup(cameras=(), imu_port=self.imus.port(), imu_protocol=self.imus.protocol(),
                            fps=self.fps.value())
        if not self.simulated_imus.isChecked():
            return open_imu_session(setup, stature, pose)
        from core.registry import registry
        from core.sim.studio import StudioConfig

        reg = registry()
        if "simulated" not in reg.studios:
            raise ValueError(f"the simulated studio plugin is not installed ({reg.errors or 'no entry point'})")
        # The simulated performer starts with the routine in the known pose, as a real one is asked to.
        # Capsules: no camera sees the body, and the mesh body's model takes seconds to load.
        config = StudioConfig(seed=self.seed.value(), camera_fps=self.fps.value(), body="capsule",
                              calibration_pose=pose)
        devices = reg.studios["simulated"](config, realtime=True)
        session = open_imu_session(setup, stature, pose, imus=devices.imus)
        session.set_pairing(identity_pairing(devices.imus[0].name))
        return session

    def show_routine(self, text: str | None, progress: float = 0.0) -> None:
        """The calibration routine's step and progress (None hides them)."""
        self.routine_box.setVisible(text is not None)
        if text is None:
            return
        if self.routine.text() != text:
            self.routine.setText(text)
        self.routine_bar.setValue(int(round(100 * progress)))

    def remember(self) -> None:
        s = self.settings
        s.setValue("studio/source", self.source_kind)
        s.setValue("studio/seed", self.seed.value())
        s.setValue("studio/body", self.body.currentData())
        s.setValue("studio/fps", self.fps.value())
        s.setValue("studio/model", self.model.currentData())
        s.setValue("devices/cameras", self.cameras.text())
        s.setValue("devices/imu_port", self.imus.port())
        s.setValue("devices/imu_protocol", self.imus.protocol())
        s.setValue("devices/background_at_start", "true" if self.background_at_start.isChecked() else "false")
        s.setValue("devices/background_frames", self.background_frames.value())
        s.setValue("imus_only/stature_mm", self.stature.value())
        s.setValue("imus_only/pose", self.pose.currentData())
        s.setValue("imus_only/simulated", "true" if self.simulated_imus.isChecked() else "false")

    def set_running(self, running: bool, devices: bool = False) -> None:
        self._running = running
        for w in (self.source, self.seed, self.body, self.fps, self.model, self.start_button, self.cameras, self.imus,
                  self.background_at_start, self.background_frames, self.stature, self.pose,
                  self.simulated_imus):
            w.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.background_button.setEnabled(running and devices)

    def show_status(self, statuses, backgrounds=None) -> None:
        """statuses: core.capture.threads.CaptureStatus per camera; backgrounds:
        each camera's BackgroundState (None: the source gives silhouettes)."""
        self.table.setRowCount(len(statuses))
        for r, s in enumerate(statuses):
            sil = "given" if backgrounds is None else backgrounds[r].words()
            for c, v in enumerate((s.name, s.state, f"{s.fps:.1f}", str(s.dropped), sil, s.last_error)):
                item = self.table.item(r, c)
                if item is None:
                    self.table.setItem(r, c, QTableWidgetItem(v))
                elif item.text() != v:
                    item.setText(v)
