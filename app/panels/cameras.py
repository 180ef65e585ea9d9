"""Cameras panel: live previews, camera and rig calibration, the floor, calibration files.

Previews: one small image per camera, the newest live frame's silhouette
(orange on dark grey), refreshed by a timer at 5 frames/s from the newest
frame only; a camera without a frame shows "no signal". While a calibration
runs, each camera's tile shows the board view being processed with the
detected corners (green dots) and, for intrinsics, the image cells the
board has covered so far (tinted); the coverage bar and label name the
places the board has not been yet (core.calibration.intrinsics.Coverage).

Calibration (docs/CALIBRATION.md) runs off the GUI thread with a progress
dialog that can be cancelled (app.workers); a cancelled run changes nothing.
Its result is a CameraRig at the live cameras' image size, shown in the
error table (per camera: board views used, RMS reprojection error in pixels
of the calibration images, the same error in mm at the performer and the
verdict of core.calibration.quality) and used once the user presses Apply
(`context.rig_changed`). Loading a file applies it at once.

On the simulated studio the board views are rendered through the
studio's true cameras at sizes that keep a rig calibration under a minute
on 2 cores (960 px for the lenses, 1440 px for the rig); the sizes, the
counts and what they measure against the truth are in docs/CALIBRATION.md
("In the desktop app"). The steps themselves live in core.calibration.steps.

Real cameras ("Cameras and IMUs"): the board views are the cameras' own
images (core.calibration.live_board.LiveBoardViews), taken while the user moves a
printed board (`main.py board`) in front of each camera, then walks it
around the area; the floor is a separate step (Set floor) with the board
lying at the origin. The same error table and Apply follow.

Floor from performer: the world from the performer standing still in the
area, arms down, for a second (core.calibration.floor.floor_from_performer),
read from the running studio's live silhouettes, for a rig with no floor
board seen or another tool's. On the simulated studio its performer does
the calibration routine and is measured while it holds the routine's pose
(a performer on the move carves no standing person).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QLabel, QProgressBar, QScrollArea, QVBoxLayout, QWidget

from app.panels.camera_widgets import CalibrationBox, CameraTile, PreviewGrid
from app.workers import Cancelled, run_with_progress
from core.calibration import files
from core.calibration.board import BoardError, BoardSpec
from core.calibration.guided import BoardOverlay, CalibrationOutcome, ErrorRow, SimulatedBoardCalibration
from core.calibration.intrinsics import CalibrationError
from core.calibration.live_board import LiveBoardViews, uncalibrated_rig
from core.calibration.steps import (
    calibrate_lenses,
    calibrate_walked_rig,
    read_calibration_for,
    rows_from_quality,
    set_floor_from_board,
    set_floor_from_performer,
    write_calibration,
)
from core.camera.model import Camera
from core.camera.rig import CameraRig


class _Relay(QObject):
    board_view = Signal(object)  # BoardOverlay, from the worker thread


# The calibration file last loaded or saved: loaded again at the next start
# when the studio's source is real cameras.
CALIBRATION_KEY = "cameras/calibration_file"


class CamerasPanel(QWidget):
    PREVIEW_WIDTH_PX = 160
    REFRESH_MS = 200  # previews at 5 frames/s: enough to frame a performer, cheap on 2 cores
    STALE_S = 2.0  # a frame older than this is no signal
    INTRINSIC_WIDTH_PX = 960
    RIG_WIDTH_PX = 1440
    INTRINSIC_VIEWS = 14
    PERFORMER_FRAMES = 10  # sets of silhouettes of the performer standing still, 0.1 s apart
    RIG_MOMENTS = 24
    WALL_BOARD = BoardSpec(squares_x=9, squares_y=6, square_mm=40.0, marker_mm=30.0)
    RIG_BOARD = BoardSpec(squares_x=9, squares_y=7, square_mm=160.0, marker_mm=120.0)

    def __init__(self, context, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.rig_in_use: CameraRig | None = None  # what the studio uses now
        self.last_rig: CameraRig | None = None  # the newest result (calibrated or loaded)
        self.last_outcome: CalibrationOutcome | None = None
        self.error_rows: list[ErrorRow] = []
        self.board: BoardSpec | None = None  # the board last_rig was made with
        self.quality: dict = {}
        self.coverage: dict[str, float] = {}  # camera name -> fraction, from the last intrinsics
        self.task = None
        self._intrinsic_cams: tuple[Camera, ...] | None = None
        self._closing = False
        self._relay = _Relay(self)
        self._relay.board_view.connect(self._on_board_view)  # queued: emitted on the worker thread

        # previews
        self.previews = PreviewGrid(self.PREVIEW_WIDTH_PX, self.STALE_S)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.previews)
        self.coverage_bar = QProgressBar()
        self.coverage_bar.setRange(0, 100)
        self.coverage_bar.setFormat("coverage %p%")
        self.coverage_bar.setVisible(False)
        self.coverage_label = QLabel("")
        self.coverage_label.setWordWrap(True)

        # calibration
        calib = CalibrationBox((
            ("cameras", "Calibrate cameras", "Lens and focal length of every camera (intrinsics)",
             lambda: self.calibrate_cameras()),
            ("rig", "Calibrate rig", "Where every camera stands (extrinsics, bundle adjustment) and the floor",
             lambda: self.calibrate_rig()),
            ("floor", "Set floor", "Origin and floor from the board lying flat on the floor", lambda: self.set_floor()),
            ("performer", "Floor from performer",
             "Origin and floor from the performer, with the studio running: stand still in the middle of the area, "
             "arms down, for a second", lambda: self.floor_from_performer()),
            ("apply", "Apply", "Use this calibration", lambda: self.apply()),
            ("load", "Load…", "FuseCap JSON or anipose / FreeMoCap TOML", self._ask_load),
            ("save", "Save…", "FuseCap JSON or anipose / FreeMoCap TOML", self._ask_save),
        ), f"Boards: {self._board_words(self.WALL_BOARD)} for the cameras, {self._board_words(self.RIG_BOARD)} "
           "for the rig and floor (print them with `main.py board`).")
        self.buttons, self.error_table, self.summary = calib.buttons, calib.table, calib.summary
        lay = QVBoxLayout(self)
        lay.addWidget(scroll, 1)
        lay.addWidget(self.coverage_bar)
        lay.addWidget(self.coverage_label)
        lay.addWidget(calib, 1)

        context.session_started.connect(self._on_session_started)
        context.session_stopped.connect(self._on_session_stopped)
        context.frame.connect(self._on_frame)
        context.rig_changed.connect(self._on_rig_changed)
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setObjectName("camera-previews")
        self.refresh_timer.setInterval(self.REFRESH_MS)
        self.refresh_timer.timeout.connect(self.refresh_previews)
        self.refresh_timer.start()
        if context.bridge is not None:
            self._on_session_started(context.bridge)
        self._update_buttons()

    @staticmethod
    def _board_words(b: BoardSpec) -> str:
        return f"{b.squares_x} × {b.squares_y} squares of {b.square_mm:g} mm"

    # -- the studio and its frames ----------------------------------------------------------
    def _on_session_started(self, bridge) -> None:
        if bridge.session.rig is not None:
            self._on_rig_changed(bridge.session.rig)
        else:  # real cameras not calibrated yet: tiles by the cameras' names
            self.rig_in_use = None
            self._set_tiles(bridge.session.camera_names)

    def _on_session_stopped(self) -> None:
        self.previews.take_frame(None)

    def _on_rig_changed(self, rig: CameraRig) -> None:
        self.rig_in_use = rig
        self._set_tiles(rig.names)

    def _on_frame(self, frame) -> None:
        self.previews.take_frame(frame)  # only a reference: the timer draws the newest at its own pace

    def _set_tiles(self, names: list[str]) -> None:
        self.previews.set_tiles(names)

    @property
    def tiles(self) -> list[CameraTile]:
        return self.previews.tiles

    @property
    def shown_frame(self):
        """The LiveFrame the previews show (None: none, or too old)."""
        return self.previews.shown_frame

    def refresh_previews(self) -> None:
        """Draw the newest frame (or the calibration's board views) into the tiles."""
        if self.isVisible():
            bridge = self.context.bridge
            self.previews.refresh(self.rig_in_use, None if bridge is None else bridge.session.newest_frames)

    def _on_board_view(self, overlay: BoardOverlay) -> None:
        if self._closing:
            return
        self.previews.overlays[overlay.camera] = overlay
        self.coverage_label.setText(overlay.text)
        if overlay.coverage is not None:
            self.coverage_bar.setVisible(True)
            self.coverage_bar.setValue(int(round(100 * overlay.coverage)))
            self.coverage[overlay.name] = overlay.coverage

    # -- calibration ----------------------------------------------------------------------------
    def _simulated_truth(self) -> CameraRig | None:
        """The simulated studio's true cameras (the default studio's while none
        runs); None for a studio whose cameras give no images."""
        bridge = self.context.bridge
        if bridge is None:
            from core.session.opening import simulated_rig
            from core.sim.studio import StudioConfig

            return simulated_rig(StudioConfig())
        simulation = bridge.session.studio.simulation
        return None if simulation is None else simulation.rig

    def _start(self, kind: str, title: str, seed: int | None, run) -> object | None:
        if self.task is not None:
            self.context.message("info", "a calibration is already running")
            return None
        truth = self._simulated_truth()
        bridge = self.context.bridge
        live = truth is None
        if live:  # real cameras: their own images
            if bridge is None or bridge.state != "live":
                self.context.message("error", "the studio is not live yet: board calibration needs the cameras' images")
                return None
            truth = bridge.session.rig
            if truth is None:  # not calibrated yet: stand-ins of the right sizes
                truth = uncalibrated_rig(bridge.session.newest_frames(), bridge.session.camera_names)
                if truth is None:
                    self.context.message("error", "not every camera has delivered an image yet: wait for the "
                                                  "previews, then calibrate")
                    return None
                if kind != "intrinsics" and self._intrinsic_cams is None:
                    self.context.message("error", "calibrate the cameras first: the rig needs their lenses")
                    return None
        seed = int(np.random.SeedSequence().entropy % 2**32) if seed is None else int(seed)
        base = self.last_rig if kind == "floor" and self.last_rig is not None else self.rig_in_use
        intrinsic_cams = self._intrinsic_cams
        relay = self._relay
        if len(self.tiles) != len(truth):
            self._set_tiles(truth.names)  # somewhere to show the board views
        if kind != "floor":
            self.coverage = {}

        def work(progress):
            t0 = time.monotonic()
            rig = truth
            if live:
                sim = LiveBoardViews(bridge.session.newest_frames, rig.names, bridge.session.fps, self.WALL_BOARD,
                                     self.RIG_BOARD, self.PREVIEW_WIDTH_PX, relay.board_view.emit)
            else:
                sim = SimulatedBoardCalibration(rig, seed, self.WALL_BOARD, self.RIG_BOARD, self.INTRINSIC_WIDTH_PX,
                                                self.RIG_WIDTH_PX, self.PREVIEW_WIDTH_PX, relay.board_view.emit)
            fits = base is not None and base.fits(rig)
            outcome = run(sim, progress, base if fits else rig, intrinsic_cams)
            return replace(outcome, seconds=time.monotonic() - t0)

        def done(result, error):
            self.task = None
            self.previews.clear_overlays()
            self.coverage_bar.setVisible(False)
            self.coverage_label.setText("")
            self._update_buttons()
            if self._closing:
                return
            if isinstance(error, Cancelled):
                self.context.message("info", f"{title} cancelled; nothing changed")
            elif isinstance(error, (CalibrationError, BoardError, ValueError)):
                self.context.message("error", f"{title} failed: {error}")
            elif error is not None:
                self.context.message("error", f"{title} failed: {type(error).__name__}: {error}")
            else:
                self._take(result)

        self.task = run_with_progress(self, f"{title[0].upper()}{title[1:]}…", work, done)
        self._update_buttons()
        return self.task

    def _take(self, outcome: CalibrationOutcome) -> None:
        if outcome.kind == "intrinsics" and self.rig_in_use is None:
            # Real cameras with no rig yet: the lenses alone are no rig to apply.
            self._intrinsic_cams = outcome.intrinsic_cams
            if outcome.rows:
                self._showerror_rows(list(outcome.rows))
            self.context.message("info", f"{outcome.detail} ({outcome.seconds:.0f} s); next, calibrate the rig")
            return
        self.last_outcome = outcome
        self.last_rig = outcome.rig
        self.board = outcome.board
        self.quality = outcome.quality
        if outcome.intrinsic_cams is not None:
            self._intrinsic_cams = outcome.intrinsic_cams
        if outcome.rows:
            self._showerror_rows(list(outcome.rows))
        if "summary" in outcome.quality:
            self.summary.setText(outcome.quality["summary"])
        self._update_buttons()
        self.context.message("info", f"{outcome.detail} ({outcome.seconds:.0f} s); press Apply to use it")

    def calibrate_cameras(self, seed: int | None = None, views: int | None = None):
        """Intrinsics of every camera; the rig in use keeps its extrinsics.
        Returns the ProgressTask (None when it could not start)."""
        views = views or self.INTRINSIC_VIEWS
        return self._start("intrinsics", "camera calibration", seed,
                           lambda sim, progress, base, _: calibrate_lenses(sim, progress, base, views, self.WALL_BOARD))

    def calibrate_rig(self, seed: int | None = None, moments: int | None = None, views: int | None = None):
        """Extrinsics by bundle adjustment, the world from the board on the floor.
        Uses this panel's camera calibration when there is one for these
        cameras, otherwise calibrates the cameras first. Returns the ProgressTask."""
        moments = moments or self.RIG_MOMENTS
        views = views or self.INTRINSIC_VIEWS
        return self._start("rig", "rig calibration", seed,
                           lambda sim, progress, base, lenses: calibrate_walked_rig(
                               sim, progress, base, lenses, moments, views, self.WALL_BOARD, self.RIG_BOARD))

    def set_floor(self, seed: int | None = None):
        """The world from the board lying on the floor at the origin, for the
        newest result (or the rig in use). Returns the ProgressTask."""
        if self.last_rig is None and self.rig_in_use is None:
            self.context.message("error", "no rig to set the floor of: calibrate the rig or load a calibration")
            return None
        board, quality = self.board, dict(self.quality)
        return self._start("floor", "setting the floor", seed,
                           lambda sim, progress, base, _: set_floor_from_board(sim, progress, base, self.RIG_BOARD,
                                                                               board, quality))

    def floor_from_performer(self, frames: int | None = None):
        """The world from the performer standing still in the area (Z up the
        body, the floor under the feet), for the newest result (or the rig in
        use), from the running studio's silhouettes. On the simulated studio
        the performer does the calibration routine and is measured holding
        its pose. Returns the ProgressTask (None when it could not start)."""
        if self.last_rig is None and self.rig_in_use is None:
            self.context.message("error", "no rig to set the floor of: calibrate the rig or load a calibration")
            return None
        bridge = self.context.bridge
        if bridge is None or getattr(bridge, "state", None) != "live":
            self.context.message("error", "the studio is not running: start it, then stand still in the middle of "
                                          "the area, arms down, and press Floor from performer")
            return None
        session = bridge.session
        simulated = session.studio.simulation is not None
        frames = frames or self.PERFORMER_FRAMES
        board, quality = self.board, dict(self.quality)

        def run(_, progress, base, __):
            if simulated:  # the simulated performer holds its calibration pose (the routine's start) while measured
                deadline = time.monotonic() + 60.0
                while self._imu_routine_running(session) and time.monotonic() < deadline:
                    progress(0, frames + 1)  # the routine again now would spoil the IMUs' capture of it
                    time.sleep(0.1)
                session.start_calibration_routine()
            return set_floor_from_performer(session.newest_frames, progress, base, board, quality, frames)

        return self._start("floor", "setting the floor from the performer", None, run)

    @staticmethod
    def _imu_routine_running(session) -> bool:
        """Whether the session is capturing (or solving) the IMUs' calibration from the routine it started with."""
        tracking = session.imu_tracking
        return tracking is not None and tracking.state().stage in ("capturing", "solving")

    def apply(self) -> bool:
        """Use the newest result: `context.rig_changed(rig)`."""
        if self.last_rig is None:
            return False
        self.rig_in_use = self.last_rig
        self.context.rig_changed.emit(self.last_rig)
        self._update_buttons()
        self.context.message("info", f"calibration of {len(self.last_rig)} cameras in use")
        return True

    # -- the table ---------------------------------------------------------------------------------
    def _showerror_rows(self, rows: list[ErrorRow]) -> None:
        self.error_rows = rows
        self.error_table.show_rows(rows)

    # -- files -----------------------------------------------------------------------------------
    def _ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save calibration", "calibration.json",
                                              "FuseCap calibration (*.json);;anipose / FreeMoCap (*.toml)")
        if path:
            self.save_calibration(Path(path))

    def _ask_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load calibration", "",
                                              "Calibrations (*.json *.toml);;All files (*)")
        if path:
            self.load_calibration(Path(path))

    def save_calibration(self, path: str | Path) -> bool:
        """Write the newest result (or the rig in use): .json FuseCap, .toml anipose."""
        path = Path(path)
        rig = self.last_rig or self.rig_in_use
        if rig is None:
            self.context.message("error", "there is no calibration to save yet")
            return False
        try:
            write_calibration(path, rig, self.board, self.quality if self.last_rig is not None else {})
        except ValueError as exc:
            self.context.message("error", str(exc))
            return False
        except OSError as exc:
            self.context.message("error", f"cannot save {path}: {exc.strerror or exc}")
            return False
        self.context.message("info", f"calibration saved to {path}")
        self.context.settings.setValue(CALIBRATION_KEY, str(path.resolve()))
        return True

    def load_calibration(self, path: str | Path) -> bool:
        """Read a FuseCap JSON or anipose / FreeMoCap TOML calibration and use
        it. A bad file, or one for other cameras, changes nothing."""
        path = Path(path)
        try:
            calib = read_calibration_for(path, self.rig_in_use, running=self.context.bridge is not None)
            rig = calib.rig
        except files.CalibrationFileError as exc:
            self.context.message("error", str(exc))
            return False
        except OSError as exc:
            self.context.message("error", f"cannot read {path}: {exc.strerror or exc}")
            return False
        self.last_rig = rig
        self.last_outcome = None
        self.board = calib.board
        self.quality = calib.quality
        self._showerror_rows(rows_from_quality(rig, calib.quality))
        self.summary.setText(str(calib.quality.get("summary", f"loaded from {path.name}")))
        self.apply()
        self.context.settings.setValue(CALIBRATION_KEY, str(path.resolve()))
        note = "; its world is the other tool's: set the floor" if path.suffix.lower() == ".toml" else ""
        self.context.message("info", f"calibration loaded from {path.name}: {len(rig)} cameras{note}")
        return True

    # -- state and shutdown ------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        idle = self.task is None
        for key in ("cameras", "rig", "load"):
            self.buttons[key].setEnabled(idle)
        for key in ("floor", "performer"):
            self.buttons[key].setEnabled(idle and (self.last_rig is not None or self.rig_in_use is not None))
        self.buttons["apply"].setEnabled(idle and self.last_rig is not None and self.last_rig is not self.rig_in_use)
        self.buttons["save"].setEnabled(idle and (self.last_rig is not None or self.rig_in_use is not None))

    def shutdown(self) -> None:
        """Stop the preview timer and any calibration (cancelled, its thread joined)."""
        self._closing = True
        self.refresh_timer.stop()
        task = self.task
        if task is not None:
            task.cancelled.set()
            task.thread.join(30.0)
            # Its result is queued for the GUI thread: deliver it now, while the dialog still exists.
            QCoreApplication.sendPostedEvents(None, QEvent.MetaCall)
        self.previews.take_frame(None)
        self.previews.shown_frame = None
