"""The one Y-up <-> Z-up conversion: round trips, the T-pose's directions,
and rotations that agree with the points they turn."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core import axes
from core import skeleton as sk


def test_points_and_rotations_round_trip(rng):
    p = rng.normal(0.0, 1000.0, (7, 5, 3))
    np.testing.assert_allclose(axes.y_up_to_world(axes.world_to_y_up(p)), p, rtol=0, atol=1e-9)
    np.testing.assert_allclose(axes.world_to_y_up(axes.y_up_to_world(p)), p, rtol=0, atol=1e-9)
    r = Rotation.random(50, random_state=int(rng.integers(2**31)))
    back = axes.y_up_to_world_rotation(axes.world_to_y_up_rotation(r))
    assert np.degrees((back * r.inv()).magnitude()).max() < 1e-9
    # A rotation re-expressed in Y-up turns Y-up points as the original turns world points.
    v = rng.normal(size=(50, 3))
    np.testing.assert_allclose(axes.world_to_y_up_rotation(r).apply(axes.world_to_y_up(v)),
                               axes.world_to_y_up(r.apply(v)), atol=1e-12)
    np.testing.assert_allclose(axes.y_up_to_world_rotation(r).apply(v),
                               axes.y_up_to_world(r.apply(axes.world_to_y_up(v))), atol=1e-12)


def test_the_t_pose_faces_plus_z_with_y_up():
    assert np.linalg.det(axes.Y_UP_FROM_WORLD) == pytest.approx(1.0)  # a turn, no mirror
    d = sk.REST_DIRECTIONS
    up = axes.world_to_y_up(d[sk.JOINT_INDEX["HeadTop"]])
    left = axes.world_to_y_up(d[sk.JOINT_INDEX["LeftForeArm"]])
    toes = axes.world_to_y_up(d[sk.JOINT_INDEX["LeftToeBase"]])
    np.testing.assert_allclose(up, [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(left, [1.0, 0.0, 0.0], atol=1e-12)       # the performer's left stays +X
    assert toes[2] > 0.9 and toes[1] < 0 and abs(toes[0]) < 1e-12       # the feet point forward, +Z
    # The world's facing direction (-Y) and up (+Z), one by one.
    np.testing.assert_array_equal(axes.world_to_y_up([0.0, -1.0, 0.0]), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(axes.world_to_y_up([0.0, 0.0, 1.0]), [0.0, 1.0, 0.0])
    # Turning to the performer's left (about world +Z) is turning about Y-up +Y.
    yaw = axes.world_to_y_up_rotation(Rotation.from_rotvec([0.0, 0.0, 0.3]))
    np.testing.assert_allclose(yaw.as_rotvec(), [0.0, 0.3, 0.0], atol=1e-12)
