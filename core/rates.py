"""Live rates and medians over a sliding time window, for status tables.

`RateWindow` answers "how many events a second over the last N seconds"
(camera frames arriving, IMU samples, solved frames) and, for events that
carry a value, "what was the median value over the last N seconds"
(latency). It takes the times from the caller, in seconds on any one clock
(usually ``time.monotonic()``), so tests drive it with made-up times. It is
thread-safe: one thread may add while another reads.
"""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np


class RateWindow:
    """Events over the last `window_s` seconds: their rate and the median of
    their values.

    The rate is the number of events in (now - window_s, now] divided by the
    window, or by the time since the first event while that is shorter, so a
    stream that has just begun shows its rate at once and one that stops
    falls to 0 within `window_s`. Until `min_span_s` has passed since the
    first event the rate is 0 (two events a millisecond apart are not a
    rate). Events are added in time order (as they happen)."""

    def __init__(self, window_s: float = 2.0, min_span_s: float = 0.2) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.window_s = float(window_s)
        self.min_span_s = float(min_span_s)
        self._lock = threading.Lock()
        self._events: deque[tuple[float, float]] = deque()   # (t_s, value), in the order added
        self._first_s: float | None = None
        self._total = 0

    def add(self, t_s: float, value: float = math.nan) -> None:
        """One event at t_s (seconds), with a value for :meth:`median` (NaN: none)."""
        t = float(t_s)
        with self._lock:
            if self._first_s is None:
                self._first_s = t
            self._events.append((t, float(value)))
            self._total += 1
            self._forget_before(t - self.window_s)

    def count(self, now_s: float) -> int:
        """Events in the last window_s seconds before now_s."""
        with self._lock:
            self._forget_before(float(now_s) - self.window_s)
            return len(self._events)

    def rate_hz(self, now_s: float) -> float:
        """Events per second over the last window_s seconds (see the class notes)."""
        with self._lock:
            if self._first_s is None:
                return 0.0
            self._forget_before(float(now_s) - self.window_s)
            span = min(self.window_s, float(now_s) - self._first_s)
            if span < max(self.min_span_s, 1e-9):
                return 0.0
            return len(self._events) / span

    def values(self, now_s: float) -> np.ndarray:
        """The values of the last window_s seconds' events, oldest first
        (events added without one are left out)."""
        with self._lock:
            self._forget_before(float(now_s) - self.window_s)
            v = np.array([e[1] for e in self._events], np.float64)
        return v[~np.isnan(v)]

    def median(self, now_s: float) -> float:
        """The median of those values; NaN when there are none."""
        v = self.values(now_s)
        return float(np.median(v)) if v.size else math.nan

    @property
    def total(self) -> int:
        """Events added since the window was made."""
        with self._lock:
            return self._total

    def _forget_before(self, t_s: float) -> None:
        events = self._events
        while events and events[0][0] <= t_s:
            events.popleft()
