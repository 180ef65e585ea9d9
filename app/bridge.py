"""The capture session seen from the GUI thread.

`SessionBridge` owns a core.session.CaptureSession. Its preparation (per-rig
tables, the network's optimised forward) runs on a thread. It subscribes to
the session's events and carries them onto the GUI thread as Qt signals
(queued): live results arrive on the session's poser thread, where only the newest
one is kept (the 3D view draws that, never a queue of old ones); camera
changes on the capture threads; a recording that stopped on whichever
thread stopped it. `stop` unsubscribes.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from core.devices import DeviceError
from core.session import CaptureSession, LiveFrame

# The live network's torch threads in the desktop app: one. The network shares the two cores
# with the capture, the poser and the 3D view, and a second OpenMP thread waits on them at every
# barrier (scripts/bench_live.py, docs/BENCHMARKS.md: network 49-51 against 59-63 ms a frame,
# 12.9-13.5 against 11.2-11.8 solved frames/s). Without a window two do better
# (core.session.opening.LIVE_THREADS).
APP_NETWORK_THREADS = 1


class SessionBridge(QObject):
    frame = Signal(object)  # LiveFrame, on the GUI thread
    camera_changed = Signal(object)  # core.capture.threads.CaptureStatus of a camera whose state changed
    recording_stopped = Signal(object)  # core.session.RecordingStopped
    imu_calibrated = Signal(object)  # core.imu.calibration.ImuCalibration from the routine at the start
    state_changed = Signal(str)  # "preparing", "live", "stopped", "failed: why"
    _from_worker = Signal(object)

    def __init__(self, session: CaptureSession) -> None:
        super().__init__()
        self.session = session
        self.state = "stopped"
        self.newest: LiveFrame | None = None
        self.newest_solved: LiveFrame | None = None  # the newest frame with joints
        self.frames_received = 0
        self._prep: threading.Thread | None = None
        self._from_worker.connect(self._deliver)  # queued: emitted on the session's poser thread
        self.state_changed.connect(self._on_state)  # queued from the preparing thread
        # The session's events, each carried over by a queued signal (kept to disconnect them).
        self._subscriptions = ((session.events.frame, self._from_worker.emit),
                               (session.events.camera, self.camera_changed.emit),
                               (session.events.recording_stopped, self.recording_stopped.emit),
                               (session.events.imu_calibrated, self.imu_calibrated.emit))
        for event, callback in self._subscriptions:
            event.connect(callback)

    @property
    def label(self) -> str:
        """The live model's name, or why there is no live solve."""
        return self.session.label

    def start(self) -> None:
        """Prepare on a thread, then start capture and the live solve."""
        if self.state in ("preparing", "live"):
            return
        self._set_state("preparing")
        self._prep = threading.Thread(target=self._prepare, name="session-prepare", daemon=True)
        self._prep.start()

    def _prepare(self) -> None:
        engine = self.session.engine
        if engine is not None and engine.device.type == "cpu":
            engine.threads = APP_NETWORK_THREADS  # set by prepare(), below
        try:
            self.session.prepare()
        except Exception as exc:  # noqa: BLE001  (shown in the window)
            self.state_changed.emit(f"failed: {type(exc).__name__}: {exc}")
            return
        self.state_changed.emit("prepared")

    def _on_state(self, state: str) -> None:
        if state == "prepared" and self.state == "preparing":
            try:
                # One BLAS thread while live: the window's 3D view shares the cores (CaptureSession.start).
                self.session.start(blas_threads=1)  # opens the IMU ports: a busy or missing one fails here
            except (DeviceError, OSError) as exc:
                self.session.stop()
                self._set_state(f"failed: {exc}")
                return
            self._set_state("live")
        elif state.startswith("failed") and self.state == "preparing":
            self.state = state

    def stop(self):
        """Stop everything in order; the recording's stats if one ran."""
        if self._prep is not None and self._prep.is_alive():
            self._prep.join(60.0)
        stats = self.session.stop()
        for event, callback in self._subscriptions:
            event.disconnect(callback)
        self._set_state("stopped")
        return stats

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)

    def _deliver(self, frame: LiveFrame) -> None:
        self.newest = frame
        if frame.result.solve is not None:
            self.newest_solved = frame
        self.frames_received += 1
        self.frame.emit(frame)
