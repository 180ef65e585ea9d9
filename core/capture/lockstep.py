"""A synchronous capture driver: one call, one synchronised frame.

It reads every camera source once and drains the IMU sources, then pairs
the IMU samples with the cameras' time by timestamp. With a simulated clock
the whole studio steps one frame at a time (tests, benchmarks, offline
runs); with the monotonic clock it runs live, and a camera that fell behind
delivers its newest frame, as real cameras do.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from core.devices import IMAGE_SILHOUETTE, CameraSource, DeviceError, ImuSource
from core.frames import FrameBundle, ImuBuffer


class LockstepCapture:
    def __init__(self, cameras: Sequence[CameraSource], imus: Sequence[ImuSource],
                 imu_buffer: ImuBuffer | None = None) -> None:
        self.cameras = list(cameras)
        self.imus = list(imus)
        self.buffer = imu_buffer or ImuBuffer()
        self.lost: set[int] = set()
        self._index = 0
        #: called with every batch of IMU samples read (e.g. core.imu.tracking.ImuTracking.add_samples)
        self.on_samples = None

    def open(self) -> None:
        for src in [*self.cameras, *self.imus]:
            src.open()

    def close(self) -> None:
        for src in [*self.cameras, *self.imus]:
            src.close()

    def next_bundle(self, timeout_s: float = 1.0) -> FrameBundle | None:
        """The next frame; None when no camera delivered one within the timeout."""
        masks: list[np.ndarray | None] = []
        times: list[float] = []
        for k, cam in enumerate(self.cameras):
            try:
                frame = cam.read(timeout_s)
            except DeviceError:
                self.lost.add(k)
                frame = None
            if frame is None:
                masks.append(None)
                continue
            self.lost.discard(k)
            if frame.kind != IMAGE_SILHOUETTE:
                raise ValueError(f"camera {cam.name} gives {frame.kind} images; silhouettes expected")
            masks.append(frame.image)
            times.append(frame.t_s)
        if not times:
            return None
        t = float(np.mean(times))
        for src in self.imus:
            samples = src.read(0.0)
            self.buffer.extend(samples)
            if samples and self.on_samples is not None:
                self.on_samples(samples)
        quats, ages = self.buffer.at(t)
        bundle = FrameBundle(self._index, t, tuple(masks), quats, ages)
        self._index += 1
        return bundle
