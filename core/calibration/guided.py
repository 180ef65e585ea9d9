"""Camera calibration for the Cameras panel, without Qt: the error table's
rows, preview images, the floor fit, and the calibration of the simulated
studio from board views rendered through its rig (see app/panels/cameras.py
for the choices of image sizes and view counts)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.calibration.board import BoardDetector, BoardSpec
from core.calibration.intrinsics import CalibrationError, Coverage, MeasuredLens, calibrate_intrinsics
from core.camera.model import Camera
from core.camera.rig import CameraRig

BACKGROUND_RGB = (40, 40, 40)
SILHOUETTE_RGB = (255, 170, 40)
CORNER_RGB = (40, 255, 80)
COVERED_RGB = (40, 200, 255)


# -- plain data and pictures (no Qt) ------------------------------------------------------

@dataclass(frozen=True)
class ErrorRow:
    """One camera in the error table. rms_px: pixels of the calibration
    images; error_mm: that error at the performer (quality.assess); NaN and
    "" where unknown (a file without a quality report)."""

    camera: str
    views: int
    rms_px: float
    error_mm: float
    verdict: str


@dataclass(frozen=True, eq=False)
class BoardOverlay:
    """What the worker shows of one board view: camera index, an RGB
    thumbnail (corners and coverage drawn in), words, and the coverage
    fraction (None outside intrinsics)."""

    camera: int
    name: str
    rgb: np.ndarray
    text: str
    coverage: float | None = None


@dataclass(frozen=True, eq=False)
class CalibrationOutcome:
    """A finished calibration: the rig at the live size, its table, the board
    it was made with, a quality dict for the file, and a line for the user."""

    kind: str  # "intrinsics", "rig" or "floor"
    rig: CameraRig
    rows: tuple[ErrorRow, ...]
    board: BoardSpec | None
    quality: dict
    detail: str
    intrinsic_cams: tuple[Camera, ...] | None = None  # at the intrinsics' calibration size
    seconds: float = 0.0


def preview_step(width_px: int, max_width_px: int) -> int:
    """Pixel stride that brings an image `width_px` wide to at most `max_width_px`."""
    return max(1, math.ceil(width_px / max_width_px))


def silhouette_preview(mask: np.ndarray, max_width_px: int) -> np.ndarray:
    """(h, w, 3) uint8: every `step`-th pixel of the mask, silhouette in orange."""
    s = preview_step(mask.shape[1], max_width_px)
    on = mask[::s, ::s] > 0
    return np.where(on[..., None], np.array(SILHOUETTE_RGB, np.uint8), np.array(BACKGROUND_RGB, np.uint8))


def colour_preview(image: np.ndarray, mask: np.ndarray | None, max_width_px: int) -> np.ndarray:
    """(h, w, 3) uint8 RGB thumbnail of a camera's BGR (or grey) image, with
    its silhouette (a mask of the calibrated size, possibly another than the
    image's) tinted orange over it."""
    s = preview_step(image.shape[1], max_width_px)
    small = image[::s, ::s]
    rgb = (np.repeat(small[..., None], 3, axis=2) if small.ndim == 2 else small[..., ::-1]).astype(np.float32)
    if mask is not None:
        h, w = rgb.shape[:2]
        rows = np.minimum(np.arange(h) * mask.shape[0] // h, mask.shape[0] - 1)
        cols = np.minimum(np.arange(w) * mask.shape[1] // w, mask.shape[1] - 1)
        on = mask[rows][:, cols] > 0
        rgb[on] = 0.45 * rgb[on] + 0.55 * np.array(SILHOUETTE_RGB, np.float32)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def board_preview(image: np.ndarray, pixels: np.ndarray | None, covered: np.ndarray | None,
                  max_width_px: int) -> np.ndarray:
    """(h, w, 3) uint8 thumbnail of a grey board view with the covered cells
    tinted and the detected corners (pixels (N, 2)) as green dots."""
    s = preview_step(image.shape[1], max_width_px)
    g = image[::s, ::s]
    rgb = np.repeat(g[..., None], 3, axis=2).astype(np.float32)
    h, w = g.shape
    if covered is not None:
        rows, cols = covered.shape
        cy = np.minimum((np.arange(h) * s * rows) // image.shape[0], rows - 1)
        cx = np.minimum((np.arange(w) * s * cols) // image.shape[1], cols - 1)
        cell = covered[cy[:, None], cx[None, :]]
        rgb[cell] = 0.6 * rgb[cell] + 0.4 * np.array(COVERED_RGB, np.float32)
    out = rgb.astype(np.uint8)
    if pixels is not None and len(pixels):
        uv = np.rint(pixels / s).astype(int)
        for dv in (0, 1):
            for du in (0, 1):
                out[np.clip(uv[:, 1] + dv, 0, h - 1), np.clip(uv[:, 0] + du, 0, w - 1)] = CORNER_RGB
    return np.ascontiguousarray(out)


class Steps:
    """Overall progress over the stages of one run; `tick` raises Cancelled."""

    def __init__(self, progress: Callable[[int, int], None], total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def tick(self, n: int = 1) -> None:
        self.done += n
        self.progress(self.done, self.total)


class SimulatedBoardCalibration:
    """Board views of the simulated studio, rendered through its true cameras
    (`truth`, at the live size), and the calibrations made from them.
    Nothing here knows the truth but the renderer: the calibration sees only
    detected corners. `show(BoardOverlay)` receives every view (any thread)."""

    def __init__(self, truth: CameraRig, seed: int, wall_board: BoardSpec, rig_board: BoardSpec,
                 intrinsic_width_px: int, rig_width_px: int, preview_width_px: int,
                 show: Callable[[BoardOverlay], None] = lambda o: None) -> None:
        self.truth = truth
        self.rng = np.random.default_rng(seed)
        self.wall_board, self.rig_board = wall_board, rig_board
        self.intrinsic_width_px, self.rig_width_px = intrinsic_width_px, rig_width_px
        self.preview_width_px = preview_width_px
        self.show = show

    # -- intrinsics ------------------------------------------------------------------
    def intrinsics(self, views: int, steps: Steps) -> tuple[tuple[Camera, ...], list]:
        """Per camera: handheld board views, detection, calibrateCamera.
        Cameras (R = I, t = 0) at the intrinsic width, and the results."""
        from core.sim.board_view import handheld_board_poses, render_board_view

        detector = BoardDetector(self.wall_board)
        cams, results = [], []
        for k, cam in enumerate(self.truth.at_width(self.intrinsic_width_px)):
            coverage = Coverage(cam.size)
            found = []
            for R, t in handheld_board_poses(cam, self.wall_board, views, self.rng, margin_px=0.1 * cam.height):
                image = render_board_view(cam, self.wall_board, R, t, rng=self.rng)
                det = detector.detect(image)
                found.append(det)
                if det is not None:
                    coverage.add(det)
                missing = coverage.missing_regions()
                text = (f"{cam.name}: {len(found)}/{views} views, {coverage.fraction:.0%} of the image covered"
                        + (f"; still to visit: {', '.join(missing)}" if missing else ""))
                self.show(BoardOverlay(k, cam.name, board_preview(image, None if det is None else det.pixels,
                                                                  coverage.covered, self.preview_width_px),
                                       text, coverage.fraction))
                steps.tick()
            try:
                res = calibrate_intrinsics(found, self.wall_board, name=cam.name)
            except CalibrationError as exc:
                raise CalibrationError(f"camera {cam.name}: {exc}") from exc
            results.append(res)
            cams.append(MeasuredLens.of(res, cam.name))
        return tuple(cams), results

    # -- the rig -------------------------------------------------------------------------
    def rig_views(self, moments: int, steps: Steps, floor: bool = True):
        """detections[m][k] at the rig width: the board walked around the area,
        then (if `floor`) lying on the floor at the origin."""
        from core.sim.board_view import floor_pose, waved_board_poses

        cams = self.truth.at_width(self.rig_width_px)
        poses = waved_board_poses(self.truth, self.rig_board, moments, self.rng)
        if floor:
            poses.append(floor_pose(self.rig_board))
        out = []
        for m, (R, t) in enumerate(poses):
            out.append(self.detect_views(cams, R, t, f"board position {m + 1}/{len(poses)}"))
            steps.tick()
        return out

    floor_in_rig = True  # the board can be laid on the floor right after the walk: a rig run ends with it

    def at_rig_size(self, cam: Camera, k: int) -> Camera:
        """Camera k's intrinsics at the size of its rig views."""
        return cam.scaled(self.rig_width_px / cam.width)

    def floor_view(self, steps: Steps) -> list:
        """The board lying on the floor at the origin, seen at the rig width."""
        from core.sim.board_view import floor_pose

        R, t = floor_pose(self.rig_board)
        row = self.detect_views(self.truth.at_width(self.rig_width_px), R, t, "board on the floor")
        steps.tick()
        return row

    def detect_views(self, cams, R, t, what: str) -> list:
        from core.sim.board_view import board_corners_px, render_board_view

        detector = BoardDetector(self.rig_board)
        row = []
        for k, cam in enumerate(cams):
            if board_corners_px(cam, self.rig_board, R, t)[1].sum() < detector.min_corners:
                row.append(None)  # the board's back or nothing: no corners to find
                continue
            image = render_board_view(cam, self.rig_board, R, t, rng=self.rng)
            det = detector.detect(image)
            row.append(det)
            self.show(BoardOverlay(k, cam.name, board_preview(image, None if det is None else det.pixels, None,
                                                              self.preview_width_px),
                                   f"{cam.name}: {what}, {0 if det is None else len(det)} corners"))
        return row


# -- the panel ------------------------------------------------------------------------------


def error_rows(rig: CameraRig, views, rms_px, report) -> tuple[ErrorRow, ...]:
    return tuple(ErrorRow(c.name, int(n), float(px), math.nan if q.reprojection_mm is None else q.reprojection_mm,
                          q.verdict) for c, n, px, q in zip(rig, views, rms_px, report.cameras))


def fmt(v: float, digits: int) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def num(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
