"""Leg geometry in units of leg length, shared by every simulated subject.

Subjects (:mod:`core.sim.subject`) scale thigh and shank together, so leg
poses worked out in "leg units" (thigh + shank = 1) hold for every body: a
two-bone inverse kinematics for squats and lunges, and the ankle positions
that keep planted feet still (:func:`planted_shift`).

Frames: the heading frame is the world turned with the performer (forward is
the facing direction, down is -Z); world offsets use world axes. Angles rad.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.sim.motion import params as pp
from core.sim.motion.curves import soft_cap

# Canonical proportions (fractions of stature in core.sim.subject), in leg units.
_LEG = 0.245 + 0.246
THIGH = 0.245 / _LEG
SHIN = 0.246 / _LEG
HIP_OFFSET = np.array([0.055, 0.0, -0.03]) / _LEG      # Hips -> left hip joint
STAND_DOWN = THIGH + SHIN                              # hip joint -> ankle, straight leg

_J = sk.NUM_JOINTS
_SIDES = (("Left", 1.0), ("Right", -1.0))


def leg_ik(fwd: np.ndarray, down: np.ndarray, lean: np.ndarray | float = 0.0
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hip flexion, knee flexion and the flat-foot ankle dorsiflexion (rad)
    that put the ankle `fwd` ahead of and `down` below the hip joint (leg
    units, heading frame) with the pelvis leaning forward by `lean`.

    Out-of-reach targets are pulled in to a straight leg. The ankle angle is
    what keeps the sole level; callers clamp it to the joint's range, which
    lifts the heel in deep squats as a person's would.
    """
    fwd, down = np.broadcast_arrays(np.asarray(fwd, float), np.asarray(down, float))
    d = np.clip(np.hypot(fwd, down), 0.25, 0.999 * (THIGH + SHIN))
    cos_knee = (THIGH ** 2 + SHIN ** 2 - d ** 2) / (2 * THIGH * SHIN)
    knee = np.pi - np.arccos(np.clip(cos_knee, -1.0, 1.0))
    cos_hip = (THIGH ** 2 + d ** 2 - SHIN ** 2) / (2 * THIGH * d)
    hip = np.arctan2(fwd, down) + np.arccos(np.clip(cos_hip, -1.0, 1.0)) + lean
    ankle = knee + lean - hip
    return hip, knee, ankle


def set_leg(p: np.ndarray, side: str, fwd, down, lean=0.0, abd=0.0, ankle_extra=0.0) -> None:
    """Write one leg of (T, P) parameters from an ankle target (see leg_ik).
    The flat-foot ankle angle meets the dorsiflexion limit softly: the heel
    starts to rise a little before the joint would stop."""
    hip, knee, ankle = leg_ik(fwd, down, lean)
    col = pp.index("ankle_dorsi", side)
    p[:, pp.index("hip_flex", side)] = hip
    p[:, pp.index("knee_flex", side)] = knee
    p[:, col] = soft_cap(ankle, pp.HI[col], np.radians(4.0)) + ankle_extra
    p[:, pp.index("hip_abd", side)] = abd


def _ankles(local: Rotation, n: int) -> np.ndarray:
    """(n, 2, 3) ankle offsets from the Hips, world axes, leg units."""
    root = local[sk.ROOT::_J]
    out = np.empty((n, 2, 3))
    for k, (side, sx) in enumerate(_SIDES):
        hip = local[sk.JOINT_INDEX[side + "UpLeg"]::_J]
        knee = local[sk.JOINT_INDEX[side + "Leg"]::_J]
        thigh_rot = root * hip
        shin = (thigh_rot * knee).apply([0.0, 0.0, -SHIN])
        out[:, k] = root.apply(HIP_OFFSET * [sx, 1.0, 1.0]) + thigh_rot.apply([0.0, 0.0, -THIGH]) + shin
    return out


_NEUTRAL_ANKLES = _ankles(pp.compose(pp.NEUTRAL[None]), 1)[0]


def planted_shift(local: Rotation, heading_rad: np.ndarray, pin: np.ndarray) -> np.ndarray:
    """(T, 2) horizontal Hips offset, leg units, world axes, that holds the
    pinned feet where they stand in the neutral pose under the Hips.

    pin: (T, 2) weights of the left and right ankle (sum <= 1). A foot with
    weight 1 stays put while the body moves over it (a kick's stance foot);
    weights of 1/2 each hold the point between the feet (squats, turns).
    """
    n = len(heading_rad)
    if not np.any(pin):
        return np.zeros((n, 2))
    ankles = _ankles(local, n)
    c, s = np.cos(heading_rad), np.sin(heading_rad)
    ref_x = c[:, None] * _NEUTRAL_ANKLES[:, 0] - s[:, None] * _NEUTRAL_ANKLES[:, 1]
    ref_y = s[:, None] * _NEUTRAL_ANKLES[:, 0] + c[:, None] * _NEUTRAL_ANKLES[:, 1]
    dev = ankles[:, :, :2] - np.stack([ref_x, ref_y], axis=-1)
    return -np.einsum("tf,tfc->tc", pin, dev)
