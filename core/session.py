"""A running studio session: capture, the live solve, recording and the live link.

`CaptureSession` puts together what both `main.py record` and the desktop
app run (DESIGN.md, "Threads"):

- a capture thread per camera and one for the IMUs (core.capture.live);
- the live solve on its own worker, always on the newest frame; every
  result goes to the `listeners` (called on the worker thread: a GUI hands
  it on through a queued signal) and, when set, to a VMC sender after the
  live filter and the one-frame pose fit;
- a recorder that can start and stop while the session runs; it reads each
  camera's ring losslessly from the moment it starts.

Shutdown order: worker, capture, recorder, live link.

Without a rig (real cameras not calibrated yet) the session only captures:
every frame reaches the listeners with an empty result (no performer), so
the cameras can be watched and calibrated; recording needs a rig.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.camera.rig import CameraRig
from core.capture.live import LiveCapture, LiveWorker
from core.devices import CameraSource, ImuSource
from core.filters import FilterConfig, live_filter
from core.frames import FrameBundle
from core.pipeline import FrameResult, Pipeline
from core.take.layout import json_safe
from core.take.recorder import Recorder, RecordingStats

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class LiveFrame:
    """One live result: the bundle, the pipeline's result, the joints after
    the live filter (None without a solve) and when the result was ready
    (monotonic s; latency = t_ready_s - bundle.t_s for device-timed sources)."""

    bundle: FrameBundle
    result: FrameResult
    filtered_mm: np.ndarray | None
    t_ready_s: float


@dataclass
class SessionStats:
    capture_fps: float = 0.0  # camera frames per second arriving (mean over cameras)
    solve_fps: float = 0.0  # live results per second
    latency_ms: float = float("nan")  # frame time to result, median of the last second
    dropped: int = 0  # frames the cameras dropped (the machine fell behind)
    skipped: int = 0  # frames the live path passed over (normal)
    solved: int = 0
    recording: bool = False
    recording_error: str | None = None
    camera_states: list[str] = field(default_factory=list)


class CaptureSession:
    def __init__(self, cameras: Sequence[CameraSource], imus: Sequence[ImuSource], rig: CameraRig | None,
                 fps: float, engine=None, imu_calibration=None, pairing=None,
                 filter_config: FilterConfig | None = None, model_info: dict | None = None,
                 source: str = "") -> None:
        self.cameras = list(cameras)
        self.rig = rig
        self.fps = float(fps)
        self.engine = engine
        self.imu_calibration = imu_calibration
        self.pairing = pairing
        self.model_info = model_info
        self.source = source
        self.filter_config = filter_config or FilterConfig(kind="one-euro")
        self._filter = live_filter(self.filter_config)
        self.pipeline = None if rig is None else Pipeline(rig, engine, self._bone_orientations)
        self.capture = LiveCapture(self.cameras, imus, fps)
        # Samples are renumbered to IMU bones by the pairing (read per batch, so
        # a new pairing takes effect at once); unpaired sensors are dropped.
        self.capture.imu.route = self._route
        self.worker = LiveWorker(self.capture, self._handle)
        self.listeners: list[Callable[[LiveFrame], None]] = []
        self.recorder: Recorder | None = None
        self.vmc = None  # a core.stream.vmc.VmcSender, or None
        self._vmc_offsets = None
        self._lock = threading.Lock()
        self._solve_times: deque[float] = deque(maxlen=256)
        self._latencies: deque[tuple[float, float]] = deque(maxlen=256)
        self.solved = 0
        self.started = False

    def _bone_orientations(self, bundle: FrameBundle):
        calib = self.imu_calibration  # read per frame: a new calibration takes effect at once
        return None if calib is None else calib.bone_wxyz(bundle.imu_wxyz)

    def _route(self, source_index: int, samples):
        pairing = self.pairing
        if pairing is None or not samples:
            return samples
        return pairing.route(getattr(self.capture.imu.sources[source_index], "name", ""), samples)

    # -- life cycle ----------------------------------------------------------------
    def prepare(self, progress=None) -> None:
        """Per-rig tables and the engine's optimised forward (slow once)."""
        if self.pipeline is not None:
            self.pipeline.prepare(progress)

    def start(self) -> None:
        self.capture.start()
        self.worker.start()
        self.started = True

    def stop(self) -> RecordingStats | None:
        """Stop everything in order; the recording's stats if one was running."""
        self.worker.stop()
        if self.started:
            self.capture.stop()
        self.started = False
        stats = self.stop_recording()
        if self.vmc is not None:
            self.vmc.close()
            self.vmc = None
        return stats

    # -- recording ------------------------------------------------------------------
    def take_meta(self, t0_s: float) -> dict:
        meta = {"source": self.source, "t0_s": t0_s, "frame_rate": self.fps, "cameras": self.rig.names,
                "rig": self.rig.to_dict(), "model": self.model_info,
                "live_filter": self.filter_config.to_dict(),
                "imu_pairing": None if self.pairing is None else self.pairing.to_dict(),
                "imu_calibration": None if self.imu_calibration is None else self.imu_calibration.to_dict()}
        return json_safe(meta)

    def start_recording(self, root: str | Path, video: bool = False, flush_s: float = 0.5,
                        t0_s: float | None = None) -> Recorder:
        """Record from now on into a new take folder (TakeError when it cannot
        start, ValueError without a calibration)."""
        if self.rig is None:
            raise ValueError("the cameras are not calibrated yet: calibrate them (Cameras panel) before recording")
        with self._lock:
            if self.recorder is not None:
                raise RuntimeError("already recording")
            readers = self.capture.recorder_readers()
            t0 = time.monotonic() if t0_s is None else t0_s
            rec = Recorder(root, self.take_meta(t0), len(self.rig), readers, video=video, flush_s=flush_s)
            self.capture.imu.listeners.append(rec.put_imu)
            rec.start()
            self.recorder = rec
            return rec

    def stop_recording(self) -> RecordingStats | None:
        with self._lock:
            rec, self.recorder = self.recorder, None
        if rec is None:
            return None
        try:
            self.capture.imu.listeners.remove(rec.put_imu)
        except ValueError:
            pass
        return rec.stop()

    # -- the live link -----------------------------------------------------------------
    def set_vmc(self, sender) -> None:
        """Stream the live pose to `sender` (a VmcSender), or stop with None."""
        old, self.vmc = self.vmc, sender
        self._vmc_offsets = None
        if old is not None and old is not sender:
            old.close()

    # -- the worker ----------------------------------------------------------------------
    def _handle(self, bundle: FrameBundle) -> None:
        if self.pipeline is None:
            result = FrameResult(bundle.index, bundle.t_s, None, None, None)
        else:
            result = self.pipeline.process(bundle)
        filtered = None
        if result.solve is not None:
            filtered = self._filter.filter(bundle.t_s, result.solve.joints_mm)
            rec = self.recorder
            if rec is not None:
                rec.put_joints(bundle.t_s, bundle.index, result.solve.joints_mm, result.solve.confidence)
            if self.vmc is not None:
                self._send_vmc(bundle, filtered)
        now = time.monotonic()
        self.solved += result.solve is not None
        self._solve_times.append(now)
        self._latencies.append((now, now - bundle.t_s))
        frame = LiveFrame(bundle, result, filtered, now)
        for listen in list(self.listeners):
            listen(frame)

    def _send_vmc(self, bundle: FrameBundle, joints_mm: np.ndarray) -> None:
        from core.posefit import bone_lengths, fit_frame, skeleton_offsets, torso_rest_directions

        if self._vmc_offsets is None:
            if not np.isfinite(joints_mm).all():
                return
            self._vmc_offsets = skeleton_offsets(bone_lengths(joints_mm[None]), torso_rest_directions(joints_mm[None]))
        bones = None if self.imu_calibration is None else self.imu_calibration.bone_wxyz(bundle.imu_wxyz)
        try:
            root, local = fit_frame(joints_mm, bones, self._vmc_offsets)
        except ValueError:
            return  # no Hips this frame
        self.vmc.send_pose(bundle.t_s, root, local)

    # -- status ----------------------------------------------------------------------------
    def stats(self) -> SessionStats:
        now = time.monotonic()
        status = self.capture.group.status()
        rec = self.recorder
        lat = [v for t, v in list(self._latencies) if now - t <= 1.0]
        return SessionStats(
            capture_fps=float(np.mean([s.fps for s in status])) if status else 0.0,
            solve_fps=float(sum(1 for t in list(self._solve_times) if now - t <= 2.0) / 2.0),
            latency_ms=float(np.median(lat) * 1e3) if lat else float("nan"),
            dropped=int(sum(s.dropped for s in status)),
            skipped=self.capture.skipped,
            solved=self.solved,
            recording=rec is not None and rec.error is None,
            recording_error=None if rec is None else rec.error,
            camera_states=[s.state for s in status],
        )
