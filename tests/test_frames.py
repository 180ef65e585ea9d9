import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.clock import SimulatedClock
from core.devices import ImuSample
from core.frames import ImuBuffer
from core.rotations import angle_deg, from_wxyz, to_wxyz


def _stream(buf, sensor, times, rate_radps):
    for t in times:
        q = to_wxyz(Rotation.from_rotvec([0, 0, rate_radps * t]))
        buf.add(ImuSample(sensor, float(t), q))


def test_slerp_between_samples_recovers_a_constant_rotation_rate():
    buf = ImuBuffer(num_sensors=2)
    _stream(buf, 0, np.arange(0, 1, 1 / 60), 1.0)  # 1 rad/s about Z, at 60 Hz
    q, age = buf.at(0.5041)
    expected = Rotation.from_rotvec([0, 0, 0.5041])
    assert angle_deg(from_wxyz(q[0]), expected) < 1e-6
    assert age[0] == pytest.approx(min(0.5041 - 30 / 60, 31 / 60 - 0.5041))
    assert np.isnan(q[1]).all() and age[1] == np.inf  # sensor 1 never spoke


def test_gaps_and_stale_sensors_count_as_missing():
    buf = ImuBuffer(num_sensors=1, max_gap_s=0.1)
    _stream(buf, 0, [0.0, 0.02, 0.04, 1.0, 1.02], 1.0)  # a dropout from 0.04 to 1.0 s
    q, _ = buf.at(0.5)
    assert np.isnan(q[0]).all()
    q, age = buf.at(0.1)  # 60 ms after the last sample before the hole: still usable
    assert angle_deg(from_wxyz(q[0]), Rotation.from_rotvec([0, 0, 0.04])) < 1e-9
    assert age[0] == pytest.approx(0.06)
    q, _ = buf.at(1.5)  # long after the stream stopped
    assert np.isnan(q[0]).all()


def test_out_of_order_and_foreign_samples_are_ignored():
    buf = ImuBuffer(num_sensors=1)
    _stream(buf, 0, [0.0, 0.1], 1.0)
    buf.add(ImuSample(0, 0.05, np.array([0.0, 1.0, 0.0, 0.0])))  # late arrival: dropped
    buf.add(ImuSample(7, 0.06, np.array([1.0, 0.0, 0.0, 0.0])))  # unknown sensor id
    q, _ = buf.at(0.05)
    assert angle_deg(from_wxyz(q[0]), Rotation.from_rotvec([0, 0, 0.05])) < 1e-9


def test_simulated_clock_jumps_forward_only():
    clock = SimulatedClock(1.0)
    assert clock.sleep_until(2.5) and clock.now() == 2.5
    clock.sleep_until(2.0)
    assert clock.now() == 2.5
    assert clock.advance(0.5) == 3.0
