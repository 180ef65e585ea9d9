"""The IMU calibration routine the performer is asked to do, as numbers.

The routine (core.imu.wear_capture.STEPS shows it to the user; the simulated
performer of core.sim.motion.calibration does exactly this):

1. hold the known pose (T-pose or N-pose) still;
2. bow forward with the head down and the arms reaching forward, come up;
3. squat with the arms raised, come up;
4. rock back onto the heels, toes up, arms lowered a little;
5. then move freely.

`MOVE_KEYS` are the moves as key poses: seconds after the hold ends and the
local rotation vectors (rad, core.skeleton joint frames; joints not named
keep the known pose) at each key. The calibration with cameras
(core.imu.calibration.calibrate) only needs the hold and that the moves tilt
every bone; the calibration without cameras
(core.imu.calibration.calibrate_without_cameras) also uses which way each
move turns each bone.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.rotations import yaw

J = sk.JOINT_INDEX
POSES = ("T", "N")


def known_pose_locals(pose: str) -> dict[int, np.ndarray]:
    """Local rotation vectors (rad) of the joints that differ from the T-pose.

    The N-pose lowers the arms to the sides: each upper arm turns 90° about
    the body's forward-back axis, palms facing the thighs."""
    if pose not in POSES:
        raise ValueError(f"known pose is one of {POSES}, got {pose!r}")
    if pose == "T":
        return {}
    return {J["LeftArm"]: np.array([0.0, np.pi / 2, 0.0]), J["RightArm"]: np.array([0.0, -np.pi / 2, 0.0])}


def _moves() -> tuple[np.ndarray, list[dict[int, np.ndarray]]]:
    d = np.radians
    # The bow tips the pelvis forward at the hips (the thighs stay upright) and
    # leans it to one side: every trunk sensor tilts about two axes.
    bow = {J["Hips"]: np.array([d(35), d(-12), 0]), J["LeftUpLeg"]: np.array([d(-35), d(12), 0]),
           J["RightUpLeg"]: np.array([d(-35), d(12), 0]),
           J["Spine"]: np.array([d(15), 0, 0]), J["Chest"]: np.array([d(10), 0, 0]),
           J["Neck"]: np.array([d(15), 0, 0]), J["Head"]: np.array([d(25), 0, 0]),
           J["LeftArm"]: np.array([0, 0, d(-70)]), J["RightArm"]: np.array([0, 0, d(70)]),
           J["LeftForeArm"]: np.array([0, 0, d(-30)]), J["RightForeArm"]: np.array([0, 0, d(30)]),
           J["LeftFoot"]: np.array([d(-15), 0, 0]), J["RightFoot"]: np.array([d(-15), 0, 0])}
    squat = {J["LeftUpLeg"]: np.array([d(-70), 0, d(-10)]), J["RightUpLeg"]: np.array([d(-70), 0, d(10)]),
             J["LeftLeg"]: np.array([d(90), 0, 0]), J["RightLeg"]: np.array([d(90), 0, 0]),
             J["LeftFoot"]: np.array([d(-20), 0, 0]), J["RightFoot"]: np.array([d(-20), 0, 0]),
             J["Spine"]: np.array([d(25), 0, 0]), J["Head"]: np.array([d(-20), d(25), 0]),
             J["LeftArm"]: np.array([0, d(-60), d(-30)]), J["RightArm"]: np.array([0, d(60), d(30)]),
             J["LeftForeArm"]: np.array([0, d(-40), 0]), J["RightForeArm"]: np.array([0, d(40), 0])}
    # Heels down, toes up: the feet tilt the other way from the bow's.
    toes = {J["LeftFoot"]: np.array([d(35), 0, 0]), J["RightFoot"]: np.array([d(35), 0, 0]),
            J["LeftArm"]: np.array([0, d(40), 0]), J["RightArm"]: np.array([0, d(-40), 0])}
    times = np.array([0.0, 1.5, 2.5, 4.0, 5.5, 6.5, 8.0, 9.0, 10.0, 11.0])
    return times, [{}, bow, bow, {}, squat, squat, {}, toes, toes, {}]


#: (key times: s after the hold, key poses: local rotation vectors by joint).
MOVE_KEYS = _moves()
MOVES_S = float(MOVE_KEYS[0][-1])
#: The moves one by one: (name, first second, last second after the hold) of
#: each stretch from leaving the known pose to being back in it, and the index
#: of its held key in MOVE_KEYS.
MOVES = (("bow", 0.0, 4.0, 1), ("squat", 4.0, 8.0, 4), ("toes", 8.0, 11.0, 7))


def pose_globals(pose: str, facing_rad: float, key: dict[int, np.ndarray] | None = None) -> Rotation:
    """All joints' global orientations (bone -> world, (J,)) in the known pose
    with the key pose `key` on top (its joints replace the pose's), the
    performer facing `facing_rad` (0: facing -Y, positive turns left)."""
    local = np.zeros((sk.NUM_JOINTS, 3))
    for j, v in known_pose_locals(pose).items():
        local[j] = v
    for j, v in (key or {}).items():
        local[j] = v
    glob: list[Rotation] = []
    for j, p in enumerate(sk.PARENTS):
        r = Rotation.from_rotvec(local[j])
        glob.append(yaw(facing_rad) * r if p < 0 else glob[p] * r)
    return Rotation.concatenate(glob)
