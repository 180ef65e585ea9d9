"""Threaded capture for the live path and the recorder together.

One capture thread per camera fills its ring (core.capture.threads); one
thread drains the IMU sources into a shared buffer and hands every sample
to its listeners (the recorder). The live path asks for the newest complete
frame (`latest_bundle`), which may skip frames; the recorder reads each
ring with its own lossless reader (`recorder_readers`), made before the
threads start so nothing is missed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Sequence

import numpy as np

from core.capture.ring import NextReader
from core.capture.threads import CaptureGroup, CaptureThread
from core.devices import IMAGE_SILHOUETTE, CameraFrame, CameraSource, DeviceError, ImuSample, ImuSource
from core.events import Event
from core.frames import FrameBundle, ImuBuffer

log = logging.getLogger(__name__)


class ImuThread:
    """Reads IMU sources in a loop; every sample goes to the buffer and the listeners."""

    POLL_S = 0.01

    def __init__(self, sources: Sequence[ImuSource], buffer: ImuBuffer, lock: threading.Lock,
                 route: Callable[[int, list[ImuSample]], list[ImuSample]] | None = None) -> None:
        self.sources = list(sources)
        self.buffer = buffer
        self.lock = lock
        self.route = route
        # `samples` gets the samples after `route` (renumbered to IMU bones, as
        # the solve and the recorder see them); `raw` gets each source's
        # samples as they came, with the source's name (pairing tools). Both
        # are emitted on this thread.
        self.samples_event = Event("IMU samples")
        self.raw_event = Event("IMU samples as they came")
        self.samples = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="imu-capture", daemon=True)

    def start(self) -> None:
        """Open every source (DeviceError / OSError from the first that fails,
        with those opened before it closed again), then start reading."""
        opened = []
        try:
            for s in self.sources:
                s.open()
                opened.append(s)
        except (DeviceError, OSError):
            for s in opened:
                s.close()
            raise
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        for s in self.sources:
            try:
                s.close()
            except (DeviceError, OSError) as exc:
                log.warning("closing IMU source %s: %s", s.name, exc)

    def _run(self) -> None:
        # Sources are polled every POLL_S: a driver whose read returns at once
        # (a simulated hub, a receiver with its own thread) must not spin.
        while not self._stop.is_set():
            for i, src in enumerate(self.sources):
                try:
                    samples = src.read(0.02)
                except (DeviceError, OSError) as exc:
                    msg = f"{src.name}: {exc}"
                    if not self.errors or self.errors[-1] != msg:
                        self.errors.append(msg)
                    samples = []
                if samples:
                    self.raw_event.emit(src.name, samples)
                if self.route is not None:
                    samples = self.route(i, samples)
                if samples:
                    with self.lock:
                        self.buffer.extend(samples)
                    self.samples += len(samples)
                    self.samples_event.emit(samples)
            self._stop.wait(self.POLL_S)


class LiveCapture:
    """Cameras on capture threads and IMUs on their own thread."""

    def __init__(self, cameras: Sequence[CameraSource], imus: Sequence[ImuSource], fps: float,
                 ring_capacity: int = 64, imu_buffer: ImuBuffer | None = None) -> None:
        self.fps = float(fps)
        # One condition every camera's ring notifies on a push: the live path
        # sleeps until a frame arrives (or a deadline), instead of polling.
        self._arrived = threading.Condition()
        self.group = CaptureGroup([CaptureThread(c, capacity=ring_capacity, notify=self._arrived) for c in cameras])
        self._latest = [t.ring.latest_reader() for t in self.group.threads]
        self._newest: list[CameraFrame | None] = [None] * len(self.group)
        self._lock = threading.Lock()
        self.buffer = imu_buffer or ImuBuffer()
        self.imu = ImuThread(imus, self.buffer, self._lock)
        self.skipped = 0  # camera frames the live path passed over
        self._first_seen: dict[float, float] = {}  # frame time -> when its first frame was read (monotonic s)
        self._index = 0
        self._last_t = -np.inf

    def recorder_readers(self) -> list[NextReader[CameraFrame]]:
        """One lossless reader per camera; make them before `start`."""
        return [t.ring.next_reader() for t in self.group.threads]

    def _pushed(self) -> int:
        return sum(t.ring.pushed for t in self.group.threads)

    def newest_frames(self) -> list[CameraFrame | None]:
        """Each camera's newest frame, whatever the live path took (any thread; previews)."""
        return [t.ring.newest() for t in self.group.threads]

    def start(self) -> None:
        self.imu.start()
        self.group.start()

    def stop(self) -> None:
        self.group.stop()
        self.imu.stop()

    def latest_bundle(self, timeout_s: float = 1.0) -> FrameBundle | None:
        """The newest instant newer than the last one returned that most
        cameras have delivered: each camera's newest silhouette within half a
        frame period of it (None for a camera without one), and the IMU
        orientations at that time. None when nothing new arrived in time.

        A camera a frame ahead of the others (it got to the next frame first)
        is left out of that bundle rather than the others: on a busy machine
        cameras skip frames independently, and an instant seen by one camera
        only is no use to the solve."""
        if not self.group.threads:
            return self._imu_bundle(timeout_s)
        half = 0.5 / self.fps
        start = time.monotonic()
        waited = 0.0
        while True:
            pushed = self._pushed()
            now = time.monotonic()
            for k, reader in enumerate(self._latest):
                got = reader.read(0.0)
                if got is not None:
                    self._newest[k] = got.item
                    self.skipped += got.skipped
                    self._first_seen.setdefault(got.item.t_s, now)
            times = sorted({f.t_s for f in self._newest if f is not None and f.t_s > self._last_t}, reverse=True)
            due = timeout_s
            if times:
                live = max(1, sum(1 for t in self.group.threads if t.state == "running"))
                counts = [sum(1 for f in self._newest if f is not None and abs(f.t_s - c) < half) for c in times]
                best = int(np.argmax(counts))  # the first (newest) of the best-seen instants
                chosen = times[best]
                # How long this instant has waited for the other cameras: since its first frame
                # came, not since the call (a worker that was free early must not take the first
                # few cameras of the next instant as late ones).
                first = min((self._first_seen.get(f.t_s, now) for f in self._newest
                             if f is not None and abs(f.t_s - chosen) < half), default=now)
                age = now - first
                if counts[best] >= live or (age >= half and counts[best] * 2 >= live) or age >= 4 * half:
                    break
                # The next moment the choice above could change with no new frame.
                due = min([waited + d - age for d in (half, 4 * half) if d > age] + [timeout_s])
            if waited >= timeout_s:
                return None
            # Sleep until a camera pushes a frame, or until that moment (or the timeout).
            with self._arrived:
                if self._pushed() == pushed:
                    self._arrived.wait(max(0.0, due - waited))
            waited = time.monotonic() - start
        picked = [f if f is not None and abs(f.t_s - chosen) < half else None for f in self._newest]
        # A camera still handing on images (no background yet) has no silhouette.
        masks = tuple(f.image if f is not None and f.kind == IMAGE_SILHOUETTE else None for f in picked)
        t = float(np.mean([f.t_s for f in picked if f is not None]))
        with self._lock:
            quats, ages = self.buffer.at(t)
        self._last_t = max(f.t_s for f in picked if f is not None)
        self._first_seen = {k: v for k, v in self._first_seen.items() if k > self._last_t}
        bundle = FrameBundle(self._index, t, masks, quats, ages)
        self._index += 1
        return bundle


    def _imu_bundle(self, timeout_s: float) -> FrameBundle | None:
        """With no camera the frames keep time themselves: one every frame
        period (host monotonic, the IMU stamps' clock), the IMUs at it. A
        frame whose time has passed while the worker was busy is skipped, as
        a late camera frame is. None when the next one is not due within
        `timeout_s`."""
        period = 1.0 / self.fps
        now = time.monotonic()
        if not np.isfinite(self._last_t):
            self._last_t = now - period
        due = self._last_t + period
        if due < now - period:  # fell behind: the newest instant instead
            late = int((now - due) / period)
            self.skipped += late
            due += late * period
        if due - now > timeout_s:
            time.sleep(max(0.0, timeout_s))
            return None
        time.sleep(max(0.0, due - now))
        with self._lock:
            quats, ages = self.buffer.at(due)
        self._last_t = due
        bundle = FrameBundle(self._index, due, (), quats, ages)
        self._index += 1
        return bundle


class LiveWorker:
    """The live worker: on its own thread, always takes the newest complete
    bundle (stale ones are skipped; `LiveCapture.skipped` counts them) and
    hands it to `handle` (the session's first stage: the volume). `prepare` runs first on the same thread
    (an engine sets its threads and optimised forward there)."""

    def __init__(self, capture: LiveCapture, handle: Callable[[FrameBundle], None],
                 prepare: Callable[[], None] | None = None) -> None:
        self.capture = capture
        self.handle = handle
        self.prepare = prepare
        self.frames = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-solve", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            if self.prepare is not None:
                self.prepare()
            while not self._stop.is_set():
                bundle = self.capture.latest_bundle(timeout_s=0.2)
                if bundle is not None and not self._stop.is_set():
                    self.handle(bundle)
                    self.frames += 1
        except Exception as exc:  # a defect in the solve must not take the recording down
            log.exception("live solve failed")
            self.error = f"{type(exc).__name__}: {exc}"
