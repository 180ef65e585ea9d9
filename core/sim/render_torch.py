"""Silhouettes by brute-force ray casting in torch, on any device, batched over frames.

The twin of :func:`core.sim.render.render_silhouettes` for making training
data on a GPU: every pixel of every camera is tested against every primitive
of every frame, with no culling and no data-dependent control flow. The rays
are the very same float32 (x, y, 1) camera-frame directions the numpy
renderer uses (:func:`core.sim.render.pixel_grid`).

Precision: the numpy renderer works in float64; here the default is float32,
so the tests are written in a form that does not cancel: the squared distance
between a ray and a point is |w x d|^2 (not |w|^2 - (w.d)^2, which loses
everything to rounding 5 m from the camera). Every per-pixel quantity is an
affine function of the pixel's (x, y), evaluated with multiply-adds rather
than a matmul, so a process-wide TF32 or bf16 matmul setting cannot coarsen
the geometry.

Units: mm; camera frame is OpenCV's (x right, y down, z forward).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch

from core.camera.model import Camera
from core.camera.rig import CameraRig
from core.sim.body import Body
from core.sim.render import LRUCache, camera_frame_primitives, camera_key, pixel_grid

_DEVICE_GRIDS = LRUCache(32)

# Default bound on the size of the per-chunk tensors (elements); peak memory
# is a few times this many values. On a CPU, chunks that stay in cache are
# 15x faster than big ones (measured: 2^20 vs 2^24); on a GPU big chunks
# amortise kernel launches.
DEFAULT_MAX_ELEMENTS = {"cuda": 1 << 28, "cpu": 1 << 20}


def _grid(cam: Camera, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    key = (camera_key(cam), str(device), dtype)
    return _DEVICE_GRIDS.get(key, lambda: torch.from_numpy(pixel_grid(cam).copy()).to(device, dtype))


def _cross_rows(v: np.ndarray) -> np.ndarray:
    """Coefficients (..., 3 rows, 3) on (x, y, 1) of v x (x, y, 1)."""
    z = np.zeros_like(v[..., 0])
    v0, v1, v2 = v[..., 0], v[..., 1], v[..., 2]
    return np.stack([np.stack([z, -v2, v1], -1),
                     np.stack([v2, z, -v0], -1),
                     np.stack([-v1, v0, z], -1)], -2)


def _coefficients(body: Body, cams: Sequence[Camera]):
    """Per camera: capsule rows (K, 8, F, P, 3), ellipsoid rows (K, 7, F, E, 3),
    r^2 (F, P), and whether the camera sits inside the body (K, F); float64."""
    R = np.stack([c.R for c in cams])
    t = np.stack([c.t for c in cams])
    prim = camera_frame_primitives(body, R, t)
    a, u = prim["a"], prim["u"]  # (K, F, P, 3)
    cap = np.concatenate([_cross_rows(a), _cross_rows(u), a[..., None, :], u[..., None, :]], -2)
    A, o = prim["ell_A"], prim["ell_o"]  # (K, F, E, 3, 3), (K, F, E, 3)
    M = np.einsum("...ij,...jk->...ik", _cross_rows(o), A)  # o' x (A d) = [o']_x A d
    q = np.einsum("...ji,...j->...i", A, o)  # o'.(A d) = (A^T o').d
    ell = np.concatenate([A, M, q[..., None, :]], -2)
    inside = prim["cap_inside"].any(-1) | prim["ell_inside"].any(-1)
    # Row index first, so every quantity below is one contiguous block.
    return (np.moveaxis(cap, -2, 1), np.moveaxis(ell, -2, 1),
            np.broadcast_to(body.capsule_r**2, a.shape[1:-1]), inside)


def _affine(coef: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """coef (..., 3) on (x, y, 1), xy (2, L) -> (..., L)."""
    out = torch.addcmul(coef[..., 2:3], coef[..., 0:1], xy[0])
    return out.addcmul_(coef[..., 1:2], xy[1])


def _hits(cap: torch.Tensor, ell: torch.Tensor, r2: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Rays (x, y, 1) for the L pixels in xy (2, L) against F frames -> hit (F, L) bool.

    cap: (8, F, P, 3) rows a x d (3), u x d (3), a.d, u.d; ell: (7, F, E, 3)
    rows A d (3), o' x A d (3), o'.A d; r2: (F, P)."""
    dd = 1.0 + xy[0] * xy[0] + xy[1] * xy[1]
    c = _affine(cap, xy)  # (8, F, P, L)
    cw, cu, wd, ud = c[0:3], c[3:6], c[6], c[7]
    # F(t) = |cw + t cu|^2 is dd * squared distance of segment point t from the line.
    den = (cu * cu).sum(0)
    num = (cw * cu).sum(0)
    t = (-num / den.clamp_min(1e-30)).clamp_(0.0, 1.0)
    g = torch.addcmul(cw, t, cu)
    hit = ((g * g).sum(0) <= r2[..., None] * dd) & (torch.addcmul(wd, t, ud) >= 0)
    e = _affine(ell, xy)  # (7, F, E, L)
    dp, ex, b = e[0:3], e[3:6], e[6]
    hit_e = ((ex * ex).sum(0) <= (dp * dp).sum(0)) & (b <= 0)
    return hit.any(1) | hit_e.any(1)


@torch.no_grad()  # not inference_mode: the masks may feed a training graph
def render_silhouettes_torch(
    body: Body,
    rig: CameraRig | Sequence[Camera],
    cameras_off: Iterable[int] = (),
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    max_elements: int | None = None,
) -> list[torch.Tensor | None]:
    """Masks for one body or a batch of F bodies (leading dim of the Body arrays).

    Returns one uint8 tensor of 0/1 per camera on `device` (default: CUDA when
    available): (H, W) for one body, (F, H, W) for a batch; None for the
    cameras in `cameras_off`. max_elements bounds the working set per chunk.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    single = not body.batch_shape
    if single:
        body = Body.stack([body])
    elif len(body.batch_shape) != 1:
        raise ValueError(f"expected one leading batch dim, got {body.batch_shape}")
    if max_elements is None:
        max_elements = DEFAULT_MAX_ELEMENTS["cuda" if device.type == "cuda" else "cpu"]
    cams = list(rig)
    off = set(cameras_off)
    cap_np, ell_np, r2_np, inside_np = _coefficients(body, cams)
    cap_all = torch.as_tensor(cap_np, dtype=dtype).to(device)
    ell_all = torch.as_tensor(ell_np, dtype=dtype).to(device)
    r2 = torch.as_tensor(np.array(r2_np), dtype=dtype).to(device)
    inside = torch.as_tensor(inside_np).to(device)
    F, P, E = r2.shape[0], cap_np.shape[3], ell_np.shape[3]
    rows = 8 * P + 7 * E
    out: list[torch.Tensor | None] = []
    for k, cam in enumerate(cams):
        if k in off:
            out.append(None)
            continue
        xy = _grid(cam, device, dtype)
        hw = xy.shape[1]
        mask = torch.empty((F, hw), dtype=torch.uint8, device=device)
        # Chunk frames first, then pixels, so a chunk holds <= max_elements values.
        f_step = max(1, min(F, max_elements // (rows * hw)))
        l_step = max(1, min(hw, max_elements // (rows * f_step)))
        for f0 in range(0, F, f_step):
            fs = slice(f0, f0 + f_step)
            for l0 in range(0, hw, l_step):
                ls = slice(l0, l0 + l_step)
                mask[fs, ls] = _hits(cap_all[k][:, fs], ell_all[k][:, fs], r2[fs], xy[:, ls])
        mask[inside[k]] = 1  # the camera is inside the body: every ray hits
        mask = mask.view(F, cam.height, cam.width)
        out.append(mask[0] if single else mask)
    return out
