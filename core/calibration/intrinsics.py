"""One camera's intrinsics from views of a board (OpenCV's calibrateCamera),
with a coverage measure that tells the user where the board has not been yet,
and rejection of views that do not fit the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np

from core.calibration.board import BoardSpec, Detection
from core.camera.model import Camera


class CalibrationError(RuntimeError):
    """A calibration that cannot be computed; the message says why and what to do."""


class Coverage:
    """Which parts of the image the board's corners have reached.

    The image is cut into a grid of cells (default 8 x 6); a cell counts as
    covered once `min_hits` corners have landed in it. Lens distortion is
    strongest at the edges and corners of the image, so a calibration is only
    trusted once the board has been there too."""

    def __init__(self, size: tuple[int, int], cells: tuple[int, int] = (8, 6), min_hits: int = 3) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.cells = (int(cells[0]), int(cells[1]))
        self.min_hits = int(min_hits)
        self.hits = np.zeros(self.cells[::-1], np.int64)  # (rows, cols)

    def add(self, det: Detection) -> None:
        if tuple(det.size) != self.size:
            raise ValueError(f"a {det.size[0]}x{det.size[1]} view does not belong to a "
                             f"{self.size[0]}x{self.size[1]} camera")
        cx = np.clip((det.pixels[:, 0] + 0.5) / self.size[0] * self.cells[0], 0, self.cells[0] - 1).astype(int)
        cy = np.clip((det.pixels[:, 1] + 0.5) / self.size[1] * self.cells[1], 0, self.cells[1] - 1).astype(int)
        np.add.at(self.hits, (cy, cx), 1)

    @property
    def covered(self) -> np.ndarray:
        """(rows, cols) bool."""
        return self.hits >= self.min_hits

    @property
    def fraction(self) -> float:
        return float(self.covered.mean())

    def missing_regions(self) -> list[str]:
        """Plain words for where the board still has to go ("top left", "right edge", ...)."""
        rows, cols = self.covered.shape
        names = []
        for (name, rs, cs) in (
            ("top left corner", slice(0, rows // 3), slice(0, cols // 3)),
            ("top right corner", slice(0, rows // 3), slice(cols - cols // 3, cols)),
            ("bottom left corner", slice(rows - rows // 3, rows), slice(0, cols // 3)),
            ("bottom right corner", slice(rows - rows // 3, rows), slice(cols - cols // 3, cols)),
            ("top edge", slice(0, 1), slice(cols // 3, cols - cols // 3)),
            ("bottom edge", slice(rows - 1, rows), slice(cols // 3, cols - cols // 3)),
            ("left edge", slice(rows // 3, rows - rows // 3), slice(0, 1)),
            ("right edge", slice(rows // 3, rows - rows // 3), slice(cols - 1, cols)),
            ("centre", slice(rows // 3, rows - rows // 3), slice(cols // 3, cols - cols // 3)),
        ):
            if self.covered[rs, cs].mean() < 0.5:
                names.append(name)
        return names


@dataclass
class IntrinsicResult:
    """K (3x3), dist (5: k1 k2 p1 p2 k3), size (w, h); rms_px over the kept views;
    view_rms_px per input view (NaN for views that could not be used);
    rejected: indices of input views left out; sigma: OpenCV's standard
    deviations of the lens parameters (the rig step's prior on this lens)."""

    K: np.ndarray
    dist: np.ndarray
    size: tuple[int, int]
    rms_px: float
    view_rms_px: np.ndarray
    rejected: list[int] = field(default_factory=list)
    used: list[int] = field(default_factory=list)
    sigma: np.ndarray | None = None  # standard deviations of fx fy cx cy k1 k2 p1 p2 k3 (0 where held)
    name: str = ""  # the camera's

    def to_dict(self) -> dict:
        return {"name": self.name, "K": self.K.tolist(), "dist": self.dist.tolist(), "size": list(self.size),
                "rms_px": self.rms_px,
                "view_rms_px": [None if not np.isfinite(v) else float(v) for v in self.view_rms_px],
                "rejected": list(self.rejected)}


@dataclass(frozen=True, eq=False)
class MeasuredLens(Camera):
    """A camera (R = I, t = 0) as its lens step left it, with OpenCV's
    standard deviations of fx fy cx cy k1 k2 p1 p2 k3 (`sigma`): the rig
    step refines the lens within them (core.calibration.bundle)."""

    sigma: np.ndarray | None = None

    @classmethod
    def of(cls, res: "IntrinsicResult", name: str) -> "MeasuredLens":
        return cls(res.K, res.dist, np.eye(3), np.zeros(3), res.size, name, sigma=res.sigma)

    def sigma_at(self, width_px: int) -> np.ndarray | None:
        """The deviations for this lens scaled to another image width (pixels scale, distortion does not)."""
        if self.sigma is None:
            return None
        s = np.asarray(self.sigma, float).copy()
        s[:4] *= width_px / self.width
        return s


def calibrate_intrinsics(
    detections: Sequence[Detection | None],
    board: BoardSpec,
    min_views: int = 6,
    reject_factor: float = 3.0,
    reject_floor_px: float = 1.0,
    fix_k3: bool = True,
    progress: Callable[[int, int], None] | None = None,
    name: str = "",
) -> IntrinsicResult:
    """Calibrate from board detections of one camera (None entries are views
    without a board and are skipped).

    Views whose reprojection RMS exceeds max(reject_factor × median,
    reject_floor_px) are left out (a blurred frame, a misdetection, the board
    bent) and the camera is calibrated again without them; the result lists
    them. k3 is held at zero unless `fix_k3` is False: with the board mostly in
    the middle of the image it only fits noise."""
    views = [(i, d) for i, d in enumerate(detections) if d is not None and len(d) >= 6]
    if len(views) < min_views:
        raise CalibrationError(f"{len(views)} usable board views; at least {min_views} are needed "
                               "(show the board at different places, distances and angles)")
    sizes = {tuple(d.size) for _, d in views}
    if len(sizes) != 1:
        raise CalibrationError(f"the views have different image sizes {sorted(sizes)}; one camera, one size")
    size = sizes.pop()
    flags = cv2.CALIB_FIX_K3 if fix_k3 else 0
    keep = [i for i, _ in views]
    by_index = dict(views)
    rejected: list[int] = []
    rounds = 3
    for r in range(rounds):
        if progress:
            progress(r, rounds)
        obj = [by_index[i].object_points(board).astype(np.float32) for i in keep]
        img = [by_index[i].pixels.astype(np.float32).reshape(-1, 1, 2) for i in keep]
        try:
            rms, K, dist, rvecs, tvecs, std, _, _ = cv2.calibrateCameraExtended(obj, img, size, None, None,
                                                                                flags=flags)
        except cv2.error as exc:
            raise CalibrationError(f"OpenCV could not calibrate from these views: {exc.err}") from exc
        per_view = np.array([_view_rms(o, p, rv, tv, K, dist) for o, p, rv, tv in zip(obj, img, rvecs, tvecs)])
        limit = max(reject_factor * float(np.median(per_view)), reject_floor_px)
        bad = [keep[j] for j in np.flatnonzero(per_view > limit)]
        if not bad or len(keep) - len(bad) < min_views:
            break
        rejected += bad
        keep = [i for i in keep if i not in bad]
    if progress:
        progress(rounds, rounds)
    view_rms = np.full(len(detections), np.nan)
    view_rms[keep] = per_view
    sigma = np.asarray(std, float).ravel()[:9].copy()
    return IntrinsicResult(K, dist.ravel()[:5].copy(), size, float(rms), view_rms, sorted(rejected), keep, sigma,
                           name)


def _view_rms(obj, img, rvec, tvec, K, dist) -> float:
    proj, _ = cv2.projectPoints(obj, rvec, tvec, K, dist)
    return float(np.sqrt(((proj.reshape(-1, 2) - img.reshape(-1, 2)) ** 2).sum(1).mean()))


# The share of the image (Coverage's cells) the board must have reached before a lens's principal point,
# aspect ratio and second distortion terms are fitted from one camera's views alone.
FULL_LENS_COVERAGE = 0.45


def initial_lens(detections: Sequence[Detection | None], board: BoardSpec, size: tuple[int, int],
                 freedom=None, min_views: int = 4) -> tuple[np.ndarray, np.ndarray, float, str]:
    """A starting lens for one camera from its board views: K, dist (5),
    the RMS in px, and how it was found ("simple" or "full").

    First the simplest lens that can be fitted from any views: one focal
    length, the principal point at the image centre, k1 alone. Only when
    the board has reached at least FULL_LENS_COVERAGE of the image is the
    full lens (principal point, aspect ratio, k1 k2 p1 p2) fitted from it,
    and kept if it is plausible (principal point within 10 % of the image
    centre, RMS no worse). With the board near the centre only, the full
    fit trades the principal point against the board's position and the
    focal length against its distance, and can land far off; the bundle
    adjustment with the other cameras refines the simple start instead.
    `freedom` (a bundle.LensFreedom) keeps fixed what it fixes."""
    views = [d for d in detections if d is not None and len(d) >= 6]
    if len(views) < min_views:
        raise CalibrationError(f"{len(views)} usable board views; at least {min_views} are needed to start "
                               "the lens (show the board to this camera at more places)")
    w, h = size
    obj = [d.object_points(board).astype(np.float32) for d in views]
    img = [d.pixels.astype(np.float32).reshape(-1, 1, 2) for d in views]
    simple = (cv2.CALIB_FIX_PRINCIPAL_POINT | cv2.CALIB_FIX_ASPECT_RATIO | cv2.CALIB_ZERO_TANGENT_DIST
              | cv2.CALIB_FIX_K2 | cv2.CALIB_FIX_K3 | cv2.CALIB_USE_INTRINSIC_GUESS)
    f0 = _focal_guess(obj, img, size)
    K0 = np.array([[f0, 0, (w - 1) / 2], [0, f0, (h - 1) / 2], [0, 0, 1]])
    try:
        rms, K, dist, _, _ = cv2.calibrateCamera(obj, img, size, K0, np.zeros(5), flags=simple)
    except cv2.error as exc:
        raise CalibrationError(f"OpenCV could not start the lens from these views: {exc.err}") from exc
    dist = dist.ravel()[:5].copy()
    coverage = Coverage(size)
    for d in views:
        coverage.add(d)
    if coverage.fraction < FULL_LENS_COVERAGE:
        return K, dist, float(rms), "simple"
    flags = cv2.CALIB_USE_INTRINSIC_GUESS | cv2.CALIB_FIX_K3
    if freedom is not None:
        flags |= ((cv2.CALIB_FIX_PRINCIPAL_POINT if freedom.fix_principal_point else 0)
                  | (cv2.CALIB_FIX_ASPECT_RATIO if freedom.fix_aspect_ratio else 0)
                  | (cv2.CALIB_ZERO_TANGENT_DIST if freedom.fix_tangential else 0))
    try:
        rms2, K2, dist2, _, _ = cv2.calibrateCamera(obj, img, size, K.copy(), dist.copy(), flags=flags)
    except cv2.error:
        return K, dist, float(rms), "simple"
    off = np.abs(K2[:2, 2] - np.array([(w - 1) / 2, (h - 1) / 2])) / np.array([w, h])
    if off.max() < 0.1 and rms2 <= rms * 1.001:
        return K2, dist2.ravel()[:5].copy(), float(rms2), "full"
    return K, dist, float(rms), "simple"


def _focal_guess(obj, img, size) -> float:
    """OpenCV's focal length from the views' homographies, or the image width
    where that fails (boards seen square-on tell nothing of it)."""
    try:
        K = cv2.initCameraMatrix2D(obj, img, size)
        f = float(np.sqrt(K[0, 0] * K[1, 1]))
    except cv2.error:
        f = float("nan")
    return f if np.isfinite(f) and 0.2 * size[0] < f < 10 * size[0] else float(size[0])
