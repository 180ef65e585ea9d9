"""One synchronised frame: K silhouettes and the 13 IMU orientations at the
cameras' time. Synchronisation is by timestamp, never by arrival order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from core.devices import ImuSample
from core.rotations import from_wxyz, to_wxyz
from core.skeleton import NUM_IMUS


@dataclass(frozen=True, eq=False)
class FrameBundle:
    """t_s: the frame's time (mean of the camera timestamps).
    silhouettes: one uint8 (H, W) mask per camera, None where a camera is missing.
    imu_wxyz: (13, 4) sensor orientations at t_s, scalar-first; NaN rows for
    sensors with no sample near t_s. imu_age_s: (13,) distance in time from
    t_s to the nearest sample used (inf where missing)."""

    index: int
    t_s: float
    silhouettes: tuple[np.ndarray | None, ...]
    imu_wxyz: np.ndarray
    imu_age_s: np.ndarray

    @property
    def imu_present(self) -> np.ndarray:
        return ~np.isnan(self.imu_wxyz[:, 0])


class ImuBuffer:
    """Recent samples per sensor; orientation at any time by slerp between the
    two samples around it.

    A sensor whose nearest sample is further than `max_gap_s` from the asked
    time counts as missing (dropped out, unplugged)."""

    def __init__(self, num_sensors: int = NUM_IMUS, history: int = 256, max_gap_s: float = 0.1):
        self.max_gap_s = max_gap_s
        self._t = [deque(maxlen=history) for _ in range(num_sensors)]
        self._q = [deque(maxlen=history) for _ in range(num_sensors)]

    def add(self, sample: ImuSample) -> None:
        k = sample.sensor_id
        if not 0 <= k < len(self._t):
            return  # a sensor id outside the layout: ignore it, don't crash the capture thread
        ts = self._t[k]
        if ts and sample.t_s <= ts[-1]:
            return  # out of order or duplicate: keep the buffer sorted
        ts.append(float(sample.t_s))
        self._q[k].append(np.asarray(sample.quat_wxyz, np.float64))

    def extend(self, samples) -> None:
        for s in samples:
            self.add(s)

    def at(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(K, 4) wxyz orientations at t_s (NaN where missing) and (K,) ages in s."""
        n = len(self._t)
        out = np.full((n, 4), np.nan)
        age = np.full(n, np.inf)
        for k in range(n):
            ts = self._t[k]
            if not ts:
                continue
            times = np.fromiter(ts, float, len(ts))
            i = int(np.searchsorted(times, t_s))
            if 0 < i < len(times):
                t0, t1 = times[i - 1], times[i]
                gap = min(t_s - t0, t1 - t_s)
                if t1 - t0 > 2 * self.max_gap_s:
                    # A hole in the stream: use the nearer side only if close enough.
                    j = i - 1 if t_s - t0 <= t1 - t_s else i
                    if abs(times[j] - t_s) <= self.max_gap_s:
                        out[k], age[k] = self._q[k][j], abs(times[j] - t_s)
                    continue
                r0, r1 = from_wxyz(self._q[k][i - 1]), from_wxyz(self._q[k][i])
                alpha = (t_s - t0) / (t1 - t0)
                r = r0 * Rotation.from_rotvec(alpha * (r0.inv() * r1).as_rotvec())
                out[k], age[k] = to_wxyz(r), gap
            else:
                j = 0 if i == 0 else len(times) - 1
                if abs(times[j] - t_s) <= self.max_gap_s:
                    out[k], age[k] = self._q[k][j], abs(times[j] - t_s)
        return out, age
