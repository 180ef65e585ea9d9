"""Silhouettes of a triangle mesh, by projecting its vertices and filling its triangles.

The twin of :func:`core.sim.render.render_silhouettes` for the skinned mesh
bodies (:mod:`core.sim.mesh_body`): the same output (one uint8 0/1 mask per
camera, None for a camera that is off), the same camera model.

How a pixel is decided: every vertex is projected with
:meth:`core.camera.model.Camera.project` (lens distortion included), each
triangle becomes the straight-edged triangle between its three projected
vertices, and a pixel is 1 iff its centre (integer (u, v)) lies inside (or on
the edge of) a triangle. Between vertices a distorted edge bends; at 480x270
a body's triangles span a pixel or two, so the bend is far below a pixel.

Speed: a closed, consistently wound mesh is covered by its front faces, so
faces seen from behind are culled (half the work); shells that are not closed
(clothing) are drawn from both sides. Each kept triangle tests only the
pixel centres in its bounding box, and all (camera, triangle, pixel) triples
of a frame are tested in one vectorised pass (a few dozen numpy calls a
frame, whatever the number of triangles). A shared edge counts for both its
triangles (a tolerance, not an exact tie rule), so a closed mesh has no
cracks.

Triangles with a vertex that does not project (behind the camera's near plane
or far outside its field of view) are skipped: the performer is always well
in front of every studio camera.

Units: mm, pixels (pixel (0, 0)'s centre is at (0, 0)).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from core.camera.model import Camera
from core.camera.rig import CameraRig

# Sign of twice the signed image-plane area (u right, v down) of a front
# face of a mesh wound counter-clockwise seen from outside (Anny's, and the
# shells built in core.sim.mesh_body): image v points down, so it is negative.
FRONT_SIGN = -1.0

# Edge tolerance, relative to the triangle's doubled area: a pixel centre on
# a shared edge is inside both triangles.
_EDGE_EPS = 1e-9


def project_vertices(vertices: np.ndarray, cams: Sequence[Camera]) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) world mm -> pixels (K, V, 2) float64 and validity (K, V)."""
    uv = np.empty((len(cams), len(vertices), 2))
    ok = np.empty((len(cams), len(vertices)), bool)
    for k, cam in enumerate(cams):
        uv[k], ok[k] = cam.project(vertices)
    return uv, ok


def rasterise(uv: np.ndarray, ok: np.ndarray, faces: np.ndarray, two_sided: np.ndarray | None,
              sizes: Sequence[tuple[int, int]], active: np.ndarray) -> list[np.ndarray | None]:
    """Fill triangles: uv (K, V, 2) projected vertices, ok (K, V) their
    validity, faces (F, 3) vertex indices, two_sided (F,) bool (None: none
    are) for faces drawn whichever way they face; sizes (w, h) per camera;
    active (K,) bool. Returns uint8 0/1 masks, None where not active."""
    K = len(sizes)
    widths = np.array([s[0] for s in sizes])
    heights = np.array([s[1] for s in sizes])
    offsets = np.concatenate([[0], np.cumsum(widths * heights)])
    flat = np.zeros(int(offsets[-1]), np.uint8)
    xs = uv[..., 0]
    ys = uv[..., 1]
    f0, f1, f2 = faces[:, 0], faces[:, 1], faces[:, 2]
    x0, x1, x2 = xs[:, f0], xs[:, f1], xs[:, f2]      # (K, F) each
    y0, y1, y2 = ys[:, f0], ys[:, f1], ys[:, f2]
    area2 = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    keep = ok[:, f0] & ok[:, f1] & ok[:, f2] & (area2 != 0.0) & active[:, None]
    front = area2 * FRONT_SIGN > 0.0
    keep &= front if two_sided is None else (front | two_sided[None, :])
    k_idx, f_idx = np.nonzero(keep)
    if k_idx.size:
        tx = np.stack([x0[k_idx, f_idx], x1[k_idx, f_idx], x2[k_idx, f_idx]], 1)   # (T, 3)
        ty = np.stack([y0[k_idx, f_idx], y1[k_idx, f_idx], y2[k_idx, f_idx]], 1)
        a2 = area2[k_idx, f_idx]
        w_k, h_k = widths[k_idx], heights[k_idx]
        u0 = np.maximum(np.ceil(np.minimum(np.minimum(tx[:, 0], tx[:, 1]), tx[:, 2])), 0).astype(np.int64)
        u1 = np.minimum(np.floor(np.maximum(np.maximum(tx[:, 0], tx[:, 1]), tx[:, 2])), w_k - 1).astype(np.int64)
        v0 = np.maximum(np.ceil(np.minimum(np.minimum(ty[:, 0], ty[:, 1]), ty[:, 2])), 0).astype(np.int64)
        v1 = np.minimum(np.floor(np.maximum(np.maximum(ty[:, 0], ty[:, 1]), ty[:, 2])), h_k - 1).astype(np.int64)
        bw = np.maximum(u1 - u0 + 1, 0)
        counts = bw * np.maximum(v1 - v0 + 1, 0)
        # Edge functions E_i(p) = A_i u + B_i v + C_i, >= 0 inside, written
        # relative to the box corner (u0, v0) so the numbers stay small.
        tx -= u0[:, None]
        ty -= v0[:, None]
        s = np.sign(a2)[:, None]
        xb, yb = tx[:, [1, 2, 0]], ty[:, [1, 2, 0]]
        A = (ty - yb) * s
        B = (xb - tx) * s
        C = ((yb - ty) * tx - (xb - tx) * ty) * s
        tol = -_EDGE_EPS * np.abs(a2)
        tri_of = np.repeat(np.arange(len(counts)), counts)
        first = np.cumsum(counts) - counts
        local = np.arange(tri_of.size) - first[tri_of]
        bw_p = bw[tri_of]
        row = local // bw_p
        col = local - row * bw_p
        colf, rowf = col.astype(np.float64), row.astype(np.float64)
        t_p = tol[tri_of]
        inside = A[tri_of, 0] * colf + B[tri_of, 0] * rowf + C[tri_of, 0] >= t_p
        for i in (1, 2):
            inside &= A[tri_of, i] * colf + B[tri_of, i] * rowf + C[tri_of, i] >= t_p
        hit = tri_of[inside]
        kk = k_idx[hit]
        flat[offsets[kk] + (v0[hit] + row[inside]) * widths[kk] + u0[hit] + col[inside]] = 1
    out: list[np.ndarray | None] = []
    for k in range(K):
        out.append(flat[offsets[k]:offsets[k + 1]].reshape(heights[k], widths[k]) if active[k] else None)
    return out


def render_mesh_silhouettes(vertices: np.ndarray, faces: np.ndarray, rig: CameraRig | Sequence[Camera],
                            cameras_off: Iterable[int] = (),
                            two_sided: np.ndarray | None = None) -> list[np.ndarray | None]:
    """One uint8 mask (H, W) of 0/1 per camera of `rig`: 1 where the pixel
    centre lies inside a projected triangle of the mesh (vertices (V, 3)
    world mm, faces (F, 3)). `two_sided` (F,) marks faces drawn from both
    sides (open shells); the others are culled when seen from behind.
    Cameras in `cameras_off` come back as None."""
    cams = list(rig)
    off = set(cameras_off)
    active = np.array([k not in off for k in range(len(cams))])
    verts = np.asarray(vertices, np.float64)
    uv, ok = project_vertices(verts, [c for c in cams])
    return rasterise(uv, ok, np.asarray(faces), two_sided, [c.size for c in cams], active)
