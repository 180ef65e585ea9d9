"""A camera source over OpenCV's VideoCapture: a local camera by index, a
network stream by URL (HTTP MJPEG, RTSP, ...) or a video file played as if
it were a camera.

Timestamps: `read` grabs the frame and takes `time.monotonic()` the moment
the grab returns, before decoding, so decoding time does not skew views
against each other. What sits between the sensor and the grab (the driver's
buffers, the network) is a latency that timestamp cannot see; it is roughly
constant for cameras of one kind.

A live source (index or URL) that stops delivering raises DeviceError
("stopped answering"); the capture thread then reconnects. For network
streams the wait is bounded by `stall_timeout_s`, so a silent stream is
noticed instead of blocking forever.

A video file is paced at its frame rate (or `fps`, if given), with monotonic
timestamps, like a camera. At its end `read` raises `EndOfStream` (a
DeviceError the capture thread does not retry), or starts again if `loop`.
Recorded multi-view footage with its own timestamps is the job of
`plugins.cameras.video_files`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import cv2
import numpy as np

from core.devices import IMAGE_BGR, IMAGE_GRAY, CameraFrame, DeviceError, EndOfStream

log = logging.getLogger(__name__)

BACKENDS = {
    "any": cv2.CAP_ANY, "ffmpeg": cv2.CAP_FFMPEG, "gstreamer": cv2.CAP_GSTREAMER,
    "v4l2": cv2.CAP_V4L2, "dshow": cv2.CAP_DSHOW, "msmf": cv2.CAP_MSMF,
    "avfoundation": cv2.CAP_AVFOUNDATION,
}
DEVICE, STREAM, FILE = "device", "stream", "file"
# Consecutive frames that arrive but will not decode before the source counts as broken.
MAX_BAD_FRAMES = 10


@dataclass(frozen=True)
class CameraSettings:
    """What a camera delivers: pixels and frames per second (0 when unknown)."""
    width: int
    height: int
    fps: float


def source_kind(source: int | str) -> str:
    if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit()):
        return DEVICE
    return STREAM if "://" in source else FILE


class OpenCVCamera:
    """One view from cv2.VideoCapture.

    source: a device index (0, 1, ... or "0"), a stream URL or a video file.
    width, height, fps: settings asked of a device; after `open`, `actual`
    holds what it really gives (devices often round to a mode they support).
    Streams and files deliver what they hold; for a file `fps` is the
    playback rate. fourcc: a device's pixel format (e.g. "MJPG", which many
    USB cameras need for high resolutions at full rate).
    index: the camera's place in the rig (CameraFrame.camera).
    backend: an OpenCV backend name (see BACKENDS) or cv2.CAP_* number;
    default: FFmpeg for URLs, OpenCV's choice otherwise.
    """

    def __init__(self, source: int | str, width: int | None = None, height: int | None = None,
                 fps: float | None = None, name: str | None = None, index: int = 0,
                 backend: str | int | None = None, fourcc: str | None = None, loop: bool = False,
                 open_timeout_s: float = 5.0, stall_timeout_s: float = 3.0) -> None:
        self.kind = source_kind(source)
        self.source: int | str = int(source) if self.kind == DEVICE else str(source)
        self.requested = (width, height, fps)
        self.index = int(index)
        self.name = name or f"opencv:{self.source}"
        self.backend = _backend_id(backend, self.kind)
        if fourcc is not None and len(fourcc) != 4:
            raise ValueError(f"a fourcc has four characters, not {fourcc!r}")
        self.fourcc = fourcc
        self.loop = loop
        self.open_timeout_s = open_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.actual: CameraSettings | None = None
        self.frames = 0
        self.dropped = 0  # frames that arrived but would not decode
        self._cap: cv2.VideoCapture | None = None
        self._bad_in_row = 0
        self._due = 0.0  # when a file's next frame is due (monotonic s)

    # -- open / close -----------------------------------------------------

    def open(self) -> None:
        self.close()
        if self.kind == FILE and not os.path.isfile(self.source):
            raise DeviceError(f"{self.name}: video file {self.source!r} does not exist")
        params: list[int] = []
        if self.kind == STREAM:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000),
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.stall_timeout_s * 1000)]
        cap = cv2.VideoCapture(self.source, self.backend, params)
        if not cap.isOpened():
            cap.release()
            raise DeviceError(f"{self.name}: could not open {self._what()}; {self._advice()}")
        if self.kind == DEVICE:
            self._apply_settings(cap)
        self._cap = cap
        self.actual = CameraSettings(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                                     int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                                     float(cap.get(cv2.CAP_PROP_FPS)))
        self._bad_in_row = 0
        self._due = time.monotonic()
        self._report_settings()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    @property
    def is_open(self) -> bool:
        return self._cap is not None

    def _apply_settings(self, cap: cv2.VideoCapture) -> None:
        width, height, fps = self.requested
        if self.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, float(width))
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, float(height))
        if fps:
            cap.set(cv2.CAP_PROP_FPS, float(fps))

    def _report_settings(self) -> None:
        width, height, fps = self.requested
        a = self.actual
        if self.kind != DEVICE or a is None:
            return
        if (width and width != a.width) or (height and height != a.height) or \
                (fps and a.fps and abs(fps - a.fps) > 0.5):
            log.warning("%s: asked for %sx%s at %s fps, the device gives %dx%d at %.3g fps",
                        self.name, width or "-", height or "-", fps or "-", a.width, a.height, a.fps)

    def _what(self) -> str:
        return {DEVICE: f"camera {self.source}", STREAM: f"stream {self.source}",
                FILE: f"video file {self.source!r}"}[self.kind]

    def _advice(self) -> str:
        if self.kind == DEVICE:
            return ("check that it is plugged in, not in use by another program, and that this "
                    "user may use it (Linux: /dev/video* and the 'video' group; macOS and "
                    "Windows: the camera privacy settings)")
        if self.kind == STREAM:
            return ("check the address, port and path, that the camera or server is on and "
                    "reachable from this computer, and that it serves a format FFmpeg reads "
                    "(MJPEG over HTTP, RTSP/H.264)")
        return "check that the file is a complete video in a format FFmpeg decodes"

    # -- read -------------------------------------------------------------

    def read(self, timeout_s: float = 1.0) -> CameraFrame | None:
        """The next frame. Live sources block until one arrives (streams at
        most `stall_timeout_s`); a file waits for its frame's time and returns
        None if that is further away than `timeout_s`."""
        cap = self._cap
        if cap is None:
            raise DeviceError(f"{self.name} is not open")
        if self.kind == FILE and not self._wait_for_due(timeout_s):
            return None
        if not cap.grab():
            if self.kind != FILE:
                raise DeviceError(f"{self.name} stopped answering: no frame from {self._what()}")
            if not self.loop:
                raise EndOfStream(f"{self.name}: end of file after {self.frames} frames")
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            if not cap.grab():
                raise DeviceError(f"{self.name}: {self._what()} could not be played again from the start")
        t_s = time.monotonic()
        ok, image = cap.retrieve()
        if not ok or image is None:
            self.dropped += 1
            self._bad_in_row += 1
            if self._bad_in_row >= MAX_BAD_FRAMES:
                raise DeviceError(f"{self.name}: {MAX_BAD_FRAMES} frames in a row would not decode")
            return None
        self._bad_in_row = 0
        image, kind = _as_bgr_or_gray(image)
        if self.frames == 0 and self.actual is not None:
            h, w = image.shape[:2]
            self.actual = CameraSettings(w, h, self.actual.fps)
        self.frames += 1
        return CameraFrame(self.index, t_s, image, kind)

    def _wait_for_due(self, timeout_s: float) -> bool:
        period = 1.0 / self._playback_fps()
        now = time.monotonic()
        if now > self._due + period:
            self._due = now  # fell behind: carry on from now rather than rush to catch up
        wait = self._due - now
        if wait > timeout_s:
            time.sleep(max(0.0, timeout_s))
            return False
        if wait > 0:
            time.sleep(wait)
        self._due += period
        return True

    def _playback_fps(self) -> float:
        fps = self.requested[2] or (self.actual.fps if self.actual else 0.0)
        return fps if fps and fps > 0 else 30.0


def _as_bgr_or_gray(image: np.ndarray) -> tuple[np.ndarray, str]:
    if image.ndim == 2:
        return image, IMAGE_GRAY
    if image.shape[2] == 1:
        return image[:, :, 0].copy(), IMAGE_GRAY
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR), IMAGE_BGR
    return image, IMAGE_BGR


def _backend_id(backend: str | int | None, kind: str) -> int:
    if backend is None:
        return cv2.CAP_FFMPEG if kind == STREAM else cv2.CAP_ANY
    if isinstance(backend, str):
        try:
            return BACKENDS[backend.lower()]
        except KeyError:
            raise ValueError(f"unknown OpenCV backend {backend!r}; one of {', '.join(BACKENDS)}") from None
    return int(backend)
