"""Simulated performers: body proportions and girth, drawn by seed.

Segment lengths start from the skeleton's anthropometric T-pose template
(:data:`core.skeleton.REST_OFFSET_FRACTIONS`, fractions of stature) and vary
per subject: stature 1.5-2.0 m, leg/arm/torso ratios, shoulder and hip
width, and girth. All lengths in mm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core import skeleton as sk
from core.sim.splits import TEST_SUBJECT_SEEDS, train_seed


@dataclass(frozen=True)
class Subject:
    """One performer's body.

    offsets_mm: (J, 3) rest offset of each joint from its parent (root: the
    Hips' height above the floor, standing). radii_mm: thickness of each body
    part, keyed by part name (see :mod:`core.sim.body`).
    """

    seed: int
    height_mm: float
    offsets_mm: np.ndarray
    radii_mm: dict[str, float] = field(default_factory=dict)

    def rest_positions(self) -> np.ndarray:
        """(J, 3) joint positions in the T-pose, feet on the floor, mm."""
        pos = np.zeros((sk.NUM_JOINTS, 3))
        for j, p in enumerate(sk.PARENTS):
            pos[j] = self.offsets_mm[j] + (pos[p] if p >= 0 else 0.0)
        return pos

    def bone_lengths(self) -> np.ndarray:
        """(J,) length of the bone from each joint's parent to it; 0 for the root."""
        lengths = np.linalg.norm(self.offsets_mm, axis=1)
        lengths[sk.ROOT] = 0.0
        return lengths

    @property
    def leg_length_mm(self) -> float:
        legs = [sk.JOINT_INDEX[n] for n in ("LeftLeg", "LeftFoot")]
        return float(np.linalg.norm(self.offsets_mm[legs], axis=1).sum())

    @classmethod
    def from_seed(cls, seed: int) -> "Subject":
        rng = np.random.default_rng([seed, 0x5B1EC7])
        height = rng.uniform(1500.0, 2000.0)
        leg = rng.uniform(0.94, 1.06)
        arm = rng.uniform(0.94, 1.06)
        shoulder = rng.uniform(0.9, 1.12)
        hip = rng.uniform(0.9, 1.12)
        neck = rng.uniform(0.85, 1.15)
        foot = rng.uniform(0.92, 1.08)
        girth = rng.uniform(0.8, 1.3)
        frac = {k: np.array(v, float) for k, v in sk.REST_OFFSET_FRACTIONS.items()}
        for name in ("LeftLeg", "LeftFoot"):
            frac[name] *= leg
        for name in ("LeftForeArm", "LeftHand"):
            frac[name] *= arm
        frac["LeftArm"][0] *= shoulder
        frac["LeftUpLeg"][0] *= hip
        frac["LeftToeBase"] *= foot
        frac["Neck"] *= neck
        # Standing: the Hips sit above the ankles by the leg chain, the ankle
        # 0.039 of stature above the floor; the spine takes up the rest so the
        # head top is at `height`.
        ankle_height = 0.039 * foot
        frac["Hips"][2] = -(frac["LeftUpLeg"][2] + frac["LeftLeg"][2] + frac["LeftFoot"][2]) + ankle_height
        top = sum(frac[n][2] for n in ("Hips", "Spine", "Chest", "Neck", "Head", "HeadTop"))
        frac["Spine"][2] += 1.0 - top
        offsets = np.zeros((sk.NUM_JOINTS, 3))
        for name, f in frac.items():
            offsets[sk.JOINT_INDEX[name]] = f * height
            if name.startswith("Left"):
                mirrored = f * height * np.array([-1.0, 1.0, 1.0])
                offsets[sk.JOINT_INDEX["Right" + name[4:]]] = mirrored
        g = girth * height
        jitter = lambda: rng.uniform(0.92, 1.08)  # noqa: E731  per-part variation
        radii = {
            "thigh": 0.046 * g * jitter(),
            "shank": 0.031 * g * jitter(),
            "upper_arm": 0.026 * g * jitter(),
            "forearm": 0.021 * g * jitter(),
            "neck": 0.03 * g * jitter(),
            "foot": 0.024 * g ** 0.5 * height ** 0.5 * jitter(),
            "hand": 0.018 * g ** 0.5 * height ** 0.5,
            "torso_x": 0.095 * g * jitter(),
            "torso_y": 0.062 * g * jitter(),
            "pelvis_x": 0.09 * g * jitter(),
            "pelvis_y": 0.06 * g * jitter(),
            "head_x": 0.052 * height,
            "head_y": 0.06 * height,
            "head_z": 0.066 * height,
        }
        return cls(int(seed), float(height), offsets, radii)


def held_out_subjects() -> tuple[Subject, ...]:
    """The fixed held-out subjects; never used for training."""
    return tuple(Subject.from_seed(s) for s in TEST_SUBJECT_SEEDS)


def training_subject(index: int) -> Subject:
    return Subject.from_seed(train_seed(index))
