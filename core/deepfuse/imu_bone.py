"""The IMU-bone layer: one 0/1 volume per IMU bone, a cylinder of radius r
around the ray that starts at the bone's estimated start joint and runs along
the bone's measured direction (DeepFuse, section 3.3).

The rays run to the edge of the volume: the network is given no bone
lengths, so the end joint may lie anywhere along the ray. A bone whose IMU is
missing gives an empty channel. Coordinates are heatmap voxels ([x, y, z],
voxel i's centre at i); the grid axes are the world axes, so world bone
directions are used as they are.
"""

from __future__ import annotations

import numpy as np
import torch

from core import skeleton as sk

BONE_STARTS = tuple(b.start for b in sk.IMU_BONES)


def bone_directions(global_rotations: np.ndarray) -> np.ndarray:
    """World unit directions (..., 13, 3) of the IMU bones from the global
    rotation matrices (..., 13, 3, 3) of their start joints (T-pose = identity)."""
    return np.einsum("...ij,...j->...i", global_rotations, sk.IMU_BONE_REST_DIRECTIONS)


def cylinder_volumes(starts: torch.Tensor, directions: torch.Tensor, valid: torch.Tensor,
                     side: int, radius_vox: float, length_vox: float | None = None) -> torch.Tensor:
    """(B, 13, S, S, S) float volumes of the bone cylinders.

    starts (B, 13, 3) voxels; directions (B, 13, 3) unit vectors; valid
    (B, 13) bool (False: IMU missing, empty channel). A voxel is inside when
    its distance to the ray is at most radius_vox and it lies along the ray
    (0 <= t <= length_vox, unlimited when None), or within radius_vox of the
    start point."""
    ax = torch.arange(side, device=starts.device, dtype=starts.dtype)
    s = starts.detach()
    d = directions.to(starts.dtype)
    w = [ax - s[..., i, None] for i in range(3)]  # (B, 13, S) per axis
    wx, wy, wz = w[0][..., :, None, None], w[1][..., None, :, None], w[2][..., None, None, :]
    dx, dy, dz = (d[..., i, None, None, None] for i in range(3))
    t = wx * dx + wy * dy + wz * dz
    r2 = wx * wx + wy * wy + wz * wz
    perp2 = r2 - t * t
    rr = radius_vox * radius_vox
    along = (t >= 0) & (perp2 <= rr)
    if length_vox is not None:
        along &= t <= length_vox
    inside = along | (r2 <= rr)
    return (inside & valid[..., None, None, None]).to(starts.dtype)
