"""Silhouettes of the simulated performer, by exact ray casting on the CPU.

A pixel is 1 iff the ray through its pixel centre hits a primitive of the
:class:`core.sim.body.Body`. Rays come from :meth:`Camera.pixel_rays` (so lens
distortion is undone exactly as the camera model does it) and are cached per
camera as camera-frame directions (x, y, 1), stored as float32: these float32
values *define* the rays, so this renderer and its torch twin
(:mod:`core.sim.render_torch`) cast the very same rays.

Speed: only the pixels inside each primitive's projected bounding box are
tested, and all (camera, primitive, pixel) triples of a frame are evaluated
in one vectorised pass, so the cost is a few dozen numpy calls a frame plus
work proportional to the silhouettes' area.

Units: mm; camera frame is OpenCV's (x right, y down, z forward).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Iterable, Sequence

import numpy as np

from core.camera.model import Camera
from core.camera.rig import CameraRig
from core.sim.body import Body

# Extra pixels around each projected box: covers the bend of distorted box
# edges between the sampled points (well under a pixel with 5 samples an edge).
CULL_PAD_PX = 1.0

def _cube_edge_points(n: int = 5) -> np.ndarray:
    """(12 n, 3) points along the 12 edges of the cube [-1, 1]^3."""
    t = np.linspace(-1.0, 1.0, n)
    out = []
    for ax in range(3):
        i, j = (k for k in range(3) if k != ax)
        for si in (-1.0, 1.0):
            for sj in (-1.0, 1.0):
                p = np.zeros((n, 3))
                p[:, ax], p[:, i], p[:, j] = t, si, sj
                out.append(p)
    return np.concatenate(out)


# The projection of a box is bounded by the projection of its edges; with
# distortion the edges bend, so they are sampled, not just their corners.
_CUBE_EDGES = _cube_edge_points()


# -- per-camera ray grids -------------------------------------------------------
class LRUCache:
    """A small thread-safe LRU cache (capture and training threads both render)."""

    def __init__(self, size: int):
        self._size, self._data, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key, make):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = make()
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return value

    def resize(self, size: int) -> None:
        with self._lock:
            self._size = max(int(size), 1)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


_GRIDS = LRUCache(32)
_RIG_GRIDS = LRUCache(4)


def set_cache_capacity(cameras: int, rigs: int) -> None:
    """How many cameras' ray grids and rigs' stacked grids stay cached. The
    training-data generator renders a pool of rigs in turn and raises these
    (a 480x270 camera's grid is 1 MiB) so that no frame recomputes rays."""
    _GRIDS.resize(cameras)
    _RIG_GRIDS.resize(rigs)


def camera_key(cam: Camera) -> tuple:
    """What a camera's ray grid depends on (intrinsics, distortion, size)."""
    return (cam.K.tobytes(), cam.dist.tobytes(), cam.size)


def pixel_grid(cam: Camera) -> np.ndarray:
    """(2, H*W) float32, row-major pixels: the ray through pixel centre (u, v) has
    camera-frame direction (x, y, 1). Cached; read-only."""

    def make():
        w, h = cam.size
        uv = np.stack(np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float)), -1)
        d_cam = cam.pixel_rays(uv.reshape(-1, 2)) @ cam.R.T
        xy = np.ascontiguousarray((d_cam[:, :2] / d_cam[:, 2:]).T, np.float32)
        xy.setflags(write=False)
        return xy

    return _GRIDS.get(camera_key(cam), make)


def _rig_grid(cams: Sequence[Camera]) -> tuple[np.ndarray, np.ndarray]:
    """All cameras' grids end to end: (2, sum H*W) float32 and the start offsets (K+1,)."""

    def make():
        grids = [pixel_grid(c) for c in cams]
        offsets = np.cumsum([0] + [g.shape[1] for g in grids])
        out = np.concatenate(grids, 1)
        out.setflags(write=False)
        return out, offsets

    return _RIG_GRIDS.get(tuple(camera_key(c) for c in cams), make)


# -- primitives in camera frames -----------------------------------------------
def camera_frame_primitives(body: Body, R: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """Body (any batch dims ...) seen from K cameras (R (K,3,3), t (K,3)), float64.

    Returns a (K, ..., P, 3), u = b - a (K, ..., P, 3), r (..., P),
    ell_A (K, ..., E, 3, 3) mapping camera-frame vectors to the unit-sphere
    frame, ell_o (K, ..., E, 3) the camera centre in that frame, and the
    inside flags cap_inside (K, ..., P) / ell_inside (K, ..., E): the camera
    centre lies in the primitive, so every one of its rays hits it.
    """
    nb = body.capsule_r.ndim - 1
    tb = t.reshape((len(t),) + (1,) * (nb + 1) + (3,))
    a = np.einsum("kij,...pj->k...pi", R, body.capsule_a) + tb
    b = np.einsum("kij,...pj->k...pi", R, body.capsule_b) + tb
    u = b - a
    tt = np.clip(-(a * u).sum(-1) / np.maximum((u * u).sum(-1), 1e-12), 0.0, 1.0)
    cap_inside = ((a + tt[..., None] * u) ** 2).sum(-1) <= body.capsule_r**2
    centre = np.einsum("kij,...ej->k...ei", R, body.ellipsoid_centre) + tb
    rot = np.einsum("kij,...ejl->k...eil", R, body.ellipsoid_rotation)  # ellipsoid -> camera
    A = np.swapaxes(rot, -1, -2) / body.ellipsoid_axes[..., :, None]
    o = -np.einsum("...ij,...j->...i", A, centre)
    return {"a": a, "u": u, "r": body.capsule_r, "ell_A": A, "ell_o": o,
            "cap_inside": cap_inside, "ell_inside": (o**2).sum(-1) <= 1.0}


def _pixel_rects(body: Body, cams: Sequence[Camera], active: np.ndarray) -> np.ndarray:
    """(K, P+E, 4) int pixel rectangles u0, u1, v0, v1 (inclusive; empty when
    u0 > u1) that hold every pixel whose ray can hit each primitive."""
    centres, half = body.oriented_boxes()
    pts = centres[:, None, :] + np.einsum("qij,nj->qni", half, _CUBE_EDGES)  # (Q, 60, 3)
    rects = np.zeros((len(cams), len(centres), 4), np.int64)
    rects[..., 0] = 1  # empty by default
    for k, cam in enumerate(cams):
        if not active[k]:
            continue
        w, h = cam.size
        uv, valid = cam.project(pts)
        in_front = cam.depth(pts) > 0
        lo, hi = uv.min(1) - CULL_PAD_PX, uv.max(1) + CULL_PAD_PX
        # Pixel centres sit at integers: keep those within [lo, hi].
        r = np.stack([np.ceil(lo[:, 0]), np.floor(hi[:, 0]), np.ceil(lo[:, 1]), np.floor(hi[:, 1])], 1)
        # A box reaching behind the camera or far outside the view has no
        # trustworthy projection: test the whole image for it.
        whole = ~valid.all(1)
        r[whole] = [0, w - 1, 0, h - 1]
        r[:, :2] = r[:, :2].clip(0, w - 1)
        r[:, 2:] = r[:, 2:].clip(0, h - 1)
        r[~in_front.any(1)] = [1, 0, 1, 0]  # wholly behind the camera: never seen
        off_image = (hi[:, 0] < 0) | (lo[:, 0] > w - 1) | (hi[:, 1] < 0) | (lo[:, 1] > h - 1)
        r[off_image & ~whole] = [1, 0, 1, 0]
        rects[k] = r
    return rects


def _expand(rects: np.ndarray, widths_img: np.ndarray, offsets: np.ndarray):
    """Pixels of every rectangle: (pixel count per pair (K*Q,), global pixel index (N,)),
    pairs in order, so per-pair values expand with np.repeat(values, counts).

    rects: (K, Q, 4); the pair index is k * Q + q. Vectorised so that the
    number of numpy calls does not grow with the number of primitives."""
    K, Q, _ = rects.shape
    r = rects.reshape(-1, 4)
    w = np.maximum(r[:, 1] - r[:, 0] + 1, 0)
    h = np.maximum(r[:, 3] - r[:, 2] + 1, 0)
    counts = w * h
    pair = np.repeat(np.arange(K * Q), counts)
    first = np.cumsum(counts) - counts
    local = np.arange(pair.size) - first[pair]
    row = local // w[pair]
    col = local - row * w[pair]
    img_w = np.repeat(widths_img, Q)
    base = np.repeat(offsets[:-1], Q) + r[:, 2] * img_w + r[:, 0]
    return counts, base[pair] + row * img_w[pair] + col


def render_silhouettes(body: Body, rig: CameraRig | Sequence[Camera],
                       cameras_off: Iterable[int] = ()) -> list[np.ndarray | None]:
    """One uint8 mask (H, W) of 0/1 per camera of `rig`: 1 where the ray through
    the pixel centre hits the (unbatched) body. Cameras listed in
    `cameras_off` (indices) are not rendered and come back as None, the
    project's mark for a camera with no image."""
    if body.batch_shape:
        raise ValueError("render_silhouettes renders one body; use render_torch for batches")
    cams = list(rig)
    off = set(cameras_off)
    active = np.array([k not in off for k in range(len(cams))])
    grid, offsets = _rig_grid(cams)
    flat = np.zeros(offsets[-1], np.uint8)
    R = np.stack([c.R for c in cams])
    t = np.stack([c.t for c in cams])
    prim = camera_frame_primitives(body, R, t)
    P = body.capsule_r.shape[0]
    rects = _pixel_rects(body, cams, active)
    inside = np.concatenate([prim["cap_inside"], prim["ell_inside"]], 1) & active[:, None]
    widths = np.array([c.width for c in cams])

    # Capsules: coefficients per (camera, capsule) pair, gathered per pixel.
    counts, pix = _expand(rects[:, :P], widths, offsets)
    if pix.size:
        a, u = prim["a"].reshape(-1, 3), prim["u"].reshape(-1, 3)
        coef = np.concatenate([a, u, (a * a).sum(1, keepdims=True), (u * u).sum(1, keepdims=True),
                               (a * u).sum(1, keepdims=True),
                               np.tile(prim["r"] ** 2, len(cams))[:, None]], 1).T
        flat[pix[_hit_capsules(np.take(grid, pix, axis=1), np.repeat(coef, counts, axis=1))]] = 1
    # Ellipsoids: d' = A d is the ray in the unit-sphere frame, o' its origin;
    # |d'|^2 = d.Q d with Q = A^T A, and o'.d' = (A^T o').d.
    counts, pix = _expand(rects[:, P:], widths, offsets)
    if pix.size:
        A, o = prim["ell_A"].reshape(-1, 3, 3), prim["ell_o"].reshape(-1, 3)
        Qm = np.einsum("nji,njk->nik", A, A)
        q = np.einsum("nji,nj->ni", A, o)
        coef = np.concatenate([Qm[:, [0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]], q,
                               (o * o).sum(1, keepdims=True) - 1.0], 1).T
        flat[pix[_hit_ellipsoids(np.take(grid, pix, axis=1), np.repeat(coef, counts, axis=1))]] = 1
    out: list[np.ndarray | None] = []
    for k, cam in enumerate(cams):
        if not active[k]:
            out.append(None)
            continue
        mask = flat[offsets[k] : offsets[k + 1]].reshape(cam.height, cam.width)
        if inside[k].any():  # the camera is inside the body: it sees nothing else
            mask[:] = 1
        out.append(mask)
    return out


def _hit_capsules(xy: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Ray (x, y, 1) from the origin vs capsule, per pixel; c rows: a(3) u(3) aa uu au r^2.

    With w = a and dd = |d|^2, dd * (squared distance from the segment point
    a + t u to the ray's line) is F(t) = den t^2 + 2 num t + (aa dd - ad^2), a
    convex quadratic: clamp its minimiser to [0, 1]. The nearest line point
    must also be in front of the camera (ray parameter >= 0)."""
    x, y = xy.astype(np.float64)
    dd = x * x + y * y + 1.0
    ad = c[0] * x + c[1] * y + c[2]
    ud = c[3] * x + c[4] * y + c[5]
    den = c[7] * dd - ud * ud
    num = c[8] * dd - ad * ud
    t = np.clip(-num / np.maximum(den, 1e-12), 0.0, 1.0)
    f = (den * t + 2.0 * num) * t + c[6] * dd - ad * ad
    return (f <= c[9] * dd) & (ad + t * ud >= 0.0)


def _hit_ellipsoids(xy: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Ray (x, y, 1) vs unit sphere after the ellipsoid's affine map; c rows:
    Q00 Q11 Q22 Q01 Q02 Q12, q(3), |o'|^2 - 1. Hit iff the ray's closest approach
    to the sphere centre is ahead (b <= 0) and within 1 (b^2 >= a c)."""
    x, y = xy.astype(np.float64)
    a = c[0] * x * x + c[1] * y * y + c[2] + 2.0 * (c[3] * x * y + c[4] * x + c[5] * y)
    b = c[6] * x + c[7] * y + c[8]
    return (b <= 0.0) & (b * b >= a * c[9])
