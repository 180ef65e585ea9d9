"""Forward kinematics on the skeleton of :mod:`core.skeleton`.

A pose is a root position (world mm) and one local rotation per joint, each
applied in its parent's frame; rest rotations are the identity, so a joint's
global rotation maps the T-pose direction of its bone to the current one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from core import skeleton as sk


@dataclass(frozen=True)
class Poses:
    """T poses. positions_mm: (T, J, 3) world. rotations: (T, J, 3, 3) global
    rotation matrices (bone frame -> world)."""

    positions_mm: np.ndarray
    rotations: np.ndarray

    def __len__(self) -> int:
        return self.positions_mm.shape[0]

    def frame(self, t: int) -> "Poses":
        return Poses(self.positions_mm[t : t + 1], self.rotations[t : t + 1])

    def bone_rotation(self, joint: int) -> Rotation:
        """Global rotation of the bone starting at `joint`, for every frame."""
        return Rotation.from_matrix(self.rotations[:, joint])


def forward_kinematics(offsets_mm: np.ndarray, root_mm: np.ndarray, local: Rotation) -> Poses:
    """offsets_mm: (J, 3) rest offsets; root_mm: (T, 3) Hips positions;
    local: T*J local rotations, frame-major (index t*J + j)."""
    root_mm = np.asarray(root_mm, np.float64).reshape(-1, 3)
    T, J = root_mm.shape[0], sk.NUM_JOINTS
    if len(local) != T * J:
        raise ValueError(f"expected {T * J} local rotations, got {len(local)}")
    # Composed as matrices: one batched matmul per joint is ~6x faster than
    # composing Rotation objects, and FK runs for every training frame.
    L = local.as_matrix().reshape(T, J, 3, 3)
    rot = np.empty((T, J, 3, 3))
    pos = np.empty((T, J, 3))
    offsets = np.asarray(offsets_mm, np.float64)
    for j, p in enumerate(sk.PARENTS):
        if p < 0:
            rot[:, j] = L[:, j]
            pos[:, j] = root_mm
        else:
            rot[:, j] = rot[:, p] @ L[:, j]
            pos[:, j] = pos[:, p] + rot[:, p] @ offsets[j]
    return Poses(pos, rot)
