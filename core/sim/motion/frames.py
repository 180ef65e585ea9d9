"""What every performer motion delivers, and the protocol motions implement.

A motion is a pure function of time: for any array of times (seconds, any
order, any chunking) it gives the Hips' horizontal position, a Hips height
term and the local joint rotations of :mod:`core.skeleton`. A
:class:`core.sim.motion.performer.Performer` turns that into world joint
positions for one subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.spatial.transform import Rotation


@dataclass(frozen=True)
class MotionFrames:
    """A motion sampled at T times.

    times_s: (T,) seconds.
    local: T*J local joint rotations, frame-major (index t*J + j); each is
      applied in the parent's frame, the root's in the world frame.
    root_xy_mm: (T, 2) Hips position on the floor plane, world mm.
    root_z_mm: (T,) if `grounded`: the airborne lift of the Hips above the
      height at which the lowest foot point touches the floor (0 on frames
      with a foot on the floor); otherwise the Hips height above the floor.
    grounded: see root_z_mm.
    root_shift_leg: (T, 2) or None: a further horizontal Hips offset in units
      of the subject's leg length (thigh + shank), world axes; it keeps
      planted feet still whatever the subject's size.
    source_leg_mm: the leg length the root translation was recorded with;
      the performer scales root_xy_mm (and a non-grounded root_z_mm) by its
      subject's leg length over this. None: use the translation as is.
    """

    times_s: np.ndarray
    local: Rotation
    root_xy_mm: np.ndarray
    root_z_mm: np.ndarray
    grounded: bool
    root_shift_leg: np.ndarray | None = None
    source_leg_mm: float | None = None

    def __len__(self) -> int:
        return self.times_s.shape[0]


class Motion(Protocol):
    """Anything a Performer can play: procedural actions, a BVH clip, ..."""

    def frames(self, times_s: np.ndarray) -> MotionFrames:
        ...
