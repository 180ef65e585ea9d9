"""The wear-offset capture without Qt: the routine the performer follows,
the stillness test the panel's meter shows, the buffer a capture collects
into, and the solve that turns the collected arrays into an IMU calibration
with a check against the vision skeleton (docs/CALIBRATION.md, "IMUs").

Times are seconds on one clock for the IMU samples and the frames (host
monotonic in the live capture), orientations wxyz quaternions, joints
millimetres, angles degrees. Threads: `CaptureBuffer` is filled from the
session's IMU thread and the GUI thread under its lock; `solve_wear` runs on
a worker thread (app.workers).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from core import skeleton as sk
from core.devices import ImuSample
from core.frames import orientations_at
from core.imu.calibration import ImuCalibration, bone_orientations, calibrate
from core.rotations import from_wxyz

STILL_DEG = 4.0           # core.imu.calibration.still_frames' default
STILL_WINDOW_S = 1.0
HOLD_S = 3.0
DURATION_S = 26.0         # hold, the 11 s of moves, then free movement

# The routine's steps after the countdown: (seconds from the start of the capture, what to do).
# The moves take 11 s, as core.sim.motion.calibration's simulated performer does them.
STEPS = (
    (0.0, "Hold the {pose}-pose still"),
    (HOLD_S, "Bow forward: head down, arms reaching forward; come back up"),
    (HOLD_S + 4.0, "Squat with the arms raised; come back up"),
    (HOLD_S + 8.0, "Rock back onto the heels, toes up"),
    (HOLD_S + 11.0, "Move freely: walk, turn, swing the arms"),
)


def largest_turn_deg(times_s: np.ndarray, quats_wxyz: np.ndarray, window_s: float = STILL_WINDOW_S) -> float:
    """How far one sensor turned over the last `window_s` (degrees): the
    largest angle between the window's first orientation and any later one
    (the stillness test of core.imu.calibration.still_frames). NaN with
    fewer than two samples in the window."""
    t = np.asarray(times_s, float)
    if len(t) < 2:
        return float("nan")
    keep = t >= t[-1] - window_s
    if keep.sum() < 2:
        return float("nan")
    rot = from_wxyz(np.asarray(quats_wxyz, float)[keep])
    return float(np.degrees((rot[0].inv() * rot).magnitude().max()))


class CaptureBuffer:
    """IMU samples (bone-numbered) and solved joints collected during a capture; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: list[ImuSample] = []
        self._frames: list[tuple[float, np.ndarray]] = []

    def clear(self) -> None:
        with self._lock:
            self._samples, self._frames = [], []

    def add_samples(self, samples) -> None:
        with self._lock:
            self._samples.extend(samples)

    def add_joints(self, t_s: float, joints_mm: np.ndarray) -> None:
        with self._lock:
            self._frames.append((float(t_s), np.array(joints_mm, float)))

    def samples(self) -> list[ImuSample]:
        """The IMU samples collected so far (a copy), in arrival order."""
        with self._lock:
            return list(self._samples)

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return len(self._samples), len(self._frames)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame times (T,), each bone's sensor orientation at them (T, 13, 4;
        NaN where a sensor had no sample within 0.1 s) and the joints (T, 22, 3)."""
        with self._lock:
            samples, frames = list(self._samples), sorted(self._frames, key=lambda f: f[0])
        times = np.array([f[0] for f in frames], float)
        joints = np.stack([f[1] for f in frames]) if frames else np.zeros((0, sk.NUM_JOINTS, 3))
        imu = np.full((len(times), sk.NUM_IMUS, 4), np.nan)
        per: dict[int, list[ImuSample]] = {}
        for s in samples:
            if 0 <= s.sensor_id < sk.NUM_IMUS:
                per.setdefault(int(s.sensor_id), []).append(s)
        for k, rows in per.items():
            rows.sort(key=lambda s: s.t_s)
            t_k = np.array([s.t_s for s in rows])
            q_k = np.stack([np.asarray(s.quat_wxyz, float) for s in rows])
            imu[:, k], _ = orientations_at(t_k, q_k, times)
        return times, imu, joints


@dataclass(frozen=True, eq=False)
class WearResult:
    calibration: ImuCalibration
    vision_check_deg: np.ndarray   # (13,) median angle, IMU bone vs the solved skeleton's bone
    frames: int
    duration_s: float


def vision_check_deg(calib: ImuCalibration, times_s: np.ndarray, imu_wxyz: np.ndarray,
                     joints_mm: np.ndarray) -> np.ndarray:
    """(13,) per bone, the median over frames of the angle (degrees) between
    the bone direction the calibrated sensor gives and the one the solved
    joints show (NaN for a bone without usable frames). The joints are
    smoothed over about 70 ms first, as calibrate does: on short bones (the
    pelvis, the feet) a frame's joint noise alone tilts the bone by tens of
    degrees."""
    out = np.full(sk.NUM_IMUS, np.nan)
    if len(times_s) > 1:
        dt = float(np.median(np.diff(times_s)))
        joints_mm = gaussian_filter1d(joints_mm, sigma=max(0.07 / max(dt, 1e-3), 0.5), axis=0, mode="nearest")
    for k, bone in enumerate(sk.IMU_BONES):
        seen = joints_mm[:, bone.end] - joints_mm[:, bone.start]
        ok = ~np.isnan(imu_wxyz[:, k, 0]) & np.isfinite(seen).all(1)
        if not ok.any() or not np.isfinite(calib.rest_dirs[k, 0]).all():
            continue
        n = int(ok.sum())
        rot = bone_orientations(imu_wxyz[ok, k], np.full(n, k), calib.wear, np.full(n, calib.heading_rad[k]))
        d = rot.apply(calib.rest_dirs[k, 0])
        o = seen[ok] / np.maximum(np.linalg.norm(seen[ok], axis=1, keepdims=True), 1e-9)
        out[k] = float(np.median(np.degrees(np.arccos(np.clip((d * o).sum(1), -1.0, 1.0)))))
    return out


def solve_wear(times: np.ndarray, imu: np.ndarray, joints: np.ndarray, pose: str, progress=None) -> WearResult:
    """The calibration from a capture's arrays (CaptureBuffer.arrays); raises ImuCalibrationError."""
    if progress is not None:
        progress(0, 2)
    span = float(times[-1] - times[0]) if len(times) else 0.0
    calib = calibrate(times, imu, joints, pose=pose, moves_s=max(span, 1.0))
    if progress is not None:
        progress(1, 2)
    check = vision_check_deg(calib, times, imu, joints)
    if progress is not None:
        progress(2, 2)
    return WearResult(calib, check, len(times), span)
