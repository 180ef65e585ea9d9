"""One IMU sensor's recent samples: the history every reader of live IMU
data keeps (the synchronised frame's buffer, :class:`core.frames.ImuBuffer`;
the IMUs panel's plot and rates, ``app.imu_feed.ImuFeed``).

A sample is its time ``t_s`` (seconds on the sample's own clock: host
monotonic seconds for every FuseCap source), the host time it arrived
``arrival_s`` (NaN where the owner does not track it) and its orientation,
a unit quaternion scalar-first (w, x, y, z), sensor to its reference frame.
"""

from __future__ import annotations

import math

import numpy as np


class SensorHistory:
    """The last `capacity` samples of one sensor, oldest first, in a
    preallocated ring (the oldest is overwritten when it is full).

    Samples are kept in time order: one that is not newer than the newest
    held (a late or repeated sample) is refused, so the history can be
    searched by time and slerped. Not locked: its owner serialises access."""

    def __init__(self, capacity: int = 256) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._t = np.zeros(capacity)
        self._arrival = np.zeros(capacity)
        self._q = np.zeros((capacity, 4))
        self._n = 0   # samples stored since made; the newest is at (n - 1) % capacity

    @property
    def capacity(self) -> int:
        return len(self._t)

    def __len__(self) -> int:
        """Samples held (at most capacity)."""
        return min(self._n, self.capacity)

    @property
    def stored(self) -> int:
        """Samples stored since the history was made, overwritten ones included."""
        return self._n

    def put(self, t_s: float, quat_wxyz, arrival_s: float = math.nan) -> bool:
        """Keep one sample; False (and nothing kept) when it is not newer than the newest."""
        t = float(t_s)
        if self._n and not t > self._t[(self._n - 1) % self.capacity]:
            return False
        i = self._n % self.capacity
        self._t[i] = t
        self._arrival[i] = arrival_s
        self._q[i] = quat_wxyz
        self._n += 1
        return True

    @property
    def newest_t_s(self) -> float:
        """Time of the newest sample; NaN when empty."""
        return float(self._t[(self._n - 1) % self.capacity]) if self._n else math.nan

    @property
    def newest_arrival_s(self) -> float:
        """Arrival time of the newest sample; NaN when empty."""
        return float(self._arrival[(self._n - 1) % self.capacity]) if self._n else math.nan

    def times(self) -> np.ndarray:
        """(N,) sample times, oldest first (a copy)."""
        return self._t[self._order()]

    def arrivals(self) -> np.ndarray:
        """(N,) arrival times, oldest first (a copy)."""
        return self._arrival[self._order()]

    def quats(self) -> np.ndarray:
        """(N, 4) orientations, wxyz, oldest first (a copy)."""
        return self._q[self._order()]

    def recent(self, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """Times (N,) and wxyz (N, 4) of the samples within `seconds` of the newest, oldest first."""
        idx = self._order()
        t = self._t[idx]
        keep = idx[t >= t[-1] - seconds] if len(idx) else idx
        return self._t[keep], self._q[keep]

    def arrived_since(self, arrival_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Times (N,) and wxyz (N, 4) of the samples that arrived at or after arrival_s, oldest first."""
        idx = self._order()
        idx = idx[self._arrival[idx] >= arrival_s]
        return self._t[idx], self._q[idx]

    def _order(self) -> np.ndarray:
        cap = self.capacity
        return np.arange(max(0, self._n - cap), self._n) % cap
