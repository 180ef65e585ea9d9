"""The time offset between the IMU stream and the cameras, found by
cross-correlating how fast the bones turn as each sensor sees it.

Both sides measure the same thing without any calibration: a sensor's
angular speed is its bone's (the wear offset is constant, the heading drifts
too slowly to matter), and the cameras see each limb bone's direction turn.
The cameras see only the swing (not the twist about the bone), so the limb
bones, whose motion is mostly swing, are used. Both speeds are smoothed the
same way, sampled on one grid, normalised, and the lag that best lines them
up, summed over the bones, is the offset (refined between grid steps by a
parabola through the peak).

Convention: ``offset_s`` is what to subtract from the IMU timestamps to put
them on the cameras' clock (positive: the IMU stamps are late).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Slerp

from core import skeleton as sk
from core.rotations import from_wxyz

LIMB_BONES = tuple(i for i, b in enumerate(sk.IMU_BONES) if b.name not in ("Pelvis", "Sternum", "Head"))


@dataclass
class TimeOffset:
    offset_s: float
    peak: float          # mean normalised correlation at the peak (1: identical shapes)
    second_peak: float   # the best correlation more than 0.1 s from the peak
    bones: int

    @property
    def offset_ms(self) -> float:
        return 1000.0 * self.offset_s

    @property
    def reliable(self) -> bool:
        """A clear, single peak: enough motion in the window, no periodic ambiguity."""
        return self.peak > 0.3 and self.peak - self.second_peak > 0.05


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    s = x.std()
    return x / s if s > 0 else x


def estimate_time_offset(imu_t: Sequence[np.ndarray], imu_wxyz: Sequence[np.ndarray], cam_t: np.ndarray,
                         joints_mm: np.ndarray, max_offset_s: float = 0.5, rate_hz: float = 200.0,
                         smooth_s: float = 0.05) -> TimeOffset:
    """imu_t[k], imu_wxyz[k]: sensor k's timestamps (n_k,) and orientations
    (n_k, 4) (sensor k on IMU bone k); cam_t (T,), joints_mm (T, 22, 3): the
    vision skeleton at the camera frames."""
    cam_t = np.asarray(cam_t, float)
    joints_mm = np.asarray(joints_mm, float)
    dt = 1.0 / rate_hz
    lo = cam_t[0] + max_offset_s
    hi = cam_t[-1] - max_offset_s
    if hi - lo < 4 * max_offset_s:
        raise ValueError("the window is too short for the offsets searched: record a few seconds of movement")
    grid = np.arange(lo, hi, dt)
    sigma = smooth_s / dt
    lags = np.arange(-int(round(max_offset_s / dt)), int(round(max_offset_s / dt)) + 1)
    total = np.zeros(len(lags))
    used = 0
    fps = 1.0 / float(np.median(np.diff(cam_t)))
    for k in LIMB_BONES:
        t_k = np.asarray(imu_t[k], float)
        if len(t_k) < 10 or t_k[0] > lo or t_k[-1] < hi:  # must span the scored window (lo, hi)
            continue
        b = sk.IMU_BONES[k]
        # Cameras: direction of the bone, smoothed positions, angular speed on the camera frames.
        J = gaussian_filter1d(joints_mm[:, [b.start, b.end]], sigma=max(smooth_s * fps, 0.5), axis=0, mode="nearest")
        d = J[:, 1] - J[:, 0]
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        ang = np.arccos(np.clip((d[1:] * d[:-1]).sum(1), -1.0, 1.0)) / np.diff(cam_t)
        vis = np.interp(grid, 0.5 * (cam_t[1:] + cam_t[:-1]), ang)
        # IMU: angular speed on a fine grid reaching max_offset_s beyond the window.
        fine = np.arange(lo - max_offset_s - dt, hi + max_offset_s + 2 * dt, dt)
        fine = fine[(fine >= t_k[0]) & (fine <= t_k[-1])]
        rots = Slerp(t_k, from_wxyz(np.asarray(imu_wxyz[k], float)))(fine)
        w = (rots[:-1].inv() * rots[1:]).magnitude() / dt
        w = gaussian_filter1d(w, sigma=sigma, mode="nearest")
        tw = 0.5 * (fine[1:] + fine[:-1])
        v = _normalise(gaussian_filter1d(vis, sigma=sigma, mode="nearest"))
        for i, lag in enumerate(lags):
            # The IMU stream stamped `offset` late shows the camera's motion at t + offset.
            imu_at = np.interp(grid + lag * dt, tw, w)
            total[i] += float((v * _normalise(imu_at)).mean())
        used += 1
    if used == 0:
        raise ValueError("no limb sensor covers the cameras' window: nothing to line up")
    total /= used
    i = int(np.argmax(total))
    frac = 0.0
    if 0 < i < len(total) - 1:
        a, b_, c = total[i - 1], total[i], total[i + 1]
        den = a - 2 * b_ + c
        frac = 0.5 * (a - c) / den if den < 0 else 0.0
    far = np.abs(lags - lags[i]) * dt > 0.1
    second = float(total[far].max()) if far.any() else -1.0
    return TimeOffset(float((lags[i] + frac) * dt), float(total[i]), second, used)
