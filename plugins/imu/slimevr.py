"""A receiver for SlimeVR trackers (Wi-Fi, UDP): FuseCap stands in for the
SlimeVR server, so trackers flashed with SlimeVR firmware stream to it.

The tracker -> server protocol (layouts in docs/IMU_PROTOCOL.md): every
datagram starts with a 4-byte big-endian packet type and an 8-byte
big-endian packet number; numbers only grow, and the receiver drops a
packet whose nonzero number is not above the last one from that tracker, as
the SlimeVR server does. Trackers broadcast a handshake (type 3) to port
6969 until a server answers it; after that they time out if they hear
nothing from the server for 3 s, so the receiver sends a heartbeat (type 1)
to every live tracker twice a second.

What is read: rotation data (type 17, data type 1 "normal"; x, y, z, w as
float32), the legacy rotations (type 1 for sensor 0, type 16 for sensor 1),
sensor info (type 15, acknowledged as the server does, which also stops the
tracker repeating it) and bundles (type 100). Heartbeats and everything
else are accepted and ignored. Acceleration (type 4) is not attached to
samples: SlimeVR trackers send linear acceleration (gravity removed), while
ImuSample.accel_mps2 is the accelerometer's specific force.

Orientation: the tracker's quaternion as sent (sensor -> its own Z-up
reference), turned scalar-first. (The SlimeVR server turns it into its Y-up
frame; FuseCap's frames are Z-up, so it does not.)

Sensor ids: each (tracker, tracker-local sensor id) gets the next FuseCap
sensor id, 0, 1, 2, ..., in the order they first appear (in a sensor info
or rotation packet). A tracker is known by the MAC address its handshake
reports (by its IP address and port if it reports none), so one that
reconnects, even from a new address, keeps its ids for as long as the
receiver lives. Data from an address that has not sent a handshake is
ignored (a tracker whose server went away re-handshakes within 3 s).

No device clock travels with the data: ``t_s`` is the host arrival time.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Callable

from core.devices import DeviceError, ImuSample
from plugins.imu.parsing import unit_quaternion

DEFAULT_PORT = 6969

HEARTBEAT = 0           # tracker -> server
ROTATION = 1            # tracker -> server, legacy (sensor 0); server -> tracker: heartbeat
HANDSHAKE = 3
ACCEL = 4
PING_PONG = 10
SENSOR_INFO = 15
ROTATION_2 = 16         # legacy (sensor 1)
ROTATION_DATA = 17
FEATURE_FLAGS = 22
BUNDLE = 100
# Tracker packets that are understood and not needed: heartbeat, acceleration,
# ping reply, serial text, battery, tap, error, magnetometer accuracy, signal
# strength, temperature, user action, feature flags, config acknowledgement,
# flex data, inspection.
IGNORED = frozenset({HEARTBEAT, ACCEL, PING_PONG, 11, 12, 13, 14, 18, 19, 20, 21, FEATURE_FLAGS, 24, 26, 105})
SERVER_HEARTBEAT = 1    # the type a server's keep-alive carries
DATA_TYPE_NORMAL = 1    # rotation data: the fused orientation (2 is a correction)

HEADER = struct.Struct(">IQ")
_QUAT_XYZW = struct.Struct(">4f")
_ROTATION_DATA = struct.Struct(">BB4f")
_SENSOR_INFO_ACK = struct.Struct(">IBB")
# The server's answer to a handshake: type 3 in the FIRST byte (not the
# fourth), then this text, in a 64-byte datagram.
HANDSHAKE_REPLY = (b"\x03Hey OVR =D 5").ljust(64, b"\x00")

TRACKER_TIMEOUT_S = 10.0  # stop sending keep-alives to a tracker silent this long
MAX_DATAGRAM = 2048


@dataclass(frozen=True)
class TrackerInfo:
    key: str                       # MAC address, or "ip:port" when none was reported
    address: tuple[str, int]
    mac: str | None
    firmware: str
    board: int
    protocol_version: int


@dataclass
class _Tracker:
    info: TrackerInfo
    last_number: int
    last_seen_s: float


def parse_handshake(body: bytes, address: tuple[str, int]) -> TrackerInfo:
    """The tracker's handshake fields after the 12-byte header; every field is
    optional (older firmware sends fewer), as the SlimeVR server reads them."""
    at, n = 0, len(body)

    def take_int() -> int:
        nonlocal at
        value = struct.unpack_from(">i", body, at)[0]
        at += 4
        return value

    board = take_int() if n - at > 3 else 0
    if n - at > 3:
        take_int()  # IMU type of sensor 0
    if n - at > 3:
        take_int()  # MCU type
    if n - at > 11:
        at += 12    # unused IMU info
    version = take_int() if n - at > 3 else 0
    firmware = ""
    if n - at > 0:
        length = body[at]
        at += 1
        raw = body[at:at + length]
        at += len(raw)
        firmware = raw.split(b"\x00", 1)[0].decode("ascii", "replace")
    mac = None
    if n - at >= 6:
        octets = body[at:at + 6]
        if any(octets):
            mac = ":".join(f"{b:02X}" for b in octets)
    key = mac or f"{address[0]}:{address[1]}"
    return TrackerInfo(key, address, mac, firmware, board, version)


class SlimeVrReceiver:
    """ImuSource receiving SlimeVR trackers on UDP `host`:`port` (port 0: any free port)."""

    def __init__(self, host: str = "0.0.0.0", port: int = DEFAULT_PORT, name: str = "slimevr", *,
                 heartbeat_interval_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.port = int(port)
        self.name = name
        self.heartbeat_interval_s = float(heartbeat_interval_s)
        self._clock = clock
        self._sock: socket.socket | None = None
        self._by_address: dict[tuple[str, int], _Tracker] = {}
        self._ids: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._next_heartbeat = 0.0
        self.datagrams = 0
        self.garbage = 0        # too short, unknown type, truncated, or from no handshake
        self.out_of_order = 0
        self.handshakes = 0
        self.invalid = 0        # well-formed but unusable (zero or NaN quaternion)
        self.send_errors = 0
        self.samples: dict[int, int] = {}

    # -- ImuSource ---------------------------------------------------------------

    def open(self) -> None:
        self.close()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise DeviceError(f"SlimeVR receiver cannot listen on UDP {self.host}:{self.port}: {exc} "
                              "(is a SlimeVR server or another FuseCap running?)") from exc
        sock.setblocking(False)
        self._sock = sock

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound."""
        if self._sock is None:
            raise DeviceError(f"{self.name} is not open")
        return self._sock.getsockname()

    def read(self, timeout_s: float = 0.1) -> list[ImuSample]:
        """Samples received since the last call, waiting up to `timeout_s` for
        the first; answers handshakes and sends keep-alives on the way."""
        sock = self._sock
        if sock is None:
            raise DeviceError(f"{self.name} is not open")
        deadline = self._clock() + max(0.0, timeout_s)
        out: list[ImuSample] = []
        while True:
            remaining = deadline - self._clock()
            try:
                ready, _, _ = select.select([sock], [], [], max(0.0, min(remaining, 0.05)))
            except (OSError, ValueError):  # closed from another thread
                return out
            if ready:
                self._receive(sock, out)
            self._keepalive(sock)
            if out or self._clock() >= deadline or self._sock is None:
                return out

    # -- what the UI shows -------------------------------------------------------

    def trackers(self) -> list[TrackerInfo]:
        with self._lock:
            return [t.info for t in self._by_address.values()]

    def sensor_ids(self) -> dict[tuple[str, int], int]:
        """(tracker key, tracker-local sensor id) -> FuseCap sensor id."""
        with self._lock:
            return dict(self._ids)

    # -- internals ---------------------------------------------------------------

    def _receive(self, sock: socket.socket, out: list[ImuSample]) -> None:
        for _ in range(1024):  # bounded, so a flood cannot starve the caller
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except BlockingIOError:
                return
            except ConnectionResetError:
                continue  # Windows reports an earlier send's ICMP error here; keep receiving
            except OSError:
                return  # closed from another thread
            self.datagrams += 1
            arrival = self._clock()
            with self._lock:
                self._datagram(sock, data, addr[:2], arrival, out)

    def _datagram(self, sock, data: bytes, addr, arrival: float, out: list[ImuSample]) -> None:
        if len(data) < HEADER.size:
            self.garbage += 1
            return
        kind, number = HEADER.unpack_from(data)
        if kind == HANDSHAKE:
            self._handshake(sock, data[HEADER.size:], addr, arrival)
            return
        tracker = self._by_address.get(addr)
        if tracker is None:
            self.garbage += 1
            return
        if number != 0 and number <= tracker.last_number:
            self.out_of_order += 1
            return
        if kind == BUNDLE:
            ok = self._bundle(sock, tracker, data[HEADER.size:], arrival, out)
        else:
            ok = self._packet(sock, tracker, kind, data[HEADER.size:], arrival, out)
        if ok:
            # Only a packet that made sense moves the counter: a stray datagram
            # with a huge number must not lock the tracker out.
            tracker.last_number = number
            tracker.last_seen_s = arrival
        else:
            self.garbage += 1

    def _bundle(self, sock, tracker: _Tracker, body: bytes, arrival: float, out) -> bool:
        at, ok = 0, True
        while at + 2 <= len(body):
            (length,) = struct.unpack_from(">H", body, at)
            at += 2
            inner = body[at:at + length]
            at += len(inner)
            if len(inner) < 4:
                ok = False
                continue
            (kind,) = struct.unpack_from(">I", inner)
            ok = self._packet(sock, tracker, kind, inner[4:], arrival, out) and ok
        return ok and at == len(body)

    def _packet(self, sock, tracker: _Tracker, kind: int, body: bytes, arrival: float, out) -> bool:
        """Handle one packet's body; False when it is not a packet FuseCap knows."""
        if kind == ROTATION_DATA:
            if len(body) < _ROTATION_DATA.size:
                return False
            sensor, data_type, x, y, z, w = _ROTATION_DATA.unpack_from(body)
            if data_type == DATA_TYPE_NORMAL:
                self._sample(tracker, sensor, (w, x, y, z), arrival, out)
            return True
        if kind in (ROTATION, ROTATION_2):
            if len(body) >= _QUAT_XYZW.size:  # a bare type 1 is a heartbeat from old firmware
                x, y, z, w = _QUAT_XYZW.unpack_from(body)
                self._sample(tracker, 0 if kind == ROTATION else 1, (w, x, y, z), arrival, out)
            return True
        if kind == SENSOR_INFO:
            if len(body) < 2:
                return False
            sensor, status = body[0], body[1]
            self._sensor_id(tracker, sensor)
            self._send(sock, _SENSOR_INFO_ACK.pack(SENSOR_INFO, sensor, status), tracker.info.address)
            return True
        return kind in IGNORED

    def _handshake(self, sock, body: bytes, addr, arrival: float) -> None:
        info = parse_handshake(body, addr)
        self.handshakes += 1
        # A tracker that comes back from a new address replaces its old entry.
        for old_addr, t in list(self._by_address.items()):
            if t.info.key == info.key and old_addr != addr:
                del self._by_address[old_addr]
        self._by_address[addr] = _Tracker(info, 0, arrival)
        self._send(sock, HANDSHAKE_REPLY, addr)

    def _sensor_id(self, tracker: _Tracker, sensor: int) -> int:
        key = (tracker.info.key, sensor)
        sid = self._ids.get(key)
        if sid is None:
            sid = self._ids[key] = len(self._ids)
        return sid

    def _sample(self, tracker: _Tracker, sensor: int, wxyz, arrival: float, out) -> None:
        quat = unit_quaternion(wxyz)
        if quat is None:
            self.invalid += 1
            return
        sid = self._sensor_id(tracker, sensor)
        self.samples[sid] = self.samples.get(sid, 0) + 1
        out.append(ImuSample(sid, arrival, quat))

    def _keepalive(self, sock) -> None:
        now = self._clock()
        if now < self._next_heartbeat:
            return
        self._next_heartbeat = now + self.heartbeat_interval_s
        beat = HEADER.pack(SERVER_HEARTBEAT, 0)
        with self._lock:
            live = [t.info.address for t in self._by_address.values()
                    if now - t.last_seen_s < TRACKER_TIMEOUT_S]
        for address in live:
            self._send(sock, beat, address)

    def _send(self, sock, data: bytes, address) -> None:
        try:
            sock.sendto(data, address)
        except OSError:
            self.send_errors += 1
