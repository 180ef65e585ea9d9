"""RateWindow: events a second and median values over a sliding window."""

import math
import threading

import numpy as np
import pytest

from core.rates import RateWindow


def test_a_steady_stream_shows_its_rate_from_the_start_and_falls_to_zero_when_it_stops(rng):
    hz = float(rng.uniform(20.0, 400.0))
    t0 = float(rng.uniform(0.0, 1e5))
    w = RateWindow(2.0)
    assert w.rate_hz(t0) == 0.0 and w.count(t0) == 0
    times = t0 + np.arange(0.0, 5.0, 1.0 / hz)
    seen = {}
    for t in times:
        w.add(t)
        for mark in (0.5, 1.0, 3.0, 4.99):
            if mark not in seen and t - t0 >= mark:
                seen[mark] = w.rate_hz(t)
    for mark, rate in seen.items():
        assert rate == pytest.approx(hz, rel=0.05, abs=2.0), mark
    last = float(times[-1])
    assert w.count(last) == pytest.approx(2.0 * hz, abs=1.5)
    assert w.rate_hz(last + 1.0) == pytest.approx(hz / 2, rel=0.05, abs=1.0)   # half a window without events
    assert w.rate_hz(last + 2.0) == 0.0 and w.count(last + 2.0) == 0
    assert w.total == len(times)


def test_too_short_a_span_is_no_rate_yet():
    w = RateWindow(2.0, min_span_s=0.2)
    w.add(10.0)
    w.add(10.001)
    assert w.rate_hz(10.1) == 0.0
    assert w.rate_hz(10.25) == pytest.approx(2 / 0.25)
    with pytest.raises(ValueError):
        RateWindow(0.0)


def test_median_of_the_last_window(rng):
    w = RateWindow(1.0)
    assert math.isnan(w.median(0.0))
    old = rng.normal(500.0, 1.0, 50)
    for k, v in enumerate(old):
        w.add(k * 0.01, v)
    new = rng.normal(20.0, 3.0, 101)
    for k, v in enumerate(new):
        w.add(2.0 + k * 0.01, v)
    w.add(3.0)  # an event with no value counts for the rate only
    assert w.median(3.0) == pytest.approx(np.median(new[1:]))   # (2.0, 3.0]: the first new one is out
    np.testing.assert_allclose(w.values(3.0), new[1:])
    assert math.isnan(w.median(10.0))


def test_adding_and_reading_from_two_threads():
    w = RateWindow(10.0, min_span_s=0.0)
    n = 20_000

    def writer():
        for k in range(n):
            w.add(k * 1e-4)

    th = threading.Thread(target=writer)
    th.start()
    while th.is_alive():
        w.rate_hz(1.0)
        w.count(1.0)
    th.join()
    assert w.total == n and w.count(n * 1e-4) == n
    assert w.rate_hz(n * 1e-4) == pytest.approx(1e4, rel=1e-3)
