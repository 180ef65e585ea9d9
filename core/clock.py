"""Clocks: the wall's monotonic clock, and a simulated one for lockstep runs.

Sources ask their clock for the time and wait on it, so the same simulated
studio runs in real time in the app and one frame at a time in tests.
"""

from __future__ import annotations

import threading
import time


class MonotonicClock:
    """Real time: seconds from time.monotonic()."""

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, t_s: float, stop: threading.Event | None = None) -> bool:
        """Wait until `t_s`; False if `stop` was set first."""
        while True:
            remaining = t_s - time.monotonic()
            if remaining <= 0:
                return True
            if stop is not None:
                if stop.wait(min(remaining, 0.05)):
                    return False
            else:
                time.sleep(min(remaining, 0.05))


class SimulatedClock:
    """Simulated time that moves only when asked: `sleep_until` jumps to the
    requested time, so a single-threaded driver steps sources in lockstep."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._t = float(start_s)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._t

    def advance(self, dt_s: float) -> float:
        with self._lock:
            self._t += dt_s
            return self._t

    def sleep_until(self, t_s: float, stop: threading.Event | None = None) -> bool:
        with self._lock:
            self._t = max(self._t, float(t_s))
        return not (stop is not None and stop.is_set())
