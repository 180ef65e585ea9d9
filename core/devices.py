"""The small protocols every device source implements, real or simulated.

A camera source yields timestamped images of one view; an IMU source yields
timestamped orientation samples of one or more sensors. Drivers stay simple
(open / read / close); core owns the capture threads and the buffers.

Timestamps are monotonic seconds taken as close to the device as possible.
Quaternions are scalar-first (w, x, y, z): sensor frame -> the sensor's own
reference frame (Z up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

# What a camera frame's image holds.
IMAGE_BGR = "bgr"             # uint8 (H, W, 3)
IMAGE_GRAY = "gray"           # uint8 (H, W)
IMAGE_SILHOUETTE = "silhouette"  # uint8 (H, W), 0 background / 1 performer


class DeviceError(RuntimeError):
    """A device could not be opened or stopped answering; the message says which and why."""


class EndOfStream(DeviceError):
    """The source has no more frames (recorded footage played to its end).
    Unlike a lost camera this is not retried. A DeviceError, so code that
    knows only the device protocol treats it as a camera gone."""


@dataclass(frozen=True, eq=False)
class CameraFrame:
    """image: what `kind` says. colour: for a silhouette made from a camera's
    image (core.silhouette.live), that image; None otherwise."""

    camera: int
    t_s: float
    image: np.ndarray
    kind: str = IMAGE_BGR
    colour: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class ImuSample:
    sensor_id: int
    t_s: float
    quat_wxyz: np.ndarray
    accel_mps2: np.ndarray | None = None
    gyro_radps: np.ndarray | None = None


@runtime_checkable
class CameraSource(Protocol):
    """One view. `read` blocks until the next frame or `timeout_s`, and returns
    None on timeout; it raises DeviceError when the camera is gone. A source
    that knows how many frames the device skipped (it fell behind, a frame
    would not decode) says so in an int attribute `dropped`; the capture
    thread reads 0 from one that does not."""

    name: str

    def open(self) -> None: ...

    def read(self, timeout_s: float = 1.0) -> CameraFrame | None: ...

    def close(self) -> None: ...


@runtime_checkable
class ImuSource(Protocol):
    """One sensor or a hub of sensors. `read` returns the samples that arrived
    since the last call (possibly none) after waiting at most `timeout_s`."""

    name: str

    def open(self) -> None: ...

    def read(self, timeout_s: float = 0.1) -> list[ImuSample]: ...

    def close(self) -> None: ...


@runtime_checkable
class CountedImuSource(Protocol):
    """An IMU source that counts its packets (a serial link): `counters()`
    gives what arrived, what was dropped and the garbage per sensor."""

    name: str

    def counters(self): ...
