"""A subject performing a motion: world joint positions and rotations at any times.

The motion gives local rotations and root terms (:class:`MotionFrames`); the
performer runs forward kinematics on its subject's rest offsets. For
grounded motions (procedural actions) it sets the Hips height so that the
lowest foot point touches the floor, plus the motion's airborne lift, so one
motion plays on any body. Foot points are rigid in each foot's frame: the
heel, under the ankle and a little behind it, and the ball of the foot,
under the toe joint; both touch the floor (z = 0) in the subject's rest pose.

The lowest point is a soft minimum (log-sum-exp, 3 mm temperature): it lies
0 to 3 * ln 4 ~ 4 mm under the true minimum (the feet may hover that much
when standing flat), and unlike a hard minimum it has no velocity kinks when
support passes from heel to toe or from foot to foot. Those hand-overs
still take only a few milliseconds, so a simulated accelerometer at the
pelvis sees short vertical bumps there (tens of m/s^2, up to ~100 when
running), about what a heel strike gives a shank-worn sensor.
"""

from __future__ import annotations

import functools

import numpy as np

from core import skeleton as sk
from core.kinematics import Poses, forward_kinematics
from core.sim.motion.frames import Motion
from core.sim.subject import Subject

_FEET = (sk.JOINT_INDEX["LeftFoot"], sk.JOINT_INDEX["RightFoot"])
_TOES = (sk.JOINT_INDEX["LeftToeBase"], sk.JOINT_INDEX["RightToeBase"])
_SOFT_MM = 3.0


def _soft_min(z: np.ndarray, temp: float) -> np.ndarray:
    """Smooth minimum over the last axis, <= the true minimum."""
    if z.shape[0] == 0:
        return np.zeros(0)
    m = z.min(axis=-1)
    return m - temp * np.log(np.exp(-(z - m[:, None]) / temp).sum(axis=-1))


@functools.lru_cache(maxsize=1)
def _reference() -> Subject:
    """The body recorded motion is floored on (core.sim.motion.augment.Floored)."""
    return Subject.from_seed(0)


class Performer:
    """subject: the body; motion: anything with frames(times_s) -> MotionFrames.
    planted: the feet hold still on the floor (core.sim.motion.planting; for
    judging foot skate)."""

    def __init__(self, subject: Subject, motion: Motion, planted: bool = False) -> None:
        self.subject = subject
        self.motion = motion
        self.planted = planted
        self._plan_t = np.zeros(0)
        self._plan: tuple[np.ndarray, np.ndarray] | None = None
        self._offsets = np.asarray(subject.offsets_mm, np.float64)
        rest = subject.rest_positions()
        # Foot points in each foot's (ankle) frame, which is the world frame in the rest pose.
        pts = np.zeros((2, 2, 3))
        for f, (ankle, toe) in enumerate(zip(_FEET, _TOES)):
            toe_off = self._offsets[toe]
            pts[f, 0] = (0.0, 0.25 * abs(toe_off[1]), -rest[ankle, 2])
            pts[f, 1] = toe_off - (0.0, 0.0, rest[toe, 2])
        self._foot_points = pts
        # Recorded (non-grounded) motion is set on the floor for the reference
        # body (core.sim.motion.augment.Floored) and scaled by leg length;
        # bodies whose hips stand lower or higher for their leg (mesh bodies:
        # 16-41 mm lower) would float or sink by the difference.
        ref = _reference()
        self._stand_fix_mm = float(rest[sk.ROOT, 2] - ref.rest_positions()[sk.ROOT, 2]
                                   * subject.leg_length_mm / ref.leg_length_mm)

    @property
    def leg_length_mm(self) -> float:
        return self.subject.leg_length_mm

    def poses_at(self, times_s: np.ndarray) -> Poses:
        """Poses at these times (seconds): positions world mm, rotations bone -> world."""
        t = np.asarray(times_s, np.float64).ravel()
        poses = self._motion_poses(t)
        if not self.planted or len(t) == 0:
            return poses
        from core.sim.motion.planting import PLANT_HZ, hold_feet, plan

        if len(self._plan_t) == 0 or self._plan_t[-1] < t.max():
            grid = np.arange(0.0, max(float(t.max()), 0.0) + 10.0, 1.0 / PLANT_HZ)  # 10 s ahead at once
            self._plan_t = grid
            self._plan = plan(grid, self.foot_points_mm(self._motion_poses(grid)))
        shift, fix = self._plan
        at = np.clip(t, 0.0, None)
        s = np.stack([np.interp(at, self._plan_t, shift[:, a]) for a in range(2)], axis=1)
        f = np.stack([[np.interp(at, self._plan_t, fix[:, k, a]) for a in range(2)] for k in range(2)], axis=0)
        poses.positions_mm[..., :2] += s[:, None, :]
        return hold_feet(poses, np.transpose(f, (2, 0, 1)))

    def forget_planted(self) -> None:
        """The motion changed from some time on (an on-demand routine): plan the feet again."""
        self._plan_t = np.zeros(0)
        self._plan = None

    def _motion_poses(self, times_s: np.ndarray) -> Poses:
        """The motion as it plays, on its own path."""
        fr = self.motion.frames(np.asarray(times_s, np.float64).ravel())
        leg = self.leg_length_mm
        scale = 1.0 if fr.source_leg_mm is None else leg / fr.source_leg_mm
        root = np.zeros((len(fr), 3))
        root[:, :2] = fr.root_xy_mm * scale
        if fr.root_shift_leg is not None:
            root[:, :2] += fr.root_shift_leg * leg
        if not fr.grounded:
            root[:, 2] = fr.root_z_mm * scale + (self._stand_fix_mm if fr.source_leg_mm is not None else 0.0)
            return forward_kinematics(self._offsets, root, fr.local)
        poses = forward_kinematics(self._offsets, root, fr.local)
        ground = _soft_min(self.foot_points_mm(poses)[..., 2].reshape(len(fr), 4), _SOFT_MM)
        pos = poses.positions_mm
        pos[..., 2] += (fr.root_z_mm - ground)[:, None]
        return Poses(pos, poses.rotations)

    def foot_points_mm(self, poses: Poses) -> np.ndarray:
        """(T, 2, 2, 3) world positions of the [left, right] foot's [heel, ball]."""
        ankle = poses.positions_mm[:, _FEET]                  # (T, 2, 3)
        rot = poses.rotations[:, _FEET]                       # (T, 2, 3, 3)
        return ankle[:, :, None, :] + np.einsum("tfij,fpj->tfpi", rot, self._foot_points)
