"""The whole rig's extrinsics from moments where several cameras see the board
at once, then a bundle adjustment over all cameras and board poses, and the
world frame from a board laid on the floor.

Steps:
1. Each camera's view of the board gives a board pose in that camera
   (``cv2.solvePnP``, intrinsics held fixed).
2. Two cameras that saw the board at the same moment give their relative
   pose. Cameras form a graph (an edge where they share views); the initial
   poses follow the tree of most-shared edges from the best-connected camera.
   A camera that shares no view with the rest is named in a clear error.
3. Bundle adjustment (core.calibration.bundle) refines every camera pose,
   every board pose and, unless held, every lens against all detected
   corners; views that stay far worse than the rest are left out and the
   adjustment runs again.
4. The world frame comes from one moment with the board lying flat on the
   floor, printed face up: origin at the board's centre, X along the board's
   rows (its x), Z up, millimetres. When no camera found that board the
   work is kept: the world is then a named camera's frame (the first
   camera's unless told), the result says why, and the floor is set later
   (core.calibration.floor: from another view of the board on the floor,
   or from the performer standing).

`calibrate_cameras` is the whole calibration from board views alone: a
start for every lens (intrinsics.initial_lens), then the steps above with
the lenses refined. `calibrate_rig` takes lenses calibrated before and, by
default, holds them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from core.calibration.board import BoardSpec, Detection
from core.calibration.bundle import HOLD, BundleProblem, LensFreedom, Observations, lens_matrices, lens_vector
from core.calibration.intrinsics import CalibrationError, initial_lens
from core.calibration.views import BoardViews
from core.camera.model import Camera
from core.camera.rig import CameraRig, CaptureArea

MIN_CORNERS = 6
# A board pose whose own reprojection error is above this is a misdetection.
MAX_PNP_RMS_PX = 3.0
# A view whose RMS after the adjustment is above max(REJECT_FACTOR x the median view, REJECT_FLOOR_PX) is left
# out and the adjustment runs again (a blurred frame, the board bent, a corner found on the wrong square).
REJECT_FACTOR = 3.0
REJECT_FLOOR_PX = 1.0


@dataclass(frozen=True)
class Intrinsics:
    """One camera as the intrinsic step left it."""

    name: str
    K: np.ndarray
    dist: np.ndarray
    size: tuple[int, int]
    sigma: np.ndarray | None = None  # standard deviations of fx fy cx cy k1 k2 p1 p2 k3, when measured


@dataclass
class RigResult:
    """rig: the calibrated cameras (world frame, mm), named; camera_rms_px:
    per camera reprojection RMS after bundle adjustment; observations: board
    views used per camera; board_poses: {moment: (R, t)} board-to-world;
    rms_px: all corners together, initial_rms_px the same before the
    adjustment; floor_aligned: the world is the floor board's, else `world`
    names the camera whose frame it is and `floor_message` says why;
    dropped: views whose board pose was a misdetection, rejected: views left
    out after the adjustment, both as (moment, camera); lens_start: how each
    lens was started ("given", "simple", "full")."""

    rig: CameraRig
    camera_rms_px: np.ndarray
    observations: np.ndarray
    board_poses: dict[int, tuple[np.ndarray, np.ndarray]]
    rms_px: float
    initial_rms_px: float
    floor_aligned: bool
    dropped: list[tuple[int, int]] = field(default_factory=list)
    rejected: list[tuple[int, int]] = field(default_factory=list)
    world: str = "floor"
    floor_message: str = ""
    lens_start: tuple[str, ...] = ()
    start_cameras: tuple[Camera, ...] = ()
    board_centre: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @property
    def names(self) -> list[str]:
        return self.rig.names

    def board_distance_mm(self) -> np.ndarray:
        """Each camera's median distance to the boards it saw: where the
        performer will be, when the world is a camera's frame."""
        out = []
        for cam in self.rig:
            d = [np.linalg.norm(R @ self.board_centre + t - cam.centre) for R, t in self.board_poses.values()
                 if cam.depth((R @ self.board_centre + t)[None])[0] > 0]
            out.append(float(np.median(d)) if d else float("nan"))
        return np.array(out)


def pose_matrix(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


def _board_in_camera(det: Detection, board: BoardSpec, intr: Intrinsics) -> tuple[np.ndarray, float] | None:
    obj = det.object_points(board).astype(np.float64)
    img = det.pixels.astype(np.float64)
    ok, rvec, tvec = cv2.solvePnP(obj, img, intr.K, intr.dist, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        return None
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, intr.K, intr.dist, rvec, tvec)
    proj, _ = cv2.projectPoints(obj, rvec, tvec, intr.K, intr.dist)
    rms = float(np.sqrt(((proj.reshape(-1, 2) - img) ** 2).sum(1).mean()))
    R, _ = cv2.Rodrigues(rvec)
    return pose_matrix(R, tvec.ravel()), rms


Rows = Sequence[Sequence[Detection | None]]


def _as_views(views: BoardViews | Rows, names: Sequence[str], sizes: Sequence[tuple[int, int]]) -> BoardViews:
    if isinstance(views, BoardViews):
        if list(views.names) != list(names):
            raise CalibrationError(f"views of cameras {list(views.names)} for lenses of {list(names)}")
        for name, seen, lens in zip(names, views.sizes, sizes):
            if tuple(seen) != tuple(lens):
                raise CalibrationError(f"camera {name}: {seen[0]}x{seen[1]} views, but its lens is for "
                                       f"{lens[0]}x{lens[1]}")
        return views
    out = BoardViews(tuple(names), tuple(sizes))
    for m, row in enumerate(views):
        if len(row) != len(names):
            raise CalibrationError(f"moment {m} has {len(row)} views for {len(names)} cameras")
        for k, det in enumerate(row):
            if det is not None and tuple(det.size) != tuple(sizes[k]):
                raise CalibrationError(f"camera {names[k]}: a {det.size[0]}x{det.size[1]} view, but it was "
                                       f"calibrated at {sizes[k][0]}x{sizes[k][1]}")
        out.add(row)
    return out


def _freedoms(freedom: LensFreedom | Sequence[LensFreedom] | dict, names: Sequence[str]) -> list[LensFreedom]:
    """One LensFreedom per camera from one for all, a list, or {name: freedom} (others refined)."""
    if isinstance(freedom, LensFreedom):
        return [freedom] * len(names)
    if isinstance(freedom, dict):
        unknown = sorted(set(freedom) - set(names))
        if unknown:
            raise CalibrationError(f"lens options for unknown camera(s) {', '.join(unknown)}")
        return [freedom.get(n, LensFreedom()) for n in names]
    out = list(freedom)
    if len(out) != len(names):
        raise CalibrationError(f"{len(out)} lens options for {len(names)} cameras")
    return out


def calibrate_cameras(
    views: BoardViews,
    board: BoardSpec,
    lenses: Sequence[Camera | Intrinsics] | None = None,
    freedom: LensFreedom | Sequence[LensFreedom] | dict = LensFreedom(),
    floor_moment: int | None = None,
    reference: str | None = None,
    area: CaptureArea = CaptureArea(),
    progress: Callable[[int, int], None] | None = None,
) -> RigResult:
    """Every camera's lens and pose from board views alone (the lenses
    started from each camera's own views, then refined with the rig), or
    from `lenses` calibrated before (at the views' sizes) as the start.
    floor_moment: the moment the board lay on the floor; reference: the
    camera whose frame is the world when there is no floor (default the
    first). See calibrate_rig."""
    names = list(views.names)
    free = _freedoms(freedom, names)
    if lenses is None:
        intr, how = [], []
        for k, name in enumerate(names):
            try:
                K, dist, _, method = initial_lens(views.column(k), board, views.sizes[k], free[k])
            except CalibrationError as exc:
                raise CalibrationError(f"camera {name}: {exc}") from exc
            intr.append(Intrinsics(name, K, dist, views.sizes[k]))
            how.append(method)
    else:
        if [c.name for c in lenses] != names:
            raise CalibrationError(f"lenses of cameras {[c.name for c in lenses]} for views of {names}")
        intr = [Intrinsics(c.name, np.asarray(c.K, float), np.asarray(c.dist, float), tuple(c.size),
                           getattr(c, "sigma", None)) for c in lenses]
        how = ["given"] * len(names)
    res = calibrate_rig(views, intr, board, floor_moment=floor_moment, area=area, progress=progress,
                        freedom=free, reference=reference)
    res.lens_start = tuple(how)
    return res


def calibrate_rig(
    detections: BoardViews | Rows,
    intrinsics: Sequence[Intrinsics],
    board: BoardSpec,
    floor_moment: int | None = None,
    area: CaptureArea = CaptureArea(),
    progress: Callable[[int, int], None] | None = None,
    freedom: LensFreedom | Sequence[LensFreedom] | dict = HOLD,
    reference: str | None = None,
) -> RigResult:
    """detections: BoardViews, or rows with detections[m][k] camera k's
    view at moment m (None where it did not see it). intrinsics: each
    camera's lens to start from, held unless `freedom` says otherwise.
    floor_moment: the moment the board lay on the floor (world frame);
    without one, or when no camera found that board, the world is the
    `reference` camera's frame (the first camera's by default) and the
    result says so: the adjustment is never thrown away for want of a floor."""
    if board.kind != "charuco":
        raise CalibrationError("rig calibration needs a ChArUco board: a plain chessboard looks the same "
                               "turned half round, so two cameras could number its corners differently")
    n_cams = len(intrinsics)
    if n_cams < 2:
        raise CalibrationError("a rig needs at least two cameras")
    names = [c.name for c in intrinsics]
    views = _as_views(detections, names, [tuple(c.size) for c in intrinsics])
    rows = views.rows
    free = _freedoms(freedom, names)
    out_ref = names.index(reference) if reference is not None and reference in names else 0
    if reference is not None and reference not in names:
        raise CalibrationError(f"no camera named {reference!r}; the cameras are {', '.join(names)}")

    # 1. Board poses per view.
    T_cb: dict[tuple[int, int], np.ndarray] = {}
    dropped = []
    for m, row in enumerate(rows):
        for k, det in enumerate(row):
            if det is None or len(det) < MIN_CORNERS:
                continue
            res = _board_in_camera(det, board, intrinsics[k])
            if res is None or res[1] > MAX_PNP_RMS_PX:
                dropped.append((m, k))
                continue
            T_cb[(m, k)] = res[0]
    if progress:
        progress(1, 4)

    # 2. Relative poses and the camera graph.
    ref, T_ck = _initial_rig(T_cb, names)
    by_moment = defaultdict(list)
    for (m, k) in T_cb:
        by_moment[m].append(k)
    if progress:
        progress(2, 4)
    moments = sorted(by_moment)
    # Board poses in the reference frame: mean over the cameras that saw each.
    T_rb = {m: _mean_pose([np.linalg.inv(T_ck[k]) @ T_cb[(m, k)] for k in by_moment[m]]) for m in moments}

    # 3. Bundle adjustment, then again without the views it could not fit.
    slot = {m: n for n, m in enumerate(moments)}
    lens0 = np.stack([lens_vector(c.K, c.dist) for c in intrinsics])
    measured = lens0.copy()
    cam_x = np.stack([_to_vec(T_ck[k]) for k in range(n_cams)])
    board_x = np.stack([_to_vec(T_rb[m]) for m in moments])
    used = sorted(T_cb)
    rejected: list[tuple[int, int]] = []
    initial_rms = None
    for _ in range(2):
        obs = Observations.build(rows, board, used, slot)
        problem = BundleProblem(obs, n_cams, ref, len(moments), lens0, [c.dist for c in intrinsics],
                                [tuple(c.size) for c in intrinsics], free,
                                [getattr(c, "sigma", None) for c in intrinsics], measured_lens=measured)
        x0 = problem.pack(cam_x, board_x, lens0)
        if initial_rms is None:
            initial_rms = problem.rms(x0)
        sol = problem.solve(x0)
        cam_x, board_x, lens0 = problem.unpack(sol.x)
        per_view = problem.view_rms(sol.x)
        limit = max(REJECT_FACTOR * float(np.median(per_view)), REJECT_FLOOR_PX)
        bad = [v for v, e in zip(obs.views, per_view) if e > limit]
        keep = [v for v in used if v not in bad]
        if not bad or len({k for _, k in keep}) < n_cams:
            break
        rejected += bad
        used = keep
    if progress:
        progress(3, 4)
    T_ck_ba = {k: _from_vec(cam_x[k]) if k != ref else np.eye(4) for k in range(n_cams)}
    T_rb_ba = {m: _from_vec(board_x[slot[m]]) for m in moments if any(mm == m for mm, _ in used)}
    lenses = [lens_matrices(lens0[k], c.dist) for k, c in enumerate(intrinsics)]

    # 4. World frame: the floor board's, or the reference camera's.
    T_wr, world, message = T_ck_ba[out_ref], f"camera {names[out_ref]}", ""
    if floor_moment is not None:
        if floor_moment in T_rb_ba:
            T_wr, world = np.linalg.inv(T_rb_ba[floor_moment] @ floor_frame(board)), "floor"
        else:
            label = views.labels[floor_moment] if 0 <= floor_moment < len(views) else f"moment {floor_moment}"
            message = (f"no camera found the board on the floor ({label}); the rig is kept in camera "
                       f"{names[out_ref]}'s frame: set the floor from another view of the board lying on the "
                       "floor, or from the performer standing")
    cams = []
    for k, intr in enumerate(intrinsics):
        T_kw = T_ck_ba[k] @ np.linalg.inv(T_wr)  # world -> camera k
        U, _, Vt = np.linalg.svd(T_kw[:3, :3])
        K, dist = lenses[k]
        cams.append(Camera(K, dist, U @ Vt, T_kw[:3, 3], intr.size, intr.name))
    per_cam = problem.camera_rms(sol.x)
    counts = np.bincount([k for (_, k) in used], minlength=n_cams)
    poses = {m: ((T_wr @ T)[:3, :3], (T_wr @ T)[:3, 3]) for m, T in T_rb_ba.items()}
    if progress:
        progress(4, 4)
    start = tuple(Camera(c.K, c.dist, np.eye(3), np.zeros(3), c.size, c.name) for c in intrinsics)
    return RigResult(CameraRig(tuple(cams), area), per_cam, counts, poses, problem.rms(sol.x), float(initial_rms),
                     world == "floor", dropped, rejected, world, message, ("given",) * n_cams, start,
                     np.r_[np.array(board.size_mm) / 2, 0.0])


def _initial_rig(T_cb: dict[tuple[int, int], np.ndarray], names: list[str]) -> tuple[int, dict[int, np.ndarray]]:
    """The best-connected camera and every camera's pose in its frame, along
    the tree of most-shared views (Prim's)."""
    n_cams = len(names)
    by_moment = defaultdict(list)
    for (m, k) in T_cb:
        by_moment[m].append(k)
    pair_T: dict[tuple[int, int], list[np.ndarray]] = defaultdict(list)
    for m, ks in by_moment.items():
        for i in ks:
            for j in ks:
                if i < j:
                    # camera j -> camera i
                    pair_T[(i, j)].append(T_cb[(m, i)] @ np.linalg.inv(T_cb[(m, j)]))
    seen = sorted({k for (_, k) in T_cb})
    unseen = [names[k] for k in range(n_cams) if k not in seen]
    if unseen:
        raise CalibrationError(f"camera(s) {', '.join(unseen)} never saw the board: show it to them too")
    degree = np.zeros(n_cams, int)
    for (i, j), Ts in pair_T.items():
        degree[i] += len(Ts)
        degree[j] += len(Ts)
    ref = int(np.argmax(degree))
    T_ck = {ref: np.eye(4)}  # reference frame -> camera k
    while len(T_ck) < n_cams:
        best = None
        for (i, j), Ts in pair_T.items():
            if (i in T_ck) != (j in T_ck) and (best is None or len(Ts) > len(pair_T[best])):
                best = (i, j)
        if best is None:
            inside = sorted(names[k] for k in T_ck)
            outside = sorted(names[k] for k in range(n_cams) if k not in T_ck)
            raise CalibrationError(
                f"camera(s) {', '.join(outside)} share no board view with camera(s) {', '.join(inside)}: "
                "hold the board where cameras of both groups see it at once")
        i, j = best
        T_ij = _mean_pose(pair_T[best])  # j -> i
        if i in T_ck:
            T_ck[j] = np.linalg.inv(T_ij) @ T_ck[i]
        else:
            T_ck[i] = T_ij @ T_ck[j]
    return ref, T_ck

def floor_frame(board: BoardSpec) -> np.ndarray:
    """World frame in the board's frame, for a board lying face up: origin at
    the board's centre, X along board x, Y along board -y, Z along board -z (up)."""
    w, h = board.size_mm
    return pose_matrix(np.diag([1.0, -1.0, -1.0]), np.array([w / 2, h / 2, 0.0]))


def _rms(res: np.ndarray) -> float:
    r = res.reshape(-1, 2)
    return float(np.sqrt((r**2).sum(1).mean()))


def _to_vec(T: np.ndarray) -> np.ndarray:
    return np.concatenate([Rotation.from_matrix(T[:3, :3]).as_rotvec(), T[:3, 3]])


def _from_vec(v: np.ndarray) -> np.ndarray:
    return pose_matrix(Rotation.from_rotvec(v[:3]).as_matrix(), v[3:])


def _mean_pose(Ts: Sequence[np.ndarray]) -> np.ndarray:
    """A robust mean of rigid poses: the rotation mean, the median translation."""
    R = Rotation.from_matrix(np.stack([T[:3, :3] for T in Ts])).mean().as_matrix()
    t = np.median(np.stack([T[:3, 3] for T in Ts]), 0)
    return pose_matrix(R, t)
