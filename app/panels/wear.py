"""Wear offsets panel: capture each sensor's wear offset and heading while
the performer does the calibration routine (docs/CALIBRATION.md, "IMUs").

The performer stands in the T-pose (or N-pose), holds still, then bows,
squats, rocks onto the heels and moves freely. A stillness meter shows the
largest turn of any sensor over the last second against the 4° under which
core.imu.calibration counts the sensors as still. "Capture" counts down,
collects the session's IMU samples (numbered by bone: the session routes them through its pairing)
and the live solved joints for the routine's duration, then runs
core.imu.calibration.calibrate off the GUI thread (app.workers). The result
table gives per bone the heading, the fit's residual, whether the heading
was observable, and a check against the vision skeleton: the median angle
between the IMU bone direction and the same bone in the solved joints.
"Apply" makes the result the session's IMU calibration.

Threads: the IMU listener (on the session's IMU thread) only appends to
locked buffers; frames arrive on the GUI thread; one GUI timer (10 Hz)
drives the countdown, the instructions and the meter.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.context import AppContext
from app.imu_feed import ImuFeed
from app.panels.wear_views import StillnessMeter, WearResultTable
from app.workers import Cancelled, run_with_progress
from core.imu.calibration import ImuCalibrationError
from core.imu.wear_capture import (
    DURATION_S,
    HOLD_S,
    STEPS,
    STILL_DEG,
    STILL_WINDOW_S,
    CaptureBuffer,
    WearResult,
    largest_turn_deg,
    solve_wear,
    vision_check_deg,
)

# The capture's logic lives in core.imu.wear_capture; the panel still offers its names.
__all__ = ["CaptureBuffer", "WearOffsetsPanel", "WearResult", "largest_turn_deg", "solve_wear", "vision_check_deg"]

TICK_MS = 100
COUNTDOWN_S = 3.0


class WearOffsetsPanel(QWidget):

    def __init__(self, context: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.feed = ImuFeed(capacity=512)   # a few seconds, for the meter
        self.buffer = CaptureBuffer()
        self.result: WearResult | None = None
        self.task = None
        self.phase = "idle"          # idle, countdown, capturing, solving
        self.countdown_s = COUNTDOWN_S
        self.duration_s = DURATION_S
        self._phase_t0 = 0.0
        self._collecting = threading.Event()
        self._session = None
        self._listener = None
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        context.session_started.connect(self._on_session_started)
        context.session_stopped.connect(self._on_session_stopped)
        context.frame.connect(self._on_frame)
        bridge = context.bridge
        if bridge is not None and bridge.state == "live":
            self._on_session_started(bridge)

    # -- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        self.pose_box = QComboBox()
        self.pose_box.addItem("T-pose (arms out to the sides)", "T")
        self.pose_box.addItem("N-pose (arms down at the sides)", "N")
        self.pose_box.currentIndexChanged.connect(lambda _: self._show_steps(-1))
        self.duration = QDoubleSpinBox()
        self.duration.setRange(HOLD_S + 12.0, 60.0)
        self.duration.setValue(self.duration_s)
        self.duration.setSuffix(" s")
        self.duration.setDecimals(0)
        self.duration.valueChanged.connect(lambda v: setattr(self, "duration_s", float(v)))
        form = QFormLayout()
        form.addRow("Known pose", self.pose_box)
        form.addRow("Capture length", self.duration)
        self.steps = QLabel()
        self.steps.setTextFormat(Qt.RichText)
        self.steps.setWordWrap(True)
        self.status = QLabel("Start the studio, strap the sensors on, then press Capture.")
        self.status.setWordWrap(True)
        font = self.status.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.status.setFont(font)
        box = QGroupBox("The routine")
        bl = QVBoxLayout(box)
        bl.addLayout(form)
        bl.addWidget(self.steps)
        bl.addWidget(self.status)

        meter_box = StillnessMeter(STILL_DEG)
        self.meter = meter_box.meter
        self.stillness = meter_box

        self.capture_button = QPushButton("Capture")
        self.capture_button.clicked.connect(lambda: self.start_capture())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(lambda: self.cancel_capture())
        self.apply_button = QPushButton("Apply to the session")
        self.apply_button.clicked.connect(lambda: self.apply())
        self.save_button = QPushButton("Save…")
        self.save_button.clicked.connect(self._ask_save)
        buttons = QHBoxLayout()
        for b in (self.capture_button, self.cancel_button, self.apply_button, self.save_button):
            buttons.addWidget(b)

        self.table = WearResultTable()
        self.summary = QLabel("")
        self.summary.setWordWrap(True)

        content = QWidget()
        lay = QVBoxLayout(content)
        lay.addWidget(box)
        lay.addWidget(meter_box)
        lay.addLayout(buttons)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.summary)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._show_steps(-1)
        self._update_buttons()

    @property
    def pose(self) -> str:
        return self.pose_box.currentData()

    def _show_steps(self, current: int) -> None:
        rows = []
        for i, (t, text) in enumerate(STEPS):
            text = text.format(pose=self.pose)
            rows.append(f"<b>▶ {i + 1}. {text}</b>" if i == current else f"{i + 1}. {text}")
        self.steps.setText("<br>".join(rows))

    def _update_buttons(self) -> None:
        busy = self.phase != "idle"
        self.capture_button.setEnabled(not busy)
        self.cancel_button.setEnabled(self.phase in ("countdown", "capturing"))
        self.apply_button.setEnabled(not busy and self.result is not None)
        self.save_button.setEnabled(self.result is not None)
        self.pose_box.setEnabled(not busy)
        self.duration.setEnabled(not busy)

    # -- the session ------------------------------------------------------------------------
    def _on_session_started(self, bridge) -> None:
        self._detach_session()
        session = bridge.session
        self._listener = session.events.imu_samples.connect(self._on_imu_samples)
        self._session = session

    def _on_session_stopped(self) -> None:
        if self.phase in ("countdown", "capturing"):
            self.cancel_capture("the studio stopped; capture cancelled")
        self._detach_session()

    def _detach_session(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        session.events.imu_samples.disconnect(self._listener)
        self._listener = None
        self.feed.forget("session")

    def _on_imu_samples(self, samples) -> None:
        """On the session's IMU thread: samples already numbered by IMU bone
        (the session routes them through its pairing) for the meter's feed,
        and for the capture while it runs."""
        self.feed.put("session", samples)
        if self._collecting.is_set():
            self.collect_samples(samples)

    def _on_frame(self, frame) -> None:
        solve = frame.result.solve
        if self._collecting.is_set() and solve is not None:
            self.collect_joints(frame.bundle.t_s, solve.joints_mm)

    # -- capture ----------------------------------------------------------------------------
    def collect_samples(self, samples) -> None:
        """IMU samples whose sensor id is their IMU bone (any thread)."""
        self.buffer.add_samples(samples)

    def collect_joints(self, t_s: float, joints_mm: np.ndarray) -> None:
        """The solved joints (22, 3) mm of the frame at `t_s` (same clock as the samples)."""
        self.buffer.add_joints(t_s, joints_mm)

    def start_capture(self) -> bool:
        """Count down, then collect for `duration_s`, then solve. Needs a live session."""
        if self.phase != "idle":
            return False
        if self._session is None:
            self.context.message("error", "start the studio first: the capture needs the IMUs and the cameras")
            return False
        self.buffer.clear()
        self.phase = "countdown"
        self._phase_t0 = time.monotonic()
        self._update_buttons()
        self._tick()
        return True

    def _start_simulated_routine(self) -> None:
        """The simulated performer does the routine now (a real one follows the steps on screen)."""
        if self._session is not None:
            self._session.start_calibration_routine()

    def cancel_capture(self, why: str = "capture cancelled") -> None:
        if self.phase not in ("countdown", "capturing"):
            return
        self._collecting.clear()
        self.buffer.clear()
        self.phase = "idle"
        self.status.setText(why)
        self._show_steps(-1)
        self.context.message("info", why)
        self._update_buttons()

    def _advance(self, now: float) -> None:
        elapsed = now - self._phase_t0
        if self.phase == "countdown":
            left = self.countdown_s - elapsed
            if left > 0:
                self.status.setText(f"Get into the {self.pose}-pose… {int(np.ceil(left))}")
                self._show_steps(0)
                return
            self.buffer.clear()
            self._collecting.set()
            self.phase = "capturing"
            self._phase_t0 = now
            self._start_simulated_routine()
            self._update_buttons()
            elapsed = 0.0
        if self.phase == "capturing":
            if elapsed >= self.duration_s:
                self._collecting.clear()
                self.finish_capture()
                return
            step = max(i for i, (t, _) in enumerate(STEPS) if elapsed >= t)
            self._show_steps(step)
            n_samples, n_frames = self.buffer.counts()
            self.status.setText(f"{STEPS[step][1].format(pose=self.pose)} — {self.duration_s - elapsed:.0f} s left "
                                f"({n_frames} frames, {n_samples} IMU samples)")

    def finish_capture(self):
        """Solve what was collected, off the GUI thread; the task (None if nothing to solve)."""
        self._collecting.clear()
        times, imu, joints = self.buffer.arrays()
        self.buffer.clear()
        if len(times) < 10:
            self._fail("no skeleton came from the cameras during the capture: the wear offsets need the live "
                       "solve (choose a live model in the Studio panel) and the performer in view")
            return None
        if np.isnan(imu[..., 0]).all():
            self._fail("no IMU samples arrived during the capture: check the sensors and the pairing")
            return None
        pose = self.pose
        self.phase = "solving"
        self.status.setText("Computing the wear offsets…")
        self._show_steps(-1)
        self._update_buttons()

        def work(progress):
            return solve_wear(times, imu, joints, pose, progress)

        self.task = run_with_progress(self, "Computing the wear offsets…", work, self._solved)
        return self.task

    def _fail(self, why: str) -> None:
        self.phase = "idle"
        self.status.setText(why)
        self._show_steps(-1)
        self.context.message("error", why)
        self._update_buttons()

    def _solved(self, result, error) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.dialog.deleteLater()
        self.phase = "idle"
        if isinstance(error, Cancelled):
            self.status.setText("capture cancelled")
            self.context.message("info", "wear-offset capture cancelled")
        elif isinstance(error, ImuCalibrationError):
            self._fail(f"wear offsets not captured: {error}")
        elif error is not None:
            self._fail(f"wear-offset capture failed: {type(error).__name__}: {error}")
        else:
            self.result = result
            self._show_result(result)
            self.context.message("info", self.summary.text())
        self._update_buttons()

    def _show_result(self, result: WearResult) -> None:
        self.table.show_result(result)
        calib = result.calibration
        bad = [f.bone for f in calib.fits if not f.observable]
        med = float(np.nanmedian(result.vision_check_deg))
        self.summary.setText(
            f"Wear offsets captured from {result.frames} frames over {result.duration_s:.0f} s; the IMU bones "
            f"agree with the cameras' skeleton within {med:.1f}° (median over bones). "
            + (f"Heading not observable for {', '.join(bad)}: repeat the bow and squat. " if bad else "")
            + "Press Apply to use them.")
        self.status.setText("Done: check the table, then apply.")

    # -- apply and save ---------------------------------------------------------------------
    def apply(self) -> bool:
        """Make the captured calibration the session's (its live solve uses it from the next frame)."""
        if self.result is None:
            self.context.message("error", "capture the wear offsets first")
            return False
        if self._session is None:
            self.context.message("error", "start the studio first, then apply (or save the result meanwhile)")
            return False
        calib = self.result.calibration
        session = self._session
        session.set_imu_calibration(calib)  # used from the next frame on
        self.context.message("info", "wear offsets applied: the live solve uses them from the next frame")
        return True

    def _ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save IMU calibration", "imu-calibration.json", "JSON (*.json)")
        if path:
            self.save_result(path)

    def save_result(self, path) -> bool:
        if self.result is None:
            return False
        try:
            self.result.calibration.save(path)
        except (OSError, ValueError) as exc:
            self.context.message("error", f"cannot save the IMU calibration: {exc}")
            return False
        self.context.message("info", f"IMU calibration saved to {path}")
        return True

    # -- the meter ------------------------------------------------------------------------------
    def stillness_deg(self) -> float:
        """The largest turn of any sensor over the last second (degrees; NaN without data)."""
        turns = [largest_turn_deg(*self.feed.recent(key, STILL_WINDOW_S + 0.2)) for key in self.feed.keys()]
        turns = [t for t in turns if np.isfinite(t)]
        return max(turns) if turns else float("nan")

    def _tick(self) -> None:
        now = time.monotonic()
        if self.phase in ("countdown", "capturing"):
            self._advance(now)  # a capture goes on behind another panel too
        if not self.isVisible():
            return
        self.stillness.show_turn(now, self.stillness_deg())

    # -- shutdown -----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop the timer and any capture, wait for a running solve, leave the session."""
        self.timer.stop()
        self._collecting.clear()
        task = self.task
        if task is not None:
            task.cancelled.set()
            task.thread.join(30.0)
        self._detach_session()
        for signal, slot in ((self.context.session_started, self._on_session_started),
                             (self.context.session_stopped, self._on_session_stopped),
                             (self.context.frame, self._on_frame)):
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
