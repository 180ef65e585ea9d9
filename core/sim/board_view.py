"""Images of a calibration board seen by a simulated camera.

Each pixel's ray (the same rays the silhouette renderer casts, lens distortion
included) is intersected with the board's plane and reads the printed board
there, so the true corner positions are known exactly: the projection of the
board's corners through the camera. Blur, noise, a textured background and
uneven lighting make the images look like a camera's, so detection and
calibration are tested on something closer to the real thing than a clean
warp.

Board poses are board-to-world: x_world = R @ x_board + t (mm). The printed
face is the board's -z side (OpenCV's board frame has z into the board).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from core.calibration.board import BoardSpec
from core.camera.model import Camera
from core.sim.render import pixel_grid


@dataclass(frozen=True)
class ViewStyle:
    """How the image looks. Grey levels are of the printed black and white;
    lighting is a linear gain ramp across the image (0: even)."""

    black: float = 35.0
    white: float = 215.0
    blur_sigma_px: float = 0.8
    noise_std: float = 2.0
    lighting: float = 0.25
    background_texture: float = 40.0


def board_pose_facing(camera_centre_mm: np.ndarray, board_centre_mm: np.ndarray, board: BoardSpec,
                      tilt_deg: tuple[float, float] = (0.0, 0.0),
                      roll_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A board-to-world pose (R, t) with the board's centre at `board_centre_mm`,
    its printed face towards `camera_centre_mm`, then tilted about its own x
    and y axes and rolled about its normal."""
    c = np.asarray(board_centre_mm, np.float64)
    z = c - np.asarray(camera_centre_mm, np.float64)  # board z points away from the viewer
    z /= np.linalg.norm(z)
    up = np.array([0.0, 0.0, 1.0])
    x = np.cross(up, z)
    if np.linalg.norm(x) < 1e-6:
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)  # board y runs down the page: world down on an upright board
    R = np.stack([x, y, z], 1)
    extra = Rotation.from_euler("xyz", [tilt_deg[0], tilt_deg[1], roll_deg], degrees=True).as_matrix()
    R = R @ extra
    w, h = board.size_mm
    t = c - R @ np.array([w / 2, h / 2, 0.0])
    return R, t


def board_corners_px(camera: Camera, board: BoardSpec, R: np.ndarray, t: np.ndarray):
    """True pixels (N, 2) of the board's corners and whether each is in view
    (in front, inside the image, on the printed side)."""
    pts = board.corners_mm @ np.asarray(R).T + t
    uv, valid = camera.project(pts)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] <= camera.width - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= camera.height - 1)
    return uv, valid & inside & _faces(camera, R, t)


def _faces(camera: Camera, R: np.ndarray, t: np.ndarray) -> bool:
    centre_in_board = np.asarray(R).T @ (camera.centre - t)
    return bool(centre_in_board[2] < 0)


def render_board_view(camera: Camera, board: BoardSpec, R: np.ndarray, t: np.ndarray,
                      rng: np.random.Generator | int | None = None, style: ViewStyle = ViewStyle()) -> np.ndarray:
    """uint8 grey image (H, W) of the board at pose (R, t) seen by `camera`."""
    rng = np.random.default_rng(rng)
    W, H = camera.size
    R = np.asarray(R, np.float64)
    t = np.asarray(t, np.float64)
    # Board frame in camera coordinates.
    R_cb = camera.R @ R
    t_cb = camera.R @ t + camera.t
    background = _background(H, W, rng, style)
    margin_mm = board.square_mm  # a whole number of texture pixels (see BoardSpec.image)
    roi = _board_roi(camera, board, R, t, margin_mm)
    img = background
    if roi is not None:
        x0, y0, x1, y1 = roi
        img = background.copy()
        img[y0:y1, x0:x1] = _board_pixels(camera, board, R, t, R_cb, t_cb, roi, margin_mm,
                                          background[y0:y1, x0:x1], style)
    if style.lighting:
        gx = np.linspace(-1, 1, W, dtype=np.float32)[None, :]
        gy = np.linspace(-1, 1, H, dtype=np.float32)[:, None]
        a, b = rng.uniform(-1, 1, 2) * style.lighting
        img = img * (1 + a * gx + b * gy)
    if style.blur_sigma_px > 0:
        img = cv2.GaussianBlur(img, (0, 0), style.blur_sigma_px)
    if style.noise_std > 0:
        img = img + rng.normal(0, style.noise_std, img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _board_roi(camera: Camera, board: BoardSpec, R, t, margin_mm: float):
    """Pixel box (x0, y0, x1, y1) that holds the board and its margin, or None
    when the board is out of view. Its outline is sampled densely, so lens
    distortion bending the edges is inside the box."""
    w, h = board.size_mm
    s = np.linspace(0, 1, 33)
    lo, hx, hy = -margin_mm, w + margin_mm, h + margin_mm
    outline = np.concatenate([
        np.stack([lo + s * (hx - lo), np.full_like(s, lo)], 1), np.stack([lo + s * (hx - lo), np.full_like(s, hy)], 1),
        np.stack([np.full_like(s, lo), lo + s * (hy - lo)], 1), np.stack([np.full_like(s, hx), lo + s * (hy - lo)], 1)])
    pts = np.concatenate([outline, np.zeros((len(outline), 1))], 1) @ np.asarray(R).T + t
    uv, valid = camera.project(pts)
    W, H = camera.size
    if not valid.all():
        return (0, 0, W, H) if valid.any() else None
    x0, y0 = np.floor(uv.min(0)).astype(int) - 3
    x1, y1 = np.ceil(uv.max(0)).astype(int) + 4
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if x0 >= x1 or y0 >= y1:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def _board_pixels(camera, board, R, t, R_cb, t_cb, roi, margin_mm, background, style) -> np.ndarray:
    x0, y0, x1, y1 = roi
    W = camera.width
    rows = np.arange(y0, y1)[:, None] * W + np.arange(x0, x1)[None, :]
    xy = pixel_grid(camera)[:, rows.ravel()].astype(np.float64)  # normalised ray directions (x/z, y/z)
    h, w = y1 - y0, x1 - x0
    d = np.concatenate([xy, np.ones((1, xy.shape[1]))], 0)
    n = R_cb[:, 2]
    denom = n @ d
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (n @ t_cb) / denom
        hit = (s > 0) & np.isfinite(s)
        p_board = R_cb.T @ (d * np.where(hit, s, 0.0) - t_cb[:, None])  # (3, H*W)

    # Texture at about twice the image's sampling of the board, so bilinear reads don't alias.
    depth = float(np.linalg.norm(t_cb + R_cb @ np.r_[np.array(board.size_mm) / 2, 0.0]))
    px_per_mm = board.image_scale(float(np.clip(2.0 * camera.K[0, 0] / max(depth, 1.0), 0.5, 12.0)))
    tex = board.image(px_per_mm, margin_mm).astype(np.float32) / 255.0
    tex = style.black + (style.white - style.black) * tex
    if not _faces(camera, R, t):
        tex = np.full_like(tex, (style.black + style.white) / 2)  # the board's back
    map_x = ((p_board[0] + margin_mm) * px_per_mm - 0.5).astype(np.float32)
    map_y = ((p_board[1] + margin_mm) * px_per_mm - 0.5).astype(np.float32)
    map_x[~hit] = -1e6
    map_y[~hit] = -1e6
    board_img = cv2.remap(tex, map_x.reshape(h, w), map_y.reshape(h, w), cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=-1.0)
    return np.where(board_img >= 0, board_img, background)


def _background(H: int, W: int, rng: np.random.Generator, style: ViewStyle) -> np.ndarray:
    """A smooth random texture (a room, out of focus)."""
    small = rng.uniform(-1, 1, (max(2, H // 60), max(2, W // 60))).astype(np.float32)
    tex = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)
    return 120.0 + style.background_texture * tex


def floor_pose(board: BoardSpec, centre_mm=(0.0, 0.0), yaw_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The board lying face up on the floor with its centre at `centre_mm`
    (x, y), its x axis turned `yaw_deg` from world X: the pose whose board
    frame defines FuseCap's world (core.calibration.extrinsics.floor_frame)."""
    Rz = Rotation.from_euler("z", yaw_deg, degrees=True).as_matrix()
    R = Rz @ np.diag([1.0, -1.0, -1.0])  # board x = world x, board y = -world y, face (-z) up
    w, h = board.size_mm
    t = np.array([centre_mm[0], centre_mm[1], 0.0]) - R @ np.array([w / 2, h / 2, 0.0])
    return R, t


def waved_board_poses(rig, board: BoardSpec, count: int, rng: np.random.Generator | int | None = None,
                      spread_mm: float = 800.0, height_mm: tuple[float, float] = (800.0, 1500.0),
                      max_tilt_deg: float = 25.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Board poses of someone walking the board around the capture area for a
    rig calibration: centres within `spread_mm` of the area's middle, facing a
    random horizontal direction (so a few cameras at a time see the printed
    side), tilted and rolled a little."""
    rng = np.random.default_rng(rng)
    mid = rig.area.centre
    poses = []
    for _ in range(count):
        c = np.r_[mid[:2] + rng.uniform(-spread_mm, spread_mm, 2), rng.uniform(*height_mm)]
        a = rng.uniform(0, 2 * np.pi)
        viewer = c + 1000.0 * np.array([np.cos(a), np.sin(a), 0.0])
        poses.append(board_pose_facing(viewer, c, board, tuple(rng.uniform(-max_tilt_deg, max_tilt_deg, 2)),
                                       rng.uniform(-20, 20)))
    return poses


def handheld_board_poses(camera: Camera, board: BoardSpec, count: int, rng: np.random.Generator | int | None = None,
                         distance_mm: tuple[float, float] = (550.0, 1000.0), max_tilt_deg: float = 35.0,
                         margin_px: float = 120.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Board poses of someone holding the board in front of one camera for
    its intrinsics: centres spread over the whole image (edges included),
    at varied distances, tilted and rolled."""
    rng = np.random.default_rng(rng)
    W, H = camera.size
    poses = []
    for _ in range(count):
        uv = rng.uniform([margin_px, margin_px], [W - margin_px, H - margin_px])
        centre = camera.centre + camera.pixel_rays(uv[None])[0] * rng.uniform(*distance_mm)
        poses.append(board_pose_facing(camera.centre, centre, board, tuple(rng.uniform(-max_tilt_deg, max_tilt_deg, 2)),
                                       rng.uniform(-30, 30)))
    return poses
