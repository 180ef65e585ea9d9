"""The one skeleton definition every part of FuseCap reads.

Joint names are Mixamo/HumanIK style (FuseCap's own names, the CSV
columns). Exported files name the joints as the tool they are for expects
(core.export.targets: Mixamo names with the Chest as Spine1 and the head's
end as HeadTop_End, or the UE5 Mannequin's for Unreal).

Rest pose (T-pose) in the world frame: right-handed, Z up, millimetres. The
performer faces -Y; their left is +X. Every joint's rest rotation is the
identity (as in BVH): a joint's local rotation is applied in its parent's
frame, and a bone's rest direction is the offset of its end joint.

The 13 IMU bones follow the TotalCapture layout. Each bone is
(start joint, end joint); its orientation is the global rotation of its start
joint, its direction the unit vector from start to end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JOINTS: tuple[str, ...] = (
    "Hips",           # 0  root, pelvis centre
    "Spine",          # 1  lower back
    "Chest",          # 2  sternum level
    "Neck",           # 3  base of the neck
    "Head",           # 4  base of the skull
    "HeadTop",        # 5  top of the head (end site)
    "LeftShoulder",   # 6  sterno-clavicular end of the clavicle
    "LeftArm",        # 7  shoulder joint
    "LeftForeArm",    # 8  elbow
    "LeftHand",       # 9  wrist
    "RightShoulder",  # 10
    "RightArm",       # 11
    "RightForeArm",   # 12
    "RightHand",      # 13
    "LeftUpLeg",      # 14 hip joint
    "LeftLeg",        # 15 knee
    "LeftFoot",       # 16 ankle
    "LeftToeBase",    # 17 ball of the foot
    "RightUpLeg",     # 18
    "RightLeg",       # 19
    "RightFoot",      # 20
    "RightToeBase",   # 21
)

_PARENT_NAMES: dict[str, str | None] = {
    "Hips": None,
    "Spine": "Hips",
    "Chest": "Spine",
    "Neck": "Chest",
    "Head": "Neck",
    "HeadTop": "Head",
    "LeftShoulder": "Chest",
    "LeftArm": "LeftShoulder",
    "LeftForeArm": "LeftArm",
    "LeftHand": "LeftForeArm",
    "RightShoulder": "Chest",
    "RightArm": "RightShoulder",
    "RightForeArm": "RightArm",
    "RightHand": "RightForeArm",
    "LeftUpLeg": "Hips",
    "LeftLeg": "LeftUpLeg",
    "LeftFoot": "LeftLeg",
    "LeftToeBase": "LeftFoot",
    "RightUpLeg": "Hips",
    "RightLeg": "RightUpLeg",
    "RightFoot": "RightLeg",
    "RightToeBase": "RightFoot",
}

NUM_JOINTS = len(JOINTS)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINTS)}
PARENTS: tuple[int, ...] = tuple(
    -1 if _PARENT_NAMES[n] is None else JOINT_INDEX[_PARENT_NAMES[n]] for n in JOINTS
)
ROOT = JOINT_INDEX["Hips"]

# End sites: joints with no children. They carry a position but their
# rotation drives nothing.
END_JOINTS: tuple[int, ...] = tuple(i for i in range(NUM_JOINTS) if i not in PARENTS)


def _pairs() -> tuple[tuple[int, int], ...]:
    out = []
    for name in JOINTS:
        if name.startswith("Left"):
            out.append((JOINT_INDEX[name], JOINT_INDEX["Right" + name[4:]]))
    return tuple(out)


# (left, right) joint index pairs, for mirroring and symmetric metrics.
LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = _pairs()


def mirror_index() -> np.ndarray:
    """Permutation that swaps every left joint with its right twin."""
    perm = np.arange(NUM_JOINTS)
    for left, right in LEFT_RIGHT_PAIRS:
        perm[left], perm[right] = right, left
    return perm


@dataclass(frozen=True)
class ImuBone:
    """A bone an IMU is strapped to: orientation = global rotation of `start`."""

    name: str
    start: int
    end: int


def _bone(name: str, start: str, end: str) -> ImuBone:
    return ImuBone(name, JOINT_INDEX[start], JOINT_INDEX[end])


# The 13 sensors of the TotalCapture layout, in sensor-id order.
IMU_BONES: tuple[ImuBone, ...] = (
    _bone("Pelvis", "Hips", "Spine"),
    _bone("Sternum", "Chest", "Neck"),
    _bone("Head", "Head", "HeadTop"),
    _bone("LeftUpperArm", "LeftArm", "LeftForeArm"),
    _bone("RightUpperArm", "RightArm", "RightForeArm"),
    _bone("LeftForeArm", "LeftForeArm", "LeftHand"),
    _bone("RightForeArm", "RightForeArm", "RightHand"),
    _bone("LeftThigh", "LeftUpLeg", "LeftLeg"),
    _bone("RightThigh", "RightUpLeg", "RightLeg"),
    _bone("LeftShank", "LeftLeg", "LeftFoot"),
    _bone("RightShank", "RightLeg", "RightFoot"),
    _bone("LeftFoot", "LeftFoot", "LeftToeBase"),
    _bone("RightFoot", "RightFoot", "RightToeBase"),
)
NUM_IMUS = len(IMU_BONES)

# Each IMU bone's direction (start -> end) in the T-pose, in the body frame
# of the T-pose (faces -Y, left +X, Z up). A bone's current direction is its
# start joint's global rotation applied to this vector: the IMU-bone layer
# casts its cylinders along it, so no subject's bone lengths are needed.
IMU_BONE_REST_DIRECTIONS = np.array([
    (0.0, 0.0, 1.0),        # Pelvis: up the spine
    (0.0, 0.11, 0.994),     # Sternum: chest to neck, leaning slightly back
    (0.0, 0.0, 1.0),        # Head
    (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0),   # upper arms, out sideways
    (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0),   # forearms
    (0.0, 0.0, -1.0), (0.0, 0.0, -1.0),  # thighs, down
    (0.0, 0.0, -1.0), (0.0, 0.0, -1.0),  # shanks
    (0.0, -0.949, -0.316), (0.0, -0.949, -0.316),  # feet, forward and down to the toes
])
IMU_BONE_REST_DIRECTIONS /= np.linalg.norm(IMU_BONE_REST_DIRECTIONS, axis=1, keepdims=True)
IMU_INDEX: dict[str, int] = {b.name: i for i, b in enumerate(IMU_BONES)}

# ----------------------------------------------------------------------------- the rest pose

# The anthropometric T-pose template: each joint's rest offset from its parent
# as a fraction of stature (multiply by the stature in mm for mm), in the world
# frame of the T-pose (Z up, the performer facing -Y, their left +X), after
# Drillis and Contini's table as reproduced by Winter ("Biomechanics and Motor
# Control of Human Movement"). Midline joints and the left side; the right
# side mirrors x. The Hips' row is their height above the floor standing; a
# performer built from the table with other proportions keeps the Hips over
# the ankles and lets the spine take up the rest of the stature
# (core.sim.subject does, for the simulated performers).
REST_OFFSET_FRACTIONS: dict[str, tuple[float, float, float]] = {
    "Hips": (0.0, 0.0, 0.56),
    "Spine": (0.0, 0.005, 0.06),
    "Chest": (0.0, 0.0, 0.12),
    "Neck": (0.0, 0.01, 0.09),
    "Head": (0.0, -0.005, 0.05),
    "HeadTop": (0.0, 0.0, 0.12),
    "LeftShoulder": (0.02, -0.005, 0.075),
    "LeftArm": (0.08, 0.01, 0.0),
    "LeftForeArm": (0.17, 0.0, 0.0),
    "LeftHand": (0.145, 0.0, 0.0),
    "LeftUpLeg": (0.055, 0.0, -0.03),
    "LeftLeg": (0.0, 0.0, -0.245),
    "LeftFoot": (0.0, 0.0, -0.246),
    "LeftToeBase": (0.0, -0.09, -0.03),
}


def _rest_directions() -> np.ndarray:
    # The template's directions over the spread of builds FuseCap's performers
    # have: the mean unit direction over eight reference bodies (stature
    # 1.5-2.0 m; shoulder and hip width, leg, arm, neck and foot length varied
    # by up to 15 %). Where a bone's direction depends on the build (the
    # spine, the clavicle, the hip) it lies up to 1.5 degrees from the
    # fractions' own; tests/test_skeleton.py checks both. Full precision, so
    # fitted skeletons do not move with the table's rounding.
    left = {
        "Spine": (0.0, 0.10815469674862241, 0.9941340762549152),
        "Chest": (0.0, 0.0, 1.0),
        "Neck": (0.0, 0.11043152607484653, 0.9938837346736189),
        "Head": (0.0, -0.0995037190209989, 0.9950371902099892),
        "HeadTop": (0.0, 0.0, 1.0),
        "LeftShoulder": (0.2571297386132901, -0.06428243465332252, 0.9642365197998376),
        "LeftArm": (0.992538709786474, 0.1219299371581961, 0.0),
        "LeftForeArm": (1.0, 0.0, 0.0),
        "LeftHand": (1.0, 0.0, 0.0),
        "LeftUpLeg": (0.8819389485496295, 0.0, -0.4713636505196109),
        "LeftLeg": (0.0, 0.0, -1.0),
        "LeftFoot": (0.0, 0.0, -1.0),
        "LeftToeBase": (0.0, -0.9486832980505139, -0.316227766016838),
    }
    out = np.zeros((NUM_JOINTS, 3))
    for name, d in left.items():
        out[JOINT_INDEX[name]] = d
        if name.startswith("Left"):
            out[JOINT_INDEX["Right" + name[4:]]] = np.multiply(d, (-1.0, 1.0, 1.0))
    out.setflags(write=False)
    return out


# (J, 3) unit T-pose direction of each joint's offset from its parent, in the
# world frame of the T-pose (Z up, facing -Y, left +X; unitless: times a bone
# length in mm it is that bone's rest offset in mm); the root's row is zero.
# The rest pose a fitted skeleton is built on (core.posefit). Read-only.
REST_DIRECTIONS: np.ndarray = _rest_directions()

# Bones drawn in views and used for bone-length statistics: every (parent, child).
BONES: tuple[tuple[int, int], ...] = tuple(
    (p, c) for c, p in enumerate(PARENTS) if p >= 0
)


def children(joint: int) -> tuple[int, ...]:
    return tuple(c for c, p in enumerate(PARENTS) if p == joint)


# Each joint's children, indexed by joint: CHILDREN[j] == children(j).
CHILDREN: tuple[tuple[int, ...], ...] = tuple(children(j) for j in range(NUM_JOINTS))


def topological_order() -> tuple[int, ...]:
    """Joints ordered so that every parent comes before its children."""
    order: list[int] = []
    stack = [ROOT]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children(j)))
    return tuple(order)


def is_left(joint: int) -> bool:
    return JOINTS[joint].startswith("Left")


def is_right(joint: int) -> bool:
    return JOINTS[joint].startswith("Right")

# Parents precede children in JOINTS, so forward kinematics can run in index order.
assert all(p < c for c, p in enumerate(PARENTS)), "JOINTS must list parents first"
