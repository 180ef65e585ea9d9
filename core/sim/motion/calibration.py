"""The IMU calibration routine as a motion: hold a known pose, move through a
few calibration moves, then carry on with any other motion.

What the wear-offset capture asks of a performer (core.imu.routine holds
the moves as numbers; this performer does exactly those):

1. hold the known pose (T-pose or N-pose) still for `hold_s` seconds;
2. bow forward with the head down and the arms reaching forward, come up;
3. squat with the arms raised, come up;
4. rock back onto the heels, toes up, arms lowered a little;
5. then move freely (the wrapped motion takes over).

The moves tilt every bone away from its pose, which is what makes each
sensor's heading observable (a sensor that only turns about the vertical
cannot tell its heading apart from its wear offset).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.imu.routine import MOVE_KEYS, MOVES_S, POSES, known_pose_locals
from core.sim.motion.curves import smootherstep
from core.sim.motion.frames import MotionFrames

__all__ = ["POSES", "MOVES_S", "CalibrationRoutine", "OnDemandRoutine"]


class CalibrationRoutine:
    """A Motion: the calibration routine at the start, then `then` (shifted so
    it starts where the routine ends). The performer stands where `then`
    starts, facing its first heading."""

    def __init__(self, then, pose: str = "T", hold_s: float = 3.0, blend_s: float = 1.0) -> None:
        self.then = then
        self.base = known_pose_locals(pose)
        self.pose = pose
        self.hold_s = float(hold_s)
        self.blend_s = float(blend_s)
        self.key_times, self.keys = MOVE_KEYS
        self.duration_s = self.hold_s + MOVES_S + self.blend_s
        self._first = None

    def frames(self, times_s: np.ndarray) -> MotionFrames:
        t = np.asarray(times_s, np.float64).ravel()
        start = self.hold_s + MOVES_S
        after = self.then.frames(t - start)
        if self._first is None:  # where and how the performer stands: the same for every call
            self._first = self.then.frames(np.zeros(1))
        first = self._first
        n, nj = len(t), sk.NUM_JOINTS
        # The routine's local rotations: the pose plus the interpolated moves.
        rv = np.zeros((n, nj, 3))
        for j, v in self.base.items():
            rv[:, j] = v
        tm = np.clip(t - self.hold_s, 0.0, MOVES_S)
        seg = np.clip(np.searchsorted(self.key_times, tm, side="right") - 1, 0, len(self.key_times) - 2)
        a = smootherstep((tm - self.key_times[seg]) / np.diff(self.key_times)[seg])
        for k in range(len(self.key_times) - 1):
            sel = seg == k
            if not sel.any():
                continue
            for j in set(self.keys[k]) | set(self.keys[k + 1]):
                v0 = self.keys[k].get(j, self.base.get(j, np.zeros(3)))
                v1 = self.keys[k + 1].get(j, self.base.get(j, np.zeros(3)))
                rv[sel, j] = v0 + a[sel, None] * (v1 - v0)
        heading = _yaw(first.local[sk.ROOT])
        routine = Rotation.from_rotvec(rv.reshape(-1, 3)).as_matrix().reshape(n, nj, 3, 3)
        routine[:, sk.ROOT] = heading.as_matrix() @ routine[:, sk.ROOT]
        # Crossfade into the next motion over blend_s.
        w = smootherstep(np.clip((t - start) / self.blend_s, 0.0, 1.0))
        nxt = after.local.as_matrix().reshape(n, nj, 3, 3)
        r0 = Rotation.from_matrix(routine.reshape(-1, 3, 3))
        r1 = Rotation.from_matrix(nxt.reshape(-1, 3, 3))
        ww = np.repeat(w, nj)
        local = r0 * Rotation.from_rotvec(ww[:, None] * (r0.inv() * r1).as_rotvec())
        root_xy = np.where((t < start)[:, None], first.root_xy_mm[0], after.root_xy_mm)
        root_z = np.where(t < start, 0.0, after.root_z_mm) if after.grounded else after.root_z_mm
        shift = after.root_shift_leg
        if shift is not None:
            shift = shift * w[:, None]
        return MotionFrames(t, local, root_xy, root_z, after.grounded, shift, after.source_leg_mm)


def _yaw(rot: Rotation) -> Rotation:
    """The heading part of a rotation (about Z)."""
    fwd = rot.apply(np.array([0.0, -1.0, 0.0]))
    return Rotation.from_rotvec([0.0, 0.0, np.arctan2(fwd[0], -fwd[1])])


class _Shifted:
    """`base` played from `offset_s` on (its time 0 is base's offset_s)."""

    def __init__(self, base, offset_s: float) -> None:
        self.base = base
        self.offset_s = float(offset_s)

    def frames(self, times_s: np.ndarray) -> MotionFrames:
        t = np.asarray(times_s, np.float64).ravel()
        fr = self.base.frames(t + self.offset_s)
        return MotionFrames(t, fr.local, fr.root_xy_mm, fr.root_z_mm, fr.grounded, fr.root_shift_leg,
                            fr.source_leg_mm)


class OnDemandRoutine:
    """A Motion that plays `base` until `start(t_s)` is called, then the
    calibration routine from where the performer stands at t_s (blending into
    the known pose over `blend_in_s`), then `base` again from where it left
    off. What the simulated performer does when the animator presses Capture
    in the Wear offsets panel."""

    def __init__(self, base, pose: str = "T", hold_s: float = 3.0, blend_in_s: float = 0.8) -> None:
        known_pose_locals(pose)  # checks the pose
        self.base = base
        self.pose = pose
        self.hold_s = float(hold_s)
        self.blend_in_s = float(blend_in_s)
        self._plan: tuple[float, CalibrationRoutine] | None = None

    def start(self, t_s: float) -> float:
        """Begin the routine at motion time t_s; when it ends (s)."""
        # The blend-in is added to the hold, so the pose is held still for hold_s.
        routine = CalibrationRoutine(_Shifted(self.base, t_s), self.pose, self.hold_s + self.blend_in_s)
        self._plan = (float(t_s), routine)  # one assignment: readers on other threads see old or new
        return float(t_s) + routine.duration_s

    @property
    def started_at(self) -> float | None:
        return None if self._plan is None else self._plan[0]

    def frames(self, times_s: np.ndarray) -> MotionFrames:
        t = np.asarray(times_s, np.float64).ravel()
        plan = self._plan
        if plan is None or (t < plan[0]).all():
            return self.base.frames(t)
        start, routine = plan
        back = start + routine.hold_s + MOVES_S  # from here on the base motion again, delayed
        if (t >= back + routine.blend_s).all():
            return _Shifted(self.base, start - back).frames(t)
        b = self.base.frames(t)
        r = routine.frames(t - start)
        after = t >= start
        n, nj = len(t), sk.NUM_JOINTS
        w = np.where(after, smootherstep(np.clip((t - start) / self.blend_in_s, 0.0, 1.0)), 0.0)
        ww = np.repeat(w, nj)
        r0, r1 = b.local, r.local
        local = r0 * Rotation.from_rotvec(ww[:, None] * (r0.inv() * r1).as_rotvec())
        root_xy = np.where(after[:, None], r.root_xy_mm, b.root_xy_mm)
        root_z = np.where(after, r.root_z_mm, b.root_z_mm)
        shift = None
        if b.root_shift_leg is not None or r.root_shift_leg is not None:
            bs = b.root_shift_leg if b.root_shift_leg is not None else np.zeros((n, 2))
            rs = r.root_shift_leg if r.root_shift_leg is not None else np.zeros((n, 2))
            shift = np.where(after[:, None], rs, bs)
        return MotionFrames(t, local, root_xy, root_z, b.grounded, shift, b.source_leg_mm)
