"""SensorHistory: one sensor's recent samples, the buffer behind the solve's
IMU frames and the IMUs panel."""

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.imu.history import SensorHistory
from core.rotations import to_wxyz


def test_keeps_the_newest_samples_in_time_order_across_the_wrap(rng):
    cap = int(rng.integers(3, 40))
    n = cap * 3 + int(rng.integers(0, cap))
    t = np.cumsum(rng.uniform(0.001, 0.02, n))
    q = to_wxyz(Rotation.random(n, random_state=int(rng.integers(2**31))))
    h = SensorHistory(cap)
    assert len(h) == 0 and math.isnan(h.newest_t_s) and math.isnan(h.newest_arrival_s)
    for k in range(n):
        assert h.put(t[k], q[k], arrival_s=t[k] + 0.5)
    assert len(h) == cap and h.stored == n and h.capacity == cap
    np.testing.assert_array_equal(h.times(), t[-cap:])
    np.testing.assert_array_equal(h.quats(), q[-cap:])
    np.testing.assert_array_equal(h.arrivals(), t[-cap:] + 0.5)
    assert h.newest_t_s == t[-1] and h.newest_arrival_s == t[-1] + 0.5
    # Copies: changing what was returned changes nothing held.
    h.times()[:] = 0.0
    np.testing.assert_array_equal(h.times(), t[-cap:])


def test_late_and_repeated_samples_are_refused():
    h = SensorHistory(8)
    one = np.array([1.0, 0.0, 0.0, 0.0])
    assert h.put(1.0, one) and h.put(2.0, one)
    assert not h.put(2.0, -one)       # repeated
    assert not h.put(1.5, -one)       # late
    assert h.put(2.5, one)
    np.testing.assert_array_equal(h.times(), [1.0, 2.0, 2.5])
    assert (h.quats() == one).all() and h.stored == 3
    with pytest.raises(ValueError):
        SensorHistory(0)


def test_recent_and_arrived_since():
    h = SensorHistory(100)
    t_empty, q_empty = h.recent(1.0)
    assert t_empty.shape == (0,) and q_empty.shape == (0, 4)
    for k in range(50):
        h.put(10.0 + 0.1 * k, [1.0, 0.0, 0.0, 0.1 * k], arrival_s=20.0 + 0.1 * k)
    t, q = h.recent(1.0)                                   # within 1 s of the newest (14.9 s)
    np.testing.assert_allclose(t, 10.0 + 0.1 * np.arange(39, 50))
    np.testing.assert_allclose(q[:, 3], 0.1 * np.arange(39, 50))
    t, q = h.arrived_since(24.0 - 1e-9)
    np.testing.assert_allclose(t, 10.0 + 0.1 * np.arange(40, 50))
    assert q.shape == (10, 4)
