"""Silhouettes from a live colour camera: a camera source that segments.

`SegmentedCamera` wraps a camera source that delivers colour (or grey)
images and hands on silhouette frames, segmented on the camera's own
capture thread by a background model (core.silhouette.background), so K
cameras segment in parallel and the live solve gets masks as it does from
the simulated studio. Each silhouette frame keeps the image it came from
(`CameraFrame.colour`): the previews show it, a recording with video
stores it.

The background: `capture_background(n)` asks for the next `n` frames of the
empty stage (the performer steps out of every view); when they are in, the
model is fitted on the capture thread and from the next frame on the
camera delivers silhouettes. Until then (and after a failed capture) it
hands on its images unchanged, which the live path counts as "no
silhouette" for that camera. `background_state` says where it stands, for
the Studio panel. A background is tied to the lighting and the camera's
placement: capture it again when either changes.

Image size: silhouettes are cut at `size`, the size of the calibration
the solve uses. A camera that delivers another size of the same shape
(1920x1080 for a 480x270 calibration, the size the network was trained at)
has its image resized to it first (area averaging; the lens model scales
exactly), which also keeps the segmentation's cost that of the small image
(measured 19 ms at 480x270 on one core; full HD would be 16 times that).
Another shape is a DeviceError that names both sizes. The full image stays
in `CameraFrame.colour` for the previews and the recorded video.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from core.devices import IMAGE_SILHOUETTE, CameraFrame, CameraSource, DeviceError
from core.silhouette.background import BackgroundModel, make_background_model

# Silhouettes are cut and solved at most this wide: the image size the
# network was trained at (the simulated studio's 1920x1080 cameras at 0.25).
# A calibration of wider cameras is scaled down to it (CameraRig.at_most_width).
SILHOUETTE_WIDTH_PX = 480

NONE, CAPTURING, READY, FAILED = "none", "capturing", "ready", "failed"


@dataclass(frozen=True)
class BackgroundState:
    """state: "none", "capturing", "ready" or "failed"; frames: taken so far
    of `wanted` while capturing; error: why the last capture failed."""

    state: str
    frames: int = 0
    wanted: int = 0
    error: str = ""

    def words(self) -> str:
        if self.state == CAPTURING:
            return f"capturing the empty stage ({self.frames}/{self.wanted})"
        if self.state == FAILED:
            return f"background failed: {self.error}"
        return {NONE: "no background yet", READY: "background ready"}[self.state]


class SegmentedCamera:
    """A CameraSource of silhouettes over a CameraSource of images.

    size: the calibrated (width, height) the masks must have, or None to
    keep the camera's own. model: a BackgroundModel, or the name of one
    ("plate", "mog2")."""

    def __init__(self, source: CameraSource, size: tuple[int, int] | None = None,
                 model: BackgroundModel | str = "plate") -> None:
        self.source = source
        self.name = source.name
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.model = make_background_model(model) if isinstance(model, str) else model
        self._lock = threading.Lock()
        self._state = BackgroundState(NONE)
        self._frames: list[np.ndarray] = []
        self._wanted = 0

    # -- CameraSource ----------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        return int(getattr(self.source, "dropped", 0))

    def open(self) -> None:
        self.source.open()

    def close(self) -> None:
        self.source.close()

    def read(self, timeout_s: float = 1.0) -> CameraFrame | None:
        frame = self.source.read(timeout_s)
        if frame is None or frame.kind == IMAGE_SILHOUETTE:
            return frame
        image = frame.image
        self._check_size(image)
        with self._lock:
            collecting = self._wanted > 0
            if collecting:
                self._frames.append(image.copy())
                done = len(self._frames) >= self._wanted
                self._state = BackgroundState(CAPTURING, len(self._frames), self._wanted)
        if collecting:
            if done:
                self._fit()
            return frame
        if not self.model.ready:
            return frame
        mask = self.model.segment(self._small(image))
        return CameraFrame(frame.camera, frame.t_s, mask, IMAGE_SILHOUETTE, colour=image)

    # -- the background ----------------------------------------------------------------------
    def capture_background(self, frames: int = 15) -> None:
        """Take the next `frames` frames as the empty stage (any thread)."""
        if frames < 2:
            raise ValueError("a background needs at least 2 frames of the empty stage")
        with self._lock:
            self._frames = []
            self._wanted = int(frames)
            self._state = BackgroundState(CAPTURING, 0, self._wanted)

    @property
    def background_state(self) -> BackgroundState:
        with self._lock:
            return self._state

    def _fit(self) -> None:
        with self._lock:
            frames, self._frames, self._wanted = self._frames, [], 0
        try:
            self.model.reset()
            self.model.capture([self._small(f) for f in frames])
        except (ValueError, RuntimeError) as exc:
            state = BackgroundState(FAILED, len(frames), len(frames), str(exc))
        else:
            state = BackgroundState(READY, len(frames), len(frames))
        with self._lock:
            if self._wanted == 0:  # no new request came in meanwhile
                self._state = state

    def _small(self, image: np.ndarray) -> np.ndarray:
        """The image as BGR at `size`."""
        image = _bgr(image)
        if self.size is not None and image.shape[1::-1] != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        return image

    def _check_size(self, image: np.ndarray) -> None:
        if self.size is None:
            return
        w, h = self.size
        ih, iw = image.shape[:2]
        if (iw, ih) != (w, h) and iw * h != ih * w:
            raise DeviceError(f"{self.name} delivers {iw}x{ih} images, but its calibration is for {w}x{h}: "
                              "set the camera to that size or calibrate it at this one")


def _bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
