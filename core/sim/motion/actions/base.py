"""What a procedural action is: drawn once from a seeded generator, then
evaluated at any local times.

An action's local time t runs from 0 (the start of its crossfade in) to its
duration (the end of its crossfade out), in seconds. Its outputs, all
vectorised over a time array:

- ``pose``: anatomical parameters (:mod:`core.sim.motion.params`, rad),
  the airborne lift of the Hips above feet-on-the-floor (mm) and per-foot
  pin weights (which feet stay planted while the body moves over them);
- ``velocity``: the Hips' commanded horizontal velocity in the performer's
  own frame (forward, left), mm/s; the root integrator turns it into world
  motion, steered by the action's :class:`Steer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from core.sim.motion import params as pp
from core.sim.motion.curves import soft_cap


@dataclass(frozen=True)
class Steer:
    """How the heading is driven while an action plays.

    mode: "hold" (keep the heading), "turn" (to the absolute heading
    ``heading_rad``), "targets" (walk through the waypoints ``targets_mm`` in
    turn, world mm, cycling), "circle" (follow a circle of ``radius_mm``
    about ``centre_mm``, counter-clockwise for direction +1).
    max_rate: the fastest turn, rad/s.
    """

    mode: str = "hold"
    heading_rad: float = 0.0
    targets_mm: tuple[tuple[float, float], ...] = ()
    centre_mm: tuple[float, float] = (0.0, 0.0)
    radius_mm: float = 0.0
    direction: float = 1.0
    max_rate: float = 1.5


@dataclass(frozen=True)
class ActionSpec:
    """One drawn instance of an action. values: its random parameters."""

    name: str
    duration_s: float
    values: Mapping[str, Any] = field(default_factory=dict)
    steer: Steer = Steer()


@dataclass(frozen=True)
class DrawContext:
    """What an action may know when it is drawn: where the performer is.

    position_mm: (2,) Hips on the floor plane; heading_rad: facing (0 = -Y,
    positive turns left); free_mm: (x_min, x_max, y_min, y_max) where
    waypoints and circles may lie; bounds_mm: where the Hips may go at all;
    fade_in_s / fade_out_s: crossfade lengths at the action's ends.
    """

    position_mm: np.ndarray
    heading_rad: float
    free_mm: tuple[float, float, float, float]
    bounds_mm: tuple[float, float, float, float]
    fade_in_s: float
    fade_out_s: float

    def room_mm(self, direction_rad: float) -> float:
        """Distance from the Hips to the bounds along a heading (0 = -Y)."""
        d = np.array([np.sin(direction_rad), -np.cos(direction_rad)])
        x0, x1, y0, y1 = self.bounds_mm
        p = self.position_mm
        out = np.inf
        for k, (lo, hi) in enumerate(((x0, x1), (y0, y1))):
            if d[k] > 1e-9:
                out = min(out, (hi - p[k]) / d[k])
            elif d[k] < -1e-9:
                out = min(out, (lo - p[k]) / d[k])
        return float(max(out, 0.0))


@dataclass
class ActionOutput:
    """params: (T, P) rad; lift_mm: (T,); pin: (T, 2) left/right foot weights."""

    params: np.ndarray
    lift_mm: np.ndarray
    pin: np.ndarray


class Action:
    """Base class: subclasses set `name` and `weight` (how often the
    sequencer picks it) and implement draw() and pose()."""

    name: str = ""
    weight: float = 1.0

    def draw(self, rng: np.random.Generator, ctx: DrawContext) -> ActionSpec:
        raise NotImplementedError

    def pose(self, t: np.ndarray, spec: ActionSpec) -> ActionOutput:
        raise NotImplementedError

    def velocity(self, t: np.ndarray, spec: ActionSpec) -> np.ndarray:
        """(T, 2) commanded (forward, left) Hips velocity, mm/s."""
        return np.zeros((len(t), 2))


# -- helpers shared by the action modules ----------------------------------------

D = np.pi / 180.0   # degrees -> rad
SIDES = ("L", "R")


def other(side: str) -> str:
    return "R" if side == "L" else "L"


def standing(n: int) -> np.ndarray:
    """(n, P) copies of the neutral standing pose."""
    return np.tile(pp.NEUTRAL, (n, 1))


def output(p: np.ndarray, lift_mm=None, pin=(0.5, 0.5)) -> ActionOutput:
    n = p.shape[0]
    lift = np.zeros(n) if lift_mm is None else np.broadcast_to(lift_mm, (n,)).astype(float)
    pins = np.broadcast_to(np.asarray(pin, float), (n, 2)).copy()
    return ActionOutput(pp.clamp(p), lift, pins)


def put(p: np.ndarray, name: str, values, side: str | None = None, add: bool = False) -> None:
    """Set (or add to) one parameter column, values in degrees."""
    col = pp.index(name, side)
    if add:
        p[:, col] += np.asarray(values) * D
    else:
        p[:, col] = np.asarray(values) * D


def put_keyed_arm(p: np.ndarray, keys: dict, side: str) -> None:
    """Arm forward, down and elbow flexion of `side` from keyframed channels
    named side + "f", "d", "e" (degrees)."""
    put(p, "arm_fwd", keys[side + "f"], side)
    put(p, "arm_down", keys[side + "d"], side)
    put(p, "elbow_flex", keys[side + "e"], side)


def level_gaze(p: np.ndarray, share: float = 0.7) -> None:
    """Tilt neck and head back by `share` of the trunk's forward lean, so the
    performer keeps looking ahead while bending."""
    lean = p[:, pp.index("pelvis_lean")] + p[:, pp.index("spine_flex")] + p[:, pp.index("chest_flex")]
    back = share * soft_cap(-lean, 0.0, 3 * D)       # -share * (smooth max(lean, 0))
    p[:, pp.index("neck_flex")] += 0.5 * back
    p[:, pp.index("head_flex")] += 0.5 * back


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def pick_side(rng: np.random.Generator) -> str:
    return SIDES[int(rng.integers(2))]
