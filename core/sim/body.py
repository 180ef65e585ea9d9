"""The simulated performer's body: capsules and ellipsoids posed on the skeleton.

Limbs, feet, neck and the clavicle region are capsules (a segment and a
radius); pelvis, abdomen, chest, head and hands are ellipsoids, so the torso
is wider than it is deep. Every primitive is rigidly attached to one joint:
its shape is written once in that joint's bone frame (which, with identity
rest rotations, is the T-pose world frame: facing -Y, left +X, Z up) and is
carried by the joint's global rotation and position.

Units: millimetres, world frame. Dimensions come from
:attr:`core.sim.subject.Subject.radii_mm` (girth) and the subject's rest
offsets (lengths), so proportions vary with the subject.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core import skeleton as sk
from core.sim.subject import Subject

J = sk.JOINT_INDEX

CAPSULE_NAMES: tuple[str, ...] = (
    "LeftUpperArm", "RightUpperArm", "LeftForeArm", "RightForeArm",
    "LeftThigh", "RightThigh", "LeftShank", "RightShank",
    "LeftFoot", "RightFoot", "LeftClavicle", "RightClavicle", "Neck",
)
ELLIPSOID_NAMES: tuple[str, ...] = ("Pelvis", "Abdomen", "Chest", "Head", "LeftHand", "RightHand")


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, np.float64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class Body:
    """Posed body primitives, world mm. Arrays may carry leading batch dims (...).

    capsule_a, capsule_b: (..., P, 3) segment end points; capsule_r: (..., P) radii.
    ellipsoid_centre: (..., E, 3); ellipsoid_rotation: (..., E, 3, 3) ellipsoid
    frame -> world (columns are the principal axes); ellipsoid_axes: (..., E, 3)
    semi-axis lengths along those columns.
    """

    capsule_a: np.ndarray
    capsule_b: np.ndarray
    capsule_r: np.ndarray
    ellipsoid_centre: np.ndarray
    ellipsoid_rotation: np.ndarray
    ellipsoid_axes: np.ndarray

    def __post_init__(self) -> None:
        for name in ("capsule_a", "capsule_b", "capsule_r", "ellipsoid_centre",
                     "ellipsoid_rotation", "ellipsoid_axes"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.capsule_r.shape[:-1]

    def frame(self, i: int) -> "Body":
        """One body out of a batch of one leading dim."""
        return Body(*(getattr(self, f)[i] for f in _FIELDS))

    @staticmethod
    def stack(bodies: "list[Body] | tuple[Body, ...]") -> "Body":
        """Unbatched bodies (possibly of different subjects) -> one batch (F, ...)."""
        return Body(*(np.stack([getattr(b, f) for b in bodies]) for f in _FIELDS))

    def _single(self) -> None:
        if self.batch_shape:
            raise ValueError(f"expected one body, got a batch of shape {self.batch_shape}")

    # -- geometry -------------------------------------------------------------
    def ellipsoid_local(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world -> (N, E, 3) coordinates in which each ellipsoid is the unit ball."""
        rel = points[:, None, :] - self.ellipsoid_centre[None]
        return np.einsum("eji,nej->nei", self.ellipsoid_rotation, rel) / self.ellipsoid_axes

    def capsule_distance(self, points: np.ndarray) -> np.ndarray:
        """(N, P) distance (mm) from each point to each capsule's axis segment."""
        a, u = self.capsule_a, self.capsule_b - self.capsule_a
        rel = points[:, None, :] - a[None]
        t = np.clip((rel * u).sum(-1) / np.maximum((u * u).sum(-1), 1e-12), 0.0, 1.0)
        return np.linalg.norm(rel - t[..., None] * u, axis=-1)

    def contains(self, points: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """Exact inside test: (N, 3) world mm -> (N,) bool (surface counts as inside)."""
        self._single()
        points = np.asarray(points, np.float64).reshape(-1, 3)
        out = np.zeros(len(points), bool)
        for s in range(0, len(points), chunk):  # bounds the (N, P, 3) temporaries
            p = points[s : s + chunk]
            cap = (self.capsule_distance(p) <= self.capsule_r).any(1)
            ell = ((self.ellipsoid_local(p) ** 2).sum(-1) <= 1.0).any(1)
            out[s : s + chunk] = cap | ell
        return out

    def sample_interior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n points (n, 3) inside the body, world mm.

        Each point is drawn uniformly inside one primitive chosen with
        probability proportional to its volume, so overlaps are a little denser
        than elsewhere: good enough to probe renderers, not a uniform measure.
        """
        self._single()
        r, u = self.capsule_r, self.capsule_b - self.capsule_a
        length = np.linalg.norm(u, axis=1)
        vol = np.concatenate([np.pi * r**2 * length + 4 / 3 * np.pi * r**3,
                              4 / 3 * np.pi * self.ellipsoid_axes.prod(1)])
        which = rng.choice(len(vol), size=n, p=vol / vol.sum())
        out = np.empty((n, 3))
        P = len(r)
        # Capsules: rejection from the box aligned with the segment (accepts >= 52 %).
        centres, half = self.oriented_boxes()
        for i in np.unique(which[which < P]):
            idx = np.flatnonzero(which == i)
            pts: list[np.ndarray] = []
            while sum(len(p) for p in pts) < len(idx):
                cand = centres[i] + rng.uniform(-1, 1, (2 * len(idx) + 16, 3)) @ half[i].T
                d = self.capsule_body(i).capsule_distance(cand)[:, 0]
                pts.append(cand[d < r[i]])
            out[idx] = np.concatenate(pts)[: len(idx)]
        # Ellipsoids: uniform in the unit ball, then scaled and rotated.
        for e in np.unique(which[which >= P]) - P:
            idx = np.flatnonzero(which == e + P)
            v = rng.normal(size=(len(idx), 3))
            v *= (rng.uniform(size=(len(idx), 1)) ** (1 / 3)) / np.linalg.norm(v, axis=1, keepdims=True)
            out[idx] = self.ellipsoid_centre[e] + (v * self.ellipsoid_axes[e]) @ self.ellipsoid_rotation[e].T
        return out

    def capsule_body(self, i: int) -> "Body":
        """A body made of capsule i alone (for per-primitive geometry)."""
        return Body(self.capsule_a[i : i + 1], self.capsule_b[i : i + 1], self.capsule_r[i : i + 1],
                    np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros((0, 3)))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounding box (lo, hi), each (..., 3) mm; exact for every primitive."""
        r = self.capsule_r[..., None]
        lo = np.minimum(self.capsule_a, self.capsule_b) - r
        hi = np.maximum(self.capsule_a, self.capsule_b) + r
        # An ellipsoid's half-extent along world axis i is |row i of R diag(s)|.
        half = np.linalg.norm(self.ellipsoid_rotation * self.ellipsoid_axes[..., None, :], axis=-1)
        lo = np.concatenate([lo, self.ellipsoid_centre - half], -2).min(-2)
        hi = np.concatenate([hi, self.ellipsoid_centre + half], -2).max(-2)
        return lo, hi

    def oriented_boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """A box around every primitive (capsules first): centres (..., P+E, 3) and
        half-axes (..., P+E, 3, 3), columns = box axes scaled by the half-extents.
        The primitive lies inside; renderers cull pixels with them."""
        a, b, r = self.capsule_a, self.capsule_b, self.capsule_r
        u = b - a
        length = np.linalg.norm(u, axis=-1, keepdims=True)
        e3 = u / np.maximum(length, 1e-9)
        # Any unit vector not parallel to e3 gives a perpendicular pair.
        helper = np.where(np.abs(e3[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
        e1 = np.cross(e3, helper)
        e1 /= np.linalg.norm(e1, axis=-1, keepdims=True)
        e2 = np.cross(e3, e1)
        rr = r[..., None]
        cap_axes = np.stack([e1 * rr, e2 * rr, e3 * (length / 2 + rr)], -1)
        ell_axes = self.ellipsoid_rotation * self.ellipsoid_axes[..., None, :]
        centres = np.concatenate([(a + b) / 2, self.ellipsoid_centre], -2)
        return centres, np.concatenate([cap_axes, ell_axes], -3)


_FIELDS = ("capsule_a", "capsule_b", "capsule_r", "ellipsoid_centre", "ellipsoid_rotation", "ellipsoid_axes")


@dataclass(frozen=True)
class BodyShape:
    """A subject's primitives in their joints' bone frames (the rest pose),
    ready to be posed many times. Points are relative to the driving joint, mm."""

    capsule_joint: np.ndarray   # (P,) int
    capsule_a: np.ndarray       # (P, 3)
    capsule_b: np.ndarray       # (P, 3)
    capsule_r: np.ndarray       # (P,)
    ellipsoid_joint: np.ndarray  # (E,) int
    ellipsoid_centre: np.ndarray  # (E, 3)
    ellipsoid_frame: np.ndarray   # (E, 3, 3) ellipsoid -> bone frame
    ellipsoid_axes: np.ndarray    # (E, 3)

    @classmethod
    def from_subject(cls, subject: Subject) -> "BodyShape":
        off, rad = subject.offsets_mm, subject.radii_mm
        rest = subject.rest_positions()
        zero = np.zeros(3)
        caps: list[tuple[int, np.ndarray, np.ndarray, float]] = []
        for side in ("Left", "Right"):
            caps.append((J[side + "Arm"], zero, off[J[side + "ForeArm"]], rad["upper_arm"]))
        for side in ("Left", "Right"):
            caps.append((J[side + "ForeArm"], zero, off[J[side + "Hand"]], rad["forearm"]))
        for side in ("Left", "Right"):
            caps.append((J[side + "UpLeg"], zero, off[J[side + "Leg"]], rad["thigh"]))
        for side in ("Left", "Right"):
            caps.append((J[side + "Leg"], zero, off[J[side + "Foot"]], rad["shank"]))
        for side in ("Left", "Right"):
            caps.append(cls._foot(off, rest, rad["foot"], side))
        for side in ("Left", "Right"):
            # The clavicle and deltoid mass: fills the gap between chest and arm.
            caps.append((J[side + "Shoulder"], zero, off[J[side + "Arm"]], rad["upper_arm"]))
        caps.append((J["Neck"], zero, off[J["Head"]], rad["neck"]))

        spine, chest, neck = (off[J[n]] for n in ("Spine", "Chest", "Neck"))
        ls, lc, ln = (float(np.linalg.norm(v)) for v in (spine, chest, neck))
        eye = np.eye(3)
        ells: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = [
            # Pelvis: iliac crest to below the hip joints, centred on the Hips. The
            # three trunk ellipsoids overlap deeply, so the waist does not pinch.
            (J["Hips"], zero, eye, np.array([rad["pelvis_x"], rad["pelvis_y"], 1.5 * ls])),
            # Abdomen: a little narrower than the chest, rides the lower spine.
            (J["Spine"], 0.3 * chest, eye,
             np.array([0.9 * rad["torso_x"], 0.92 * rad["torso_y"], 0.7 * lc])),
            # Chest: up into the neck base, so its narrow top reads as the trapezius slope.
            (J["Chest"], 0.25 * neck, eye,
             np.array([rad["torso_x"], rad["torso_y"], 0.5 * lc + 0.45 * ln])),
        ]
        top = off[J["HeadTop"]]
        head_axes = np.array([rad["head_x"], rad["head_y"], rad["head_z"]])
        # The skull's top touches HeadTop; the face sits a little forward (-Y).
        head_centre = top * (1 - rad["head_z"] / np.linalg.norm(top)) + [0.0, -0.1 * rad["head_y"], 0.0]
        ells.append((J["Head"], head_centre, eye, head_axes))
        for side in ("Left", "Right"):
            ells.append(cls._hand(off[J[side + "Hand"]], rad["hand"], J[side + "Hand"]))
        return cls(
            np.array([c[0] for c in caps]), np.array([c[1] for c in caps], float),
            np.array([c[2] for c in caps], float), np.array([c[3] for c in caps], float),
            np.array([e[0] for e in ells]), np.array([e[1] for e in ells], float),
            np.array([e[2] for e in ells], float), np.array([e[3] for e in ells], float),
        )

    @staticmethod
    def _foot(off, rest, r, side):
        """Heel-to-toe capsule in the ankle's frame; its underside touches the
        floor when the subject stands in the rest pose."""
        ankle = J[side + "Foot"]
        toe = off[J[side + "ToeBase"]]
        ball = abs(toe[1])  # ankle to ball of the foot, along the walking direction
        z = r - rest[ankle, 2]
        heel = np.array([0.0, 0.3 * ball - r, z])
        tip = np.array([toe[0], toe[1] - 0.35 * ball + r, z])
        return ankle, heel, tip, r

    @staticmethod
    def _hand(wrist_offset, r, joint):
        """Hand (palm and fingers) as a flat ellipsoid beyond the wrist, palm
        down in the T-pose: long along the forearm, wide along Y, thin along Z."""
        along = wrist_offset / np.linalg.norm(wrist_offset)
        side = np.array([0.0, 1.0, 0.0])
        frame = np.stack([along, side, np.cross(along, side)], 1)  # right-handed
        axes = np.array([3.0 * r, 1.4 * r, 0.7 * r])
        return joint, along * 0.9 * axes[0], frame, axes

    def pose(self, positions_mm: np.ndarray, rotations: np.ndarray) -> Body:
        """positions_mm (..., J, 3) world, rotations (..., J, 3, 3) global bone -> world."""
        pos = np.asarray(positions_mm, np.float64)
        rot = np.asarray(rotations, np.float64)
        cj, ej = self.capsule_joint, self.ellipsoid_joint
        rc, re = rot[..., cj, :, :], rot[..., ej, :, :]
        batch = pos.shape[:-2]
        return Body(
            pos[..., cj, :] + np.einsum("...pij,pj->...pi", rc, self.capsule_a),
            pos[..., cj, :] + np.einsum("...pij,pj->...pi", rc, self.capsule_b),
            np.broadcast_to(self.capsule_r, batch + self.capsule_r.shape),
            pos[..., ej, :] + np.einsum("...eij,ej->...ei", re, self.ellipsoid_centre),
            np.einsum("...eij,ejk->...eik", re, self.ellipsoid_frame),
            np.broadcast_to(self.ellipsoid_axes, batch + self.ellipsoid_axes.shape),
        )


def body_primitives(subject: Subject, positions_mm: np.ndarray, rotations: np.ndarray) -> Body:
    """The subject's body in a pose: positions_mm (J, 3) or (T, J, 3) world mm,
    rotations (J, 3, 3) or (T, J, 3, 3) global (bone frame -> world), as in
    :class:`core.kinematics.Poses`. Batched input gives a batched Body."""
    return BodyShape.from_subject(subject).pose(positions_mm, rotations)
