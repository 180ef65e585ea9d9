"""Actions led by the arms and trunk, feet planted: idle sway, reaching, arm
circles, waving, stretching, shadow boxing.

Arm angles follow :mod:`core.sim.motion.params`: from the T-pose, ``arm_fwd``
swings the arm toward the front, ``arm_down`` toward the side of the body
(78 degrees hangs it relaxed, negative raises it above the shoulder),
``arm_twist`` turns the humerus outward. Degrees in the tables.
"""

from __future__ import annotations

import numpy as np

from core.sim.motion.actions.base import Action, ActionSpec, output, pick_side, put, put_keyed_arm, standing, uniform
from core.sim.motion.curves import Keys, window

TAU = 2.0 * np.pi


def _breathe_and_look(p, t, v) -> None:
    """Small life on top of a held pose: breathing and a slow look around."""
    put(p, "chest_flex", 1.5 * np.sin(TAU * 0.25 * t + v["phase"]), add=True)
    put(p, "neck_twist", v["look"] * np.sin(TAU * v["look_hz"] * t + v["phase"]), add=True)
    put(p, "head_flex", 5 * np.sin(TAU * 0.13 * t + 2 * v["phase"]), add=True)


def _life(rng) -> dict:
    return {"phase": uniform(rng, 0, TAU), "look": uniform(rng, 15, 35), "look_hz": uniform(rng, 0.1, 0.2)}


class Idle(Action):
    """Standing, shifting the weight from foot to foot, looking around."""

    name, weight = "idle", 1.0

    def draw(self, rng, ctx):
        values = {"sway": uniform(rng, 1.5, 4.0), "sway_hz": uniform(rng, 0.15, 0.35), **_life(rng)}
        return ActionSpec(self.name, uniform(rng, 2.0, 5.0) + ctx.fade_out_s, values)

    def pose(self, t, spec):
        v = spec.values
        p = standing(len(t))
        s = np.sin(TAU * v["sway_hz"] * t + v["phase"])
        put(p, "pelvis_side", -v["sway"] * s)
        put(p, "spine_side", v["sway"] * s)
        for side, sign in (("L", 1.0), ("R", -1.0)):
            put(p, "hip_abd", v["sway"] * s * sign, side)
            # The unloaded leg relaxes its knee.
            put(p, "knee_flex", 6 - 4 * s * sign, side)
            put(p, "arm_fwd", 6 + 3 * np.sin(TAU * 0.3 * t + v["phase"] + sign), side)
        _breathe_and_look(p, t, v)
        return output(p)


class Reach(Action):
    """Reach out to points around the body, leaning and turning toward them."""

    name, weight = "reach", 1.0

    def draw(self, rng, ctx):
        n = int(rng.integers(1, 4))
        reaches = tuple((uniform(rng, 20, 110), uniform(rng, -80, 30), uniform(rng, -20, 20),
                         ("L", "R", "both")[int(rng.integers(3))], uniform(rng, 0.7, 1.1),
                         uniform(rng, 0.3, 0.8)) for _ in range(n))
        dur = sum(2 * r[4] + r[5] for r in reaches)
        return ActionSpec(self.name, dur + ctx.fade_out_s, {"reaches": reaches, **_life(rng)})

    def pose(self, t, spec):
        times, ch = [0.0], {k: [0.0] for k in ("Lf", "Ld", "Le", "Lt", "Rf", "Rd", "Re", "Rt",
                                                "twist", "lean", "toes")}
        rest = {"f": 6, "d": 78, "e": 12, "t": 0}
        for k in ("L", "R"):
            for a in "fdet":
                ch[k + a][0] = rest[a]
        for fwd, down, twist, who, go, hold in spec.values["reaches"]:
            sides = ("L", "R") if who == "both" else (who,)
            turn = 0.0 if who == "both" else (-1 if who == "L" else 1) * 12 * fwd / 90
            pose = {"twist": turn, "lean": 12 * (fwd / 90) * (down > 0),
                    "toes": -18 * (down < -45)}
            for k in ("L", "R"):
                out = {"f": fwd, "d": down, "e": 8, "t": twist} if k in sides else rest
                for a in "fdet":
                    pose[k + a] = out[a]
            for dt, target in ((go, pose), (hold, pose), (go, None)):
                times.append(times[-1] + dt)
                for name in ch:
                    ch[name].append(target[name] if target else ch[name][0])
        k = Keys(times, ch)(t)
        p = standing(len(t))
        for s in ("L", "R"):
            put_keyed_arm(p, k, s)
            put(p, "arm_twist", k[s + "t"], s)
            put(p, "ankle_dorsi", 2 + k["toes"], s)
        put(p, "chest_twist", k["twist"])
        put(p, "spine_twist", 0.5 * k["twist"])
        put(p, "pelvis_lean", 0.6 * k["lean"])
        put(p, "spine_flex", 0.4 * k["lean"])
        for s in ("L", "R"):
            put(p, "hip_flex", 2 + 0.6 * k["lean"], s)
        _breathe_and_look(p, t, spec.values)
        return output(p)


class ArmCircles(Action):
    name, weight = "arm_circles", 0.8

    def draw(self, rng, ctx):
        amp = uniform(rng, 15, 40)
        values = {"amp": amp, "hz": uniform(rng, 0.7, 1.2 if amp < 30 else 1.0),
                  "dir": float(rng.choice([-1.0, 1.0])), "down": uniform(rng, 0, 15),
                  "fwd": uniform(rng, 0, 10), "phase": uniform(rng, 0, TAU)}
        return ActionSpec(self.name, uniform(rng, 3.0, 6.0) + ctx.fade_out_s, values)

    def pose(self, t, spec):
        v = spec.values
        dur = spec.duration_s
        env = window(t, 0.0, dur, 0.9) * v["amp"]
        ph = v["dir"] * TAU * v["hz"] * t + v["phase"]
        p = standing(len(t))
        for s in ("L", "R"):
            put(p, "arm_fwd", v["fwd"] + env * np.sin(ph), s)
            put(p, "arm_down", v["down"] + env * np.cos(ph), s)
            put(p, "elbow_flex", 6, s)
        return output(p)


class Wave(Action):
    name, weight = "wave", 0.8

    def draw(self, rng, ctx):
        values = {"side": pick_side(rng), "up_s": uniform(rng, 0.6, 0.9), "wave_s": uniform(rng, 1.5, 3.0),
                  "hz": uniform(rng, 1.6, 2.4), "raise": uniform(rng, -50, -20),
                  "fwd": uniform(rng, 5, 35), "look": uniform(rng, -20, 20), **_life(rng)}
        dur = 2 * values["up_s"] + values["wave_s"]
        return ActionSpec(self.name, dur + ctx.fade_out_s, values)

    def pose(self, t, spec):
        v = spec.values
        t1 = v["up_s"]
        t2 = t1 + v["wave_s"]
        k = Keys([0, t1, t2, t2 + t1], {"up": [0, 1, 1, 0]})(t)["up"]
        s = v["side"]
        p = standing(len(t))
        put(p, "arm_down", 78 + (v["raise"] - 78) * k, s)
        put(p, "arm_fwd", 6 + (v["fwd"] - 6) * k, s)
        # Turned out 75 degrees, the elbow bends in the frontal plane: a hand wave.
        put(p, "arm_twist", 75 * k, s)
        wave = 22 * np.sin(TAU * v["hz"] * (t - t1)) * window(t, t1, t2, 0.3)
        put(p, "elbow_flex", 12 + 63 * k + wave, s)
        put(p, "head_twist", v["look"] * k)
        put(p, "clav_elev", 8 * k, s)
        _breathe_and_look(p, t, v)
        return output(p)


class Stretch(Action):
    """Arms overhead, side bends to either side, arms down."""

    name, weight = "stretch", 0.7

    def draw(self, rng, ctx):
        values = {"up_s": uniform(rng, 0.9, 1.3), "bends": int(rng.integers(1, 3)),
                  "bend_s": uniform(rng, 2.5, 3.5), "bend": uniform(rng, 8, 14),
                  "toes": bool(rng.uniform() < 0.4), "first": float(rng.choice([-1.0, 1.0]))}
        dur = 2 * values["up_s"] + values["bends"] * values["bend_s"]
        return ActionSpec(self.name, dur + ctx.fade_out_s, values)

    def pose(self, t, spec):
        v = spec.values
        t1 = v["up_s"]
        t2 = t1 + v["bends"] * v["bend_s"]
        up = Keys([0, t1, t2, t2 + t1], {"u": [0, 1, 1, 0]})(t)["u"]
        bend = v["first"] * v["bend"] * np.sin(TAU * (t - t1) / v["bend_s"]) * window(t, t1, t2, 0.4)
        p = standing(len(t))
        for s in ("L", "R"):
            # With the clavicle raised 15 degrees, -77 here holds the arm vertical.
            put(p, "arm_down", 78 - 155 * up, s)
            put(p, "arm_fwd", 6 + 6 * up, s)
            put(p, "arm_twist", 40 * up, s)
            put(p, "elbow_flex", 12 - 4 * up, s)
            put(p, "clav_elev", 15 * up, s)
            if v["toes"]:
                put(p, "ankle_dorsi", 2 - 22 * up, s)
        put(p, "spine_side", bend)
        put(p, "chest_side", 0.8 * bend)
        put(p, "neck_side", 0.3 * bend)
        return output(p)


class Punch(Action):
    """Shadow boxing: jabs and crosses from a guard."""

    name, weight = "punch", 0.8

    def draw(self, rng, ctx):
        n = int(rng.integers(3, 9))
        punches = tuple((pick_side(rng), uniform(rng, 0.2, 0.26), uniform(rng, 0.22, 0.3),
                         uniform(rng, 0.25, 0.55), uniform(rng, -10, 15)) for _ in range(n))
        dur = 0.6 + sum(p[1] + p[2] + p[3] for p in punches) + 0.6
        return ActionSpec(self.name, dur + ctx.fade_out_s, {"punches": punches})

    def pose(self, t, spec):
        guard = {"f": 55, "d": 55, "e": 115}
        times = [0.0, 0.6]
        ch = {f"{s}{a}": [rest, guard[a]] for s in "LR" for a, rest in (("f", 6), ("d", 78), ("e", 12))}
        ch["twist"], ch["g"] = [0, 0], [0, 1]
        for side, out_s, back_s, rest_s, height in spec.values["punches"]:
            hit = {"f": 88, "d": height, "e": 5}
            for dt, striking in ((out_s, True), (back_s, False), (rest_s, False)):
                times.append(times[-1] + dt)
                for s in "LR":
                    for a in "fde":
                        ch[s + a].append(hit[a] if striking and s == side else guard[a])
                ch["twist"].append((-15 if side == "L" else 15) if striking else 0)
                ch["g"].append(1)
        times.append(times[-1] + 0.6)
        for name in ch:
            ch[name].append(ch[name][0])
        k = Keys(times, ch)(t)
        p = standing(len(t))
        for s in ("L", "R"):
            put_keyed_arm(p, k, s)
            put(p, "knee_flex", 4 + 12 * k["g"], s)
            put(p, "hip_flex", 2 + 8 * k["g"], s)
            put(p, "ankle_dorsi", 2 + 4 * k["g"], s)
        put(p, "chest_twist", k["twist"])
        put(p, "spine_twist", 0.5 * k["twist"])
        put(p, "pelvis_lean", 4 * k["g"])
        return output(p)


ACTIONS = (Idle(), Reach(), ArmCircles(), Wave(), Stretch(), Punch())
