"""Endless procedural motion: a seeded sequence of human actions, crossfaded.

``ProceduralMotion(seed)`` plays walking, running, turns, side steps, jumps,
jumping jacks, squats, lunges, kicks, crouching, picking up, reaching, arm
circles, waving, stretching, shadow boxing and idle sway
(:mod:`core.sim.motion.actions`), each with random speed, amplitude and
length, one after another for as long as times are asked for.

How a frame is made, for any array of times (seconds; times before 0 hold the
first pose):

1. the timeline (:mod:`core.sim.motion.timeline`) finds the action playing
   at each time and, during a crossfade, the one fading out;
2. each action gives anatomical parameters (:mod:`core.sim.motion.params`),
   airborne lift and foot pins, blended by a C2 crossfade weight, then
   clamped to joint limits (a convex set, so blends of in-limit poses stay in);
3. the Hips' floor position and heading come from the steered floor path
   (:mod:`core.sim.motion.steering`), which stays inside the capture area;
4. parameters and heading become local joint rotations; planted feet add a
   small Hips shift in leg units (:func:`core.sim.motion.legs.planted_shift`).

Everything is vectorised over the times; the same seed gives the same poses
whatever the order or chunking of the requests. Heights are left to the
performer (grounded frames: the lowest foot point on the floor plus lift).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.camera.rig import CaptureArea
from core.sim.motion import params as pp
from core.sim.motion.actions import ACTION_NAMES, LIBRARY
from core.sim.motion.frames import MotionFrames
from core.sim.motion.legs import planted_shift
from core.sim.motion.steering import DT_S, hermite
from core.sim.motion.timeline import Timeline

# Longer than any simulated subject's leg (2 m stature x 0.491 x 1.06, core.sim.subject).
LONGEST_LEG_MM = 1100.0


@dataclass(frozen=True)
class ProceduralSample:
    """frames: what a Motion gives; params: (T, P) clamped anatomical
    parameters, rad; heading_rad: (T,) root heading (0 faces -Y, positive
    turns left, unwrapped); action: (T,) name of the dominant action."""

    frames: MotionFrames
    params: np.ndarray
    heading_rad: np.ndarray
    action: np.ndarray


class ProceduralMotion:
    """seed: picks everything (use core.sim.splits seeds to keep training and
    test motion apart); area: the capture floor (default: 4 x 4 m about the
    origin); actions: restrict to these action names; first_action: what
    plays at t = 0 (idle by default: the performer starts standing)."""

    ACTIONS: tuple[str, ...] = ACTION_NAMES

    def __init__(self, seed: int, area: CaptureArea | None = None,
                 actions: Sequence[str] | None = None, first_action: str | None = "idle") -> None:
        area = area or CaptureArea()
        self.seed = int(seed)
        self.area = area
        self._timeline = Timeline(seed, (area.x_min, area.x_max, area.y_min, area.y_max),
                                  tuple(actions) if actions else ACTION_NAMES, first_action)

    def frames(self, times_s: np.ndarray) -> MotionFrames:
        return self.sample(times_s).frames

    def sample(self, times_s: np.ndarray) -> ProceduralSample:
        t = np.asarray(times_s, np.float64).ravel()
        steps = np.maximum(t, 0.0) / DT_S
        n = t.shape[0]
        tl = self._timeline
        tl.ensure(float(steps.max()) if n else 0.0)
        k = tl.locate(steps)
        xy, heading, w_cur = np.zeros((n, 2)), np.zeros(n), np.ones(n)
        for kk in np.unique(k):
            seg = tl.segment(int(kk))
            sel = np.flatnonzero(k == kk)
            w_cur[sel] = seg.weight(steps[sel])
            xy[sel], heading[sel] = hermite(tl.nodes(int(kk)), steps[sel] - seg.start)

        params, lift, pin = np.zeros((n, pp.NUM_PARAMS)), np.zeros(n), np.zeros((n, 2))
        fading = (k > 0) & (w_cur < 1.0)
        for kk in np.unique(np.concatenate([k, k[fading] - 1])):
            seg = tl.segment(int(kk))
            is_cur, is_prev = k == kk, fading & (k - 1 == kk)
            idx = np.flatnonzero(is_cur | is_prev)
            w = np.where(is_cur[idx], w_cur[idx], 1.0 - w_cur[idx])
            out = LIBRARY[seg.spec.name].pose((steps[idx] - seg.start) * DT_S, seg.spec)
            params[idx] += w[:, None] * out.params
            lift[idx] += w * out.lift_mm
            pin[idx] += w[:, None] * out.pin
        params = pp.clamp(params)
        local = pp.compose(params, heading)
        shift = self._inside(xy, planted_shift(local, heading, pin))
        dominant = np.where(w_cur >= 0.5, k, k - 1)
        uniq, inv = np.unique(dominant, return_inverse=True)
        names = np.array([tl.segment(int(d)).spec.name for d in uniq], dtype=object)[inv].astype(str)
        frames = MotionFrames(t, local, xy, np.maximum(lift, 0.0), True, shift, None)
        return ProceduralSample(frames, params, heading, names)

    def _inside(self, xy: np.ndarray, shift_leg: np.ndarray) -> np.ndarray:
        """Limit the planted-feet shift so that even the longest legs keep the
        Hips 30 mm inside the area (the floor path itself stays well inside)."""
        a = self.area
        lo = (np.array([a.x_min, a.y_min]) + 30.0 - xy) / LONGEST_LEG_MM
        hi = (np.array([a.x_max, a.y_max]) - 30.0 - xy) / LONGEST_LEG_MM
        return np.minimum(np.maximum(shift_leg, lo), hi)

    def segments(self, until_s: float) -> list[tuple[str, float, float]]:
        """(action, start s, end s) of every segment that starts before until_s;
        consecutive segments overlap by their crossfade."""
        self._timeline.ensure(max(until_s, 0.0) / DT_S)
        return [(s.spec.name, s.start * DT_S, (s.start + s.length) * DT_S)
                for s in self._timeline.segments() if s.start * DT_S < until_s]
