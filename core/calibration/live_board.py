"""Board views from real cameras, for the Cameras panel's calibration.

`LiveBoardViews` offers what `SimulatedBoardCalibration` offers the panel
(intrinsics, rig moments, the board on the floor), from the running
studio's own camera images instead of rendered ones. It runs on the
calibration's worker thread and polls each camera's newest frame (its
colour image, which a segmenting camera keeps beside the silhouette) every
`poll_s`; the board is detected in the full-size image.

- Intrinsics, per camera: a view is taken when the board is found at
  least `min_gap_s` after the camera's last taken view and has moved since
  (its corners' centre by more than `min_move` of the image width, or its
  apparent size by more than that fraction), so holding the board still
  does not fill the quota with one view. The coverage overlay says which
  parts of the image the board has not visited yet.
- Rig moments: the cameras' newest frames of one instant (within half a
  frame period of each other); a moment is taken when at least two cameras
  see the board, `min_gap_s` after the last.
- The floor: one instant at which at least one camera sees the board lying
  on the floor.

Each wait gives up after `timeout_s` with a CalibrationError that says what
was missing; Cancel (the progress dialog) stops it at the next poll.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from core.calibration.board import BoardDetector, BoardSpec
from core.calibration.guided import BoardOverlay, Steps, board_preview
from core.calibration.intrinsics import CalibrationError, Coverage, MeasuredLens, calibrate_intrinsics
from core.camera.model import Camera
from core.camera.rig import CameraRig
from core.devices import IMAGE_SILHOUETTE
from core.silhouette.live import SILHOUETTE_WIDTH_PX


def uncalibrated_rig(frames, names: list[str]) -> CameraRig | None:
    """Stand-in cameras for real cameras with no calibration yet: each at the
    silhouette size of the images it delivers, a focal length of one image
    width, all at the origin. Only their sizes and names matter (the board
    calibration replaces the rest). frames: each camera's newest frame
    (CaptureSession.newest_frames). None until every camera has delivered."""
    cams = []
    for name, frame in zip(names, frames):
        if frame is None:
            return None
        image = frame.colour if frame.colour is not None else frame.image
        h, w = image.shape[:2]
        K = np.array([[w, 0.0, (w - 1) / 2], [0.0, w, (h - 1) / 2], [0.0, 0.0, 1.0]])
        cams.append(Camera(K, np.zeros(5), np.eye(3), np.zeros(3), (w, h), name))
    return CameraRig(tuple(cams)).at_most_width(SILHOUETTE_WIDTH_PX)


class LiveBoardViews:
    def __init__(self, newest_frames: Callable[[], list], names: list[str], fps: float, wall_board: BoardSpec,
                 rig_board: BoardSpec,
                 preview_width_px: int, show: Callable[[BoardOverlay], None] = lambda o: None,
                 poll_s: float = 0.1, min_gap_s: float = 0.5, min_move: float = 0.04,
                 timeout_s: float = 600.0) -> None:
        self.newest_frames = newest_frames  # each camera's newest frame (CaptureSession.newest_frames)
        self.names = names
        self.half_period_s = 0.5 / fps
        self.wall_board, self.rig_board = wall_board, rig_board
        self.preview_width_px = preview_width_px
        self.show = show
        self.poll_s, self.min_gap_s, self.min_move = poll_s, min_gap_s, min_move
        self.timeout_s = timeout_s
        self.sizes: dict[int, tuple[int, int]] = {}  # each camera's image size, as seen

    # -- frames ------------------------------------------------------------------------------
    def _images(self) -> list[tuple[float, np.ndarray] | None]:
        """(t_s, full-size image) of each camera's newest frame (None: no image yet)."""
        out = []
        for frame in self.newest_frames():
            if frame is None:
                out.append(None)
            elif frame.colour is not None:
                out.append((frame.t_s, frame.colour))
            elif frame.kind != IMAGE_SILHOUETTE:
                out.append((frame.t_s, frame.image))
            else:
                out.append(None)  # a source that gives silhouettes only
        for k, got in enumerate(out):
            if got is not None:
                self.sizes[k] = (got[1].shape[1], got[1].shape[0])
        return out

    def _wait(self, steps: Steps, started: float, what: str) -> None:
        steps.progress(steps.done, steps.total)  # raises Cancelled once the user cancelled
        if time.monotonic() - started > self.timeout_s:
            raise CalibrationError(f"gave up after {self.timeout_s:.0f} s: {what}")
        time.sleep(self.poll_s)

    def _overlay(self, k: int, image: np.ndarray, det, covered, text: str, fraction=None) -> None:
        grey = image if image.ndim == 2 else image.mean(axis=2).astype(np.uint8)
        self.show(BoardOverlay(k, self.names[k], board_preview(grey, None if det is None else det.pixels, covered,
                                                               self.preview_width_px), text, fraction))

    # -- intrinsics -----------------------------------------------------------------------------
    def intrinsics(self, views: int, steps: Steps) -> tuple[tuple[Camera, ...], list]:
        """Per camera `views` handheld board views, then calibrateCamera.
        Cameras (R = I, t = 0) at each camera's own image size, and the results."""
        detector = BoardDetector(self.wall_board)
        n = len(self.names)
        found: list[list] = [[] for _ in range(n)]
        coverage: list[Coverage | None] = [None] * n
        last_t = [-np.inf] * n
        seen_t = [None] * n
        started = time.monotonic()
        while min(len(f) for f in found) < views:
            for k, got in enumerate(self._images()):
                if got is None or len(found[k]) >= views or got[0] == seen_t[k]:
                    continue
                t, image = got
                seen_t[k] = t
                if coverage[k] is None:
                    coverage[k] = Coverage((image.shape[1], image.shape[0]))
                det = detector.detect(image) if t - last_t[k] >= self.min_gap_s else None
                if det is not None and self._moved(det, found[k], image.shape[1]):
                    found[k].append(det)
                    coverage[k].add(det)
                    last_t[k] = t
                    steps.tick()
                cov = coverage[k]
                missing = cov.missing_regions()
                text = (f"{self.names[k]}: {len(found[k])}/{views} views, {cov.fraction:.0%} of the image covered"
                        + (f"; still to visit: {', '.join(missing)}" if missing else ""))
                self._overlay(k, image, det, cov.covered, text, cov.fraction)
            if min(len(f) for f in found) < views:
                short = [f"{self.names[k]} {len(f)}/{views}" for k, f in enumerate(found) if len(f) < views]
                self._wait(steps, started, f"board views still missing: {', '.join(short)}")
        cams, results = [], []
        for k, dets in enumerate(found):
            try:
                res = calibrate_intrinsics(dets, self.wall_board, name=self.names[k])
            except CalibrationError as exc:
                raise CalibrationError(f"camera {self.names[k]}: {exc}") from exc
            results.append(res)
            cams.append(MeasuredLens.of(res, self.names[k]))
        return tuple(cams), results

    def _moved(self, det, taken: list, width: int) -> bool:
        if not taken:
            return True
        prev = taken[-1]
        shift = np.linalg.norm(det.pixels.mean(0) - prev.pixels.mean(0)) / width
        spread, prev_spread = det.pixels.std(0).sum(), prev.pixels.std(0).sum()
        return shift > self.min_move or abs(spread - prev_spread) / max(prev_spread, 1e-9) > self.min_move

    # -- the rig ----------------------------------------------------------------------------------
    # The floor is its own step (Set floor): right after the walk the board is still held up.
    floor_in_rig = False

    def at_rig_size(self, cam: Camera, k: int) -> Camera:
        """Camera k's intrinsics at the size its rig views are detected at (its own)."""
        size = self.sizes.get(k, cam.size)
        return cam.at_size(size)

    def _instant(self, seen: float | None) -> tuple[float, list] | None:
        """The cameras' newest images of one instant newer than `seen` (None for a camera not at it)."""
        images = self._images()
        times = [g[0] for g in images if g is not None]
        if not times or max(times) == seen:
            return None
        newest = max(times)
        return newest, [g[1] if g is not None and abs(g[0] - newest) < self.half_period_s else None
                        for g in images]

    def _moment(self, steps: Steps, started: float, min_cameras: int, what: str, text: str,
                after_s: float = -np.inf) -> list:
        detector = BoardDetector(self.rig_board)
        seen = None
        while True:
            got = self._instant(seen)
            if got is not None:
                seen, images = got
                if seen - after_s >= self.min_gap_s:
                    row = [None if img is None else detector.detect(img) for img in images]
                    for k, (img, det) in enumerate(zip(images, row)):
                        if img is not None:
                            self._overlay(k, img, det, None,
                                          f"{self.names[k]}: {text}, {0 if det is None else len(det)} corners")
                    if sum(d is not None for d in row) >= min_cameras:
                        return row
            self._wait(steps, started, what)

    def rig_views(self, moments: int, steps: Steps, floor: bool = False) -> list:
        """detections[m][k] at each camera's own size: the board walked
        around the area, seen by two cameras or more at each moment."""
        out, started, last = [], time.monotonic(), -np.inf
        for m in range(moments):
            row = self._moment(steps, started, 2, f"{m} of {moments} board positions seen by two cameras or more",
                               f"board position {m + 1}/{moments}", after_s=last)
            last = max(g[0] for g in self._images() if g is not None)
            out.append(row)
            steps.tick()
        if floor:
            out.append(self.floor_view(steps))
        return out

    def floor_view(self, steps: Steps) -> list:
        """One instant of the board lying on the floor, seen by a camera or more."""
        row = self._moment(steps, time.monotonic(), 1, "no camera sees the board on the floor",
                           "board on the floor")
        steps.tick()
        return row
