"""IMU sources on a serial line (USB-serial adapters, Bluetooth SPP ports,
pseudo-terminals): FuseCap hubs, WitMotion sensors and Xsens MTi devices.

`SerialImuSource` implements core.devices.ImuSource with pyserial. It
survives unplugging: an I/O error marks it ``lost`` and ``read`` then tries
to reopen the same path at most every `reconnect_interval_s`, returning no
samples meanwhile. (On Linux, name the port by its stable
/dev/serial/by-id/... link so it comes back under the same path.)

Times: a sample's ``t_s`` is host monotonic time. For protocols that carry a
device clock (FuseCap hub, Xsens with SampleTimeFine) it is the device time
mapped onto the host clock by `clock_sync.DeviceClockMapper`; otherwise it is
the arrival time of the bytes that completed the sample.
"""

from __future__ import annotations

import errno
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np
import serial
import serial.tools.list_ports

from core.devices import DeviceError, ImuSample
from core.rates import RateWindow
from plugins.imu.clock_sync import DeviceClockMapper
from plugins.imu.fusecap_protocol import FuseCapParser
from plugins.imu.parsing import StreamParser
from plugins.imu.witmotion import WitMotionParser
from plugins.imu.xsens import XsensParser

# protocol name -> (parser factory taking the sensor id, default baud rate)
PROTOCOLS: dict[str, tuple[Callable[[int], StreamParser], int]] = {
    "fusecap": (FuseCapParser, 921600),
    "witmotion": (WitMotionParser, 9600),
    "xsens": (XsensParser, 115200),
}

OPEN, LOST, CLOSED = "open", "lost", "closed"
RATE_WINDOW_S = 2.0


@dataclass(frozen=True)
class PortInfo:
    device: str
    description: str
    hwid: str


def list_ports() -> list[PortInfo]:
    """The serial ports the system knows, sorted by device path."""
    ports = [PortInfo(p.device, p.description or "", p.hwid or "")
             for p in serial.tools.list_ports.comports()]
    return sorted(ports, key=lambda p: p.device)


@dataclass(frozen=True)
class SensorCounters:
    sensor_id: int
    samples: int
    rate_hz: float  # samples per second over the last ~2 s of arrivals
    # Samples missing from the sensor's stream, from gaps in its device clock
    # (protocols with one: FuseCap hub, Xsens); 0 where the protocol has no clock.
    dropped: int = 0


@dataclass(frozen=True)
class SourceCounters:
    """A snapshot of a source's health. Corrupt packets and skipped bytes
    belong to the line, not to a sensor: the sensor id of a damaged packet
    cannot be trusted."""
    state: str
    sensors: tuple[SensorCounters, ...]
    packets: int
    corrupt: int
    invalid: int
    skipped_bytes: int
    resyncs: int
    reconnects: int


def _why(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT:
        return "no such port (unplugged, or a wrong name?)"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied (on Linux, add your user to the 'dialout' group)"
    if code in (errno.EBUSY, errno.EAGAIN) or "lock" in str(exc).lower():
        return "busy (another program has it open)"
    return "cannot be opened"


class SerialImuSource:
    """One serial device speaking `protocol` ("fusecap", "witmotion", "xsens").

    sensor_id: the FuseCap sensor id of a single-sensor device (WitMotion,
    Xsens); for a FuseCap hub, a base added to the hub's own sensor numbers
    (so two hubs can be used together). baudrate: None for the protocol's
    usual rate (921600 hub, 9600 WitMotion, 115200 Xsens).
    """

    def __init__(self, port: str, protocol: str = "fusecap", baudrate: int | None = None,
                 sensor_id: int = 0, name: str | None = None, *, reconnect_interval_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown IMU protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
        make_parser, default_baud = PROTOCOLS[protocol]
        self.port = port
        self.protocol = protocol
        self.baudrate = int(baudrate or default_baud)
        self.name = name or f"{protocol}:{port}"
        self.reconnect_interval_s = float(reconnect_interval_s)
        self.parser = make_parser(sensor_id)
        self.clock_mapper = DeviceClockMapper()
        self.state = CLOSED
        self.reconnects = 0
        self.last_error = ""
        self._clock = clock
        self._serial: serial.SerialBase | None = None
        self._timeout = 0.0  # the port's read timeout, set only when it changes
        self._next_attempt = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._samples: dict[int, int] = {}
        self._dropped: dict[int, int] = {}
        self._device_t: dict[int, float] = {}              # last device time per sensor
        self._intervals: dict[int, deque] = {}             # recent device-time steps per sensor
        self._arrivals: dict[int, RateWindow] = {}         # host arrival times per sensor

    # -- ImuSource ---------------------------------------------------------------

    def open(self) -> None:
        """Open the port; DeviceError (naming the port and the reason) if it cannot."""
        self._close_port()
        self._stop.clear()
        self._open_port()
        self.state = OPEN

    def close(self) -> None:
        self.state = CLOSED
        self._stop.set()
        self._close_port()

    def read(self, timeout_s: float = 0.1) -> list[ImuSample]:
        """The samples completed since the last call, waiting up to `timeout_s`
        for the first. Returns [] while the device is lost (reconnecting)."""
        if self.state == CLOSED:
            raise DeviceError(f"{self.name} is not open")
        deadline = self._clock() + max(0.0, timeout_s)
        if self.state == LOST and not self._reconnect(deadline):
            return []
        return self._read_open(deadline, timeout_s)

    # -- health ------------------------------------------------------------------

    def counters(self) -> SourceCounters:
        now = self._clock()
        with self._lock:
            sensors = tuple(SensorCounters(sid, n, self._arrivals[sid].rate_hz(now), self._dropped.get(sid, 0))
                            for sid, n in sorted(self._samples.items()))
        p = self.parser
        return SourceCounters(self.state, sensors, p.packets, p.corrupt, p.invalid,
                              p.skipped_bytes, p.resyncs, self.reconnects)

    def _count_gap(self, sid: int, device_t: float) -> None:
        """A step in the sensor's device clock of k usual intervals means k - 1
        samples went missing (the usual interval: the median of the last 32)."""
        last = self._device_t.get(sid)
        self._device_t[sid] = device_t
        if last is None:
            return
        step = device_t - last
        if step <= 0:
            return  # a restarted device clock: nothing to count
        steps = self._intervals.setdefault(sid, deque(maxlen=32))
        if len(steps) >= 8:
            usual = float(np.median(steps))
            if usual > 0 and step > 1.5 * usual:
                self._dropped[sid] = self._dropped.get(sid, 0) + int(round(step / usual)) - 1
                return  # a gap is not a usual interval
        steps.append(step)

    # -- internals ---------------------------------------------------------------

    def _open_port(self) -> None:
        try:
            self._serial = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=0,
                                                 exclusive=True)
        except (OSError, ValueError) as exc:  # SerialException is an OSError
            self._serial = None
            self.last_error = f"IMU port {self.port}: {_why(exc)} [{exc}]"
            raise DeviceError(self.last_error) from exc
        self._timeout = 0.0

    def _close_port(self) -> None:
        port, self._serial = self._serial, None
        if port is None:
            return
        cancel = getattr(port, "cancel_read", None)  # wakes a read blocked in another thread
        try:
            if cancel is not None:
                cancel()
            port.close()
        except OSError:
            pass  # a port whose device is gone may fail to close cleanly

    def _lose(self, exc: BaseException) -> None:
        if self.state == CLOSED:
            return  # closed from another thread while a read was under way
        self.last_error = f"IMU port {self.port} lost: {exc}"
        self.state = LOST
        self._close_port()
        self._next_attempt = self._clock() + self.reconnect_interval_s

    def _reconnect(self, deadline: float) -> bool:
        """Wait (up to `deadline`) for the next attempt and try to reopen."""
        wait = min(self._next_attempt, deadline) - self._clock()
        if wait > 0 and self._stop.wait(wait):
            return False  # closed meanwhile
        if self._clock() < self._next_attempt or self.state != LOST:
            return False
        self._next_attempt = self._clock() + self.reconnect_interval_s
        try:
            self._open_port()
        except DeviceError:
            return False
        # Half a packet from before the unplug is garbage, and the device may
        # have restarted its clock.
        self.parser.reset()
        self.clock_mapper.reset()
        self.reconnects += 1
        self.state = OPEN
        return True

    def _read_open(self, deadline: float, timeout_s: float) -> list[ImuSample]:
        out: list[ImuSample] = []
        slice_s = min(max(0.0, timeout_s), 0.05)
        while True:
            try:
                chunk = self._read_bytes(slice_s)
            except OSError as exc:  # includes serial.SerialException: unplugged
                self._lose(exc)
                return out
            if chunk:
                arrival = self._clock()
                out.extend(self._stamp(self.parser.feed(chunk), arrival))
            if out or self._clock() >= deadline or self.state != OPEN:
                return out

    def _read_bytes(self, slice_s: float) -> bytes:
        port = self._serial
        if port is None:
            return b""
        waiting = port.in_waiting
        if waiting:
            return port.read(waiting)
        if slice_s <= 0:
            return b""
        if self._timeout != slice_s:  # pyserial reconfigures the port on every change
            port.timeout = self._timeout = slice_s
        data = port.read(1)
        if data:
            waiting = port.in_waiting
            if waiting:
                data += port.read(waiting)
        return data

    def _stamp(self, samples: list[ImuSample], arrival_s: float) -> list[ImuSample]:
        out = []
        with self._lock:
            for s in samples:
                if math.isnan(s.t_s):
                    t = arrival_s
                else:
                    t = self.clock_mapper.to_host(s.t_s, arrival_s)
                    self._count_gap(s.sensor_id, s.t_s)
                out.append(ImuSample(s.sensor_id, t, s.quat_wxyz, s.accel_mps2, s.gyro_radps))
                self._samples[s.sensor_id] = self._samples.get(s.sensor_id, 0) + 1
                rate = self._arrivals.get(s.sensor_id)
                if rate is None:
                    rate = self._arrivals[s.sensor_id] = RateWindow(RATE_WINDOW_S)
                rate.add(arrival_s)
        return out
