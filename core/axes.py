"""FuseCap's world axes and the Y-up axes of the files and tools around it.

World (FuseCap): right-handed, Z up, millimetres; the T-pose faces -Y with
the performer's left towards +X (:mod:`core.skeleton`).

Y up: right-handed, Y up, the performer facing +Z with their left towards
+X. BVH and CSV files (written by :mod:`core.export`, read by
:mod:`core.sim.motion.retarget`) use it, and Unity's left-handed frame is
it with X mirrored (:mod:`core.stream.vmc`). The Y-up axes are the world's
turned -90 degrees about X:

    y_up (x, y, z) = world (x, z, -y)        world (x, y, z) = y_up (x, -z, y)

Units do not change here. A rotation acting on world vectors R is the same
physical rotation written in Y-up axes as M R M^T (M = :data:`Y_UP_FROM_WORLD`).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

# Y-up coordinates of a world vector: y = M w. Rows: Y-up +X is world +X
# (left), +Y is world +Z (up), +Z is world -Y (the T-pose's forward). det = +1.
Y_UP_FROM_WORLD = np.array([[1.0, 0.0, 0.0],
                            [0.0, 0.0, 1.0],
                            [0.0, -1.0, 0.0]])
Y_UP_FROM_WORLD.setflags(write=False)
_TURN = Rotation.from_matrix(Y_UP_FROM_WORLD)


def world_to_y_up(vectors: np.ndarray) -> np.ndarray:
    """World points or directions (..., 3) in the Y-up axes (same units)."""
    return np.asarray(vectors, np.float64) @ Y_UP_FROM_WORLD.T


def y_up_to_world(vectors: np.ndarray) -> np.ndarray:
    """Y-up points or directions (..., 3) in the world axes (same units)."""
    return np.asarray(vectors, np.float64) @ Y_UP_FROM_WORLD


def world_to_y_up_rotation(rot: Rotation) -> Rotation:
    """Rotations acting on world vectors, re-expressed to act on Y-up vectors (M R M^T)."""
    return _TURN * rot * _TURN.inv()


def y_up_to_world_rotation(rot: Rotation) -> Rotation:
    """Rotations acting on Y-up vectors, re-expressed to act on world vectors (M^T R M)."""
    return _TURN.inv() * rot * _TURN
