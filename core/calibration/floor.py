"""The world from a board lying on the floor, or from the performer standing
in the area, for a rig whose cameras are right but whose world is not the
studio's: the reference camera's after a rig calibration without a floor
moment, or another tool's (a TOML file).

With the board (floor_aligned) the new world has its origin at the board's
centre, X along its rows and Z up, millimetres (extrinsics.floor_frame).
From the performer (floor_from_performer) Z is up the body, the origin on
the floor under it and X along the reference camera's x axis."""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
from scipy import ndimage
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from core.calibration.board import BoardSpec
from core.calibration.extrinsics import MAX_PNP_RMS_PX, floor_frame, pose_matrix
from core.calibration.intrinsics import CalibrationError
from core.camera.model import Camera
from core.camera.rig import CameraRig
from core.volume.projection import mask_views


def floor_aligned(rig: CameraRig, detections, board: BoardSpec) -> tuple[CameraRig, int]:
    """`rig` re-expressed in the world of a board lying face up on the floor
    (origin at its centre, X along its rows, Z up; extrinsics.floor_frame).
    detections[k]: camera k's view of that board (None where unseen), at
    camera k's image size. Each view gives the board's pose in the rig's
    current world (solvePnP); from their rotation mean and median position,
    the pose is refined against every camera's corners at once (a board far
    away and foreshortened is placed far better by several cameras than by
    one). Returns the new rig and how many cameras took part."""
    poses, used = [], []
    for cam, det in zip(rig, detections):
        if det is None or len(det) < 6:
            continue
        obj = det.object_points(board).astype(np.float64)
        ok, rvec, tvec = cv2.solvePnP(obj, det.pixels, cam.K, cam.dist, flags=cv2.SOLVEPNP_IPPE)
        if not ok:
            continue
        rvec, tvec = cv2.solvePnPRefineLM(obj, det.pixels, cam.K, cam.dist, rvec, tvec)
        proj, _ = cv2.projectPoints(obj, rvec, tvec, cam.K, cam.dist)
        if np.sqrt(((proj.reshape(-1, 2) - det.pixels) ** 2).sum(1).mean()) > MAX_PNP_RMS_PX:
            continue  # a misdetection
        T_cb = pose_matrix(cv2.Rodrigues(rvec)[0], tvec.ravel())
        poses.append(np.linalg.inv(pose_matrix(cam.R, cam.t)) @ T_cb)  # board -> current world
        used.append((cam, obj, det.pixels))
    if not poses:
        raise CalibrationError("no camera saw the board on the floor: lay it flat, printed side up, "
                               "in the middle of the area")
    R = Rotation.from_matrix(np.stack([T[:3, :3] for T in poses])).mean().as_matrix()
    x0 = np.r_[Rotation.from_matrix(R).as_rotvec(), np.median(np.stack([T[:3, 3] for T in poses]), 0)]

    def residuals(x):
        Rb = Rotation.from_rotvec(x[:3]).as_matrix()
        return np.concatenate([(cam.project(obj @ Rb.T + x[3:])[0] - uv).ravel() for cam, obj, uv in used])

    x = least_squares(residuals, x0, loss="soft_l1", f_scale=1.0).x
    T_wb = pose_matrix(Rotation.from_rotvec(x[:3]).as_matrix(), x[3:])
    T_old_new = T_wb @ floor_frame(board)  # new world -> current world
    cams = []
    for cam in rig:
        T = pose_matrix(cam.R, cam.t) @ T_old_new
        U, _, Vt = np.linalg.svd(T[:3, :3])
        cams.append(Camera(cam.K, cam.dist, U @ Vt, T[:3, 3], cam.size, cam.name))
    return CameraRig(tuple(cams), rig.area), len(poses)


# -- the floor from the performer ------------------------------------------------------------------

# Frames whose places spread this far (RMS, mm) across the floor on its
# narrower axis set up by the plane through the soles.
PLACES_MM = 300.0
# A frame's hull this much (mm) shorter or taller than the frames' median is left out.
FRAME_TOL_MM = 100.0
# The first, coarse hull's voxels are this many times the fine ones.
COARSE = 2
# A standing person's hull, mm from sole to crown: shorter or taller is something else.
PERSON_HEIGHT_MM = (1400.0, 2100.0)
# The soles: this percentile of the hull's voxels along up.
FLOOR_PERCENTILE = 0.2
# The feet: the lowest share of the hull's height, left out of the up direction.
FEET_SHARE = 0.1
# A standing person's hull is this much longer than wide at least (standard
# deviations along its two longest axes; measured 2.2-2.8 in a T-pose, 4-4.6 arms down).
MIN_ELONGATION = 1.6
# The body's long axis is this far from the cameras' mean image up at most.
MAX_TILT_DEG = 60.0


@dataclass(frozen=True)
class FloorFit:
    """What floor_from_performer found, in the rig's frame before the change.

    up: the unit up direction found. height_mm: the hull's height above the
    floor (the median over the frames: a standing person's, a sanity
    check). up_spread_deg: the largest angle between one frame's long axis
    and the frames' combined one (0 for one frame). voxels: occupied voxels,
    summed over the frames. cameras: the names of the cameras with a
    silhouette in at least one frame. frames: how many frames gave a hull.
    floor_rms_mm: how far the frames' floor levels lie from the floor found
    (RMS). places: whether the frames stood at several places, so that up
    is the normal of the plane through the soles."""

    up: np.ndarray
    height_mm: float
    up_spread_deg: float
    voxels: int
    cameras: tuple[str, ...]
    frames: int
    floor_rms_mm: float
    places: bool


def floor_from_performer(rig: CameraRig, masks, voxel_mm: float = 20.0, box_mm: float = 2400.0,
                         floor_percentile: float = FLOOR_PERCENTILE,
                         max_misses: int = 1) -> tuple[CameraRig, FloorFit]:
    """`rig` re-expressed in a world set by the performer standing in the
    area: Z up the body, the floor under the soles, origin on the floor
    under the body, X along the reference camera's x, millimetres (as
    floor_aligned gives); for a rig whose world is one camera's frame (no
    floor board seen) or another tool's. Returns the new rig and a FloorFit.

    masks: a sequence of frames of the performer standing still, upright,
    arms down or out (not raised), each one silhouette per camera at that
    camera's image size (uint8 or bool, nonzero = performer; None for a
    camera without one).

    Each frame's visual hull is carved in the rig's current frame (voxels of
    `voxel_mm`; see _performer_hull) around the point nearest to the rays
    through the silhouettes' centroids. A voxel stays while at most
    `max_misses` of the cameras whose image it falls in miss it (one: a
    camera that sees only part of the performer cannot cut the rest), and counts
    when at least two have it in their silhouettes; the largest connected
    part is the performer. Frames whose hull is FRAME_TOL_MM shorter or
    taller than the frames' median are left out (part of the body lost).

    - Up: the hull's longest principal axis (the frames' covariances
      averaged), then again without the feet (the lowest FEET_SHARE of the
      height; they point forward and tilt the axis), on the side of the
      cameras' mean image up (cameras stand upright).
    - Floor: the `floor_percentile` of the hull's voxels along up (the
      soles), lowered by half a voxel; the median over the frames.
    - Frames at several places (spread PLACES_MM RMS across the floor, not
      in a line): up is then the normal of the plane through each frame's
      sole point, which the body's posture does not tilt.
    - Origin: on the floor under the hulls' mean centre. X: the reference
      camera's (the first camera's) x axis laid on the floor, since a
      silhouette cannot tell which way the performer faces.

    Raises CalibrationError when no camera has a silhouette, fewer than two
    see the performer at once, or the hull is not a standing person's (a
    height outside PERSON_HEIGHT_MM, not MIN_ELONGATION times longer than
    wide, or lying more than MAX_TILT_DEG from the cameras' up)."""
    frames = [mask_views(list(f), rig) for f in masks]
    if not frames:
        raise CalibrationError("no frames of the performer: record them standing still in the area")
    used: set[int] = set()
    hulls = []
    two_seen = False
    for views in frames:
        have = [k for k, m in enumerate(views) if m is not None and m.any()]
        used.update(have)
        if len(have) < 2:
            continue
        two_seen = True
        pts = _performer_hull(rig, views, voxel_mm, box_mm, max_misses)
        if pts is not None:
            hulls.append(pts)
    if not used:
        raise CalibrationError("no camera has a silhouette of the performer: stand in the area, where the "
                               "cameras see you, and check the background")
    names = tuple(rig[k].name for k in sorted(used))
    if not hulls and not two_seen:
        raise CalibrationError(f"fewer than two cameras see the performer at once (silhouettes from "
                               f"{', '.join(names)}): stand where at least two cameras see you")
    if not hulls:
        raise CalibrationError("the cameras' silhouettes share no point in space: check that the calibration "
                               "belongs to these cameras and that each sees the performer")

    # Up: the long axis, first of the whole hull, then without the feet (the
    # lowest FEET_SHARE of its height), which point forward and tilt the axis.
    cam_up = -np.mean([c.R[1] for c in rig], axis=0)  # image up (-y) in the rig's frame
    up = _long_axis([np.cov(p.T) for p in hulls], cam_up)[0]
    # A frame whose hull is much shorter or taller than the others' lost part
    # of the body (a camera that saw only part of it) or gained a blob: left out.
    lengths = np.array([np.ptp(p @ up) for p in hulls])
    hulls = [p for p, h in zip(hulls, lengths) if abs(h - np.median(lengths)) <= FRAME_TOL_MM]
    covs = []
    for p in hulls:
        a = p @ up
        low = np.percentile(a, floor_percentile)
        covs.append(np.cov(p[a > low + FEET_SHARE * (a.max() - low)].T))
    up, elongation = _long_axis(covs, cam_up)
    tilt = np.degrees(np.arccos(np.clip(up @ cam_up / max(np.linalg.norm(cam_up), 1e-12), -1, 1)))
    along = [p @ up for p in hulls]
    floors = np.array([np.percentile(a, floor_percentile) for a in along]) - voxel_mm / 2
    tops = np.array([a.max() for a in along]) + voxel_mm / 2
    floor = float(np.median(floors))
    height = float(np.median(tops - floors))
    spread = max(float(np.degrees(np.arccos(min(abs(_long_axis([c], cam_up)[0] @ up), 1.0)))) for c in covs)
    fit = FloorFit(up, height, spread, int(sum(len(p) for p in hulls)), names, len(hulls), 0.0, False)
    lo, hi = PERSON_HEIGHT_MM
    if not lo <= height <= hi:
        raise CalibrationError(f"the silhouettes carve a shape {height / 1000:.2f} m tall, not a standing "
                               f"person ({lo / 1000:.1f}-{hi / 1000:.1f} m): one person, standing upright "
                               "with the arms down, and clean silhouettes")
    if elongation < MIN_ELONGATION:
        raise CalibrationError(f"the shape the silhouettes carve is not tall and narrow like a person (its "
                               f"long axis {elongation:.1f} times its next): stand upright, arms down")
    if tilt > MAX_TILT_DEG:
        raise CalibrationError(f"the shape the silhouettes carve is longest {tilt:.0f} degrees away from the "
                               "cameras' up: stand upright, arms down, in the middle of the area")

    # Frames at several places: up is the normal of the plane through the
    # soles, which the body's posture does not tilt. Each frame's floor level
    # is taken again along the new up, twice over.
    centres = np.array([p.mean(0) for p in hulls])
    flat = centres - centres.mean(0)
    flat -= np.outer(flat @ up, up)
    places = len(hulls) >= 3 and np.linalg.svd(flat, compute_uv=False)[1] / np.sqrt(len(hulls)) >= PLACES_MM
    if places:
        for _ in range(2):
            soles = centres - (centres @ up - floors)[:, None] * up
            normal = np.linalg.svd(soles - soles.mean(0))[2][2]
            up = normal if normal @ up >= 0 else -normal
            floors = np.array([np.percentile(p @ up, floor_percentile) for p in hulls]) - voxel_mm / 2
        floor = float(np.median(floors))
    fit = replace(fit, up=up, floor_rms_mm=float(np.sqrt(np.mean((floors - floor) ** 2))), places=places)
    centre = centres.mean(0)
    origin = centre - (centre @ up - floor) * up
    ref = rig[0]
    x = ref.R[0] - (ref.R[0] @ up) * up
    if np.linalg.norm(x) < 0.1:  # the reference camera rolled onto its side: its optical axis instead
        x = ref.R[2] - (ref.R[2] @ up) * up
    x /= np.linalg.norm(x)
    y = np.cross(up, x)
    T_old_new = pose_matrix(np.stack([x, y, up], 1), origin)  # new world -> current world
    return _re_expressed(rig, T_old_new), fit


def _long_axis(covs, cam_up: np.ndarray) -> tuple[np.ndarray, float]:
    """The longest principal axis of the mean of covariances `covs`, on the
    side of cam_up, and how much longer it is than the next (ratio of the
    standard deviations)."""
    vals, vecs = np.linalg.eigh(np.mean(covs, axis=0))
    up = vecs[:, -1] if vecs[:, -1] @ cam_up >= 0 else -vecs[:, -1]
    return up, float(np.sqrt(vals[-1] / max(vals[-2], 1e-12)))


def _re_expressed(rig: CameraRig, T_old_new: np.ndarray) -> CameraRig:
    """The rig's cameras in the world whose pose in the current one is T_old_new."""
    cams = []
    for cam in rig:
        T = pose_matrix(cam.R, cam.t) @ T_old_new
        U, _, Vt = np.linalg.svd(T[:3, :3])
        cams.append(Camera(cam.K, cam.dist, U @ Vt, T[:3, 3], cam.size, cam.name))
    return CameraRig(tuple(cams), rig.area)


def _rays_meet(rig: CameraRig, views) -> np.ndarray | None:
    """The point nearest (least squares) to the rays through each silhouette's
    centroid; None when the rays are nearly parallel."""
    A, b = np.zeros((3, 3)), np.zeros(3)
    for cam, m in zip(rig, views):
        if m is None:
            continue
        rows, cols = np.nonzero(m)
        if rows.size == 0:
            continue
        d = cam.pixel_rays(np.array([[cols.mean(), rows.mean()]]))[0]
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ cam.centre
    if np.linalg.cond(A) > 1e6:
        return None
    return np.linalg.solve(A, b)


def _carve(rig: CameraRig, views, corner: np.ndarray, shape, voxel_mm: float, max_misses: int) -> np.ndarray:
    """The hull as bool `shape` over the voxels whose centres are corner +
    (i, j, k) voxel_mm. Cameras carve in turn, each projecting only the
    voxels still standing (nearest pixel, as core.volume does), so the cost
    falls fast. A voxel stands while at most max_misses of the cameras whose
    image it falls in miss it, and is kept when at least two have it in
    their silhouettes."""
    ijk = np.stack([g.ravel() for g in np.indices(shape)], 1).astype(np.float64)
    alive = np.arange(len(ijk))
    seen = np.zeros(len(ijk), np.int16)
    misses = np.zeros(len(ijk), np.int16)
    for cam, m in zip(rig, views):
        if m is None or not m.any():
            continue
        w, h = cam.size
        with np.errstate(all="ignore"):
            uv, valid = cam.project(corner + ijk[alive] * voxel_mm)
            col, row = np.floor(uv[:, 0] + 0.5), np.floor(uv[:, 1] + 0.5)
            inside = valid & (col >= 0) & (col < w) & (row >= 0) & (row < h)
        hit = np.zeros(len(alive), bool)
        hit[inside] = m[row[inside].astype(np.intp), col[inside].astype(np.intp)] != 0
        seen[alive] += inside
        misses[alive] += inside & ~hit
        alive = alive[misses[alive] <= max_misses]
    occ = np.zeros(len(ijk), bool)
    occ[alive[seen[alive] - misses[alive] >= 2]] = True
    return occ.reshape(shape)


def _largest_part(occ: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """Indices (as np.nonzero gives them) of the largest 26-connected part of occ."""
    labels, count = ndimage.label(occ, structure=np.ones((3, 3, 3), bool))
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return np.nonzero(labels == int(np.argmax(sizes)))


def _performer_hull(rig: CameraRig, views, voxel_mm: float, box_mm: float,
                    max_misses: int) -> np.ndarray | None:
    """The voxel centres (N, 3) of the largest connected part of one frame's
    hull, or None when the silhouettes' rays do not meet or carve nothing
    (needs two cameras with a silhouette).

    First coarsely (voxels COARSE times larger) in a cube of box_mm around
    where the rays meet; the cube follows the hull (twice at most) when the
    hull reaches its side, and a hull that still does is too big for a
    person. Then finely in the coarse hull's bounding box and a margin."""
    centre = _rays_meet(rig, views)
    if centre is None:
        return None
    step = voxel_mm * COARSE
    n = int(np.ceil(box_mm / step))
    for attempt in range(3):
        corner = centre - (n - 1) / 2 * step
        part = _largest_part(_carve(rig, views, corner, (n, n, n), step, max_misses))
        if part is None:
            return None
        lo, hi = np.array([v.min() for v in part]), np.array([v.max() for v in part])
        if lo.min() > 0 and hi.max() < n - 1:
            break
        if attempt == 2:
            extent = (hi - lo + 1).max() * step
            raise CalibrationError(f"the silhouettes carve a shape over {extent / 1000:.1f} m across, larger "
                                   "than a person: one person in the area, and clean silhouettes")
        centre = corner + (lo + hi) / 2 * step
    fine_lo = corner + (lo - 1.5) * step
    shape = tuple(int(v) for v in np.ceil(((hi - lo) + 3) * step / voxel_mm) + 1)
    part = _largest_part(_carve(rig, views, fine_lo, shape, voxel_mm, max_misses))
    if part is None:
        return None
    return fine_lo + np.stack(part, 1) * voxel_mm
