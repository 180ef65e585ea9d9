"""Anatomical pose parameters: a pose as a short vector of named joint angles.

Procedural motion is written, blended and limited in this space, then turned
into the skeleton's local joint rotations (:mod:`core.skeleton`: T-pose faces
-Y, left is +X, Z up; identity rest rotations, each local rotation applied in
the parent's frame).

Per joint kind:

- ball joints (hips/pelvis, spine, chest, neck, head, shoulders, hip joints):
  a swing, the rotation vector ``sum_i p_i * axis_i`` over two axes
  perpendicular to the rest bone, and a twist ``p_twist`` about the rest bone
  axis. Local rotation = exp(swing) * exp(twist) (twist first, in the bone's
  own frame). The root reverses the order: exp((heading + twist) Z) * exp(swing),
  so its lean is about the performer's own facing, whatever the heading.
- two-axis joints (clavicle, ankle): the rotation vector ``p_1 a_1 + p_2 a_2``.
- hinges (elbows, knees): one angle about a fixed axis.

Angles are radians; limits are anatomical (e.g. knee and elbow 0-150 degrees
of flexion, no hyperextension). Axes are written for the left side; the right
side's axes are the mirror image (reflection through the x = 0 plane, which
maps an axial vector (x, y, z) to (x, -y, -z)), so a positive angle means the
same anatomical motion on both sides. Sided names start with ``L_`` or ``R_``.

Joints not listed (hands, toes, head top: end joints whose rotation moves no
other joint) keep the identity local rotation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from core import skeleton as sk

_X, _Y, _Z = np.eye(3)

# (name, joint, role, axis for the left side, lo deg, hi deg).
# role: "swing" (a swing component), "twist" (about the rest bone axis), "hinge".
_MIDLINE = [
    ("pelvis_lean", "Hips", "swing", _X, -15, 75),      # trunk tips forward
    ("pelvis_side", "Hips", "swing", _Y, -20, 20),      # tips toward the performer's left
    ("pelvis_twist", "Hips", "twist", _Z, -40, 40),     # turns to the left
    ("spine_flex", "Spine", "swing", _X, -20, 45),
    ("spine_side", "Spine", "swing", _Y, -25, 25),
    ("spine_twist", "Spine", "twist", _Z, -25, 25),
    ("chest_flex", "Chest", "swing", _X, -15, 35),
    ("chest_side", "Chest", "swing", _Y, -20, 20),
    ("chest_twist", "Chest", "twist", _Z, -25, 25),
    ("neck_flex", "Neck", "swing", _X, -35, 45),
    ("neck_side", "Neck", "swing", _Y, -25, 25),
    ("neck_twist", "Neck", "twist", _Z, -40, 40),
    ("head_flex", "Head", "swing", _X, -30, 35),
    ("head_side", "Head", "swing", _Y, -20, 20),
    ("head_twist", "Head", "twist", _Z, -40, 40),
]
_SIDED = [
    ("clav_elev", "Shoulder", "swing", -_Y, -10, 35),   # shrug: clavicle tip up
    ("clav_prot", "Shoulder", "swing", -_Z, -20, 25),   # clavicle tip forward
    ("arm_fwd", "Arm", "swing", -_Z, -75, 135),         # from the T-pose toward the front
    ("arm_down", "Arm", "swing", _Y, -110, 95),         # from the T-pose down to the side
    ("arm_twist", "Arm", "twist", -_X, -90, 90),        # external rotation of the humerus
    ("elbow_flex", "ForeArm", "hinge", -_Z, 0, 150),
    ("hip_flex", "UpLeg", "swing", -_X, -25, 125),      # thigh forward
    ("hip_abd", "UpLeg", "swing", -_Y, -25, 50),        # thigh outward
    ("hip_twist", "UpLeg", "twist", _Z, -35, 45),       # external rotation: toes out
    ("knee_flex", "Leg", "hinge", _X, 0, 150),
    ("ankle_dorsi", "Foot", "swing", -_X, -45, 25),     # toes up (negative: pointed)
    ("ankle_inv", "Foot", "swing", _Y, -15, 20),        # sole turned inward
]
# Largest total swing of the ball joints whose box limits alone would allow
# unreachable corners (arm straight through the body, leg behind the other).
_MAX_SWING_DEG = {"Arm": 150.0, "UpLeg": 125.0}


def _mirror(axis: np.ndarray) -> np.ndarray:
    return axis * np.array([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class Param:
    name: str
    joint: int
    role: str
    axis: np.ndarray
    lo: float
    hi: float


def _build() -> tuple[Param, ...]:
    out = [Param(n, sk.JOINT_INDEX[j], r, a, np.radians(lo), np.radians(hi))
           for n, j, r, a, lo, hi in _MIDLINE]
    for side, prefix in (("L", "Left"), ("R", "Right")):
        for n, j, r, a, lo, hi in _SIDED:
            axis = a if side == "L" else _mirror(a)
            out.append(Param(f"{side}_{n}", sk.JOINT_INDEX[prefix + j], r, axis,
                             np.radians(lo), np.radians(hi)))
    return tuple(out)


PARAMS: tuple[Param, ...] = _build()
NUM_PARAMS = len(PARAMS)
INDEX: dict[str, int] = {p.name: i for i, p in enumerate(PARAMS)}
LO = np.array([p.lo for p in PARAMS])
HI = np.array([p.hi for p in PARAMS])

# Linear maps from a parameter vector to each joint's swing and twist rotation
# vectors, so a whole (T, P) array becomes rotations in two matrix products.
_SWING = np.zeros((NUM_PARAMS, sk.NUM_JOINTS, 3))
_TWIST = np.zeros((NUM_PARAMS, sk.NUM_JOINTS, 3))
_TWIST_AXIS = np.zeros((sk.NUM_JOINTS, 3))
_HAS_TWIST = np.zeros(sk.NUM_JOINTS, bool)
for _i, _p in enumerate(PARAMS):
    (_TWIST if _p.role == "twist" else _SWING)[_i, _p.joint] = _p.axis
    if _p.role == "twist":
        _TWIST_AXIS[_p.joint] = _p.axis
        _HAS_TWIST[_p.joint] = True
_SWING = _SWING.reshape(NUM_PARAMS, -1)
_TWIST = _TWIST.reshape(NUM_PARAMS, -1)
_SWING_CAPS = [([i for i, p in enumerate(PARAMS) if p.joint == sk.JOINT_INDEX[side + j]
                 and p.role == "swing"], np.radians(cap))
               for j, cap in _MAX_SWING_DEG.items() for side in ("Left", "Right")]


def index(name: str, side: str | None = None) -> int:
    """Column of a parameter: index("knee_flex", "L") or index("spine_flex")."""
    return INDEX[f"{side}_{name}" if side else name]


def neutral() -> np.ndarray:
    """(P,) a relaxed standing pose: arms hanging, elbows and knees a little bent."""
    p = np.zeros(NUM_PARAMS)
    for side in ("L", "R"):
        for name, deg in (("arm_down", 78.0), ("arm_fwd", 6.0), ("elbow_flex", 12.0),
                          ("hip_flex", 2.0), ("knee_flex", 4.0), ("ankle_dorsi", 2.0)):
            p[index(name, side)] = np.radians(deg)
    return p


NEUTRAL = neutral()
NEUTRAL.setflags(write=False)


def clamp(params: np.ndarray) -> np.ndarray:
    """Clip (..., P) parameters to their limits (a convex set, so blends of
    clamped poses stay inside)."""
    out = np.clip(params, LO, HI)
    for cols, cap in _SWING_CAPS:
        mag = np.linalg.norm(out[..., cols], axis=-1, keepdims=True)
        out[..., cols] *= np.minimum(1.0, cap / np.maximum(mag, 1e-12))
    return out


def compose(params: np.ndarray, heading_rad: np.ndarray | float = 0.0) -> Rotation:
    """(T, P) parameters and (T,) root headings (rad, about +Z; 0 faces -Y)
    -> T*J local rotations, frame-major."""
    params = np.atleast_2d(np.asarray(params, np.float64))
    n = params.shape[0]
    swing = (params @ _SWING).reshape(n, sk.NUM_JOINTS, 3)
    twist = (params @ _TWIST).reshape(n, sk.NUM_JOINTS, 3)
    twist[:, sk.ROOT, 2] += np.broadcast_to(np.asarray(heading_rad, np.float64), (n,))
    outer, inner = swing, twist
    outer[:, sk.ROOT], inner[:, sk.ROOT] = twist[:, sk.ROOT].copy(), swing[:, sk.ROOT].copy()
    return Rotation.from_rotvec(outer.reshape(-1, 3)) * Rotation.from_rotvec(inner.reshape(-1, 3))


def _swing_twist(rot: Rotation, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rot = exp(swing) * exp(twist * axis) with swing perpendicular to axis
    -> (swing rotation vectors (N, 3), twist angles (N,))."""
    b = rot.apply(axis)
    c = np.cross(axis, b)
    s = np.linalg.norm(c, axis=-1, keepdims=True)
    angle = np.arctan2(s, (b @ axis)[:, None])
    swing_rv = np.where(s > 1e-12, c / np.maximum(s, 1e-12) * angle, 0.0)
    twist = (Rotation.from_rotvec(swing_rv).inv() * rot).as_rotvec() @ axis
    return swing_rv, twist


def decompose(local: Rotation, heading_rad: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`compose`: T*J local rotations -> ((T, P) parameters,
    (T, J) residual angle in rad of what the parameters cannot express, e.g. a
    knee turning about anything but its hinge). Root parameters need the
    headings; without them they are NaN."""
    J = sk.NUM_JOINTS
    T = len(local) // J
    out = np.full((T, NUM_PARAMS), np.nan)
    residual = np.zeros((T, J))
    for j in range(J):
        cols = [i for i, p in enumerate(PARAMS) if p.joint == j]
        rot = local[j::J]
        if not cols:
            residual[:, j] = rot.magnitude()
            continue
        if j == sk.ROOT:
            if heading_rad is None:
                continue
            head = Rotation.from_rotvec(np.outer(np.broadcast_to(heading_rad, (T,)), _Z))
            rot = (head.inv() * rot).inv()   # = exp(-swing) * exp(-twist Z): swing-outer form
        if _HAS_TWIST[j]:
            swing_rv, tw = _swing_twist(rot, _TWIST_AXIS[j])
        else:
            swing_rv, tw = rot.as_rotvec(), np.zeros(T)
        sign = -1.0 if j == sk.ROOT else 1.0
        for i in cols:
            p = PARAMS[i]
            out[:, i] = sign * (tw if p.role == "twist" else swing_rv @ p.axis)
        rebuilt = out[:, cols] * sign
        expressed = np.zeros((T, 3))
        for k, i in enumerate(cols):
            if PARAMS[i].role != "twist":
                expressed += np.outer(rebuilt[:, k], PARAMS[i].axis)
        residual[:, j] = np.linalg.norm(swing_rv - expressed, axis=-1)
    return out, residual
