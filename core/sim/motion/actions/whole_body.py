"""Whole-body actions on the spot: jumps, jumping jacks, squats, lunges,
kicks, crouching, bending to pick something up.

Leg poses come from ankle targets through the two-bone IK of
:mod:`core.sim.motion.legs` (leg units: thigh + shank = 1, heading frame),
so the planted feet stay consistent with the Hips for every body size.
Keyframed moves use :class:`core.sim.motion.curves.Keys`; angles in degrees
in the tables, radians in the parameter arrays.
"""

from __future__ import annotations

import numpy as np

from core.sim.motion.actions.base import (
    Action,
    ActionSpec,
    D,
    level_gaze,
    other,
    output,
    pick_side,
    put,
    standing,
    uniform,
)
from core.sim.motion.curves import Keys, half_sine_sq, repeat, smootherstep
from core.sim.motion.legs import STAND_DOWN, set_leg

_G = 9.81


def _arms(p, fwd, down, elbow, sides=("L", "R"), twist=None) -> None:
    for s in sides:
        put(p, "arm_fwd", fwd, s)
        put(p, "arm_down", down, s)
        put(p, "elbow_flex", elbow, s)
        if twist is not None:
            put(p, "arm_twist", twist, s)


class Jump(Action):
    """Counter-movement jumps: dip, swing the arms, take off, land soft."""

    name, weight = "jump", 1.0

    def draw(self, rng, ctx):
        h = uniform(rng, 0.12, 0.32)                                # m of flight
        flight = np.sqrt(8 * h / _G)
        dip = uniform(rng, 0.45, 0.7)
        period = dip + 0.2 + flight + 0.35 + 0.55
        reps = int(rng.integers(1, 4))
        room = ctx.room_mm(ctx.heading_rad) / 1000.0
        dist = uniform(rng, 0.0, 0.6) if room > 0.9 + 0.6 * reps else 0.0
        values = {"h": h, "flight": flight, "dip": dip, "period": period, "reps": reps,
                  "depth": uniform(rng, 0.7, 1.1), "dist": dist}
        return ActionSpec(self.name, reps * period + ctx.fade_out_s, values)

    def _keys(self, v) -> tuple[Keys, Keys]:
        d, dip, fl = v["depth"], v["dip"], v["flight"]
        t = [0.0, dip, dip + 0.2, dip + 0.2 + fl / 2, dip + 0.2 + fl, dip + 0.55 + fl, v["period"]]
        legs = Keys(t, {
            "down": [0.998, 1 - 0.33 * d, 0.999, 0.93, 0.97, 1 - 0.22 * d, 0.998],
            "fwd": [0.0, 0.18 * d, 0.0, 0.05, 0.03, 0.12 * d, 0.0],
            "lean": [0, 30 * d, 5, 5, 8, 25 * d, 0],
            "point": [0, 0, -35, -25, -8, 0, 0],                  # extra plantarflexion
        })
        # Arms: back in the dip, one sweep forward and up to the top of the flight.
        arms = Keys([0.0, dip, dip + 0.2 + fl / 2, dip + 0.55 + fl, v["period"]], {
            "arm_fwd": [6, -30, 65, 45, 6],
            "arm_down": [78, 72, -40, 40, 78],
            "elbow": [12, 20, 25, 25, 12],
        })
        return legs, arms

    def _flight(self, t, v):
        tr, _ = repeat(t, v["period"], v["reps"])
        start = v["dip"] + 0.14
        return half_sine_sq(tr, start, v["flight"] + 0.06), v["flight"] + 0.06

    def pose(self, t, spec):
        v = spec.values
        tr, _ = repeat(t, v["period"], v["reps"])
        legs, arms = self._keys(v)
        k = {**legs(tr), **arms(tr)}
        p = standing(len(t))
        for s in ("L", "R"):
            set_leg(p, s, k["fwd"], k["down"], k["lean"] * D, ankle_extra=k["point"] * D)
        put(p, "pelvis_lean", k["lean"])
        _arms(p, k["arm_fwd"], k["arm_down"], k["elbow"])
        level_gaze(p)
        arch, _ = self._flight(t, v)
        return output(p, v["h"] * 1000.0 * arch)

    def velocity(self, t, spec):
        v = spec.values
        arch, dur = self._flight(t, v)
        fwd = v["dist"] * 1000.0 * arch / (dur / 2)
        return np.stack([fwd, np.zeros_like(fwd)], axis=1)


class JumpingJacks(Action):
    name, weight = "jumping_jacks", 0.8

    def draw(self, rng, ctx):
        values = {"period": uniform(rng, 1.2, 1.6), "reps": int(rng.integers(3, 8)),
                  "hop": uniform(rng, 30, 70), "spread": uniform(rng, 14, 22)}
        return ActionSpec(self.name, values["reps"] * values["period"] + ctx.fade_out_s, values)

    def pose(self, t, spec):
        v = spec.values
        tr, _ = repeat(t, v["period"], v["reps"])
        u = np.clip(tr / v["period"], 0.0, 1.0)
        legs_open = np.where(u < 0.5, smootherstep(u / 0.25), 1 - smootherstep((u - 0.5) / 0.25))
        arms_up = (1 - np.cos(2 * np.pi * u)) / 2
        hop = half_sine_sq(u, 0.0, 0.25) + half_sine_sq(u, 0.5, 0.25)
        p = standing(len(t))
        for s in ("L", "R"):
            put(p, "hip_abd", v["spread"] * legs_open, s)
            put(p, "knee_flex", 6 + 12 * (1 - np.cos(4 * np.pi * u)) / 2, s)
            put(p, "ankle_dorsi", 4 - 20 * hop, s)
            put(p, "arm_down", 78 - 168 * arms_up, s)
            put(p, "elbow_flex", 12 - 4 * arms_up, s)
        return output(p, v["hop"] * hop)


class Squat(Action):
    name, weight = "squat", 1.0

    def draw(self, rng, ctx):
        values = {"period": uniform(rng, 2.2, 3.5), "reps": int(rng.integers(2, 6)),
                  "depth": uniform(rng, 0.4, 1.0), "lean": uniform(rng, 0.8, 1.15),
                  "hands_on_hips": bool(rng.uniform() < 0.35), "knees_out": uniform(rng, 0, 12)}
        return ActionSpec(self.name, values["reps"] * values["period"] + ctx.fade_out_s, values)

    def pose(self, t, spec):
        v = spec.values
        tr, _ = repeat(t, v["period"], v["reps"])
        s = v["depth"] * (1 - np.cos(2 * np.pi * np.clip(tr / v["period"], 0, 1))) / 2
        lean = 30 * v["lean"] * s
        p = standing(len(t))
        for side in ("L", "R"):
            set_leg(p, side, 0.28 * s, STAND_DOWN - 0.5 * s, lean * D, abd=v["knees_out"] * s * D)
            put(p, "hip_twist", v["knees_out"] * s, side)
        put(p, "pelvis_lean", lean)
        put(p, "spine_flex", 8 * s)
        if v["hands_on_hips"]:
            _arms(p, -20, 62, 100, twist=-30)
        else:
            _arms(p, 6 + 80 * s, 78 - 76 * s, 12 - 6 * s)
        level_gaze(p)
        return output(p)


class Lunge(Action):
    """Forward lunges: the back foot stays planted and the body rides over it."""

    name, weight = "lunge", 1.0

    def draw(self, rng, ctx):
        values = {"period": uniform(rng, 2.6, 3.4), "reps": int(rng.integers(1, 4)),
                  "step": uniform(rng, 0.7, 0.9), "depth": uniform(rng, 0.7, 1.0),
                  "side": pick_side(rng), "alternate": bool(rng.uniform() < 0.6)}
        return ActionSpec(self.name, values["reps"] * values["period"] + ctx.fade_out_s, values)

    def pose(self, t, spec):
        v = spec.values
        S, depth = v["step"], v["depth"]
        tr, rep = repeat(t, v["period"], v["reps"])
        P = v["period"]
        # Hips (hx ahead of, hz above the back ankle); front ankle target (ff, fd).
        hx_plant = S - 0.5
        hz_plant = min(0.998, np.sqrt(0.97 - 0.5 ** 2))
        hz_low = 0.5 + 0.3 * (1 - depth)
        e = 0.08 * depth                                    # back ankle rides up on the toes
        k = Keys(np.array([0.0, 0.15, 0.3, 0.5, 0.7, 0.85, 1.0]) * P, {
            "hx": [0, 0.05, hx_plant, S / 2 + 0.02, hx_plant, 0.05, 0],
            "hz": [0.998, 0.99, hz_plant, hz_low, hz_plant, 0.99, 0.998],
            "ff": [0, 0.25, 0.5, S / 2 - 0.02, 0.5, 0.25, 0],
            "fd": [0.998, 0.8, hz_plant, hz_low + e, hz_plant, 0.8, 0.998],
            "lean": [0, 2, 5, 6, 5, 2, 0],
        })(tr)
        p = standing(len(t))
        first = v["side"]
        front_is_first = (rep % 2 == 0) | (not v["alternate"])
        pin = np.zeros((len(t), 2))
        for side, col in (("L", 0), ("R", 1)):
            is_front = front_is_first if side == first else ~front_is_first
            fwd = np.where(is_front, k["ff"], -k["hx"])
            down = np.where(is_front, k["fd"], k["hz"])
            set_leg(p, side, fwd, down, k["lean"] * D)
            pin[:, col] = np.where(is_front, 0.0, 1.0)
            put(p, "arm_fwd", np.where(is_front, -10, 25) * (1 - k["hz"]) * 2 + 6, side)
        put(p, "pelvis_lean", k["lean"])
        return output(p, pin=pin)


class Kick(Action):
    """Front kicks from a guard: chamber, snap out, rechamber, step down."""

    name, weight = "kick", 1.0

    def draw(self, rng, ctx):
        values = {"period": uniform(rng, 2.0, 2.8), "reps": int(rng.integers(1, 4)),
                  "height": uniform(rng, 70, 100), "side": pick_side(rng)}
        return ActionSpec(self.name, values["reps"] * values["period"] + ctx.fade_out_s, values)

    def pose(self, t, spec):
        v = spec.values
        H, P = v["height"], v["period"]
        tr, _ = repeat(t, P, v["reps"])
        k = Keys(np.array([0.0, 0.2, 0.38, 0.52, 0.75, 1.0]) * P, {
            "hip": [2, 0.85 * H, H, 0.85 * H, 10, 2],
            "knee": [4, 100, 15, 95, 20, 4],
            "point": [2, -10, -30, -10, 0, 2],
            "lean": [0, -3, -8, -3, 0, 0],
            "guard": [0, 1, 1, 1, 0.6, 0],
            "stance": [4, 15, 18, 15, 10, 4],
        })(tr)
        kick, stance = v["side"], other(v["side"])
        p = standing(len(t))
        put(p, "hip_flex", k["hip"], kick)
        put(p, "knee_flex", k["knee"], kick)
        put(p, "ankle_dorsi", k["point"], kick)
        put(p, "hip_flex", k["stance"] * 0.7 - k["lean"], stance)
        put(p, "knee_flex", k["stance"], stance)
        put(p, "ankle_dorsi", k["stance"] * 0.3, stance)
        put(p, "pelvis_lean", k["lean"])
        g = k["guard"]
        _arms(p, 6 + 49 * g, 78 - 23 * g, 12 + 98 * g)
        pin = (1.0, 0.0) if stance == "L" else (0.0, 1.0)
        return output(p, pin=pin)


class Crouch(Action):
    """Down into a deep crouch, look around, stand up."""

    name, weight = "crouch", 0.8

    def draw(self, rng, ctx):
        values = {"down_s": uniform(rng, 0.8, 1.2), "hold_s": uniform(rng, 1.0, 2.5),
                  "up_s": uniform(rng, 0.9, 1.3), "depth": uniform(rng, 0.33, 0.45),
                  "look": uniform(rng, 20, 35) * (1 if rng.uniform() < 0.5 else -1)}
        dur = values["down_s"] + values["hold_s"] + values["up_s"]
        return ActionSpec(self.name, dur + ctx.fade_out_s, values)

    def pose(self, t, spec):
        v = spec.values
        t1 = v["down_s"]
        t2 = t1 + v["hold_s"]
        t3 = t2 + v["up_s"]
        k = Keys([0.0, t1, t2, t3], {"c": [0, 1, 1, 0]})(t)
        c = k["c"]
        look = Keys([t1, (t1 + t2) / 2, t2], {"l": [0, 1, 0]})(t)["l"] * v["look"]
        lean = 25 * c
        p = standing(len(t))
        for side in ("L", "R"):
            set_leg(p, side, 0.2 * c, STAND_DOWN - (STAND_DOWN - v["depth"]) * c, lean * D,
                    abd=10 * c * D)
            put(p, "hip_twist", 15 * c, side)
        put(p, "pelvis_lean", lean)
        _arms(p, 6 + 64 * c, 78 - 28 * c, 12 + 38 * c)
        level_gaze(p)
        put(p, "neck_twist", look, add=True)
        put(p, "head_twist", 0.5 * look, add=True)
        return output(p)


class PickUp(Action):
    """Bend to pick something off the floor and hold it in front."""

    name, weight = "pick_up", 1.0

    def draw(self, rng, ctx):
        values = {"bend_s": uniform(rng, 1.0, 1.4), "grab_s": uniform(rng, 0.4, 0.8),
                  "rise_s": uniform(rng, 1.0, 1.4), "hold_s": uniform(rng, 0.5, 1.0),
                  "lean": uniform(rng, 55, 70), "knees": uniform(rng, 0.05, 0.12),
                  "hands": ("L", "R", "both")[int(rng.integers(3))]}
        dur = values["bend_s"] + values["grab_s"] + values["rise_s"] + values["hold_s"] + 0.6
        return ActionSpec(self.name, dur + ctx.fade_out_s, values)

    def pose(self, t, spec):
        v = spec.values
        t1 = v["bend_s"]
        t2 = t1 + v["grab_s"]
        t3 = t2 + v["rise_s"]
        t4 = t3 + v["hold_s"]
        k = Keys([0, t1, t2, t3, t4, t4 + 0.6], {
            "bend": [0, 1, 1, 0, 0, 0],
            "reach": [0, 1, 0.8, 0, 0, 0],
            "carry": [0, 0, 0.4, 1, 1, 0],
        })(t)
        b = k["bend"]
        lean = v["lean"] * b
        p = standing(len(t))
        for side in ("L", "R"):
            set_leg(p, side, 0.2 * b, STAND_DOWN - v["knees"] * b, lean * D)
        put(p, "pelvis_lean", lean)
        put(p, "spine_flex", 22 * b)
        put(p, "chest_flex", 10 * b)
        put(p, "neck_flex", -15 * b)
        sides = ("L", "R") if v["hands"] == "both" else (v["hands"],)
        r, c = k["reach"], k["carry"]
        _arms(p, 6 + 69 * r + 44 * c, 78 - 63 * r - 28 * c, 12 - 2 * r + 58 * c, sides=sides)
        return output(p)


ACTIONS = (Jump(), JumpingJacks(), Squat(), Lunge(), Kick(), Crouch(), PickUp())
