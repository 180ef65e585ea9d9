"""WitMotion standard serial protocol (WT901, JY901, HWT905 and relatives).

Every frame is 11 bytes: 0x55, a type byte, four little-endian int16 values
and a checksum, the low byte of the sum of the first ten bytes. The types
read here (scales from WitMotion's datasheets, see docs/IMU_PROTOCOL.md):

- 0x51 acceleration: v / 32768 * 16 g (4th value: temperature, ignored)
- 0x52 angular rate: v / 32768 * 2000 deg/s (4th value: temperature)
- 0x53 angles: roll, pitch, yaw = v / 32768 * 180 deg (4th value: version)
- 0x59 quaternion: q0..q3 = v / 32768, q0 the scalar part (w, x, y, z)

Other frame types (time, magnetometer, pressure, GPS, ...) are checked and
skipped. A WitMotion device is one sensor; its id is given to the parser.

Samples: one per quaternion frame, with the latest acceleration and rate
seen attached. A device set to send angles but no quaternion gets one sample
per angle frame, the angles turned into a rotation as WitMotion defines them:
Z-Y-X (yaw, then pitch, then roll about the rotated axes), R = Rz(yaw)
Ry(pitch) Rx(roll). Angle frames stop producing samples once the device has
sent a quaternion frame, so a device that sends both yields each pose once.
WitMotion frames carry no device clock: ``t_s`` is NO_DEVICE_TIME.
"""

from __future__ import annotations

import struct

import numpy as np
from scipy.spatial.transform import Rotation

from core.devices import ImuSample
from core.rotations import to_wxyz
from plugins.imu.parsing import NEED_MORE, NO_DEVICE_TIME, StreamParser, unit_quaternion

HEADER = 0x55
FRAME_BYTES = 11
ACCEL = 0x51
GYRO = 0x52
ANGLES = 0x53
QUATERNION = 0x59
# Frame types of the standard protocol (0x50 time ... 0x5A GPS accuracy, and
# 0x5F register read-back); a 0x55 followed by anything else is not a frame.
KNOWN_TYPES = frozenset(range(0x50, 0x5B)) | {0x5F}

G_MPS2 = 9.8  # WitMotion's datasheets define g as 9.8 m/s^2 for this scale
ACCEL_MPS2_PER_COUNT = 16.0 * G_MPS2 / 32768.0
GYRO_RADPS_PER_COUNT = np.radians(2000.0) / 32768.0
ANGLE_DEG_PER_COUNT = 180.0 / 32768.0
QUAT_PER_COUNT = 1.0 / 32768.0

_VALUES = struct.Struct("<4h")


def checksum(frame10: bytes) -> int:
    return sum(frame10) & 0xFF


def encode_frame(kind: int, values) -> bytes:
    """One frame of type `kind` holding four raw int16 `values`."""
    head = bytes((HEADER, kind)) + _VALUES.pack(*(int(v) for v in values))
    return head + bytes((checksum(head),))


def _counts(values, per_count: float) -> list[int]:
    v = np.clip(np.round(np.asarray(values, dtype=np.float64) / per_count), -32768, 32767)
    return [int(x) for x in v]


def encode_quaternion(quat_wxyz) -> bytes:
    """A 0x59 frame, as the device sends it (q0 = w first)."""
    return encode_frame(QUATERNION, _counts(quat_wxyz, QUAT_PER_COUNT))


def encode_angles(roll_deg: float, pitch_deg: float, yaw_deg: float, version: int = 0) -> bytes:
    return encode_frame(ANGLES, _counts([roll_deg, pitch_deg, yaw_deg], ANGLE_DEG_PER_COUNT) + [version])


def encode_accel(accel_mps2, temperature_c: float = 25.0) -> bytes:
    return encode_frame(ACCEL, _counts(accel_mps2, ACCEL_MPS2_PER_COUNT) + [round(temperature_c * 100)])


def encode_gyro(gyro_radps, temperature_c: float = 25.0) -> bytes:
    return encode_frame(GYRO, _counts(gyro_radps, GYRO_RADPS_PER_COUNT) + [round(temperature_c * 100)])


def angles_to_wxyz(roll_deg: float, pitch_deg: float, yaw_deg: float) -> np.ndarray:
    """WitMotion's Euler angles as a scalar-first quaternion: R = Rz(yaw) Ry(pitch) Rx(roll)."""
    rot = Rotation.from_euler("ZYX", [yaw_deg, pitch_deg, roll_deg], degrees=True)
    return to_wxyz(rot)


class WitMotionParser(StreamParser):
    """Incremental parser of WitMotion frames for one sensor (`sensor_id`)."""

    max_packet_bytes = FRAME_BYTES

    def __init__(self, sensor_id: int = 0) -> None:
        super().__init__()
        self.sensor_id = int(sensor_id)
        self.has_quaternion = False
        self._accel: np.ndarray | None = None
        self._gyro: np.ndarray | None = None

    def _step(self):
        if not self._seek(bytes((HEADER,))):
            return NEED_MORE
        buf = self._buf
        if len(buf) < 2:
            return NEED_MORE
        if buf[1] not in KNOWN_TYPES:
            self._skip(1)
            return None
        if len(buf) < FRAME_BYTES:
            return NEED_MORE
        if checksum(buf[:10]) != buf[10]:
            self._drop_corrupt()
            return None
        kind = buf[1]
        values = np.array(_VALUES.unpack_from(buf, 2), dtype=np.float64)
        self._consume(FRAME_BYTES)
        if kind == ACCEL:
            self._accel = values[:3] * ACCEL_MPS2_PER_COUNT
        elif kind == GYRO:
            self._gyro = values[:3] * GYRO_RADPS_PER_COUNT
        elif kind == QUATERNION:
            self.has_quaternion = True
            return self._sample(unit_quaternion(values * QUAT_PER_COUNT))
        elif kind == ANGLES and not self.has_quaternion:
            roll, pitch, yaw = values[:3] * ANGLE_DEG_PER_COUNT
            return self._sample(angles_to_wxyz(roll, pitch, yaw))
        return None

    def _sample(self, quat: np.ndarray | None) -> ImuSample | None:
        if quat is None:
            self.invalid += 1
            return None
        accel = None if self._accel is None else self._accel.copy()
        gyro = None if self._gyro is None else self._gyro.copy()
        return ImuSample(self.sensor_id, NO_DEVICE_TIME, quat, accel, gyro)
