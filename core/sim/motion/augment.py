"""Motion wrappers that vary a motion for training: mirrored, retimed, on the floor.

Each wraps any :class:`core.sim.motion.frames.Motion` and is itself one, so
they stack (``Retimed(Mirrored(BvhMotion(clip)), 1.2)``).

- :class:`Mirrored`: the motion reflected across the performer's sagittal
  plane (world x = 0; the T-pose's left is +X): every left joint plays what
  its right twin did and the other way round. With the reflection
  M = diag(-1, 1, 1), a global rotation G becomes M G M, so each local
  rotation becomes M L M of its twin (a rotation vector (x, y, z) becomes
  (x, -y, -z)), and the Hips' x is negated. On a left-right symmetric body
  (every simulated subject) the joint positions are exactly the reflected
  ones; mirroring twice gives the motion back.
- :class:`Retimed`: played ``factor`` times as fast (factor 1.25: a quarter
  faster), time 0 at the wrapped motion's ``start_s``.
- :class:`Floored`: a motion whose Hips height is absolute (a BVH clip) moved
  up or down so that its lowest foot point, over the clip, is on the floor
  (clips recorded with the floor elsewhere, or with the root's position
  channels relative to the rest pose, stand on the floor).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.sim.motion.frames import Motion, MotionFrames
from core.sim.motion.performer import Performer
from core.sim.subject import Subject

_PERM = sk.mirror_index()
_FLIP_Q = np.array([1.0, -1.0, -1.0, 1.0])   # M R M on a scalar-last quaternion


def mirror_frames(fr: MotionFrames) -> MotionFrames:
    """The frames reflected across x = 0 (see the module docstring)."""
    J = sk.NUM_JOINTS
    q = fr.local.as_quat().reshape(len(fr), J, 4)[:, _PERM] * _FLIP_Q
    xy = fr.root_xy_mm * [-1.0, 1.0]
    shift = None if fr.root_shift_leg is None else fr.root_shift_leg * [-1.0, 1.0]
    return replace(fr, local=Rotation.from_quat(q.reshape(-1, 4)), root_xy_mm=xy, root_shift_leg=shift)


class Mirrored:
    """`motion` with left and right swapped (a reflection, see module docstring)."""

    def __init__(self, motion: Motion) -> None:
        self.motion = motion

    def frames(self, times_s: np.ndarray) -> MotionFrames:
        return mirror_frames(self.motion.frames(times_s))


class Retimed:
    """`motion` played `factor` times as fast from `start_s` of its own time:
    at time t it shows the wrapped motion at start_s + factor * t."""

    def __init__(self, motion: Motion, factor: float, start_s: float = 0.0) -> None:
        if not factor > 0:
            raise ValueError(f"the time factor must be > 0, got {factor}")
        self.motion = motion
        self.factor = float(factor)
        self.start_s = float(start_s)

    def frames(self, times_s: np.ndarray) -> MotionFrames:
        t = np.asarray(times_s, np.float64).ravel()
        return replace(self.motion.frames(self.start_s + self.factor * t), times_s=t)


class Floored:
    """A non-grounded motion (absolute Hips height) shifted vertically so that
    on a reference body its lowest foot point over `times_s` (every frame of
    a clip) is on the floor. `quantile` of the per-frame lowest point is
    taken as the floor (a little above 0, so a stray frame does not sink
    the rest). The shift is in the motion's own units (it scales with the
    performer's leg like the rest of the root height)."""

    def __init__(self, motion: Motion, times_s: np.ndarray, quantile: float = 0.02) -> None:
        self.motion = motion
        fr = motion.frames(np.asarray(times_s, np.float64).ravel())
        if fr.grounded:
            self.lift_mm = 0.0
            return
        ref = Performer(Subject.from_seed(0), motion)   # the reference body; others are fitted in Performer
        poses = ref.poses_at(fr.times_s)
        lowest = ref.foot_points_mm(poses)[..., 2].reshape(len(fr), 4).min(axis=1)
        scale = 1.0 if fr.source_leg_mm is None else fr.source_leg_mm / ref.leg_length_mm
        self.lift_mm = float(-np.quantile(lowest, quantile) * scale)

    def frames(self, times_s: np.ndarray) -> MotionFrames:
        fr = self.motion.frames(times_s)
        if fr.grounded:
            return fr
        return replace(fr, root_z_mm=fr.root_z_mm + self.lift_mm)
