"""One synchronised frame: K silhouettes and the 13 IMU orientations at the
cameras' time. Synchronisation is by timestamp, never by arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from core.devices import ImuSample
from core.imu.history import SensorHistory
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
    """Recent samples per sensor (a :class:`core.imu.history.SensorHistory`
    each); orientation at any time by slerp between the two samples around it.

    A sensor whose nearest sample is further than `max_gap_s` from the asked
    time counts as missing (dropped out, unplugged). Late or repeated samples
    are ignored, and so are sensor ids outside 0..num_sensors-1."""

    def __init__(self, num_sensors: int = NUM_IMUS, history: int = 256, max_gap_s: float = 0.1):
        self.max_gap_s = max_gap_s
        #: how late the IMU stamps are against the cameras' clock (s): `at(t)`
        #: answers with the samples stamped t + offset_s (core.imu.tracking finds it)
        self.offset_s = 0.0
        self._sensors = [SensorHistory(history) for _ in range(num_sensors)]

    def add(self, sample: ImuSample) -> None:
        k = sample.sensor_id
        if not 0 <= k < len(self._sensors):
            return  # a sensor id outside the layout: ignore it, don't crash the capture thread
        self._sensors[k].put(sample.t_s, sample.quat_wxyz)

    def extend(self, samples) -> None:
        for s in samples:
            self.add(s)

    def at(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(K, 4) wxyz orientations at t_s (NaN where missing) and (K,) ages in s."""
        n = len(self._sensors)
        out = np.full((n, 4), np.nan)
        age = np.full(n, np.inf)
        for k, h in enumerate(self._sensors):
            if len(h):
                q, a = orientations_at(h.times(), h.quats(), np.array([t_s + self.offset_s]), self.max_gap_s)
                out[k], age[k] = q[0], a[0]
        return out, age


def orientations_at(times_s: np.ndarray, quats_wxyz: np.ndarray, query_s: np.ndarray,
                    max_gap_s: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """One sensor's orientation at each query time: (Q, 4) wxyz and (Q,) ages in s.

    times_s (N,) sorted, quats_wxyz (N, 4). Between two samples no further
    apart than 2 * max_gap_s the orientation is the slerp between them; across
    a wider hole (a dropout) the nearer side is used when it is within
    max_gap_s; outside the samples, the end sample within max_gap_s. Anything
    else is missing (NaN, age inf)."""
    t = np.asarray(times_s, np.float64)
    q = np.asarray(quats_wxyz, np.float64)
    query = np.asarray(query_s, np.float64).reshape(-1)
    out = np.full((len(query), 4), np.nan)
    age = np.full(len(query), np.inf)
    if len(t) == 0 or len(query) == 0:
        return out, age
    i = np.searchsorted(t, query)
    inner = (i > 0) & (i < len(t))
    lo, hi = np.clip(i - 1, 0, len(t) - 1), np.clip(i, 0, len(t) - 1)
    span = t[hi] - t[lo]
    slerp = inner & (span <= 2 * max_gap_s)
    if slerp.any():
        a, b = lo[slerp], hi[slerp]
        r0, r1 = from_wxyz(q[a]), from_wxyz(q[b])
        alpha = (query[slerp] - t[a]) / np.maximum(span[slerp], 1e-12)
        r = r0 * Rotation.from_rotvec(alpha[:, None] * (r0.inv() * r1).as_rotvec())
        out[slerp] = to_wxyz(r)
        age[slerp] = np.minimum(query[slerp] - t[a], t[b] - query[slerp])
    near = ~slerp
    if near.any():
        # The nearer neighbour (edges and dropouts), if close enough.
        cand = np.where(np.abs(query - t[lo]) <= np.abs(t[hi] - query), lo, hi)[near]
        dist = np.abs(t[cand] - query[near])
        ok = dist <= max_gap_s
        idx = np.flatnonzero(near)[ok]
        out[idx] = q[cand[ok]]
        age[idx] = dist[ok]
    return out, age
