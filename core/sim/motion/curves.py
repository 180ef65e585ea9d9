"""Smooth curves of time for procedural actions, vectorised over time arrays.

Every function takes times or phases as numpy arrays and returns arrays of
the same length; none loops over frames. Times are seconds, phases radians
unless a name says otherwise.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping

import numpy as np
from scipy.interpolate import CubicHermiteSpline, PchipInterpolator


def smootherstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, C2 in between (6x^5 - 15x^4 + 10x^3)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6.0 * x - 15.0) + 10.0)


def soft_cap(x, hi: float, width: float) -> np.ndarray:
    """min(x, hi) with the corner rounded over about `width`: smooth, never
    above hi, ~x well below it (so capped curves keep a continuous velocity)."""
    return hi - width * np.logaddexp(0.0, (hi - np.asarray(x, np.float64)) / width)


def window(t: np.ndarray, start: float, end: float, rise: float) -> np.ndarray:
    """1 inside [start + rise, end - rise], 0 outside [start, end], smooth ramps."""
    rise = max(rise, 1e-6)
    return smootherstep((t - start) / rise) * smootherstep((end - t) / rise)


def bump(phase: np.ndarray, centre: float, kappa: float) -> np.ndarray:
    """Periodic bump (von Mises shape), 1 at `centre`, ~0 half a cycle away;
    larger kappa is narrower."""
    return np.exp(kappa * (np.cos(phase - centre) - 1.0))


def half_sine_sq(t: np.ndarray, start: float, duration: float) -> np.ndarray:
    """sin^2 arch over [start, start + duration], exactly 0 outside; C1."""
    u = (t - start) / duration
    inside = (u > 0.0) & (u < 1.0)
    return np.where(inside, np.sin(np.pi * np.clip(u, 0.0, 1.0)) ** 2, 0.0)


class Keys:
    """Keyframed channels through monotone cubic (PCHIP) pieces.

    key_times: increasing seconds; channels: name -> values at those times.
    Between keys the curve never overshoots the key values (so in-limit keys
    give in-limit curves); it is flat at the first and last key and holds
    their values outside, so a sequence of keyed moves joins smoothly.
    """

    def __init__(self, key_times, channels: Mapping[str, np.ndarray]) -> None:
        t = np.asarray(key_times, np.float64)
        if t.ndim != 1 or t.size < 2 or np.any(np.diff(t) <= 0):
            raise ValueError("key times must be increasing, at least two")
        self.names = tuple(channels)
        y = np.stack([np.broadcast_to(np.asarray(channels[n], np.float64), t.shape)
                      for n in self.names], axis=1)
        self._spline = _spline(t.tobytes(), np.ascontiguousarray(y).tobytes(), y.shape[1])
        self._t0, self._t1 = t[0], t[-1]

    def __call__(self, t: np.ndarray) -> dict[str, np.ndarray]:
        y = self._spline(np.clip(t, self._t0, self._t1))
        return {n: y[:, i] for i, n in enumerate(self.names)}


@lru_cache(maxsize=256)
def _spline(t_bytes: bytes, y_bytes: bytes, channels: int) -> CubicHermiteSpline:
    """The curve through these keys, built once: an action draws the same
    keys at every call (the simulated studio asks for each camera frame and
    each IMU packet), and building the pieces cost more than evaluating them."""
    t = np.frombuffer(t_bytes, np.float64)
    y = np.frombuffer(y_bytes, np.float64).reshape(t.size, channels)
    slopes = PchipInterpolator(t, y, axis=0).derivative()(t)
    slopes[0] = slopes[-1] = 0.0
    return CubicHermiteSpline(t, y, slopes, axis=0)


def repeat(t: np.ndarray, period: float, reps: int) -> tuple[np.ndarray, np.ndarray]:
    """Time within the current repetition and its index; after the last
    repetition the time keeps running past `period` (so keyed curves hold)."""
    k = np.clip(np.floor(t / period), 0, reps - 1)
    return t - k * period, k.astype(int)
