"""Planted feet for the simulated performer: `Performer(planted=True)`.

The motions play joint angles over a root path of their own, and a foot on
the floor slides: the procedural walk's stance foot at about 0.6 m/s, a
standing performer's feet some 40 mm over 6 s as the idle sway moves them
apart, recorded clips where they are kept on stage by taking their travel
off (docs/DECISIONS.md, Motion). A person's planted foot does not slide, and
foot skate cannot be judged against a truth whose feet do. With `planted`:

1. **Contacts.** A foot is on the floor while its lower point (heel or
   ball) is within CONTACT_MM of the floor and moves slower than
   SWING_MM_S (a swinging foot passes close to the floor at 3-6 m/s; a
   sliding stance foot moves at 0.2-1.7 m/s); it leaves above
   LEAVE_MM or 2 x SWING_MM_S.
2. **The path.** The body is carried by a foot on the floor (the lower
   one; the other takes over when the carrier rises CARRY_SWITCH_MM above
   it): while it is, the body moves so that the foot's lower point stays
   where it is. In the air, or with no foot down, the body
   keeps the motion's own moves.
3. **The other foot.** A foot that lands while the body is carried by the
   other is held where its lower point landed by bending its leg (two-bone
   inverse kinematics of thigh and shin, in the knee's own plane; the foot
   keeps its orientation; reaching past SOFT_REACH of the leg's length it
   falls short, softly, so the knee never snaps straight). When it lifts,
   the correction fades over RELEASE_S (smoothstep). A turn on the spot
   drags the feet round further than a leg reaches: there they still slide.

Both are worked out on a grid of PLANT_HZ from studio time 0 (the path
depends on everything before) and interpolated. The joint angles change only
in the legs of feet being held, by a few degrees; the path may take the
performer further than the motion's (the walk's strides are longer than its
path), so long walks can leave the stage. For judging foot skate
(`StudioConfig.planted_feet`, `Benchmark.planted_feet`), not for training.
"""

from __future__ import annotations

import numpy as np

from core import skeleton as sk
from core.kinematics import Poses

PLANT_HZ = 120.0
CONTACT_MM = 20.0
LEAVE_MM = 40.0
SWING_MM_S = 1500.0
RELEASE_S = 0.2
CARRY_SWITCH_MM = 10.0
SOFT_REACH = 0.97

_LEGS = tuple((sk.JOINT_INDEX[s + "UpLeg"], sk.JOINT_INDEX[s + "Leg"], sk.JOINT_INDEX[s + "Foot"],
               sk.JOINT_INDEX[s + "ToeBase"]) for s in ("Left", "Right"))


def contacts(times_s: np.ndarray, points_mm: np.ndarray) -> np.ndarray:
    """(N, 2) bool: each foot on the floor, from its (N, 2, 2, 3) heel and
    ball positions on an even grid (module notes, 1)."""
    n = len(times_s)
    low = points_mm[..., 2].min(axis=2)                                        # (N, 2)
    floor = float(np.percentile(low.min(axis=1), 2)) if n else 0.0
    height = low - floor
    which = points_mm[..., 2].argmin(axis=2)                                   # the lower point
    speed = np.zeros((n, 2))
    if n > 2:  # each point's own speed (the lower one changes from heel to ball), then the lower point's
        dt = float(times_s[1] - times_s[0])
        each = np.zeros((n, 2, 2))
        each[1:-1] = np.linalg.norm(points_mm[2:, ..., :2] - points_mm[:-2, ..., :2], axis=-1) / (2 * dt)
        each[0], each[-1] = each[1], each[-2]
        speed = np.take_along_axis(each, which[..., None], axis=2)[..., 0]
    out = np.zeros((n, 2), bool)
    on = np.zeros(2, bool)
    for i in range(n):
        enter = (height[i] < CONTACT_MM) & (speed[i] < SWING_MM_S)
        stay = (height[i] < LEAVE_MM) & (speed[i] < 2 * SWING_MM_S)
        on = np.where(on, stay, enter)
        out[i] = on
    return out


def _fade(since_s: float) -> float:
    """How much of a lifted foot's correction is left `since_s` after the lift (smoothstep over RELEASE_S)."""
    x = min(max(since_s / RELEASE_S, 0.0), 1.0)
    return 1.0 - x * x * (3.0 - 2.0 * x)


def plan(times_s: np.ndarray, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """On an even grid of times (from studio time 0), from the motion's own
    heel and ball positions (N, 2, 2, 3): the body's shift off the motion's
    path (N, 2) and each foot's correction (N, 2, 2), how far its leg must
    move the ankle (module notes, 2 and 3)."""
    n = len(times_s)
    on = contacts(times_s, points_mm)
    height = points_mm[..., 2].min(axis=2)                                     # (N, 2) each foot's lower point
    which = points_mm[..., 2].argmin(axis=2)
    low_xy = np.take_along_axis(points_mm[..., :2], which[..., None, None], axis=2)[:, :, 0]   # (N, 2, 2)
    shift = np.zeros((n, 2))
    fix = np.zeros((n, 2, 2))
    carrier = -1
    anchor = np.full((2, 2), np.nan)   # where each held foot's lower point stays (shifted world)
    last_fix = np.zeros((2, 2))
    released = np.full(2, -np.inf)
    for i in range(n):
        if i:
            shift[i] = shift[i - 1]
            if carrier >= 0 and on[i, carrier]:
                # The carrier's lower point (the same point over the step) stays: the body moves instead.
                p = which[i, carrier]
                shift[i] -= points_mm[i, carrier, p, :2] - points_mm[i - 1, carrier, p, :2]
        if carrier < 0 or not on[i, carrier]:
            down = np.flatnonzero(on[i])
            carrier = int(down[np.argmin(height[i, down])]) if len(down) else -1
        elif on[i, 1 - carrier] and height[i, carrier] - height[i, 1 - carrier] > CARRY_SWITCH_MM:
            carrier = 1 - carrier  # the carrier lifts while the other is down: the other carries on
        for f in range(2):
            here = low_xy[i, f] + shift[i]
            if on[i, f]:
                if np.isnan(anchor[f, 0]) or (i and which[i, f] != which[i - 1, f]):
                    # A new contact, or the foot rolled onto its other point: hold it where it is now,
                    # with the correction it has (fading after a lift), so it never jumps.
                    fade = _fade(times_s[i] - released[f]) if np.isnan(anchor[f, 0]) else 1.0
                    anchor[f] = here + last_fix[f] * fade
                fix[i, f] = anchor[f] - here
                last_fix[f] = fix[i, f]
                released[f] = times_s[i]
            else:
                anchor[f] = np.nan
                fix[i, f] = last_fix[f] * _fade(times_s[i] - released[f])
    return shift, fix


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, 3, 3) the smallest rotations taking directions a onto b (T, 3)."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    k = np.zeros(a.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    k[..., 1, 0], k[..., 2, 0], k[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    scale = 1.0 / np.maximum(1.0 + c, 1e-9)
    return np.eye(3) + k + (k @ k) * scale[..., None, None]


def _square_to(v: np.ndarray, u: np.ndarray) -> np.ndarray:
    """v less its part along the unit vectors u (both (T, 3))."""
    return v - np.sum(v * u, axis=-1, keepdims=True) * u


def hold_feet(poses: Poses, fix: np.ndarray) -> Poses:
    """The poses with each leg bent so its ankle moves by fix (T, 2, 2) on
    the floor plane: two-bone inverse kinematics in the knee's own plane;
    the foot keeps its orientation."""
    pos = poses.positions_mm.copy()
    rot = poses.rotations.copy()
    for f, (hip, knee, ankle, ball) in enumerate(_LEGS):
        move = np.linalg.norm(fix[:, f], axis=-1) > 1e-6
        if not move.any():
            continue
        H, K0, A0 = pos[move, hip], pos[move, knee], pos[move, ankle]
        A1 = A0.copy()
        A1[:, :2] += fix[move, f]
        a = np.linalg.norm(K0 - H, axis=-1)
        b = np.linalg.norm(A0 - K0, axis=-1)
        d_vec = A1 - H
        # Soft reach: reaching further than the motion's own leg and past SOFT_REACH of its length, the
        # ankle falls short of its target, more the further it is, so the knee never snaps straight
        # (near straight, a millimetre of reach moves the knee by centimetres).
        full = a + b
        d = np.linalg.norm(d_vec, axis=-1)
        start = np.maximum(SOFT_REACH * full, np.minimum(np.linalg.norm(A0 - H, axis=-1), full - 1e-3))
        room = np.maximum(full - start, 1e-3)
        soft = start + room * (1.0 - np.exp(-np.maximum(d - start, 0.0) / room))
        d = np.clip(np.where(d > start, soft, d), np.abs(a - b) + 1e-3, full - 1e-3)
        u = d_vec / np.linalg.norm(d_vec, axis=-1, keepdims=True)
        # Which way the knee goes: the motion's own leg turned onto the new hip-ankle line (so its knee
        # keeps its side of the line however far the ankle moves), plus the thigh's forward (-Y in its
        # frame): a leg the motion holds straight, but which must bend to hold its foot, bends forward.
        turned = np.einsum("tij,tj->ti", _rotation_between(A0 - H, d_vec), K0 - H)
        forward = np.einsum("tij,j->ti", rot[move, hip], np.array([0.0, -1.0, 0.0]))
        side = _square_to(turned, u) + 0.25 * a[:, None] * _square_to(forward, u)
        side /= np.maximum(np.linalg.norm(side, axis=-1, keepdims=True), 1e-12)
        cos_h = np.clip((a ** 2 + d ** 2 - b ** 2) / (2 * a * d), -1.0, 1.0)
        K1 = H + a[:, None] * (cos_h[:, None] * u + np.sqrt(1.0 - cos_h ** 2)[:, None] * side)
        A1 = H + d[:, None] * u
        rot[move, hip] = _rotation_between(K0 - H, K1 - H) @ rot[move, hip]
        rot[move, knee] = _rotation_between(A0 - K0, A1 - K1) @ rot[move, knee]
        pos[move, ball] += A1 - A0
        pos[move, knee], pos[move, ankle] = K1, A1
    return Poses(pos, rot)
