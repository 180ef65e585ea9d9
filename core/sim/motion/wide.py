"""Procedural motion that covers the joint-limit space more widely than the actions.

The 17 actions (:mod:`core.sim.motion.actions`) keep each joint to the part
of its range those actions use. For training, two motions reach further:

- :class:`RandomPoses`: random poses within the joint limits
  (:mod:`core.sim.motion.params`), one every ``key_s`` seconds, blended
  smoothly from one to the next. Each key pose draws every parameter
  uniformly within its limits and pulls each joint group (trunk, head and
  neck, each arm, each leg) toward the neutral pose by its own random amount,
  so a key mixes wide and relaxed limbs; now and then the arms or the legs
  are left-right symmetric (both arms raised, a squat). Poses are clamped
  to the limits, a convex set, so the blends between keys stay inside too.
- :class:`UpperLowerMix`: the upper body (spine, chest, neck, head,
  shoulders, arms) of one procedural motion on the lower body (pelvis,
  legs, the floor path, heading and jumps) of another: waving while
  lunging, boxing while walking.

Both are grounded (the performer puts the lowest foot point on the floor),
pure functions of time like every motion, and seeded (use
:func:`core.sim.splits.train_seed` seeds for training).
"""

from __future__ import annotations

import numpy as np

from core import skeleton as sk
from core.sim.motion import params as pp
from core.sim.motion.curves import smootherstep
from core.sim.motion.frames import MotionFrames
from core.sim.motion.procedural import ProceduralMotion, ProceduralSample

_SALT = 0x71DE

_LOWER_JOINTS = {sk.JOINT_INDEX[n] for n in ("Hips", "LeftUpLeg", "LeftLeg", "LeftFoot",
                                             "RightUpLeg", "RightLeg", "RightFoot")}
# Parameter columns of the lower body (pelvis and legs); the rest is the upper body.
LOWER_PARAMS = np.array([i for i, p in enumerate(pp.PARAMS) if p.joint in _LOWER_JOINTS])
UPPER_PARAMS = np.array([i for i, p in enumerate(pp.PARAMS) if p.joint not in _LOWER_JOINTS])


def _cols(prefixes: tuple[str, ...]) -> np.ndarray:
    return np.array([i for i, p in enumerate(pp.PARAMS) if p.name.startswith(prefixes)])


_ARM = ("clav_", "arm_", "elbow_")
_LEG = ("hip_", "knee_", "ankle_")
# Joint groups that are pulled toward neutral together.
GROUPS: dict[str, np.ndarray] = {
    "trunk": _cols(("pelvis_", "spine_", "chest_")),
    "head": _cols(("neck_", "head_")),
    "left_arm": _cols(tuple("L_" + n for n in _ARM)),
    "right_arm": _cols(tuple("R_" + n for n in _ARM)),
    "left_leg": _cols(tuple("L_" + n for n in _LEG)),
    "right_leg": _cols(tuple("R_" + n for n in _LEG)),
}


class RandomPoses:
    """Random in-limit poses (see module docstring).

    seed: picks everything; key_s: seconds from one key pose to the next;
    p_symmetric: chance that a key's arms (and, drawn apart, its legs) are
    left-right symmetric; reach: (lo, hi) range of each group's share of its
    random pose (the rest is neutral): 1 reaches every corner of the limits.
    """

    def __init__(self, seed: int, key_s: float = 0.8, p_symmetric: float = 0.25,
                 reach: tuple[float, float] = (0.2, 1.0)) -> None:
        if not key_s > 0:
            raise ValueError(f"key_s must be > 0, got {key_s}")
        self.seed = int(seed)
        self.key_s = float(key_s)
        self.p_symmetric = float(p_symmetric)
        self.reach = (float(reach[0]), float(reach[1]))
        self.heading_rad = float(np.random.default_rng([self.seed, _SALT]).uniform(-np.pi, np.pi))

    def key(self, k: int) -> np.ndarray:
        """(P,) key pose k (k >= 0), within the limits."""
        rng = np.random.default_rng([self.seed, _SALT, k])
        u = rng.uniform(pp.LO, pp.HI)
        p = pp.NEUTRAL.copy()
        for cols in GROUPS.values():
            a = rng.uniform(*self.reach)
            p[cols] += a * (u[cols] - pp.NEUTRAL[cols])
        for left, right in (("left_arm", "right_arm"), ("left_leg", "right_leg")):
            if rng.uniform() < self.p_symmetric:
                # Sided parameters mean the same anatomical motion on both sides.
                p[GROUPS[right]] = p[GROUPS[left]]
        return pp.clamp(p)

    def params(self, times_s: np.ndarray) -> np.ndarray:
        """(T, P) parameters at these times: key poses blended by a C2 ease."""
        x = np.maximum(np.asarray(times_s, np.float64).ravel(), 0.0) / self.key_s
        k = np.floor(x).astype(np.int64)
        w = smootherstep(x - k)[:, None]
        out = np.empty((x.shape[0], pp.NUM_PARAMS))
        keys: dict[int, np.ndarray] = {}
        for kk in np.unique(np.concatenate([k, k + 1])):
            keys[int(kk)] = self.key(int(kk))
        for kk in np.unique(k):
            sel = k == kk
            out[sel] = (1.0 - w[sel]) * keys[int(kk)] + w[sel] * keys[int(kk) + 1]
        return out

    def frames(self, times_s: np.ndarray) -> MotionFrames:
        t = np.asarray(times_s, np.float64).ravel()
        n = t.shape[0]
        local = pp.compose(self.params(t), np.full(n, self.heading_rad))
        return MotionFrames(t, local, np.zeros((n, 2)), np.zeros(n), True, None, None)


class UpperLowerMix:
    """The upper body of `upper` on the lower body of `lower` (two procedural
    motions; see module docstring)."""

    def __init__(self, upper: ProceduralMotion, lower: ProceduralMotion) -> None:
        self.upper = upper
        self.lower = lower

    def sample(self, times_s: np.ndarray) -> ProceduralSample:
        """Like ProceduralMotion.sample; `action` names both: "wave/walk"."""
        t = np.asarray(times_s, np.float64).ravel()
        a, b = self.upper.sample(t), self.lower.sample(t)
        params = b.params.copy()
        params[:, UPPER_PARAMS] = a.params[:, UPPER_PARAMS]
        local = pp.compose(params, b.heading_rad)
        # The planted-feet shift depends on the pelvis and legs only, so the
        # lower motion's own shift still holds its feet.
        fr = b.frames
        frames = MotionFrames(t, local, fr.root_xy_mm, fr.root_z_mm, True, fr.root_shift_leg, None)
        names = np.char.add(np.char.add(a.action.astype(str), "/"), b.action.astype(str))
        return ProceduralSample(frames, params, b.heading_rad, names)

    def frames(self, times_s: np.ndarray) -> MotionFrames:
        return self.sample(times_s).frames
