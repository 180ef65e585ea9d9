"""Xsens MTi Xbus messages, the MTData2 subset FuseCap reads.

A message: preamble 0xFA, bus id 0xFF, message id, length byte (0xFF means a
2-byte big-endian extended length follows), payload, checksum. The checksum
byte makes the sum of every byte from the bus id through the checksum 0
modulo 256 (the preamble is not summed).

MTData2 (message id 0x36) payload: items of a 2-byte big-endian data id, a
1-byte size and `size` bytes of big-endian data. Read here:

- 0x1020 PacketCounter, uint16 (gaps are counted in ``lost_packets``)
- 0x1060 SampleTimeFine, uint32 ticks of 10 kHz: the device time
- 0x2010 Quaternion, 4 x float32 (w, x, y, z), sensor -> ENU
- 0x4020 Acceleration, 3 x float32 m/s^2 (specific force, gravity included)
- 0x8020 RateOfTurn, 3 x float32 rad/s

The two low bits of a data id select the number format (0 float32, 1
fp12.20, 2 fp16.32, 3 float64) and the next two the reference frame (0 ENU,
4 NED, 8 NWU). FuseCap reads float32 and float64 in ENU (0x2010/0x2013,
0x4020/0x4023, 0x8020/0x8023); every other item, fixed-point and NED/NWU
included, is skipped by its size. Messages other than MTData2 (WakeUp 0x3E,
acknowledgements, errors, ...) are checked and skipped. An MTi is one sensor.
"""

from __future__ import annotations

import struct

import numpy as np

from core.devices import ImuSample
from plugins.imu.parsing import NEED_MORE, NO_DEVICE_TIME, StreamParser, Unwrapper, unit_quaternion, vector3

PREAMBLE = 0xFA
BUS_ID = 0xFF
MTDATA2 = 0x36
WAKEUP = 0x3E
EXTENDED = 0xFF
MAX_PAYLOAD = 2048  # the largest Xbus payload

PACKET_COUNTER = 0x1020
SAMPLE_TIME_FINE = 0x1060
QUATERNION = 0x2010
ACCELERATION = 0x4020
RATE_OF_TURN = 0x8020
FLOAT64 = 0x0003
SAMPLE_TIME_HZ = 10_000.0

# data id -> (which output, struct format of its values)
_VECTORS = {
    QUATERNION: ("quat", ">4f"), QUATERNION | FLOAT64: ("quat", ">4d"),
    ACCELERATION: ("accel", ">3f"), ACCELERATION | FLOAT64: ("accel", ">3d"),
    RATE_OF_TURN: ("gyro", ">3f"), RATE_OF_TURN | FLOAT64: ("gyro", ">3d"),
}


def checksum(bus_to_payload: bytes) -> int:
    """The byte that makes the sum from bus id through checksum 0 mod 256."""
    return (-sum(bus_to_payload)) & 0xFF


def encode_message(mid: int, payload: bytes) -> bytes:
    """A complete Xbus message to the master (bus id 0xFF)."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError(f"Xbus payload of {n} bytes exceeds {MAX_PAYLOAD}")
    length = bytes((n,)) if n < EXTENDED else bytes((EXTENDED,)) + struct.pack(">H", n)
    body = bytes((BUS_ID, mid)) + length + payload
    return bytes((PREAMBLE,)) + body + bytes((checksum(body),))


def encode_item(data_id: int, data: bytes) -> bytes:
    return struct.pack(">HB", data_id, len(data)) + data


def encode_mtdata2(quat_wxyz=None, sample_time_fine: int | None = None, packet_counter: int | None = None,
                   accel_mps2=None, gyro_radps=None, extra_items: bytes = b"") -> bytes:
    """An MTData2 message with the given outputs (float32), as an MTi sends it."""
    payload = b""
    if packet_counter is not None:
        payload += encode_item(PACKET_COUNTER, struct.pack(">H", packet_counter % 65536))
    if sample_time_fine is not None:
        payload += encode_item(SAMPLE_TIME_FINE, struct.pack(">I", sample_time_fine % (1 << 32)))
    if quat_wxyz is not None:
        payload += encode_item(QUATERNION, struct.pack(">4f", *np.asarray(quat_wxyz, float)))
    if accel_mps2 is not None:
        payload += encode_item(ACCELERATION, struct.pack(">3f", *np.asarray(accel_mps2, float)))
    if gyro_radps is not None:
        payload += encode_item(RATE_OF_TURN, struct.pack(">3f", *np.asarray(gyro_radps, float)))
    return encode_message(MTDATA2, payload + extra_items)


class XsensParser(StreamParser):
    """Incremental parser of Xbus messages from one MTi (`sensor_id`).

    ``t_s`` is SampleTimeFine / 10 kHz, unwrapped across the 2^32 wrap,
    or NO_DEVICE_TIME when the device is not set to send it."""

    max_packet_bytes = 7 + MAX_PAYLOAD

    def __init__(self, sensor_id: int = 0) -> None:
        super().__init__()
        self.sensor_id = int(sensor_id)
        self.other_messages = 0
        self.lost_packets = 0
        self._clock = Unwrapper(32)
        self._last_counter: int | None = None

    def reset(self) -> None:
        super().reset()
        self._clock.reset()
        self._last_counter = None

    def _step(self):
        if not self._seek(bytes((PREAMBLE, BUS_ID))):
            return NEED_MORE
        buf = self._buf
        if len(buf) < 4:
            return NEED_MORE
        if buf[3] == EXTENDED:
            if len(buf) < 6:
                return NEED_MORE
            n = (buf[4] << 8) | buf[5]
            start = 6
            if n > MAX_PAYLOAD:
                self._drop_corrupt()
                return None
        else:
            n, start = buf[3], 4
        total = start + n + 1
        if len(buf) < total:
            return NEED_MORE
        if sum(buf[1:total]) & 0xFF:
            self._drop_corrupt()
            return None
        mid = buf[2]
        payload = bytes(buf[start:start + n])
        self._consume(total)
        if mid != MTDATA2:
            self.other_messages += 1
            return None
        return self._mtdata2(payload)

    def _mtdata2(self, payload: bytes) -> ImuSample | None:
        found: dict[str, np.ndarray] = {}
        stf: int | None = None
        at = 0
        while at + 3 <= len(payload):
            data_id, size = struct.unpack_from(">HB", payload, at)
            at += 3
            if at + size > len(payload):
                self.invalid += 1  # an item runs past the message
                return None
            data = payload[at:at + size]
            at += size
            if data_id == PACKET_COUNTER and size == 2:
                self._count(struct.unpack(">H", data)[0])
            elif data_id == SAMPLE_TIME_FINE and size == 4:
                stf = struct.unpack(">I", data)[0]
            elif data_id in _VECTORS:
                what, fmt = _VECTORS[data_id]
                if size == struct.calcsize(fmt):
                    found[what] = np.array(struct.unpack(fmt, data), dtype=np.float64)
        if at != len(payload):
            self.invalid += 1  # a trailing fragment shorter than an item header
            return None
        if "quat" not in found:
            return None  # a message without orientation (e.g. only inertial data)
        quat = unit_quaternion(found["quat"])
        if quat is None:
            self.invalid += 1
            return None
        accel = vector3(found["accel"]) if "accel" in found else None
        gyro = vector3(found["gyro"]) if "gyro" in found else None
        t_s = NO_DEVICE_TIME if stf is None else self._clock(stf) / SAMPLE_TIME_HZ
        return ImuSample(self.sensor_id, t_s, quat, accel, gyro)

    def _count(self, counter: int) -> None:
        if self._last_counter is not None:
            self.lost_packets += (counter - self._last_counter - 1) % 65536
        self._last_counter = counter
