"""The Hips' path over the floor: heading and position integrated on a fixed
time grid, with steering and soft walls.

Each action commands a velocity in the performer's own frame and a way of
steering (:class:`core.sim.motion.actions.base.Steer`); during a crossfade
both are blended by the crossfade weight. The turn rate heads for a
proportional correction of the heading error (plus, on a circle, the
circle's own turn rate) through a first-order lag, so it never jumps; the
speed eases off while the heading error is large, and near the
bounds the velocity component toward a wall is capped in proportion to the
distance left, so the Hips approach but never cross it.

The grid step is ``DT_S``; positions (mm) and headings (rad, 0 faces -Y,
positive turns left) between nodes come from cubic Hermite interpolation
with the nodes' velocities, so position and velocity are continuous.
A node row is (x, y, vx, vy, heading, turn rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.sim.motion.actions.base import Steer

DT_S = 0.02
_K_HEADING = 4.0     # 1/s: turn rate asked per rad of heading error
_RATE_TAU_S = 0.2    # s: lag of the turn rate behind what is asked
_WALL_GAIN = 2.5     # 1/s: allowed approach speed per mm of room left
_ARRIVE_MM = 350.0
_GAIN_TAU_S = 0.35


@dataclass(frozen=True)
class RootState:
    """The Hips' floor state at a grid node; `target` is the waypoint index of
    the action that was steering up to that node."""

    x: float
    y: float
    heading: float
    rate: float
    gain: float = 1.0
    target: int = 0


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _toward(dx: float, dy: float) -> float:
    """Heading that faces the direction (dx, dy)."""
    return math.atan2(dx, -dy)


def _steer_error(s: Steer, x: float, y: float, heading: float, target: int,
                 speed: float) -> tuple[float, float, int, bool]:
    """(heading error rad, feed-forward turn rate rad/s, waypoint index,
    whether the action steers by position). speed: forward mm/s."""
    if s.mode == "turn":
        return s.heading_rad - heading, 0.0, target, False
    if s.mode == "targets" and s.targets_mm:
        tx, ty = s.targets_mm[target % len(s.targets_mm)]
        if math.hypot(tx - x, ty - y) < _ARRIVE_MM:
            target += 1
            tx, ty = s.targets_mm[target % len(s.targets_mm)]
        return _wrap(_toward(tx - x, ty - y) - heading), 0.0, target, True
    if s.mode == "circle":
        cx, cy = s.centre_mm
        rx, ry = x - cx, y - cy
        r = math.hypot(rx, ry)
        if r < 1.0:
            return 0.0, 0.0, target, True
        ux, uy = rx / r, ry / r
        k = 1.2 * (s.radius_mm - r) / s.radius_mm          # > 0 outward when inside the circle
        dx = -uy * s.direction + k * ux
        dy = ux * s.direction + k * uy
        return _wrap(_toward(dx, dy) - heading), s.direction * speed / s.radius_mm, target, True
    return 0.0, 0.0, target, False


def integrate(state: RootState, n: int, weight: np.ndarray, vel_body: np.ndarray,
              steer_prev: Steer | None, steer_cur: Steer,
              bounds: tuple[float, float, float, float]) -> tuple[np.ndarray, RootState]:
    """Run n grid steps from `state`.

    weight: (n+1,) crossfade weight of the current action at each node (the
    previous one has 1 - weight); vel_body: (n+1, 2) the blended commanded
    (forward, left) velocity, mm/s. `state.target` is the waypoint index of
    the previous action (carried over); the current action starts at its first.
    Returns the (n+1, 6) nodes and the state at the last node.
    """
    x, y, h, rate, gain = state.x, state.y, state.heading, state.rate, state.gain
    t_prev, t_cur = state.target, 0
    x0, x1, y0, y1 = bounds
    nodes = np.empty((n + 1, 6))
    for i in range(n + 1):
        w = float(weight[i])
        speed = abs(gain * vel_body[i, 0])
        err, ff, t_cur, pos_cur = _steer_error(steer_cur, x, y, h, t_cur, speed)
        max_rate = steer_cur.max_rate
        steers = pos_cur
        if steer_prev is not None and w < 1.0:
            e_prev, ff_prev, t_prev, pos_prev = _steer_error(steer_prev, x, y, h, t_prev, speed)
            err = (1 - w) * e_prev + w * err
            ff = (1 - w) * ff_prev + w * ff
            max_rate = (1 - w) * steer_prev.max_rate + w * max_rate
            steers = steers or pos_prev
        # Ease off while facing away from where the steering wants to go.
        gain_goal = 0.45 + 0.55 * max(0.0, math.cos(err)) if steers else 1.0
        fwd, left = gain * vel_body[i, 0], gain * vel_body[i, 1]
        s, c = math.sin(h), math.cos(h)
        vx = fwd * s + left * c
        vy = -fwd * c + left * s
        vx = min(vx, _WALL_GAIN * (x1 - x)) if vx > 0 else max(vx, -_WALL_GAIN * (x - x0))
        vy = min(vy, _WALL_GAIN * (y1 - y)) if vy > 0 else max(vy, -_WALL_GAIN * (y - y0))
        nodes[i] = (x, y, vx, vy, h, rate)
        if i == n:
            break
        want = max(-max_rate, min(max_rate, _K_HEADING * err + ff))
        x += vx * DT_S
        y += vy * DT_S
        h += rate * DT_S
        rate += (want - rate) * DT_S / _RATE_TAU_S
        gain += (gain_goal - gain) * DT_S / _GAIN_TAU_S
    return nodes, RootState(x, y, h, rate, gain, t_cur)


def hermite(nodes: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (T, 2) mm and headings (T,) rad at fractional node indices s
    (0 <= s <= len(nodes) - 1)."""
    last = len(nodes) - 1
    i = np.clip(np.floor(s).astype(int), 0, max(last - 1, 0))
    u = (s - i)[:, None]
    a, b = nodes[i], nodes[np.minimum(i + 1, last)]
    u2, u3 = u * u, u * u * u
    h00, h10, h01, h11 = 2 * u3 - 3 * u2 + 1, u3 - 2 * u2 + u, -2 * u3 + 3 * u2, u3 - u2
    pos = h00 * a[:, 0:2] + h10 * DT_S * a[:, 2:4] + h01 * b[:, 0:2] + h11 * DT_S * b[:, 2:4]
    head = h00 * a[:, 4:5] + h10 * DT_S * a[:, 5:6] + h01 * b[:, 4:5] + h11 * DT_S * b[:, 5:6]
    return pos, head[:, 0]
