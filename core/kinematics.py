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
    glob: list[Rotation] = [None] * J  # type: ignore[list-item]
    pos = np.zeros((T, J, 3))
    for j, p in enumerate(sk.PARENTS):
        lj = local[j::J]
        if p < 0:
            glob[j] = lj
            pos[:, j] = root_mm
        else:
            glob[j] = glob[p] * lj
            pos[:, j] = pos[:, p] + glob[p].apply(offsets_mm[j])
    rot = np.stack([g.as_matrix() for g in glob], axis=1)
    return Poses(pos, rot)
