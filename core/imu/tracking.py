"""The IMUs as a user's capture keeps them calibrated: wear offsets and
headings from the calibration routine, the IMU–camera time offset, and
heading drift correction, all from the sensors' samples and the vision
skeleton the network solves. Nothing here needs the truth.

One `ImuTracking` follows one stream of frames, live or offline:

1. **Calibration capture.** From the first frame with a skeleton on, for
   `capture_s`, it keeps every IMU sample and every solved skeleton: the
   performer holds the known pose, then does the routine's moves
   (core.imu.wear_capture.STEPS). Then it
2. **finds the time offset** between the IMU stamps and the cameras
   (core.imu.sync: how fast the limbs turn, as the sensors and as the
   cameras see it), and
3. **calibrates** (core.imu.calibration.calibrate) on the samples moved
   onto the cameras' clock: wear offsets, headings, each bone's directions.
4. **Tracking.** From then on every solved frame feeds the heading drift
   tracker (core.imu.drift.HeadingTracker, which turns each sensor's
   heading toward the cameras' view a little every second), and every
   `offset_every_s` the time offset is estimated again over the last
   `offset_window_s` (kept only when the estimate is reliable: a single
   clear peak).

`offset_s` is what to subtract from IMU stamps to put them on the cameras'
clock: the live capture's IMU buffer looks up the sensors at frame time
plus it (core.frames.ImuBuffer.offset_s), offline readers do the same.

Threads: `add_samples` may come from the IMU thread while `add_frame` runs
on the solve worker; one lock guards the sample stores. The calibration
solve (about a second) and each new estimate of the time offset run on the
caller's thread of `add_frame`, or on a thread of their own with
`background=True` (the live session's worker must not stall).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from core import skeleton as sk
from core.events import Event
from core.frames import orientations_at
from core.imu.calibration import ImuCalibration, ImuCalibrationError, calibrate, calibrate_without_cameras
from core.imu.drift import HeadingTracker
from core.imu.sync import TimeOffset, estimate_time_offset

log = logging.getLogger(__name__)

# The simulated routine: 3 s hold (plus the blend into it), 11 s of moves, a
# 1 s blend out. A capture a little longer than that holds all of it.
CAPTURE_S = 17.0
MAX_OFFSET_S = 0.25


@dataclass(frozen=True)
class TrackingState:
    """What the tracking is doing, in words for the user, and its numbers."""

    stage: str                # "waiting", "capturing", "solving", "tracking", "failed"
    message: str
    offset_ms: float | None
    drift_corrections_deg: np.ndarray | None


class ImuTracking:
    def __init__(self, pose: str = "T", capture_s: float = CAPTURE_S, drift: bool = True,
                 time_offset: bool = True, max_offset_s: float = MAX_OFFSET_S, offset_every_s: float = 5.0,
                 offset_window_s: float = 20.0, background: bool = False,
                 calibration: ImuCalibration | None = None, offset_s: float = 0.0, cameras: bool = True) -> None:
        """calibration: a calibration to start from (then no capture: tracking
        begins at once, e.g. one loaded from a file or recorded in a take).
        cameras=False: a capture with IMUs alone: the capture starts at the
        first frame every sensor is in, is calibrated without a skeleton
        (core.imu.calibration.calibrate_without_cameras), and has no time
        offset or drift correction (both need the cameras' view)."""
        self.cameras = cameras
        if not cameras:
            drift = time_offset = False
        self.pose = pose
        self.capture_s = float(capture_s)
        self.drift = drift
        self.time_offset = time_offset
        self.max_offset_s = float(max_offset_s)
        self.offset_every_s = float(offset_every_s)
        self.offset_window_s = float(offset_window_s)
        self.background = background
        self.offset_s = float(offset_s)
        self.offset: TimeOffset | None = None
        self.error: str | None = None
        self.captured = False  # the calibration came from this tracking's own capture
        #: fires with the new ImuCalibration, or with an ImuCalibrationError (on the solving thread)
        self.calibrated = Event("IMU calibration")
        self._lock = threading.Lock()
        self._samples: list[deque] = [deque() for _ in range(sk.NUM_IMUS)]   # (t, wxyz) per bone
        self._frames: deque = deque()                                          # (t, joints)
        self._first_t: float | None = None
        self._solving = False
        self._last_offset_t = -np.inf
        self._offset_thread: threading.Thread | None = None
        self._tracker: HeadingTracker | None = None
        self.calibration: ImuCalibration | None = None
        if calibration is not None:
            self._use(calibration)

    # -- input --------------------------------------------------------------------------
    def add_samples(self, samples) -> None:
        """IMU samples numbered by bone (core.devices.ImuSample), any thread."""
        with self._lock:
            for s in samples:
                if 0 <= s.sensor_id < sk.NUM_IMUS:
                    self._samples[s.sensor_id].append((float(s.t_s), np.asarray(s.quat_wxyz, float)))
            self._trim()

    def add_sample_arrays(self, t_s: np.ndarray, sensor: np.ndarray, wxyz: np.ndarray) -> None:
        """The same from arrays (a take's or the simulator's samples)."""
        with self._lock:
            for t, k, q in zip(np.asarray(t_s, float), np.asarray(sensor, int), np.asarray(wxyz, float)):
                if 0 <= k < sk.NUM_IMUS:
                    self._samples[k].append((float(t), q))
            self._trim()

    def _trim(self) -> None:
        """Keep no more samples than a capture or an offset window needs (a
        session whose capture failed, or whose performer never showed, must
        not grow without end). Under the lock."""
        keep_s = max(self.capture_s, self.offset_window_s) + 5.0
        for d in self._samples:
            if d and d[-1][0] - d[0][0] > 2 * keep_s:
                newest = d[-1][0]
                while d and d[0][0] < newest - keep_s:
                    d.popleft()

    def add_frame(self, t_s: float, imu_wxyz: np.ndarray | None, joints_mm: np.ndarray | None,
                  confidence: np.ndarray | None = None) -> None:
        """One solved frame: its time (cameras' clock), the IMUs at that time
        as the solve saw them (13, 4; offset applied) and the joints (None:
        nothing solved). Call in time order."""
        if joints_mm is not None and not np.isfinite(joints_mm).all():
            joints_mm = None
        if self.calibration is None:
            if self._solving or self.error is not None:
                return
            if self.cameras and joints_mm is None:
                return
            if not self.cameras and (imu_wxyz is None or np.isnan(np.asarray(imu_wxyz)[:, 0]).any()):
                if self._first_t is None:
                    return  # the capture starts once every sensor is in
            if self._first_t is None:
                self._first_t = float(t_s)
            self._frames.append((float(t_s), None if joints_mm is None else np.array(joints_mm, float)))
            if t_s - self._first_t >= self.capture_s:
                self._solving = True
                if self.background:
                    threading.Thread(target=self._solve, name="imu-calibration", daemon=True).start()
                else:
                    self._solve()
            return
        with self._lock:
            if joints_mm is not None:
                self._frames.append((float(t_s), np.array(joints_mm, float)))
            self._forget(float(t_s) - self.offset_window_s - 1.0)
        if self._tracker is not None and imu_wxyz is not None:
            self._tracker.add(float(t_s), imu_wxyz, joints_mm, confidence)
        if self.time_offset and t_s - self._last_offset_t >= self.offset_every_s:
            self._last_offset_t = float(t_s)
            if not self.background:
                self._refresh_offset(float(t_s))
            elif self._offset_thread is None or not self._offset_thread.is_alive():
                # Over a 20 s window this takes a few hundred ms: off the live worker, which
                # would otherwise stall a frame every offset_every_s.
                self._offset_thread = threading.Thread(target=self._refresh_offset, args=(float(t_s),),
                                                       name="imu-time-offset", daemon=True)
                self._offset_thread.start()

    @property
    def capture_started_s(self) -> float | None:
        """When the calibration capture started (the frames' clock), or None."""
        return self._first_t

    # -- output -------------------------------------------------------------------------
    def bone_wxyz(self, imu_wxyz: np.ndarray) -> np.ndarray | None:
        """(13, 4) bone orientations for the solve, or None before calibration."""
        calib = self.calibration
        return None if calib is None else calib.bone_wxyz(imu_wxyz)

    def imu_at(self, times_s: np.ndarray) -> np.ndarray:
        """(T, 13, 4) the sensors at camera times (offset applied; NaN: none near)."""
        times_s = np.asarray(times_s, float)
        out = np.full((len(times_s), sk.NUM_IMUS, 4), np.nan)
        with self._lock:
            streams = [list(d) for d in self._samples]
        for k, rows in enumerate(streams):
            if rows:
                t = np.array([r[0] for r in rows])
                q = np.stack([r[1] for r in rows])
                order = np.argsort(t, kind="stable")
                out[:, k], _ = orientations_at(t[order] - self.offset_s, q[order], times_s)
        return out

    def state(self) -> TrackingState:
        corr = None if self._tracker is None else self._tracker.corrections_deg.copy()
        off = None if self.offset is None and self.offset_s == 0.0 else self.offset_s * 1e3
        if self.error is not None:
            return TrackingState("failed", f"IMU calibration failed: {self.error}", off, corr)
        if self.calibration is not None:
            return TrackingState("tracking", "IMUs calibrated; correcting heading drift" if self.drift
                                 else "IMUs calibrated", off, corr)
        if self._solving:
            return TrackingState("solving", "calibrating the IMUs", off, corr)
        if self._first_t is None:
            return TrackingState("waiting", f"waiting for the performer to hold the {self.pose}-pose", off, corr)
        done = self._frames[-1][0] - self._first_t if self._frames else 0.0
        return TrackingState("capturing", f"IMU calibration routine: {done:.0f} of {self.capture_s:.0f} s", off, corr)

    # -- internals ----------------------------------------------------------------------
    def _use(self, calibration: ImuCalibration) -> None:
        self.calibration = calibration
        self._tracker = HeadingTracker(calibration) if self.drift else None

    def _forget(self, before_s: float) -> None:
        while self._frames and self._frames[0][0] < before_s:
            self._frames.popleft()
        for d in self._samples:
            while d and d[0][0] < before_s:
                d.popleft()

    def _streams(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        with self._lock:
            rows = [sorted(d, key=lambda r: r[0]) for d in self._samples]
        ts = [np.array([r[0] for r in s]) for s in rows]
        qs = [np.stack([r[1] for r in s]) if s else np.zeros((0, 4)) for s in rows]
        return ts, qs

    def _estimate_offset(self, times: np.ndarray, joints: np.ndarray) -> TimeOffset | None:
        ts, qs = self._streams()
        try:
            return estimate_time_offset(ts, qs, times, joints, max_offset_s=self.max_offset_s)
        except ValueError as exc:
            log.info("no IMU time offset: %s", exc)
            return None

    def _solve(self) -> None:
        try:
            frames = list(self._frames)
            times = np.array([f[0] for f in frames])
            if not self.cameras:
                calib = calibrate_without_cameras(times, self.imu_at(times), pose=self.pose)
            else:
                joints = np.stack([f[1] for f in frames])
                if self.time_offset:
                    est = self._estimate_offset(times, joints)
                    if est is not None and est.reliable:
                        self.offset, self.offset_s = est, est.offset_s
                calib = calibrate(times, self.imu_at(times), joints, pose=self.pose,
                                  moves_s=max(times[-1] - times[0], 1))
        except ImuCalibrationError as exc:
            self.error = str(exc)
            self._solving = False
            self.calibrated.emit(exc)
            return
        self._done(calib, times)

    def _done(self, calib: ImuCalibration, times: np.ndarray) -> None:
        with self._lock:
            self._frames.clear()
            self._forget(float(times[-1]) - self.offset_window_s)
        self._use(calib)
        self.captured = True
        self._last_offset_t = float(times[-1])
        self._solving = False
        self.calibrated.emit(calib)

    def _refresh_offset(self, now_s: float) -> None:
        with self._lock:
            frames = [f for f in self._frames if f[0] >= now_s - self.offset_window_s]
        if len(frames) < 20:
            return
        est = self._estimate_offset(np.array([f[0] for f in frames]), np.stack([f[1] for f in frames]))
        if est is not None and est.reliable:
            self.offset, self.offset_s = est, est.offset_s


class SampleFeed:
    """Recorded samples (a take's, the simulator's) handed to an ImuTracking
    in time order, as far as a stream of frames has got: offline runs then
    keep only a window of samples, as the live capture does."""

    def __init__(self, tracking: ImuTracking, t_s: np.ndarray, sensor: np.ndarray, wxyz: np.ndarray) -> None:
        order = np.argsort(np.asarray(t_s, float), kind="stable")
        self.tracking = tracking
        self.t_s = np.asarray(t_s, float)[order]
        self.sensor = np.asarray(sensor, int)[order]
        self.wxyz = np.asarray(wxyz, float)[order]
        self._next = 0

    def until(self, t_s: float) -> None:
        """Hand over every sample stamped before t_s not handed over yet."""
        end = int(np.searchsorted(self.t_s, t_s, side="left"))
        if end > self._next:
            sl = slice(self._next, end)
            self.tracking.add_sample_arrays(self.t_s[sl], self.sensor[sl], self.wxyz[sl])
            self._next = end


def solve_tracked(tracking: ImuTracking, feed: SampleFeed, times_s: np.ndarray, masks_for, solve_batch,
                  batch_size: int = 8, lookahead_s: float = 1.0):
    """Frames solved in batches with the IMUs as `tracking` has them: a batch's
    bone orientations use the calibration, time offset and headings the frames
    before it gave; then the batch's joints update them. masks_for(i) gives
    frame i's silhouettes; solve_batch(items) solves [(silhouettes, bones)].
    Yields (frame index, sensor orientations (13, 4), bones or None, solve or None)."""
    times_s = np.asarray(times_s, float)
    for b in range(0, len(times_s), batch_size):
        idx = np.arange(b, min(b + batch_size, len(times_s)))
        feed.until(float(times_s[idx[-1]]) + lookahead_s)
        imu = tracking.imu_at(times_s[idx])
        bones = [tracking.bone_wxyz(q) for q in imu]
        sols = solve_batch([(masks_for(int(i)), bw) for i, bw in zip(idx, bones)])
        for i, q, bw, sol in zip(idx, imu, bones, sols):
            tracking.add_frame(float(times_s[i]), q, None if sol is None else sol.joints_mm,
                               None if sol is None else sol.confidence)
            yield int(i), q, bw, sol
