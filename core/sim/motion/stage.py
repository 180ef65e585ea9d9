"""Recorded motion kept on the capture area.

A recorded clip goes where its performer went: a walk of ten seconds
crosses 13 m, three times the standard studio's floor. `OnStage` keeps a
motion's root over the capture area for the stretch [0, duration_s]:

- **recentred** when the path fits inside the area less a margin: the
  whole path moves by one constant shift, its bounding box centred on the
  area (nothing else changes);
- **followed** otherwise: a smooth version of the path (its straight-line
  trend plus the rest smoothed by a Gaussian of sigma `follow_s`) is taken
  off, so the performer stays near the centre as if the cameras moved with
  them, and what remains (the sway of each step,
  turns, short runs) plays as recorded. Seen from the cameras this is the
  same body motion; only the travel across the floor is gone.

Root positions are in the motion's own units (the Performer scales them by
the subject's leg length over the source's); the margin leaves room for that
scale and for the body around the root.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from core.camera.rig import CaptureArea
from core.sim.motion.frames import MotionFrames

_SAMPLE_HZ = 30.0


class OnStage:
    """`motion` with its root kept over `area` from 0 to `duration_s` (see module docstring).

    mode: "recentred" or "followed", whichever was needed. lead_in_s: the
    motion starts this late (its first frame held until then)."""

    def __init__(self, motion, area: CaptureArea, duration_s: float, margin_mm: float = 700.0,
                 follow_s: float = 1.0, lead_in_s: float = 0.0) -> None:
        self.motion = motion
        self.lead_in_s = float(lead_in_s)
        self.duration_s = float(duration_s)
        n = max(2, int(np.ceil(self.duration_s * _SAMPLE_HZ)) + 1)
        self._t = np.linspace(0.0, self.duration_s, n)
        xy = motion.frames(self._t).root_xy_mm
        lo, hi = xy.min(0), xy.max(0)
        room = np.array([area.x_max - area.x_min, area.y_max - area.y_min]) - 2 * margin_mm
        centre = area.centre[:2]
        if np.all(hi - lo <= room):
            self.mode = "recentred"
            self._path = np.broadcast_to(0.5 * (lo + hi) - centre, xy.shape).copy()
        else:
            self.mode = "followed"
            # The straight-line trend is taken off before smoothing, so the
            # smoothed path does not lag at the clip's two ends.
            sigma = follow_s * (n - 1) / max(self.duration_s, 1e-9)
            trend = np.polynomial.polynomial.polyvander(self._t, 1) @ np.linalg.lstsq(
                np.polynomial.polynomial.polyvander(self._t, 1), xy, rcond=None)[0]
            self._path = trend + gaussian_filter1d(xy - trend, sigma=sigma, axis=0, mode="nearest") - centre

    def frames(self, times_s: np.ndarray) -> MotionFrames:
        t = np.asarray(times_s, np.float64).ravel()
        fr = self.motion.frames(np.maximum(t - self.lead_in_s, 0.0))
        tc = np.clip(t - self.lead_in_s, 0.0, self.duration_s)
        shift = np.stack([np.interp(tc, self._t, self._path[:, i]) for i in range(2)], axis=1)
        return MotionFrames(t, fr.local, fr.root_xy_mm - shift, fr.root_z_mm, fr.grounded, fr.root_shift_leg,
                            fr.source_leg_mm)
