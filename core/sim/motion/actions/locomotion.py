"""Actions that move the performer around the floor: walk, run, turn on the
spot, side steps.

Gait curves are short Fourier-like sums of periodic bumps fitted by eye to
the textbook sagittal joint-angle curves (Winter, "Biomechanics and Motor
Control of Human Movement"): phase 0 is the left heel strike, the right leg
runs half a cycle behind. Stride frequency grows with speed, so stride
length stays human.
"""

from __future__ import annotations

import numpy as np

from core.sim.motion import params as pp
from core.sim.motion.actions.base import Action, ActionSpec, D, DrawContext, Steer, output, put, standing, uniform
from core.sim.motion.curves import bump, half_sine_sq, window
from core.sim.motion.legs import STAND_DOWN, leg_ik

TAU = 2.0 * np.pi


def _gait(t: np.ndarray, phase0: float, freq_hz: float, a: float, run: bool) -> np.ndarray:
    """(T, P) parameters of a walking (or running) cycle at amplitude a (~1)."""
    p = standing(len(t))
    phase = TAU * freq_hz * t + phase0
    for side, ph in (("L", phase), ("R", phase + np.pi)):
        if run:
            # The hip peaks before touch-down so its swing does not add to the knee's snap.
            hip = a * (14 + 25 * np.cos(ph + 0.12 * TAU))
            knee = 12 + a * (22 * bump(ph, 0.15 * TAU, 8) + 65 * bump(ph, 0.62 * TAU, 1.6))
            ankle = 5 + a * (8 * bump(ph, 0.2 * TAU, 8) - 28 * bump(ph, 0.42 * TAU, 10)
                             + 5 * bump(ph, 0.8 * TAU, 6))
            arm_fwd = 10 - 35 * a * np.cos(ph)
            elbow = 85 + 10 * np.cos(ph)
            put(p, "arm_down", 68, side)
        else:
            hip = a * (8 + 20 * np.cos(ph + 0.08 * TAU))
            knee = 4 + a * (14 * bump(ph, 0.12 * TAU, 8) + 55 * bump(ph, 0.72 * TAU, 3.5))
            ankle = 2 + a * (-3 * bump(ph, 0.05 * TAU, 10) + 8 * bump(ph, 0.4 * TAU, 5)
                             - 16 * bump(ph, 0.62 * TAU, 12) + 3 * bump(ph, 0.85 * TAU, 6))
            arm_fwd = 6 - 18 * a * np.cos(ph)
            elbow = 14 + 12 * a * (1 - np.cos(ph)) / 2
        put(p, "hip_flex", hip, side)
        put(p, "knee_flex", knee, side)
        put(p, "ankle_dorsi", ankle, side)
        put(p, "hip_abd", 2 * a * np.cos(ph), side)
        # Arms swing against the legs: the left arm leads when the left leg trails.
        put(p, "arm_fwd", arm_fwd, side)
        put(p, "elbow_flex", elbow, side)
    k = 1.4 if run else 1.0
    put(p, "pelvis_lean", (10 if run else 3) + 2 * a)
    put(p, "pelvis_twist", -5 * k * a * np.cos(phase))
    put(p, "pelvis_side", -3 * a * np.sin(phase))
    put(p, "spine_side", 3 * a * np.sin(phase))
    put(p, "chest_twist", 4 * k * a * np.cos(phase))
    # The neck undoes what is left of pelvis and chest twist: the head looks ahead.
    put(p, "neck_twist", 1.0 * k * a * np.cos(phase))
    put(p, "chest_flex", 3 if run else 0)
    return p


def _wander(rng: np.random.Generator, ctx: DrawContext, max_rate: float) -> Steer:
    """Either a few waypoints across the free floor or a lap around a circle."""
    x0, x1, y0, y1 = ctx.free_mm
    if rng.uniform() < 0.55:
        pts, last = [], ctx.position_mm
        while len(pts) < 3:
            q = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
            if np.linalg.norm(q - last) > 0.35 * min(x1 - x0, y1 - y0) or rng.uniform() < 0.1:
                pts.append((float(q[0]), float(q[1])))
                last = q
        return Steer("targets", targets_mm=tuple(pts), max_rate=max_rate)
    centre = ((x0 + x1) / 2 + rng.uniform(-0.1, 0.1) * (x1 - x0),
              (y0 + y1) / 2 + rng.uniform(-0.1, 0.1) * (y1 - y0))
    radius = rng.uniform(0.4, 0.55) * min(x1 - x0, y1 - y0)
    return Steer("circle", centre_mm=centre, radius_mm=float(radius),
                 direction=float(rng.choice([-1.0, 1.0])), max_rate=max_rate)


class Walk(Action):
    name, weight = "walk", 3.0

    def draw(self, rng, ctx):
        speed = uniform(rng, 0.7, 1.5)
        values = {"speed": speed, "phase": uniform(rng, 0, TAU), "freq": 0.55 + 0.3 * speed,
                  "amp": float(np.clip(speed / 1.3, 0.6, 1.15))}
        return ActionSpec(self.name, uniform(rng, 4.0, 9.0) + ctx.fade_out_s, values,
                          _wander(rng, ctx, 1.6))

    def pose(self, t, spec):
        v = spec.values
        return output(_gait(t, v["phase"], v["freq"], v["amp"], run=False), pin=(0.0, 0.0))

    def velocity(self, t, spec):
        return np.tile([spec.values["speed"] * 1000.0, 0.0], (len(t), 1))


class Run(Action):
    """Jogging laps: in a 4 m area a run has to keep turning."""

    name, weight = "run", 1.0

    def draw(self, rng, ctx):
        speed = uniform(rng, 1.8, 2.4)
        values = {"speed": speed, "phase": uniform(rng, 0, TAU), "freq": 1.25 + 0.06 * (speed - 2.0),
                  "amp": float(np.clip(speed / 2.4, 0.8, 1.1)), "flight_scale": uniform(rng, 0.9, 1.3)}
        # Laps nearly as wide as the Hips may go: about 1 m radius in a 4 m area.
        x0, x1, y0, y1 = ctx.bounds_mm
        half = min(x1 - x0, y1 - y0) / 2
        centre = ((x0 + x1) / 2 + rng.uniform(-0.05, 0.05) * half,
                  (y0 + y1) / 2 + rng.uniform(-0.05, 0.05) * half)
        steer = Steer("circle", centre_mm=centre, radius_mm=float(rng.uniform(0.65, 0.75) * half),
                      direction=float(rng.choice([-1.0, 1.0])), max_rate=2.8)
        return ActionSpec(self.name, uniform(rng, 3.0, 6.0) + ctx.fade_out_s, values, steer)

    def pose(self, t, spec):
        v = spec.values
        p = _gait(t, v["phase"], v["freq"], v["amp"], run=True)
        # Flight after each toe-off, the last 40% of each step; as high as a
        # ballistic flight of that length would rise (g T^2 / 8, ~3 cm).
        half = ((TAU * v["freq"] * t + v["phase"]) / TAU) % 0.5
        flight_s = 0.2 / v["freq"]
        height_mm = v["flight_scale"] * 9810.0 * flight_s ** 2 / 8
        lift = height_mm * half_sine_sq(half, 0.3, 0.2)
        return output(p, lift, pin=(0.0, 0.0))

    def velocity(self, t, spec):
        return np.tile([spec.values["speed"] * 1000.0, 0.0], (len(t), 1))


class Turn(Action):
    """Turn on the spot with small steps, head leading into the turn."""

    name, weight = "turn", 1.0

    def draw(self, rng, ctx):
        angle = float(rng.choice([-1.0, 1.0]) * rng.uniform(70, 200) * D)
        dur = 1.2 + abs(angle) / 1.6
        values = {"angle": angle, "freq": uniform(rng, 0.8, 1.0), "amp": uniform(rng, 0.7, 1.1),
                  "phase": uniform(rng, 0, TAU), "moving_s": dur}
        return ActionSpec(self.name, dur + ctx.fade_out_s, values,
                          Steer("turn", heading_rad=ctx.heading_rad + angle, max_rate=2.2))

    def pose(self, t, spec):
        v = spec.values
        p = standing(len(t))
        env = window(t, 0.0, v["moving_s"], 0.4) * v["amp"]
        phase = TAU * v["freq"] * t + v["phase"]
        for side, ph in (("L", phase), ("R", phase + np.pi)):
            b = bump(ph, np.pi / 2, 2.5) * env
            put(p, "hip_flex", 18 * b, side, add=True)
            put(p, "knee_flex", 36 * b, side, add=True)
            put(p, "ankle_dorsi", 8 * b, side, add=True)
        look = np.sign(v["angle"]) * window(t, 0.0, 0.7 * v["moving_s"], 0.35)
        put(p, "head_twist", 20 * look)
        put(p, "neck_twist", 10 * look)
        put(p, "pelvis_side", -2 * np.sin(phase) * env)
        return output(p)


class SideStep(Action):
    """A side shuffle out and back, in an athletic half-crouch."""

    name, weight = "side_step", 1.0

    def draw(self, rng, ctx):
        left_room = ctx.room_mm(ctx.heading_rad + np.pi / 2)
        right_room = ctx.room_mm(ctx.heading_rad - np.pi / 2)
        room = max(left_room, right_room) / 1000.0
        amp = float(np.clip(min(uniform(rng, 0.4, 0.9), room - 0.1), 0.15, 0.9))   # m each way
        period = max(uniform(rng, 1.8, 3.0) * amp / 0.6, 1.4)
        cycles = int(rng.integers(1, 3))
        values = {"peak": np.pi * amp / period, "period": period, "cycles": cycles,
                  "sign": 1.0 if left_room >= right_room else -1.0,
                  "step_hz": uniform(rng, 0.8, 1.1), "crouch": uniform(rng, 0.03, 0.08)}
        return ActionSpec(self.name, cycles * period + ctx.fade_out_s + 0.2, values)

    def _lateral(self, t, v):
        moving = (t >= 0) & (t <= v["cycles"] * v["period"])
        return np.where(moving, v["sign"] * v["peak"] * np.sin(TAU * t / v["period"]), 0.0)

    def pose(self, t, spec):
        v = spec.values
        p = standing(len(t))
        speed = (self._lateral(t, v) / v["peak"]) ** 2       # smooth through each turnaround
        phase = TAU * v["step_hz"] * t
        for side, ph in (("L", phase), ("R", phase + np.pi)):
            b = bump(ph, np.pi / 2, 2.5) * speed
            hip, knee, ankle = _crouch_leg(v["crouch"])
            p[:, pp.index("hip_flex", side)] = hip + 8 * D * b
            p[:, pp.index("knee_flex", side)] = knee + 22 * D * b
            p[:, pp.index("ankle_dorsi", side)] = ankle
            put(p, "hip_abd", 12 * b, side)
        put(p, "pelvis_lean", 8)
        put(p, "elbow_flex", 40, "L")
        put(p, "elbow_flex", 40, "R")
        return output(p, pin=(0.0, 0.0))

    def velocity(self, t, spec):
        lat = self._lateral(t, spec.values) * 1000.0
        return np.stack([np.zeros_like(lat), lat], axis=1)


def _crouch_leg(drop: float) -> tuple[float, float, float]:
    hip, knee, ankle = leg_ik(0.03, STAND_DOWN - drop, 8 * D)
    return float(hip), float(knee), float(ankle)


ACTIONS = (Walk(), Run(), Turn(), SideStep())
