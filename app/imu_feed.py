"""Where live IMU samples land before the GUI reads them: `ImuFeed`, a
locked history per sensor (core.imu.history), and `SerialLink`, which opens
a serial IMU source and reads it into a feed on its own Python thread (so a
busy or missing port is a message, not a frozen window).

Threads: any thread may `put` into a feed; the readers copy what they
return, so the GUI timer never holds the lock for long. `SerialLink`'s
`opened` / `failed` signals are queued onto the receiver's (GUI) thread.
Times: a sample's ``t`` is its own time (host monotonic seconds for every
FuseCap source), its arrival is when `put` received it.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.devices import CountedImuSource, DeviceError, ImuSample
from core.imu.history import SensorHistory
from core.imu.pairing import SensorKey
from core.rates import RateWindow

RATE_WINDOW_S = 2.0     # rates are counted over the last 2 s of arrivals


@dataclass(frozen=True)
class SensorStats:
    key: SensorKey
    samples: int
    rate_hz: float          # arrivals per second over the last RATE_WINDOW_S (0 once it stops)
    age_s: float            # since the newest sample arrived


class ImuFeed:
    """Recent samples of every sensor seen, keyed by (source, sensor id): a
    SensorHistory (core.imu.history) and a RateWindow of arrivals
    (core.rates) each.

    `put` may be called from any thread; the readers copy what they return.
    Times: ``t`` is the sample's own time (host monotonic seconds for every
    FuseCap source), ``arrival`` when `put` received it. A sample not newer
    than its sensor's newest counts as arrived but is not kept, as in the
    solve's buffer (core.frames.ImuBuffer)."""

    def __init__(self, capacity: int = 4096, clock=time.monotonic) -> None:
        self.capacity = int(capacity)  # 10 s at 400 Hz
        self._clock = clock
        self._lock = threading.Lock()
        self._sensors: dict[SensorKey, tuple[SensorHistory, RateWindow]] = {}

    def put(self, source: str, samples: Sequence[ImuSample]) -> None:
        now = self._clock()
        with self._lock:
            for s in samples:
                key = SensorKey(source, int(s.sensor_id))
                entry = self._sensors.get(key)
                if entry is None:
                    entry = self._sensors[key] = (SensorHistory(self.capacity), RateWindow(RATE_WINDOW_S))
                history, arrivals = entry
                history.put(s.t_s, s.quat_wxyz, now)
                arrivals.add(now)

    def keys(self) -> list[SensorKey]:
        with self._lock:
            return sorted(self._sensors)

    def forget(self, source: str) -> None:
        with self._lock:
            for key in [k for k in self._sensors if k.source == source]:
                del self._sensors[key]

    def stats(self) -> list[SensorStats]:
        now = self._clock()
        out = []
        with self._lock:
            for key in sorted(self._sensors):
                history, arrivals = self._sensors[key]
                age = now - history.newest_arrival_s if len(history) else math.inf
                out.append(SensorStats(key, arrivals.total, arrivals.rate_hz(now), age))
        return out

    def recent(self, key: SensorKey, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """The sensor's samples within `seconds` of its newest: times (N,) and wxyz (N, 4), oldest first."""
        with self._lock:
            entry = self._sensors.get(key)
            if entry is None or not len(entry[0]):
                return np.zeros(0), np.zeros((0, 4))
            return entry[0].recent(seconds)

    def since(self, arrival_s: float) -> list[tuple[str, ImuSample]]:
        """Every sample kept that arrived at or after `arrival_s`, as (source, sample)."""
        out = []
        with self._lock:
            for key, (history, _) in self._sensors.items():
                t, q = history.arrived_since(arrival_s)
                out += [(key.source, ImuSample(key.sensor_id, float(ti), qi)) for ti, qi in zip(t, q)]
        return out


class SerialLink(QObject):
    """Opens an IMU source and reads it into a feed on a Python thread.
    `opened` / `failed` arrive on the GUI thread (queued)."""

    opened = Signal(object)        # the link
    failed = Signal(object, str)   # the link, why it could not be opened

    def __init__(self, source, feed: ImuFeed) -> None:
        super().__init__()
        self.source = source
        self.name = str(source.name)
        self.feed = feed
        self.state = "connecting"
        self.read_error = ""
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"imu-link {self.name}", daemon=True)

    def start(self) -> "SerialLink":
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.source.open()
        except (DeviceError, OSError, ValueError) as exc:
            self.state = "failed"
            self.failed.emit(self, str(exc))
            return
        self.state = "open"
        self.opened.emit(self)
        while not self._stop.is_set():
            try:
                samples = self.source.read(0.05)
            except (DeviceError, OSError) as exc:
                self.read_error = str(exc)
                self._stop.wait(0.5)
                continue
            if samples:
                self.feed.put(self.name, samples)

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        self.thread.join(timeout_s)
        try:
            self.source.close()
        except (DeviceError, OSError):
            pass
        self.state = "closed"

    def counters(self):
        counted = isinstance(self.source, CountedImuSource)
        return self.source.counters() if counted and self.state == "open" else None

    def describe(self) -> tuple[str, str]:
        """The link's state for a person, and its line counters ("" until it is open)."""
        c = self.counters()
        if c is None:
            return f"{self.name}: {self.state}", ""
        state = "reconnecting (device lost)" if c.state == "lost" else c.state
        return (f"{self.name}: {state}",
                f"{self.name}: {c.packets} packets, {c.corrupt} corrupt, {c.invalid} unusable, "
                f"{c.skipped_bytes} bytes skipped, {c.resyncs} resyncs, {c.reconnects} reconnects")


class NoSerialPlugin(LookupError):
    """The serial IMU plugin is not installed."""


def serial_ports() -> list[tuple[str, str]]:
    """The serial ports present, as (label, device path). Raises ImportError
    or OSError when they cannot be listed."""
    from plugins.imu.serial_source import list_ports

    return [(f"{p.device} — {p.description}" if p.description else p.device, p.device) for p in list_ports()]


def serial_source(port: str, protocol: str):
    """A serial IMU source for `port`, not opened yet. Raises NoSerialPlugin
    without the plugin, ValueError for a port or protocol it refuses."""
    from core.registry import registry

    factory = registry().imu_sources.get("serial")
    if factory is None:
        raise NoSerialPlugin("the serial IMU plugin is not installed")
    return factory(port, protocol=protocol)


def dropped_per_sensor(counters_by_source) -> dict[SensorKey, int]:
    """Each sensor's dropped-packet count, from (source name, its counters or None) pairs."""
    return {SensorKey(name, s.sensor_id): s.dropped
            for name, counters in counters_by_source if counters is not None for s in counters.sensors}
