"""Rotation conventions at FuseCap's boundaries.

All rotation maths goes through :class:`scipy.spatial.transform.Rotation`.
SciPy stores quaternions scalar-last (x, y, z, w); FuseCap's files and wire
protocols are scalar-first (w, x, y, z). Convert only here, at the edge.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def from_wxyz(q_wxyz: np.ndarray) -> Rotation:
    """Rotation from scalar-first quaternions, shape (4,) or (..., 4)."""
    q = np.asarray(q_wxyz, dtype=np.float64)
    if q.shape[-1] != 4:
        raise ValueError(f"quaternions need 4 components (w, x, y, z), got shape {q.shape}")
    flat = q.reshape(-1, 4)
    rot = Rotation.from_quat(flat, scalar_first=True)
    return rot[0] if q.ndim == 1 else rot


def to_wxyz(rot: Rotation, canonical: bool = True) -> np.ndarray:
    """Scalar-first quaternions; with `canonical`, w >= 0 (one sign per rotation)."""
    return rot.as_quat(canonical=canonical, scalar_first=True)


def angle_deg(a: Rotation, b: Rotation) -> np.ndarray:
    """Geodesic angle between rotations, degrees."""
    return np.degrees((a.inv() * b).magnitude())


def yaw(angle_rad: float | np.ndarray) -> Rotation:
    """Rotation about the world's vertical (Z) axis."""
    angle = np.asarray(angle_rad, dtype=np.float64)
    return Rotation.from_rotvec(np.stack([np.zeros_like(angle), np.zeros_like(angle), angle], -1))


def align_vectors(src: np.ndarray, dst: np.ndarray) -> Rotation:
    """Smallest rotation that turns direction `src` into direction `dst` (both (3,))."""
    src = np.asarray(src, float) / np.linalg.norm(src)
    dst = np.asarray(dst, float) / np.linalg.norm(dst)
    rot, _ = Rotation.align_vectors(dst[None], src[None])
    return rot


def skew(v: np.ndarray) -> np.ndarray:
    """(..., 3, 3) cross-product matrices."""
    out = np.zeros(v.shape[:-1] + (3, 3))
    out[..., 0, 1], out[..., 0, 2] = -v[..., 2], v[..., 1]
    out[..., 1, 0], out[..., 1, 2] = v[..., 2], -v[..., 0]
    out[..., 2, 0], out[..., 2, 1] = -v[..., 1], v[..., 0]
    return out
