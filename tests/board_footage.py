"""Footage of calibration boards for real-camera calibration tests: one
lossless video per camera for each step (the board held in front of every
camera, the board walked around the area, the board lying on the floor at
the origin), rendered through the simulated studio's true cameras
(core.sim.board_view). Each board pose is held for `hold` frames (the
walked board for `hold_walk`), as a person pauses with it."""

from pathlib import Path

import cv2
import numpy as np

from core.calibration.board import BoardSpec
from core.camera.rig import CameraRig
from core.sim.board_view import board_pose_facing, floor_pose, handheld_board_poses, render_board_view


def _write(folder: Path, frames_per_camera: list[list[np.ndarray]], fps: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, frames in enumerate(frames_per_camera):
        h, w = frames[0].shape[:2]
        out = cv2.VideoWriter(str(folder / f"cam{k}.mkv"), cv2.VideoWriter_fourcc(*"FFV1"), fps, (w, h))
        assert out.isOpened()
        for img in frames:
            out.write(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
        out.release()
    return folder


def walked_poses(rig: CameraRig, board: BoardSpec, count: int, rng: np.random.Generator):
    """The board walked around the area and turned, each time, towards the
    point between two neighbouring cameras, so both see it (as a person is
    told to do)."""
    mid = rig.area.centre
    order = np.argsort([np.arctan2(*(c.centre[:2] - mid[:2])[::-1]) for c in rig])
    poses = []
    for m in range(count):
        a, b = rig[int(order[m % len(rig)])], rig[int(order[(m + 1) % len(rig)])]
        centre = np.r_[mid[:2] + rng.uniform(-600.0, 600.0, 2), rng.uniform(900.0, 1400.0)]
        viewer = (a.centre + b.centre) / 2
        viewer[2] = centre[2]
        poses.append(board_pose_facing(viewer, centre, board, tuple(rng.uniform(-15.0, 15.0, 2)),
                                       rng.uniform(-15.0, 15.0)))
    return poses


def render_board_footage(root: Path, rig: CameraRig, wall: BoardSpec, walked: BoardSpec, seed: int = 0,
                         fps: float = 5.0, hold: int = 3, handheld: int = 10, moments: int = 12,
                         hold_walk: int = 5, floor_s: float = 4.0) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    intr = []
    for cam in rig:
        poses = handheld_board_poses(cam, wall, handheld, rng, margin_px=0.1 * cam.height)
        intr.append([img for R, t in poses for img in [render_board_view(cam, wall, R, t, rng=rng)] * hold])
    walk = [[] for _ in rig]
    for R, t in walked_poses(rig, walked, moments, rng):
        for k, cam in enumerate(rig):
            walk[k].extend([render_board_view(cam, walked, R, t, rng=rng)] * hold_walk)
    R, t = floor_pose(walked)
    floor = [[render_board_view(cam, walked, R, t, rng=rng)] * int(round(floor_s * fps)) for cam in rig]
    return {"intrinsics": _write(root / "intrinsics", intr, fps), "rig": _write(root / "rig", walk, fps),
            "floor": _write(root / "floor", floor, fps)}
