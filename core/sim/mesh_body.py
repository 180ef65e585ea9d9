"""The skinned mesh body: posing by linear blend skinning, and loose clothing shells.

A :class:`core.sim.anny_body.MeshSubject` holds the rest mesh (FuseCap's
T-pose, world mm) and per-vertex weights onto the 22 joints. Every joint's
bone frame is the T-pose world frame at rest, so a pose (positions (J, 3)
mm, global rotations (J, 3, 3) as in :class:`core.kinematics.Poses`) moves a
vertex v to sum_j w_j (R_j (v - rest_j) + p_j): one (V, 22) x (22, 12)
product and a batched 3x4 apply, well under a millisecond for the 1229-vertex
body.

Clothing (real silhouettes are clothed): some seeds wear loose garments,
drawn by :func:`draw_clothing`, built once with the subject and cached with
it. Each is a shell around the skinned body, skinned too, so it moves with
the body; the joints never change.

- ``jacket``: the trunk above the hip joints, the shoulders and the arms down
  to mid-forearm, pushed out along the vertex normals by 18-40 mm (looser at
  the hem).
- ``trousers``: wide trousers, the legs from the hips to the ankles, pushed
  out by 12 mm at the hip growing to 45-90 mm at the ankle (flared).
- ``skirt``: an elliptic cone from the waist to around the knee (100 mm
  above to 120 mm below it), wide enough at each height to hold both legs
  in the T-pose (plus a flare), 32 segments x 10 rings. Its vertices follow
  the pelvis at the waist and the thighs more and more towards the hem, each
  side following its own thigh and the front and back following both, so the
  skirt stretches over a stride instead of splitting between the legs.

Shells are open surfaces, so their faces are drawn from both sides
(``two_sided``); the body itself is closed and culled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from core import skeleton as sk
from core.character import vertex_normals
from core.sim.anny_body import MeshSubject, skin

J = sk.JOINT_INDEX
CLOTHING: tuple[str, ...] = ("skirt", "trousers", "jacket")
P_SKIRT, P_TROUSERS, P_JACKET = 0.2, 0.2, 0.3


def draw_clothing(seed: int) -> tuple[str, ...]:
    """Which garments the performer of `seed` wears (possibly none)."""
    rng = np.random.default_rng([int(seed), 0xC107E5])
    u = rng.uniform()
    out: list[str] = []
    if u < P_SKIRT:
        out.append("skirt")
    elif u < P_SKIRT + P_TROUSERS:
        out.append("trousers")
    if rng.uniform() < P_JACKET:
        out.append("jacket")
    return tuple(out)


def _offset_shell(V: np.ndarray, F: np.ndarray, W: np.ndarray, keep_v: np.ndarray, offset: np.ndarray):
    """A shell over the faces whose vertices are all in keep_v: those vertices
    pushed out by offset (per vertex, mm) along the normals."""
    faces = F[keep_v[F].all(1)]
    used = np.unique(faces)
    remap = np.full(len(V), -1)
    remap[used] = np.arange(len(used))
    n = vertex_normals(V, F)[used]
    return V[used] + n * offset[used, None], remap[faces], W[used]


def _jacket(V, F, W, P, rng):
    dom = W.argmax(1)
    upper = ("Spine", "Chest", "Neck", "LeftShoulder", "RightShoulder", "LeftArm", "RightArm")
    keep = np.isin(dom, [J[n] for n in upper])
    keep &= ~((dom == J["Neck"]) & (V[:, 2] > P[J["Neck"], 2] - 10))  # an open collar
    keep |= (dom == J["Hips"]) & (V[:, 2] > P[J["LeftUpLeg"], 2] - 40)
    for side, sx in (("Left", 1), ("Right", -1)):  # sleeves to mid-forearm
        mid = 0.5 * (P[J[side + "ForeArm"], 0] + P[J[side + "Hand"], 0])
        keep |= (dom == J[side + "ForeArm"]) & (sx * V[:, 0] < sx * mid)
    base, hem = rng.uniform(18, 28), rng.uniform(28, 40)
    t = np.clip((P[J["Chest"], 2] - V[:, 2]) / max(P[J["Chest"], 2] - P[J["Hips"], 2], 1.0), 0, 1)
    return _offset_shell(V, F, W, keep, base + (hem - base) * t)


def _trousers(V, F, W, P, rng):
    dom = W.argmax(1)
    legs = ("LeftUpLeg", "RightUpLeg", "LeftLeg", "RightLeg")
    keep = np.isin(dom, [J[n] for n in legs])
    keep |= (dom == J["Hips"]) & (V[:, 2] < P[J["Spine"], 2])
    keep &= V[:, 2] > P[J["LeftFoot"], 2] - 15  # the hem above the shoe
    hip_z = P[J["LeftUpLeg"], 2]
    ankle_z = P[J["LeftFoot"], 2]
    t = np.clip((hip_z - V[:, 2]) / (hip_z - ankle_z), 0, 1)
    flare = rng.uniform(45, 90)
    return _offset_shell(V, F, W, keep, 12 + (flare - 12) * t**1.5)


def _skirt(V, F, W, P, rng, segments: int = 32, rings: int = 10):
    dom = W.argmax(1)
    trunk_legs = np.isin(dom, [J[n] for n in ("Hips", "Spine", "LeftUpLeg", "RightUpLeg", "LeftLeg", "RightLeg")])
    z_top = 0.5 * (P[J["Hips"], 2] + P[J["Spine"], 2])
    z_hem = P[J["LeftLeg"], 2] + rng.uniform(-120, 100)
    flare = rng.uniform(40, 130)
    cy = float(np.median(V[trunk_legs & (np.abs(V[:, 2] - z_top) < 40), 1]))
    theta = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    zs = np.linspace(z_top, z_hem, rings)
    verts, weights = [], []
    a_prev = b_prev = 0.0
    for i, z in enumerate(zs):
        band = trunk_legs & (np.abs(V[:, 2] - z) < 35)
        pts = V[band] if band.any() else V[trunk_legs]
        t = i / (rings - 1)
        a = max(np.abs(pts[:, 0]).max() + 12, a_prev) + flare * t / (rings - 1)
        b = max(np.abs(pts[:, 1] - cy).max() + 12, b_prev) + 0.6 * flare * t / (rings - 1)
        a_prev, b_prev = a, b
        x, y = a * np.cos(theta), cy + b * np.sin(theta)
        verts.append(np.stack([x, y, np.full(segments, z)], 1))
        w = np.zeros((segments, sk.NUM_JOINTS))
        legs = 0.85 * t
        left = np.clip(0.5 + np.cos(theta) * 0.9, 0, 1)  # +X side follows the left thigh
        w[:, J["Hips"]] = 1 - legs
        w[:, J["LeftUpLeg"]] = legs * left
        w[:, J["RightUpLeg"]] = legs * (1 - left)
        weights.append(w)
    faces = []
    for i in range(rings - 1):
        for s in range(segments):
            a0, a1 = i * segments + s, i * segments + (s + 1) % segments
            b0, b1 = a0 + segments, a1 + segments
            # Counter-clockwise seen from outside (theta grows to +Y from +X, z falls with i).
            faces += [(a0, b0, b1), (a0, b1, a1)]
    return np.concatenate(verts), np.array(faces), np.concatenate(weights)


_BUILDERS = {"skirt": _skirt, "trousers": _trousers, "jacket": _jacket}


def add_clothing(ms: MeshSubject, clothes: tuple[str, ...], seed: int) -> MeshSubject:
    """ms with the shells of `clothes` appended (vertices, faces, weights)."""
    V = ms.vertices.astype(np.float64)
    F = ms.faces[: ms.body_faces]
    W = ms.weights.astype(np.float64)
    P = ms.subject.rest_positions()
    verts, faces, weights = [ms.vertices], [ms.faces], [ms.weights]
    two, part = [ms.two_sided], [ms.part]
    n = len(V)
    for name in clothes:
        rng = np.random.default_rng([int(seed), 0xC1, CLOTHING.index(name)])
        sv, sf, sw = _BUILDERS[name](V, F, W, P, rng)
        verts.append(sv.astype(np.float32))
        faces.append((sf + n).astype(np.int32))
        weights.append((sw / sw.sum(1, keepdims=True)).astype(np.float32))
        two.append(np.ones(len(sf), bool))
        part.append(np.full(len(sf), sk.NUM_JOINTS + CLOTHING.index(name), np.int8))
        n += len(sv)
    return replace(ms, vertices=np.concatenate(verts), faces=np.concatenate(faces),
                   weights=np.concatenate(weights), two_sided=np.concatenate(two),
                   part=np.concatenate(part), clothing=tuple(clothes))


@dataclass(frozen=True, eq=False)
class MeshBody:
    """A posed mesh: vertices (V, 3) world mm, faces (F, 3), two_sided (F,), part (F,)."""

    vertices: np.ndarray
    faces: np.ndarray
    two_sided: np.ndarray
    part: np.ndarray

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.vertices.min(0), self.vertices.max(0)


class MeshShape:
    """A MeshSubject ready to be posed many times (rest joints precomputed)."""

    def __init__(self, ms: MeshSubject) -> None:
        self.mesh = ms
        self.rest_joints = ms.subject.rest_positions()
        self._vertices = ms.vertices.astype(np.float64)
        self._weights = ms.weights.astype(np.float64)

    def pose(self, positions_mm: np.ndarray, rotations: np.ndarray) -> MeshBody:
        """positions_mm (J, 3) world, rotations (J, 3, 3) global bone -> world."""
        v = skin(self._vertices, self._weights, self.rest_joints,
                 np.asarray(positions_mm, np.float64), np.asarray(rotations, np.float64))
        m = self.mesh
        return MeshBody(v, m.faces, m.two_sided, m.part)
