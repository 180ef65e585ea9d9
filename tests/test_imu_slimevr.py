"""The SlimeVR receiver over a real UDP socket on loopback, with tracker
packets built here from the protocol's layouts (big-endian throughout)."""

import socket
import struct
import time

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.devices import DeviceError
from core.rotations import angle_deg, from_wxyz
from plugins.imu.slimevr import SlimeVrReceiver


def deg_between(q1, q2) -> float:
    return float(angle_deg(from_wxyz(q1), from_wxyz(q2)))


class FakeTracker:
    """A tracker's side of the protocol: its own UDP socket and packet counter."""

    def __init__(self, server, mac: bytes | None = b"\x02\x11\x22\x33\x44\x55"):
        self.server = server
        self.mac = mac
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(1.0)
        self.number = 0

    def close(self):
        self.sock.close()

    def send(self, kind: int, body: bytes = b"", number: int | None = None) -> None:
        if number is None:
            self.number += 1
            number = self.number
        self.sock.sendto(struct.pack(">IQ", kind, number) + body, self.server)

    def handshake(self, firmware: bytes = b"0.5.3") -> None:
        body = struct.pack(">iii", 4, 8, 2)            # board, IMU type, MCU type
        body += struct.pack(">iii", 0, 0, 0)           # unused IMU info
        body += struct.pack(">i", 19)                  # protocol version
        body += bytes([len(firmware)]) + firmware
        if self.mac is not None:
            body += self.mac
        self.send(3, body, number=0)

    def rotation(self, sensor: int, q_wxyz, data_type: int = 1) -> None:
        w, x, y, z = q_wxyz
        self.send(17, struct.pack(">BBffffB", sensor, data_type, x, y, z, w, 3))

    def sensor_info(self, sensor: int, status: int = 1) -> None:
        self.send(15, struct.pack(">BBB", sensor, status, 12))

    def receive(self) -> bytes:
        return self.sock.recvfrom(2048)[0]


@pytest.fixture
def receiver():
    rx = SlimeVrReceiver(host="127.0.0.1", port=0, heartbeat_interval_s=0.1)
    rx.open()
    yield rx
    rx.close()


@pytest.fixture
def trackers(receiver):
    made = []

    def make(**kw):
        t = FakeTracker(receiver.address, **kw)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


def read_until(rx, n: int, timeout_s: float = 2.0) -> list:
    got = []
    end = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < end:
        got += rx.read(0.05)
    return got


HEARTBEAT = struct.pack(">IQ", 1, 0)


def pump(rx, tracker) -> bytes:
    """Let the receiver handle what the tracker sent, and return its answer
    (passing over the keep-alive heartbeats it sends meanwhile)."""
    rx.read(0.05)
    while (reply := tracker.receive()) == HEARTBEAT:
        pass
    return reply


def test_handshake_is_answered_like_the_server(receiver, trackers):
    t = trackers()
    t.handshake()
    reply = pump(receiver, t)
    # Type 3 in the first byte (not big-endian), then the server's greeting.
    assert reply[0] == 3 and reply[1:13] == b"Hey OVR =D 5" and len(reply) == 64
    (info,) = receiver.trackers()
    assert info.mac == "02:11:22:33:44:55" and info.firmware == "0.5.3"
    assert info.board == 4 and info.protocol_version == 19
    t.sensor_info(0)
    assert pump(receiver, t) == struct.pack(">IBB", 15, 0, 1)  # the acknowledgement


def test_rotations_map_to_sensor_ids_in_order_of_appearance(receiver, trackers, rng):
    a, b = trackers(), trackers(mac=b"\x02\xaa\xbb\xcc\xdd\xee")
    for t in (a, b):
        t.handshake()
        pump(receiver, t)
    qs = Rotation.random(5, random_state=rng).as_quat(scalar_first=True)
    before = time.monotonic()
    a.rotation(1, qs[0])   # a/1 -> 0
    b.rotation(0, qs[1])   # b/0 -> 1
    a.rotation(0, qs[2])   # a/0 -> 2
    a.rotation(1, qs[3])   # a/1 again
    b.rotation(0, qs[4])
    got = read_until(receiver, 5)
    assert [s.sensor_id for s in got] == [0, 1, 2, 0, 1]  # loopback keeps the sending order
    by_id = {}
    for s in got:
        by_id.setdefault(s.sensor_id, []).append(s)
    expect = {0: [qs[0], qs[3]], 1: [qs[1], qs[4]], 2: [qs[2]]}
    for sid, qlist in expect.items():
        assert len(by_id[sid]) == len(qlist)
        for s, q in zip(by_id[sid], qlist):
            assert deg_between(s.quat_wxyz, q) < 0.01  # float32 x, y, z, w -> w, x, y, z
            assert before <= s.t_s <= time.monotonic()
    ids = receiver.sensor_ids()
    assert ids[("02:11:22:33:44:55", 1)] == 0 and ids[("02:11:22:33:44:55", 0)] == 2
    assert ids[("02:AA:BB:CC:DD:EE", 0)] == 1


def test_known_pose_keeps_scalar_first_order(receiver, trackers):
    t = trackers()
    t.handshake()
    pump(receiver, t)
    # 90 degrees about Z sent as x, y, z, w = 0, 0, s, s.
    s2 = np.sqrt(0.5)
    t.send(17, struct.pack(">BBffffB", 0, 1, 0.0, 0.0, s2, s2, 0))
    (s,) = read_until(receiver, 1)
    assert from_wxyz(s.quat_wxyz).apply([1, 0, 0]) == pytest.approx([0, 1, 0], abs=1e-6)


def test_garbage_and_strangers_are_ignored_and_counted(receiver, trackers, rng):
    stranger = trackers()
    stranger.rotation(0, [1, 0, 0, 0])  # never shook hands
    t = trackers()
    t.handshake()
    pump(receiver, t)
    junk = [b"", b"\x00", bytes(11), bytes(rng.integers(0, 256, 40, dtype=np.uint8)),
            struct.pack(">IQ", 77, 5) + b"xyz",                # unknown type
            struct.pack(">IQ", 17, 6) + b"\x00\x01\x00\x00"]   # rotation data cut short
    for j in junk:
        t.sock.sendto(j, receiver.address)
    t.number = 6
    t.rotation(0, [0, 1, 0, 0])
    got = read_until(receiver, 1)
    time.sleep(0.05)
    got += receiver.read(0.05)
    assert len(got) == 1 and deg_between(got[0].quat_wxyz, [0, 1, 0, 0]) < 0.01
    assert receiver.garbage == 1 + len(junk)  # the stranger's packet and the junk
    assert receiver.datagrams == 1 + 1 + len(junk) + 1


def test_old_and_repeated_packet_numbers_are_dropped(receiver, trackers):
    t = trackers()
    t.handshake()
    pump(receiver, t)
    t.send(17, struct.pack(">BBffffB", 0, 1, 0, 0, 0, 1, 0), number=10)
    t.send(17, struct.pack(">BBffffB", 0, 1, 1, 0, 0, 0, 0), number=9)    # older: dropped
    t.send(17, struct.pack(">BBffffB", 0, 1, 1, 0, 0, 0, 0), number=10)   # repeated: dropped
    t.send(17, struct.pack(">BBffffB", 0, 1, 0, 1, 0, 0, 0), number=11)
    got = read_until(receiver, 2)
    assert len(got) == 2
    assert deg_between(got[0].quat_wxyz, [1, 0, 0, 0]) < 0.01
    assert deg_between(got[1].quat_wxyz, [0, 0, 1, 0]) < 0.01
    assert receiver.out_of_order == 2


def test_legacy_rotation_bundles_and_correction_data(receiver, trackers):
    t = trackers(mac=None)
    t.handshake()
    pump(receiver, t)
    q1 = Rotation.from_euler("z", 30, degrees=True).as_quat(scalar_first=True)
    q2 = Rotation.from_euler("x", -60, degrees=True).as_quat(scalar_first=True)
    t.send(1, struct.pack(">ffff", q1[1], q1[2], q1[3], q1[0]))          # legacy: sensor 0
    t.send(17, struct.pack(">BBffffB", 0, 2, 1, 0, 0, 0, 0))             # correction data: not a pose
    inner = [struct.pack(">I", 17) + struct.pack(">BBffffB", 1, 1, q2[1], q2[2], q2[3], q2[0], 0),
             struct.pack(">I", 0)]                                        # a heartbeat
    t.send(100, b"".join(struct.pack(">H", len(p)) + p for p in inner))  # a bundle
    got = read_until(receiver, 2)
    assert [s.sensor_id for s in got] == [0, 1]
    assert deg_between(got[0].quat_wxyz, q1) < 0.01 and deg_between(got[1].quat_wxyz, q2) < 0.01
    # Without a MAC the tracker is known by its address.
    host, port = t.sock.getsockname()
    assert receiver.sensor_ids() == {(f"{host}:{port}", 0): 0, (f"{host}:{port}", 1): 1}
    assert receiver.garbage == 0


def test_keepalive_heartbeats_reach_the_tracker(receiver, trackers):
    t = trackers()
    t.handshake()
    assert pump(receiver, t)[0] == 3
    end = time.monotonic() + 1.0
    beats = []
    while time.monotonic() < end and len(beats) < 2:
        receiver.read(0.05)
        t.sock.settimeout(0.0)
        try:
            beats.append(t.receive())
        except (BlockingIOError, socket.timeout):
            pass
    assert beats[:2] == [HEARTBEAT] * 2


def test_reconnect_from_a_new_address_keeps_the_sensor_ids(receiver, trackers):
    first = trackers()
    first.handshake()
    pump(receiver, first)
    first.rotation(0, [1, 0, 0, 0])
    first.rotation(1, [1, 0, 0, 0])
    assert [s.sensor_id for s in read_until(receiver, 2)] == [0, 1]
    again = trackers()  # same MAC, new port (the tracker rebooted)
    again.handshake()
    pump(receiver, again)
    again.rotation(1, [0, 0, 0, 1])
    (s,) = read_until(receiver, 1)
    assert s.sensor_id == 1
    assert len(receiver.trackers()) == 1


def test_port_in_use_raises_device_error(receiver):
    port = receiver.address[1]
    other = SlimeVrReceiver(host="127.0.0.1", port=port)
    with pytest.raises(DeviceError, match=str(port)):
        other.open()
    with pytest.raises(DeviceError, match="not open"):
        other.read(0.0)
