"""ImuFeed, the IMUs panel's store: per-sensor history, rates and ages on a
made-up clock."""

import numpy as np
import pytest

from app.imu_feed import ImuFeed
from core.devices import ImuSample
from core.imu.pairing import SensorKey


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_rates_ages_history_and_forgetting(rng):
    clock = Clock()
    feed = ImuFeed(capacity=1024, clock=clock)
    hz = float(rng.uniform(50.0, 200.0))
    q = np.array([1.0, 0.0, 0.0, 0.0])
    for k in range(int(3 * hz)):           # 3 s of two sensors, one batch a sample time
        clock.t = 100.0 + k / hz
        feed.put("hub", [ImuSample(0, clock.t - 0.01, q), ImuSample(1, clock.t - 0.01, q)])
    feed.put("other", [ImuSample(0, clock.t, q)])
    last = clock.t
    assert feed.stats()[2].rate_hz == 0.0                                # too soon for a rate
    clock.t += 0.25
    stats = feed.stats()
    assert [s.key for s in stats] == [SensorKey("hub", 0), SensorKey("hub", 1), SensorKey("other", 0)]
    assert stats[0].samples == int(3 * hz)
    assert stats[0].rate_hz == pytest.approx(hz * 1.75 / 2.0, rel=0.03)   # the last 0.25 s were quiet
    assert stats[0].age_s == pytest.approx(0.25)
    assert stats[2].rate_hz == pytest.approx(1 / 0.25)                  # one sample in the 0.25 s since it came
    t, got = feed.recent(SensorKey("hub", 1), 0.5)
    assert len(t) == pytest.approx(0.5 * hz, abs=1.5) and got.shape == (len(t), 4)
    assert np.all(np.diff(t) > 0) and t[-1] == pytest.approx(last - 0.01)
    since = feed.since(last)
    assert sorted((src, s.sensor_id) for src, s in since) == [("hub", 0), ("hub", 1), ("other", 0)]
    # A late sample counts as arrived, but the history stays in time order.
    feed.put("hub", [ImuSample(0, 0.0, q)])
    assert feed.stats()[0].samples == int(3 * hz) + 1
    assert feed.recent(SensorKey("hub", 0), 10.0)[0][0] > 0.0
    feed.forget("hub")
    assert feed.keys() == [SensorKey("other", 0)]
    t, got = feed.recent(SensorKey("hub", 0), 1.0)
    assert t.shape == (0,) and got.shape == (0, 4)
