"""Device time -> host time for a device with its own clock.

A packet stamped d (device seconds) reaches the host at h = d + offset +
delay, where the delay (UART, USB polling, the OS) is never negative. The
packet with the smallest delay therefore gives the best estimate of the
offset, so the estimate is the minimum of h - d over a sliding window of
recent packets, and a sample's host time is d + that minimum. Every mapped
time is at or before the sample's arrival, and samples keep the device's
own spacing (its jitter-free clock) instead of the bursty arrival times.

The window (10 s by default) bounds how long an old minimum is trusted:
the two clocks drift apart (crystal tolerance, tens of ppm, i.e. well under
a millisecond over the window), and the estimate follows within one window.
A value of h - d more than `restart_s` above the current estimate means the
device clock jumped back (a reboot, a reset after a reconnect); the window
then starts afresh.
"""

from __future__ import annotations

from collections import deque


class DeviceClockMapper:
    def __init__(self, window_s: float = 10.0, restart_s: float = 0.5) -> None:
        self.window_s = float(window_s)
        self.restart_s = float(restart_s)
        # (host time, h - d), with h - d increasing from front to back: the
        # front is the minimum of the window (a monotonic queue).
        self._window: deque[tuple[float, float]] = deque()
        self.restarts = 0

    @property
    def offset_s(self) -> float | None:
        """The current estimate of host - device, seconds (None before the first packet)."""
        return self._window[0][1] if self._window else None

    def reset(self) -> None:
        self._window.clear()

    def to_host(self, device_t_s: float, host_t_s: float) -> float:
        """Record a packet stamped `device_t_s` that arrived at `host_t_s`, and
        return its host time."""
        diff = host_t_s - device_t_s
        window = self._window
        if window and diff - window[0][1] > self.restart_s:
            window.clear()
            self.restarts += 1
        while window and window[-1][1] >= diff:
            window.pop()
        window.append((host_t_s, diff))
        while window[0][0] < host_t_s - self.window_s:
            window.popleft()
        return device_t_s + window[0][1]
