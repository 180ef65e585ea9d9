"""Where the body is when only the IMUs see it: the root moved by the feet.

IMUs measure how the bones are turned, never where the body is. An inertial
suit places it as a person walks: a foot on the floor stays where it is, and
the body pivots and moves over it. :class:`FootPlacement` does that for the
IMU-only solve (core.solve.live, a frame with no network joints):

- **Height.** The lowest foot point sits on the floor: a ball joint at
  :data:`BALL_HEIGHT_MM`, an ankle at the contacts' ankle height
  (core.solve.contacts.ContactConfig) above z = 0.
- **The pivot.** The foot point (either foot's ankle or ball) lowest above
  its own floor height carries the body. While the same point carries it, it
  stays where it is and the root follows it; when another point takes over
  (a step, heel to ball) that one stays from then on, from where it was.
  A point must be :data:`SWITCH_MM` lower than the current pivot to take
  over, so two feet level on the floor do not trade the body every frame.

So steps move the body by the length of the step and turns turn it about
the planted foot, whatever the speed. What no inertial method knows: a foot
that slides on the floor, stairs or a jump (the body lands where it took
off) and slow heading drift of the pelvis sensor turn into drift of the
whole path (scripts/bench_solve.py reports the IMU-only error).
"""

from __future__ import annotations

import numpy as np

from core.solve.contacts import FOOT_JOINTS, ContactConfig

BALL_HEIGHT_MM = 15.0     # the simulated performers' ball joint on a flat foot: 12-18 mm
SWITCH_MM = 10.0
MOVING_WEIGHT = 0.5       # mm of height a mm of sliding is worth, choosing the pivot
POINTS = np.array([j for foot in FOOT_JOINTS for j in foot])          # L ankle, L ball, R ankle, R ball
FLOOR_MM = np.array([ContactConfig.ankle_height_mm, BALL_HEIGHT_MM] * 2)


def standing_root_mm(relative_mm: np.ndarray, xy_mm=(0.0, 0.0)) -> np.ndarray:
    """The root that stands the pose `relative_mm` ((J, 3) joints less the
    root) on the floor at `xy_mm`."""
    rel = np.asarray(relative_mm, np.float64)
    return np.array([xy_mm[0], xy_mm[1], -float(np.min(rel[POINTS, 2] - FLOOR_MM))])


class FootPlacement:
    """The root, frame by frame, from root-relative poses (see the module)."""

    def __init__(self) -> None:
        self.pivot: int | None = None       # a joint index of POINTS
        self._pivot_xy = np.zeros(2)
        self._last_rel: np.ndarray | None = None
        self._step = np.zeros(2)            # the root's horizontal move over the frame before

    def reset(self) -> None:
        self.pivot = None
        self._last_rel = None
        self._step = np.zeros(2)

    def place(self, relative_mm: np.ndarray, last_root_mm: np.ndarray) -> np.ndarray:
        """The root (3,) for the pose `relative_mm` ((J, 3) joints less the
        root), the root of the frame before being `last_root_mm`."""
        rel = np.asarray(relative_mm, np.float64)
        last = np.asarray(last_root_mm, np.float64)
        above = rel[POINTS, 2] - FLOOR_MM
        # How far each point would move on the floor if the body kept going as it went.
        if self._last_rel is None:
            moving = np.zeros(len(POINTS))
        else:
            moving = np.linalg.norm(rel[POINTS, :2] - self._last_rel[POINTS, :2] + self._step, axis=1)
        score = above - above.min() + MOVING_WEIGHT * moving
        best = int(np.argmin(score))
        if self.pivot is None or score[list(POINTS).index(self.pivot)] - score[best] > SWITCH_MM:
            self.pivot = int(POINTS[best])
            self._pivot_xy = last[:2] + rel[self.pivot, :2]
        xy = self._pivot_xy - rel[self.pivot, :2]
        self._step = xy - last[:2]
        self._last_rel = rel
        return np.array([xy[0], xy[1], -float(above.min())])
