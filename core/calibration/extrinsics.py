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
3. Bundle adjustment (``scipy.optimize.least_squares``, robust soft-L1 loss,
   a sparse Jacobian) refines every camera pose and every board pose against
   all detected corners.
4. The world frame comes from one moment with the board lying flat on the
   floor, printed face up: origin at the board's centre, X along the board's
   rows (its x), Z up, millimetres.

Intrinsics stay as calibrated per camera (a board near a camera measures
them far better than the rig views do).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix
from scipy.spatial.transform import Rotation

from core.calibration.board import BoardSpec, Detection
from core.calibration.intrinsics import CalibrationError
from core.camera.model import Camera, distort
from core.camera.rig import CameraRig, CaptureArea

MIN_CORNERS = 6
# A board pose whose own reprojection error is above this is a misdetection.
MAX_PNP_RMS_PX = 3.0


@dataclass(frozen=True)
class Intrinsics:
    """One camera as the intrinsic step left it."""

    name: str
    K: np.ndarray
    dist: np.ndarray
    size: tuple[int, int]


@dataclass
class RigResult:
    """rig: the calibrated cameras (world frame, mm); camera_rms_px: per camera
    reprojection RMS after bundle adjustment; observations: board views used
    per camera; board_poses: {moment: (R, t)} board-to-world; rms_px: all
    corners together; cost_history: the adjustment's start and end cost."""

    rig: CameraRig
    camera_rms_px: np.ndarray
    observations: np.ndarray
    board_poses: dict[int, tuple[np.ndarray, np.ndarray]]
    rms_px: float
    initial_rms_px: float
    floor_aligned: bool
    dropped: list[tuple[int, int]] = field(default_factory=list)


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


def calibrate_rig(
    detections: Sequence[Sequence[Detection | None]],
    intrinsics: Sequence[Intrinsics],
    board: BoardSpec,
    floor_moment: int | None = None,
    area: CaptureArea = CaptureArea(),
    progress: Callable[[int, int], None] | None = None,
) -> RigResult:
    """detections[m][k]: camera k's view of the board at moment m (None where
    it did not see it). floor_moment: the moment the board lay on the floor
    (world frame); without one the world is the reference camera's frame."""
    if board.kind != "charuco":
        raise CalibrationError("rig calibration needs a ChArUco board: a plain chessboard looks the same "
                               "turned half round, so two cameras could number its corners differently")
    n_cams = len(intrinsics)
    if n_cams < 2:
        raise CalibrationError("a rig needs at least two cameras")
    for m, row in enumerate(detections):
        if len(row) != n_cams:
            raise CalibrationError(f"moment {m} has {len(row)} views for {n_cams} cameras")
    names = [c.name for c in intrinsics]

    # 1. Board poses per view.
    T_cb: dict[tuple[int, int], np.ndarray] = {}
    dropped = []
    for m, row in enumerate(detections):
        for k, det in enumerate(row):
            if det is None or len(det) < MIN_CORNERS:
                continue
            if tuple(det.size) != tuple(intrinsics[k].size):
                raise CalibrationError(f"camera {names[k]}: a {det.size[0]}x{det.size[1]} view, but it was "
                                       f"calibrated at {intrinsics[k].size[0]}x{intrinsics[k].size[1]}")
            res = _board_in_camera(det, board, intrinsics[k])
            if res is None or res[1] > MAX_PNP_RMS_PX:
                dropped.append((m, k))
                continue
            T_cb[(m, k)] = res[0]
    if progress:
        progress(1, 4)

    # 2. Relative poses and the camera graph.
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
    # Prim's tree over the most-shared edges.
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
    if progress:
        progress(2, 4)

    # Board poses in the reference frame: mean over the cameras that saw each.
    moments = sorted(by_moment)
    T_rb = {m: _mean_pose([np.linalg.inv(T_ck[k]) @ T_cb[(m, k)] for k in by_moment[m]]) for m in moments}

    # 3. Bundle adjustment.
    cams_free = [k for k in range(n_cams) if k != ref]
    obs = [(m, k) for (m, k) in sorted(T_cb)]
    x0 = np.concatenate([_to_vec(T_ck[k]) for k in cams_free] + [_to_vec(T_rb[m]) for m in moments])
    problem = _Problem(obs, detections, board, intrinsics, cams_free, moments)
    initial = problem.residuals(x0)
    sol = least_squares(problem.residuals, x0, jac_sparsity=problem.sparsity(), method="trf", loss="soft_l1",
                        f_scale=1.0, x_scale="jac", max_nfev=200)
    final = problem.residuals(sol.x)
    if progress:
        progress(3, 4)
    T_ck_ba = {ref: np.eye(4)}
    for n, k in enumerate(cams_free):
        T_ck_ba[k] = _from_vec(sol.x[6 * n: 6 * n + 6])
    off = 6 * len(cams_free)
    T_rb_ba = {m: _from_vec(sol.x[off + 6 * n: off + 6 * n + 6]) for n, m in enumerate(moments)}

    # 4. World frame.
    T_wr = np.eye(4)  # reference -> world
    if floor_moment is not None:
        if floor_moment not in T_rb_ba:
            raise CalibrationError(f"no camera saw the board at the floor moment {floor_moment}")
        T_wr = np.linalg.inv(T_rb_ba[floor_moment] @ floor_frame(board))
    cams = []
    for k, intr in enumerate(intrinsics):
        T_kw = T_ck_ba[k] @ np.linalg.inv(T_wr)  # world -> camera k
        R = T_kw[:3, :3]
        U, _, Vt = np.linalg.svd(R)
        cams.append(Camera(intr.K, intr.dist, U @ Vt, T_kw[:3, 3], intr.size, intr.name))
    per_cam = problem.camera_rms(final, n_cams)
    counts = np.bincount([k for (_, k) in obs], minlength=n_cams)
    poses = {m: ((T_wr @ T)[:3, :3], (T_wr @ T)[:3, 3]) for m, T in T_rb_ba.items()}
    if progress:
        progress(4, 4)
    return RigResult(CameraRig(tuple(cams), area), per_cam, counts, poses, _rms(final), _rms(initial),
                     floor_moment is not None, dropped)


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


class _Problem:
    """Residuals of every detected corner against its projection, vectorised
    over all corners; parameters are rotation vectors and translations of the
    free cameras (reference frame -> camera) and of the board at each moment
    (board -> reference frame)."""

    def __init__(self, obs, detections, board, intrinsics, cams_free, moments) -> None:
        self.n_free = len(cams_free)
        cam_slot = {k: n for n, k in enumerate(cams_free)}
        mom_slot = {m: n for n, m in enumerate(moments)}
        X, uv, cam, slot_c, slot_m = [], [], [], [], []
        for (m, k) in obs:
            det = detections[m][k]
            X.append(det.object_points(board))
            uv.append(det.pixels)
            n = len(det)
            cam += [k] * n
            slot_c += [cam_slot.get(k, -1)] * n
            slot_m += [mom_slot[m]] * n
        self.X = np.concatenate(X)
        self.uv = np.concatenate(uv)
        self.cam = np.array(cam)
        self.slot_c = np.array(slot_c)
        self.slot_m = np.array(slot_m)
        Ks = np.stack([c.K for c in intrinsics])[self.cam]
        d8 = np.zeros((len(intrinsics), 8))
        for k, c in enumerate(intrinsics):
            d8[k, : len(c.dist)] = c.dist
        self.fx, self.fy, self.cx, self.cy = Ks[:, 0, 0], Ks[:, 1, 1], Ks[:, 0, 2], Ks[:, 1, 2]
        self.dist8 = d8[self.cam].T  # (8, N)
        self.n_params = 6 * (self.n_free + len(moments))

    def residuals(self, x: np.ndarray) -> np.ndarray:
        cams = x[: 6 * self.n_free].reshape(-1, 6)
        boards = x[6 * self.n_free:].reshape(-1, 6)
        Rb = Rotation.from_rotvec(boards[:, :3]).as_matrix()[self.slot_m]
        p = np.einsum("nij,nj->ni", Rb, self.X) + boards[self.slot_m, 3:]
        free = self.slot_c >= 0
        if self.n_free:
            Rc = Rotation.from_rotvec(cams[:, :3]).as_matrix()
            sc = self.slot_c[free]
            p[free] = np.einsum("nij,nj->ni", Rc[sc], p[free]) + cams[sc, 3:]
        z = np.maximum(p[:, 2], 1e-6)
        xd, yd, _ = distort(p[:, 0] / z, p[:, 1] / z, self.dist8)
        u = self.fx * xd + self.cx
        v = self.fy * yd + self.cy
        return np.stack([u - self.uv[:, 0], v - self.uv[:, 1]], 1).ravel()

    def sparsity(self):
        n = len(self.X)
        J = lil_matrix((2 * n, self.n_params), dtype=np.int8)
        rows = np.arange(n)
        for r in (2 * rows, 2 * rows + 1):
            for c in range(6):
                J[r, 6 * self.n_free + 6 * self.slot_m + c] = 1
                free = self.slot_c >= 0
                J[r[free], 6 * self.slot_c[free] + c] = 1
        return J

    def camera_rms(self, res: np.ndarray, n_cams: int) -> np.ndarray:
        e2 = (res.reshape(-1, 2) ** 2).sum(1)
        out = np.full(n_cams, np.nan)
        for k in range(n_cams):
            sel = self.cam == k
            if sel.any():
                out[k] = float(np.sqrt(e2[sel].mean()))
        return out
