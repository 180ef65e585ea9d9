"""Studio panel: the device source, start/stop, and each camera's status.

Two sources:

- "Simulated studio": a virtual performer, cameras and IMUs (no hardware);
- "Cameras and IMUs": real cameras (device numbers, stream URLs, video
  files, or a folder of recorded footage) and one serial IMU port, with the
  calibration the Cameras panel applied (core.session.opening). Their
  silhouettes come from a background model per camera: the first frames
  after the start are taken as the empty stage when "Capture the background
  at the start" is ticked, and "Capture background" takes a new one at any
  time (step out of every view first). The status table shows each
  camera's background.

Everything the user sets here is remembered between runs (QSettings).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
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
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.panels.imu_widgets import PortChooser
from core.session.studios import DEVICES, SIMULATED, DeviceSetup


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
        form.addRow("Live model", self.model)
        self.devices_box = self._build_devices()
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
        lay.addWidget(self.devices_box)
        lay.addLayout(buttons)
        lay.addWidget(self.state)
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
        return box

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Footage folder (one video per camera)")
        if folder:
            self.cameras.setText(folder)

    def _source_changed(self) -> None:
        devices = self.source_kind == DEVICES
        self.devices_box.setVisible(devices)
        for w in (self.seed, self.seed_label, self.body, self.body_label):
            w.setVisible(not devices)

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
        from core.sim.studio import StudioConfig

        # The simulated performer holds the calibration pose 4 s when asked (Wear
        # offsets panel): a live solve slowed by a busy machine still sees 2 s still.
        config = StudioConfig(seed=self.seed.value(), camera_fps=self.fps.value(), calibration_hold_s=4.0,
                              body=self.body.currentData())
        if rig is not None and not rig.fits(simulated_rig(config)):
            say("info", f"the calibration in use is for {len(rig)} other cameras: the simulated studio runs on its own")
            rig = None
        return open_simulated_session(config, model, rig=rig)

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

    def set_running(self, running: bool, devices: bool = False) -> None:
        self._running = running
        for w in (self.source, self.seed, self.body, self.fps, self.model, self.start_button, self.cameras, self.imus,
                  self.background_at_start, self.background_frames):
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
