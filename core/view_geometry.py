"""The live 3D view's geometry in plain numpy, world millimetres (Z up, floor
at z = 0): the floor grid, camera frusta, skeleton segments with colours
(left blue, right red, centre grey; low confidence greyed) and the hull's
surface voxels. app.view3d hands these arrays to vispy."""

from __future__ import annotations

import math

import numpy as np

from core import skeleton as sk
from core.camera.model import Camera
from core.camera.rig import CaptureArea
from core.volume.grid import VoxelGrid

MAX_VOLUME_POINTS = 20_000
FLOOR_CELL_MM = 1000.0
FRUSTUM_DEPTH_MM = 300.0
FLOOR_COLOUR = (0.32, 0.32, 0.36, 1.0)
LEFT_COLOUR = (0.20, 0.55, 1.00, 1.0)    # animation convention: left blue,
RIGHT_COLOUR = (1.00, 0.30, 0.20, 1.0)   # right red,
CENTRE_COLOUR = (0.92, 0.92, 0.92, 1.0)  # spine and head light grey
LOW_CONFIDENCE_COLOUR = (0.45, 0.45, 0.45, 1.0)


def floor_segments(area: CaptureArea, cell_mm: float = FLOOR_CELL_MM) -> np.ndarray:
    """Segment end points (2N, 3) of a grid on z = 0 covering `area`: lines on
    multiples of cell_mm plus the area's border."""
    def ticks(lo: float, hi: float) -> np.ndarray:
        inner = np.arange(math.ceil(lo / cell_mm), math.floor(hi / cell_mm) + 1) * cell_mm
        return np.unique(np.concatenate([[lo, hi], inner]))

    xs, ys = ticks(area.x_min, area.x_max), ticks(area.y_min, area.y_max)
    seg = [((x, area.y_min, 0.0), (x, area.y_max, 0.0)) for x in xs]
    seg += [((area.x_min, y, 0.0), (area.x_max, y, 0.0)) for y in ys]
    return np.asarray(seg, np.float32).reshape(-1, 3)


def frustum_segments(cam: Camera, depth_mm: float = FRUSTUM_DEPTH_MM) -> np.ndarray:
    """Segment end points (2N, 3) world mm of a pyramid from the camera centre
    to its image corners at depth_mm along the optical axis, with a small
    triangle above the top edge so image-up can be read off the view.
    Distortion is ignored: the pyramid shows where the camera looks, not its
    exact field of view."""
    w, h = cam.size
    fx, fy, cx, cy = cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]
    uv = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5],
                   [w * 0.35, -0.5], [w * 0.65, -0.5], [(w - 1) / 2, -0.5 - 0.2 * h]])
    rays_cam = np.column_stack([(uv[:, 0] - cx) / fx, (uv[:, 1] - cy) / fy, np.ones(len(uv))])
    pts = cam.centre + depth_mm * rays_cam @ cam.R  # camera -> world: R.T @ p per row
    c = cam.centre
    a, b, d, e, t0, t1, tip = pts
    seg = [c, a, c, b, c, d, c, e, a, b, b, d, d, e, e, a, t0, tip, tip, t1]
    return np.asarray(seg, np.float32)


def _side_colour(joint: int) -> tuple[float, ...]:
    if sk.is_left(joint):
        return LEFT_COLOUR
    if sk.is_right(joint):
        return RIGHT_COLOUR
    return CENTRE_COLOUR


_JOINT_COLOURS = np.array([_side_colour(j) for j in range(sk.NUM_JOINTS)], np.float32)
# A bone takes the side of its child, so a clavicle is already left or right.
_BONES = np.array(sk.BONES, np.int64)
_BONE_COLOURS = np.repeat(_JOINT_COLOURS[_BONES[:, 1]], 2, axis=0)


def skeleton_geometry(joints_mm: np.ndarray, confidence: np.ndarray | None = None):
    """Joint positions (M, 3), joint colours (M, 4), bone segment end points
    (2B, 3) and bone colours (2B, 4) for the finite joints of (J, 3) world mm.
    Low-confidence joints fade toward grey."""
    p = np.asarray(joints_mm, np.float64).reshape(sk.NUM_JOINTS, 3)
    ok = np.isfinite(p).all(axis=1)
    colours = _JOINT_COLOURS.copy()
    if confidence is not None:
        c = np.nan_to_num(np.asarray(confidence, np.float64).reshape(sk.NUM_JOINTS), nan=0.0)
        c = np.clip(c, 0.0, 1.0)[:, None].astype(np.float32)
        colours = c * colours + (1 - c) * np.asarray(LOW_CONFIDENCE_COLOUR, np.float32)
    bone_ok = ok[_BONES[:, 0]] & ok[_BONES[:, 1]]
    segs = p[_BONES[bone_ok]].reshape(-1, 3)
    seg_colours = _BONE_COLOURS.reshape(-1, 2, 4)[bone_ok].reshape(-1, 4)
    return p[ok].astype(np.float32), colours[ok], segs.astype(np.float32), seg_colours


def _shell(occupied: np.ndarray) -> np.ndarray:
    """Occupied voxels with at least one empty face neighbour (outside the grid
    counts as empty): the interior of a solid hull can never be seen, and
    leaving it out cuts the points to draw several times over."""
    p = np.pad(occupied.astype(bool), 1)
    inner = (p[:-2, 1:-1, 1:-1] & p[2:, 1:-1, 1:-1] & p[1:-1, :-2, 1:-1]
             & p[1:-1, 2:, 1:-1] & p[1:-1, 1:-1, :-2] & p[1:-1, 1:-1, 2:])
    return p[1:-1, 1:-1, 1:-1] & ~inner


def volume_points(grid: VoxelGrid, volume: np.ndarray, channel: int | None,
                  max_points: int = MAX_VOLUME_POINTS) -> tuple[np.ndarray, int]:
    """Centres (N, 3) world mm of the occupied voxels to draw -- those on the
    surface of the occupied set -- and the stride they were thinned by (1: all).

    channel None: the hull, voxels occupied in every present camera's channel
    (a missing camera is an all-zero channel and does not veto anything);
    channel k: that camera's channel alone (nothing if k is out of range)."""
    vol = np.asarray(volume)
    if channel is None:
        present = vol.reshape(len(vol), -1).any(axis=1)
        occupied = vol[present].all(axis=0) if present.any() else None
    else:
        occupied = vol[channel] > 0 if 0 <= channel < len(vol) else None
    if occupied is None:
        return np.zeros((0, 3), np.float32), 1
    ijk = np.argwhere(_shell(occupied))
    stride = max(1, math.ceil(len(ijk) / max_points))
    ijk = ijk[::stride]
    return grid.voxel_to_world(ijk).astype(np.float32), stride


# -- the widget -----------------------------------------------------------------
