"""The world from a board lying on the floor, for a rig whose cameras are
right but whose world is not the studio's: the reference camera's after a
rig calibration without a floor moment, or another tool's (a TOML file).

The new world has its origin at the board's centre, X along its rows and
Z up, millimetres (extrinsics.floor_frame)."""

from __future__ import annotations

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from core.calibration.board import BoardSpec
from core.calibration.extrinsics import MAX_PNP_RMS_PX, floor_frame, pose_matrix
from core.calibration.intrinsics import CalibrationError
from core.camera.model import Camera
from core.camera.rig import CameraRig


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
