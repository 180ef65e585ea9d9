"""Calibration scenes: a small rig of cameras drawn at random (lenses, poses),
a board walked through the area in front of them, and the images every
camera takes of it, for testing and benchmarking camera calibration.

A scene is the truth (the cameras, the board poses); its images are what a
user would record: one folder per camera, one image per moment with the same
file name in every folder (the layout `main.py calibrate` reads, and anipose
and FreeMoCap use), or one video per camera. The first moment can be the
board lying on the floor at the world's origin.

Lenses are drawn as webcams and machine-vision cameras come: a horizontal
field of view of 55-80 degrees, the principal point up to 3 % of the image
off its centre (`principal_offset`), pixels square within 0.5 %, barrel distortion k1 in
[-0.3, 0], k2 in [0, 0.12], tangential terms up to 1e-3. The cameras stand on
an arc of `arc_deg` (180: a half circle on one side of the room, as webcams
for anipose or FreeMoCap usually stand; 360: a ring around the area),
1.6-2.2 m from the middle (a small room), 1.3-2.2 m high, aimed near the
board's height. Boards are walked within `spread_mm` of the middle (0: held
at the middle, so every camera sees it near its image centre only), at
0.8-1.6 m, turned towards the cameras: towards the arc's middle give or
take a third of the arc, or around a ring towards the point between two
neighbouring cameras.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from core.calibration.board import BoardSpec
from core.camera.model import Camera
from core.camera.rig import CameraRig, CaptureArea, _rays_invertible
from core.sim.board_view import ViewStyle, board_corners_px, board_pose_facing, floor_pose, render_board_view

# The board of the calibration benchmark: 7 x 5 squares of 80 mm, 60 mm markers.
SCENE_BOARD = BoardSpec(squares_x=7, squares_y=5, square_mm=80.0, marker_mm=60.0, dictionary="DICT_5X5_100")


@dataclass(frozen=True, eq=False)
class BoardScene:
    """rig: the true cameras; board; poses: board-to-world (R, t) per moment;
    floor: the first moment is the board on the floor at the origin;
    styles: how each moment's images look."""

    rig: CameraRig
    board: BoardSpec
    poses: list[tuple[np.ndarray, np.ndarray]]
    floor: bool
    styles: list[ViewStyle]

    @property
    def names(self) -> list[str]:
        return self.rig.names

    def frame_name(self, m: int) -> str:
        return f"{m:04d}.png"


def draw_lens_camera(rng: np.random.Generator, position: np.ndarray, target: np.ndarray, size: tuple[int, int],
                     name: str, principal_offset: float = 0.03) -> Camera:
    w, h = size
    while True:
        fov = np.radians(rng.uniform(55.0, 80.0))
        f = w / 2 / np.tan(fov / 2)
        cam = Camera.look_at(position, target, f, size, name=name, roll_rad=rng.uniform(-0.04, 0.04),
                             dist=np.array([rng.uniform(-0.3, 0.0), rng.uniform(0.0, 0.12),
                                            rng.uniform(-1e-3, 1e-3), rng.uniform(-1e-3, 1e-3), 0.0]))
        K = cam.K.copy()
        K[0, 2] += rng.uniform(-principal_offset, principal_offset) * w
        K[1, 2] += rng.uniform(-principal_offset, principal_offset) * h
        K[1, 1] = K[0, 0] * rng.uniform(0.995, 1.005)
        cam = Camera(K, cam.dist, cam.R, cam.t, size, name)
        if _rays_invertible(cam):
            return cam


def draw_scene(rng: np.random.Generator | int, cameras: int = 4, size: tuple[int, int] = (1280, 720),
               moments: int = 40, board: BoardSpec = SCENE_BOARD, spread_mm: float = 500.0, arc_deg: float = 180.0,
               floor: bool = True, blur_px: tuple[float, float] = (0.5, 1.5),
               noise: tuple[float, float] = (1.0, 4.0), principal_offset: float = 0.03) -> BoardScene:
    rng = np.random.default_rng(rng)
    area = CaptureArea(-1500.0, 1500.0, -1500.0, 1500.0)
    base = rng.uniform(0, 2 * np.pi)
    arc = np.radians(arc_deg)
    gap = arc / cameras if arc_deg >= 360 else arc / max(cameras - 1, 1)
    cams = []
    for k in range(cameras):
        az = base + gap * k + rng.uniform(-0.1, 0.1) * gap
        r = rng.uniform(1600.0, 2200.0)
        pos = np.array([r * np.cos(az), r * np.sin(az), rng.uniform(1300.0, 2200.0)])
        target = np.r_[rng.uniform(-200, 200, 2), rng.uniform(900.0, 1300.0)]
        cams.append(draw_lens_camera(rng, pos, target, size, f"cam{k + 1}", principal_offset))
    rig = CameraRig(tuple(cams), area)
    poses = [floor_pose(board, tuple(rng.uniform(-200, 200, 2)), rng.uniform(0, 360))] if floor else []
    m = 0
    while len(poses) < moments + floor:
        # Turned towards the point between two neighbouring cameras (around a ring), or towards the
        # middle of the arc, give or take, where the cameras stand on one side.
        if arc_deg >= 360:
            a, b = rig[m % cameras], rig[(m + 1) % cameras]
        else:
            a, b = rig[0], rig[cameras - 1]
        m += 1
        centre = np.r_[rng.uniform(-spread_mm, spread_mm, 2), rng.uniform(800.0, 1600.0)]
        if arc_deg >= 360:
            viewer = (a.centre + b.centre) / 2 + rng.uniform(-500, 500, 3)
        else:
            mid = base + arc / 2 + rng.uniform(-0.35, 0.35) * arc
            viewer = 2500.0 * np.array([np.cos(mid), np.sin(mid), 0.0])
        viewer[2] = centre[2] + rng.uniform(-300, 300)
        poses.append(board_pose_facing(viewer, centre, board, tuple(rng.uniform(-30.0, 30.0, 2)),
                                       rng.uniform(-30.0, 30.0)))
    styles = [ViewStyle(blur_sigma_px=float(rng.uniform(*blur_px)), noise_std=float(rng.uniform(*noise)))
              for _ in poses]
    if floor:
        # The floor's world: the first board's frame (core.calibration.extrinsics.floor_frame) is the truth's.
        rig = _in_floor_world(rig, board, poses[0])
        poses = _poses_in_floor_world(board, poses)
    return BoardScene(rig, board, poses, floor, styles)


def _floor_transform(board: BoardSpec, floor: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """4x4 world -> floor-board world."""
    R, t = floor
    T = np.eye(4)
    T[:3, :3] = R @ np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = t + R @ np.r_[np.array(board.size_mm) / 2, 0.0]
    return np.linalg.inv(T)


def _in_floor_world(rig: CameraRig, board: BoardSpec, floor) -> CameraRig:
    Ti = np.linalg.inv(_floor_transform(board, floor))  # floor world -> old world
    cams = [Camera(c.K, c.dist, c.R @ Ti[:3, :3], c.R @ Ti[:3, 3] + c.t, c.size, c.name) for c in rig]
    return CameraRig(tuple(cams), rig.area)


def _poses_in_floor_world(board: BoardSpec, poses):
    T = _floor_transform(board, poses[0])
    return [(T[:3, :3] @ R, T[:3, :3] @ t + T[:3, 3]) for R, t in poses]


def scene_images(scene: BoardScene, rng: np.random.Generator | int) -> Iterator[tuple[int, list[np.ndarray]]]:
    """(moment, [grey image per camera]) for every moment; a camera that sees
    the board's back or nothing of it gets the empty room."""
    rng = np.random.default_rng(rng)
    for m, ((R, t), style) in enumerate(zip(scene.poses, scene.styles)):
        row = []
        for cam in scene.rig:
            if not board_corners_px(cam, scene.board, R, t)[1].any():
                R_far, t_far = np.eye(3), np.array([0.0, 0.0, -1e7])  # nothing in view
                row.append(render_board_view(cam, scene.board, R_far, t_far, rng=rng, style=style))
            else:
                row.append(render_board_view(cam, scene.board, R, t, rng=rng, style=style))
        yield m, row


def write_scene(scene: BoardScene, folder: Path, rng: np.random.Generator | int, videos: bool = False,
                progress: Callable[[int, int], None] | None = None) -> Path:
    """The scene's images as a user records them: folder/<camera>/<moment>.png,
    or with `videos` one lossless video per camera, folder/<camera>.mkv (one
    frame per moment). Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    writers = {}
    for m, row in scene_images(scene, rng):
        for cam, img in zip(scene.rig, row):
            if videos:
                if cam.name not in writers:
                    writers[cam.name] = cv2.VideoWriter(str(folder / f"{cam.name}.mkv"),
                                                        cv2.VideoWriter_fourcc(*"FFV1"), 10.0, cam.size)
                writers[cam.name].write(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
            else:
                (folder / cam.name).mkdir(exist_ok=True)
                cv2.imwrite(str(folder / cam.name / scene.frame_name(m)), img)
        if progress:
            progress(m + 1, len(scene.poses))
    for w in writers.values():
        w.release()
    return folder


@dataclass(frozen=True)
class RigErrors:
    """Per camera, against the truth: centre (mm) and rotation (degrees)
    after a similarity alignment of the estimated centres onto the true ones
    (a calibration's world is its own), focal length (% of (fx + fy) / 2,
    and the larger of fx's and fy's), principal point (px)."""

    centre_mm: np.ndarray
    rotation_deg: np.ndarray
    focal_pct: np.ndarray
    focal_xy_pct: np.ndarray
    principal_px: np.ndarray


def similarity(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """s, R, t minimising |s R src + t - dst|^2 over points (N, 3) (Umeyama's
    closed form); s = 1 without `with_scale`."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    U, S, Vt = np.linalg.svd(b.T @ a / len(src))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ D @ Vt
    s = float(np.trace(np.diag(S) @ D) / (a**2).sum(1).mean()) if with_scale else 1.0
    return s, R, md - s * R @ ms


def rig_errors(truth: CameraRig, est: CameraRig) -> RigErrors:
    """Errors of `est` against `truth` (same cameras, same order, same sizes)."""
    from scipy.spatial.transform import Rotation

    a = np.stack([c.centre for c in est])
    b = np.stack([c.centre for c in truth])
    s, R, t = similarity(a, b)
    centre = np.linalg.norm((s * a @ R.T + t) - b, axis=1)
    # The estimated world turned by R: camera rotation world->camera becomes R_est @ R.T.
    rot = np.array([np.degrees(Rotation.from_matrix(ce.R @ R.T @ ct.R.T).magnitude()) for ce, ct in zip(est, truth)])
    f_est = np.array([(c.K[0, 0] + c.K[1, 1]) / 2 for c in est])
    f_true = np.array([(c.K[0, 0] + c.K[1, 1]) / 2 for c in truth])
    fxy = np.array([max(abs(ce.K[0, 0] / ct.K[0, 0] - 1), abs(ce.K[1, 1] / ct.K[1, 1] - 1))
                    for ce, ct in zip(est, truth)])
    pp = np.array([np.linalg.norm(ce.K[:2, 2] - ct.K[:2, 2]) for ce, ct in zip(est, truth)])
    return RigErrors(centre, rot, 100 * np.abs(f_est / f_true - 1), 100 * fxy, pp)
