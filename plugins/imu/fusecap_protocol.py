"""FuseCap hub protocol, version 1: binary packets from a DIY hub (an ESP32 or
Arduino reading several BNO08x/BNO055 sensors) over a serial line.

The byte-by-byte specification is docs/IMU_PROTOCOL.md; the reference
firmware is resources/firmware/fusecap_hub/fusecap_hub.ino. In short, all
multi-byte fields little-endian:

    FC A5 | LEN | SENSOR | FLAGS | T_US (u32) | QW QX QY QZ (i16, Q14)
          | [AX AY AZ (i16, 1/256 m/s^2)] | [GX GY GZ (i16, 1/512 rad/s)] | CRC (u16)

LEN counts SENSOR through the end of the body (14, 20 or 26). The CRC is
CRC-16/CCITT-FALSE over LEN through the end of the body (everything after
the two sync bytes, except the CRC itself).
"""

from __future__ import annotations

import binascii
import struct

import numpy as np

from core.devices import ImuSample
from plugins.imu.parsing import NEED_MORE, StreamParser, Unwrapper, unit_quaternion

SYNC = b"\xfc\xa5"
FLAG_ACCEL = 0x01
FLAG_GYRO = 0x02
QUAT_SCALE = 1 << 14          # Q14: 1.0 is 16384
ACCEL_SCALE = 1 << 8          # counts per m/s^2 (range +-128 m/s^2)
GYRO_SCALE = 1 << 9           # counts per rad/s (range +-64 rad/s)
BASE_LEN = 14                 # SENSOR, FLAGS, T_US, quaternion
MAX_SENSOR_ID = 254           # 255 is reserved
_HEADER = struct.Struct("<BBI4h")  # sensor, flags, t_us, quaternion
_VEC = struct.Struct("<3h")
_CRC = struct.Struct("<H")


def crc16_ccitt_false(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial 0xFFFF, no reflection,
    no final XOR (check value 0x29B1 for b"123456789"). binascii.crc_hqx is
    this CRC (XMODEM's, with the initial value given), computed in C."""
    return binascii.crc_hqx(data, crc)


def body_length(flags: int) -> int:
    """LEN for a packet with these flags."""
    return BASE_LEN + 6 * bool(flags & FLAG_ACCEL) + 6 * bool(flags & FLAG_GYRO)


def _to_int16(values, scale: float) -> list[int]:
    v = np.clip(np.round(np.asarray(values, dtype=np.float64) * scale), -32768, 32767)
    return [int(x) for x in v]


def encode_packet(sensor_id: int, t_us: int, quat_wxyz, accel_mps2=None, gyro_radps=None) -> bytes:
    """One protocol-1 packet. `t_us` is taken modulo 2^32 (the device clock
    wraps); values beyond the int16 ranges saturate."""
    if not 0 <= sensor_id <= MAX_SENSOR_ID:
        raise ValueError(f"sensor id must be 0..{MAX_SENSOR_ID}, got {sensor_id}")
    flags = (FLAG_ACCEL if accel_mps2 is not None else 0) | (FLAG_GYRO if gyro_radps is not None else 0)
    body = bytearray((body_length(flags),))
    body += _HEADER.pack(sensor_id, flags, int(t_us) % (1 << 32), *_to_int16(quat_wxyz, QUAT_SCALE))
    if accel_mps2 is not None:
        body += _VEC.pack(*_to_int16(accel_mps2, ACCEL_SCALE))
    if gyro_radps is not None:
        body += _VEC.pack(*_to_int16(gyro_radps, GYRO_SCALE))
    return SYNC + bytes(body) + _CRC.pack(crc16_ccitt_false(body))


class FuseCapParser(StreamParser):
    """Incremental parser of protocol-1 packets.

    Samples carry the hub's sensor id plus `sensor_id_base`, and the hub's
    clock in seconds as ``t_s``, unwrapped across the 2^32 µs wrap (about
    71.6 minutes) as one clock for all the hub's sensors."""

    max_packet_bytes = 3 + body_length(FLAG_ACCEL | FLAG_GYRO) + 2

    def __init__(self, sensor_id_base: int = 0) -> None:
        super().__init__()
        self.sensor_id_base = int(sensor_id_base)
        self._clock = Unwrapper(32)

    def reset(self) -> None:
        super().reset()
        self._clock.reset()  # the hub may have restarted its clock

    def _step(self):
        if not self._seek(SYNC):
            return NEED_MORE
        buf = self._buf
        if len(buf) < 5:
            return NEED_MORE
        length, flags = buf[2], buf[4]
        if flags & ~(FLAG_ACCEL | FLAG_GYRO) or length != body_length(flags):
            self._drop_corrupt()
            return None
        total = 3 + length + 2
        if len(buf) < total:
            return NEED_MORE
        body = bytes(buf[2:3 + length])
        (crc,) = _CRC.unpack_from(buf, 3 + length)
        if crc16_ccitt_false(body) != crc:
            self._drop_corrupt()
            return None
        self._consume(total)
        sensor, flags, t_us, *q = _HEADER.unpack_from(body, 1)
        quat = unit_quaternion(q)
        if quat is None or sensor > MAX_SENSOR_ID:
            self.invalid += 1
            return None
        at = 1 + _HEADER.size
        accel = gyro = None
        if flags & FLAG_ACCEL:
            accel = np.array(_VEC.unpack_from(body, at), dtype=np.float64) / ACCEL_SCALE
            at += _VEC.size
        if flags & FLAG_GYRO:
            gyro = np.array(_VEC.unpack_from(body, at), dtype=np.float64) / GYRO_SCALE
        t_s = self._clock(t_us) * 1e-6
        return ImuSample(self.sensor_id_base + sensor, t_s, quat, accel, gyro)
