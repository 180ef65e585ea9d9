"""The recorder: writes a take on its own thread, never dropping a sample.

Feeds:
- cameras: one lossless "next" reader per camera ring (core.capture.ring);
  every frame pushed into the ring is written, and frames the ring had to
  overwrite before the recorder got to them are counted (`lost_frames`);
- `put_frame`: the same for a caller without rings (a lockstep driver);
- `put_imu`: IMU samples (already routed to bone ids by the pairing);
- `put_joints`: the joints the live path solved.

Everything received is kept in memory until the next flush, at most
`flush_s` (≤ 1 s) later, when it is appended to the take's streams and
synced to the disk. So a crash loses at most the last second.

A write that fails (a full disk, a folder that went away or cannot be
written) stops the recording: `error` says why in words, what was written
before stays a readable take, and the live capture is not disturbed (the
feeds keep accepting and discard). `stop()` drains what is left, writes it,
and closes the take.
"""

from __future__ import annotations

import errno
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.capture.ring import NextReader
from core.devices import IMAGE_SILHOUETTE, CameraFrame, ImuSample
from core.take.layout import TakeError
from core.take.writer import TakeWriter

log = logging.getLogger(__name__)

MAX_FLUSH_S = 1.0
JPEG_QUALITY = 90


def describe_os_error(exc: OSError, where: str | Path) -> str:
    """An OSError from writing a take, in an animator's words."""
    if exc.errno == errno.ENOSPC:
        what = "the disk is full"
    elif exc.errno == errno.EDQUOT:
        what = "the disk quota is used up"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        what = "the folder cannot be written (permission denied)"
    elif exc.errno == errno.EROFS:
        what = "the disk is read-only"
    elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
        what = "the take folder is gone or is not a folder"
    elif exc.errno == errno.EFBIG:
        what = "a file grew beyond what the disk allows"
    else:
        what = exc.strerror or str(exc)
    return f"{what} ({where})"


@dataclass
class RecordingStats:
    """What the recorder has written so far."""

    camera_frames: list[int] = field(default_factory=list)
    imu_samples: int = 0
    live_frames: int = 0
    bytes: int = 0
    flushes: int = 0
    lost_frames: int = 0  # camera frames overwritten in a ring before the recorder read them
    discarded: int = 0  # items received after the recording stopped on an error


class Recorder:
    def __init__(self, root: str | Path, meta: dict, n_cameras: int,
                 camera_readers: Sequence[NextReader[CameraFrame]] = (),
                 video: bool = False, flush_s: float = 0.5,
                 silhouette_of: Callable[[CameraFrame], np.ndarray | None] | None = None,
                 on_error: Callable[["Recorder"], None] | None = None) -> None:
        """root: a new (or empty) take folder; meta: metadata for take.json
        (it must hold t0_s, frame_rate and the camera names under "cameras").
        silhouette_of: the mask for a camera frame that is not a silhouette
        already (a background model), or None to store video only.
        on_error: called with this recorder on its thread once a write failed
        (`error` says why; the take keeps what was written)."""
        if not 0 < flush_s <= MAX_FLUSH_S:
            raise ValueError(f"flush_s must be in (0, {MAX_FLUSH_S}] s, got {flush_s}")
        self.flush_s = flush_s
        self.video = video
        self.silhouette_of = silhouette_of
        self.on_error = on_error
        self.readers = list(camera_readers)
        self.stats = RecordingStats(camera_frames=[0] * n_cameras)
        self.error: str | None = None
        try:
            self._writer = TakeWriter(root, {**meta, "video": video})
        except OSError as exc:
            raise TakeError(f"cannot start recording: {describe_os_error(exc, root)}") from None
        self.root = self._writer.layout.root
        self._n = n_cameras
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._pending_frames: list[list[tuple[float, int, np.ndarray | None, np.ndarray | None]]] = \
            [[] for _ in range(n_cameras)]
        self._pending_imu: list[ImuSample] = []
        self._pending_joints: list[tuple[float, int, np.ndarray, np.ndarray]] = []
        self._closed = False
        self._sync_asked = threading.Event()
        self._synced = threading.Event()

    # -- feeds (any thread) ------------------------------------------------------
    def put_frame(self, camera: int, t_s: float, seq: int, mask: np.ndarray | None,
                  image: np.ndarray | None = None) -> None:
        self._queue.put(("frame", camera, t_s, seq, mask, image))

    def put_imu(self, samples: Sequence[ImuSample]) -> None:
        if samples:
            self._queue.put(("imu", list(samples)))

    def put_joints(self, t_s: float, index: int, joints_mm: np.ndarray, confidence: np.ndarray) -> None:
        self._queue.put(("joints", float(t_s), int(index), np.asarray(joints_mm), np.asarray(confidence)))

    # -- control ---------------------------------------------------------------
    def start(self) -> "Recorder":
        self._thread.start()
        return self

    def sync(self, timeout_s: float = 10.0) -> bool:
        """Write everything received so far now (instead of at the next
        interval) and wait until it is on the disk; False on timeout or
        when the recording has stopped."""
        if not self._thread.is_alive() or self.error is not None:
            return False
        self._synced.clear()
        self._sync_asked.set()
        return self._synced.wait(timeout_s)

    @property
    def recording(self) -> bool:
        return self._thread.is_alive() and self.error is None

    def stop(self, timeout_s: float = 30.0) -> RecordingStats:
        """Write what is left, close the take; the stats. Safe to call twice."""
        self._stop.set()
        self._sync_asked.set()  # wake the thread now
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return self.stats

    # -- the thread ---------------------------------------------------------------
    def _collect(self) -> None:
        for k, reader in enumerate(self.readers):
            while (got := reader.read(0.0)) is not None:
                self.stats.lost_frames += got.skipped
                frame = got.item
                if frame.kind == IMAGE_SILHOUETTE:
                    mask = frame.image
                else:
                    mask = self.silhouette_of(frame) if self.silhouette_of is not None else None
                image = (frame.image if frame.colour is None else frame.colour) if self.video else None
                self._pending_frames[k].append((frame.t_s, got.seq, mask, image))
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item[0] == "frame":
                _, k, t, seq, mask, image = item
                if 0 <= k < self._n:
                    self._pending_frames[k].append((t, seq, mask, image if self.video else None))
            elif item[0] == "imu":
                self._pending_imu.extend(item[1])
            else:
                self._pending_joints.append(item[1:])

    def _flush(self) -> None:
        w = self._writer
        for k, items in enumerate(self._pending_frames):
            if not items:
                continue
            with_mask = [(t, s, m) for t, s, m, _ in items if m is not None]
            if with_mask:
                w.write_silhouettes(k, np.array([t for t, _, _ in with_mask]),
                                    np.array([s for _, s, _ in with_mask]), [m for _, _, m in with_mask])
            if self.video:
                jpegs, ts, seqs = [], [], []
                for t, s, m, img in items:
                    src = img if img is not None else (None if m is None else m * np.uint8(255))
                    if src is not None:
                        jpegs.append(_jpeg(src))
                        ts.append(t)
                        seqs.append(s)
                w.write_video(k, np.array(ts), np.array(seqs), jpegs)
            self.stats.camera_frames[k] += len(with_mask)
            self._pending_frames[k] = []
        if self._pending_imu:
            imu = self._pending_imu
            acc = np.array([np.full(3, np.nan) if s.accel_mps2 is None else s.accel_mps2 for s in imu])
            w.write_imu(np.array([s.t_s for s in imu]), np.array([s.sensor_id for s in imu]),
                        np.array([s.quat_wxyz for s in imu]), acc)
            self.stats.imu_samples += len(imu)
            self._pending_imu = []
        if self._pending_joints:
            j = self._pending_joints
            w.write_live(np.array([x[0] for x in j]), np.array([x[1] for x in j]),
                         np.stack([x[2] for x in j]), np.stack([x[3] for x in j]))
            self.stats.live_frames += len(j)
            self._pending_joints = []
        self.stats.bytes = w.bytes_written
        self.stats.flushes += 1

    def _run(self) -> None:
        last = time.monotonic()
        try:
            while not self._stop.is_set():
                asked = self._sync_asked.is_set()
                self._collect()
                if asked or time.monotonic() - last >= self.flush_s:
                    self._flush()
                    last = time.monotonic()
                    if asked:
                        self._sync_asked.clear()
                        self._synced.set()
                self._sync_asked.wait(min(0.05, self.flush_s / 4))
            self._collect()
            self._flush()
            self._writer.close(stats=self._stats_dict())
        except OSError as exc:
            self.error = f"recording stopped: {describe_os_error(exc, getattr(exc, 'filename', None) or self.root)}; " \
                         "everything written before is kept"
            log.error("%s", self.error)
            self._discard_after_error()
        finally:
            self._closed = True

    def _stats_dict(self) -> dict:
        s = self.stats
        return {"camera_frames": s.camera_frames, "imu_samples": s.imu_samples, "live_frames": s.live_frames,
                "lost_frames": s.lost_frames, "bytes": s.bytes}

    def _discard_after_error(self) -> None:
        try:  # say so in take.json too, if the disk still takes that much
            self._writer.close(finished=False, stopped_because=self.error, stats=self._stats_dict())
        except OSError:
            pass
        if self.on_error is not None:  # the owner stops this recorder (from another thread)
            self.on_error(self)
        # Keep the feeds harmless: drain without writing until stopped.
        while not self._stop.is_set():
            n = 0
            while True:
                try:
                    self._queue.get_nowait()
                    n += 1
                except queue.Empty:
                    break
            for reader in self.readers:
                while reader.read(0.0) is not None:
                    n += 1
            self.stats.discarded += n
            self._stop.wait(0.1)


def _jpeg(image: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("an image that JPEG cannot encode")
    return buf.tobytes()
