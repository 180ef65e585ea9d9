"""Which pixel of each camera a voxel centre falls on: the rig's cameras
stacked for batched projection, and checks of the silhouettes given per frame.

The projection is :meth:`core.camera.model.Camera.project`'s maths written
out element by element (no matrix product), once, with operators that numpy
arrays and torch tensors share. Elementwise IEEE float64 operations round the
same on every backend, so the numpy table builder, the numpy fallback and the
torch builder (CPU or CUDA) produce identical pixels; the tests hold them to
``Camera.project`` itself.

The rotation is expanded as ``((r0 * X + r1 * Y) + r2 * Z) + t`` so that X, Y
and Z may be 1-D lattice axes broadcast against each other: the bits do not
depend on whether a point is computed alone or as part of a block.

Pixel convention (as the camera model): pixel (col, row) covers
[col - 0.5, col + 0.5) x [row - 0.5, row + 0.5), so col = floor(u + 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from core.camera.model import NEAR_MM, distort
from core.camera.rig import CameraRig

# Per-camera scalars, in the order RigProjection.table stacks them.
FIELDS = ("r00", "r01", "r02", "r10", "r11", "r12", "r20", "r21", "r22", "t0", "t1", "t2",
          "fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6",
          "max_r2", "w", "h")


@dataclass(frozen=True, eq=False)
class RigProjection:
    """The rig's projection constants, one row per camera: ``table`` (K, 27)
    float64 in :data:`FIELDS` order, and image sizes (K, 2) (width, height)."""

    table: np.ndarray
    sizes: np.ndarray

    @classmethod
    def from_rig(cls, rig: CameraRig) -> "RigProjection":
        rows = []
        for cam in rig:
            rows.append(np.concatenate([
                cam.R.ravel(), cam.t, [cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]],
                cam.dist8, [cam.max_r2, cam.width, cam.height],
            ]))
        table = np.array(rows, np.float64)
        table.setflags(write=False)
        sizes = np.array([c.size for c in rig], np.int64)
        sizes.setflags(write=False)
        return cls(table, sizes)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def pixel_counts(self) -> np.ndarray:
        """w * h per camera (K,) int64."""
        return self.sizes[:, 0] * self.sizes[:, 1]

    def camera(self, k: int) -> dict[str, float]:
        """Camera k's constants as Python floats (for numpy work on one camera)."""
        return {name: float(v) for name, v in zip(FIELDS, self.table[k])}

    def stacked(self, xp: Any, ndim: int, **tensor_kw) -> dict[str, Any]:
        """All cameras' constants as arrays of shape (K, 1, ..., 1) with `ndim`
        trailing singleton axes, built with array module `xp` (numpy or torch;
        tensor_kw e.g. device= for torch). Build once per rig and reuse: on a
        GPU this keeps host-to-device copies out of the per-frame path."""
        shape = (len(self),) + (1,) * ndim
        if xp is np:
            return {n: self.table[:, i].reshape(shape) for i, n in enumerate(FIELDS)}
        t = xp.tensor(self.table.copy(), dtype=xp.float64, **tensor_kw)  # copy: table is read-only
        return {n: t[:, i].reshape(shape) for i, n in enumerate(FIELDS)}


def pixel_coords(c: dict[str, Any], X, Y, Z, xp: Any):
    """Nearest pixel of world points (X, Y, Z) mm, which broadcast against each
    other and against the constants in `c` (from :meth:`RigProjection.camera`
    or :meth:`RigProjection.stacked`). `xp` is numpy or torch.

    Returns (col, row, ok): col and row float64 holding integers, ok True where
    the point is in front of the camera, within its calibrated field (r2 <
    max_r2) and on the image. col and row are meaningless where ok is False.
    The operation order mirrors Camera._project; the distortion is the camera model's own.
    """
    xc = ((c["r00"] * X + c["r01"] * Y) + c["r02"] * Z) + c["t0"]
    yc = ((c["r10"] * X + c["r11"] * Y) + c["r12"] * Z) + c["t1"]
    zc = ((c["r20"] * X + c["r21"] * Y) + c["r22"] * Z) + c["t2"]
    zs = zc.clip(NEAR_MM, None)
    x = xc / zs
    y = yc / zs
    xd, yd, r2 = distort(x, y, [c[n] for n in ("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6")])
    col = xp.floor(c["fx"] * xd + c["cx"] + 0.5)
    row = xp.floor(c["fy"] * yd + c["cy"] + 0.5)
    # NaN (a degenerate distortion denominator) fails every comparison: not ok.
    ok = (zc > NEAR_MM) & (r2 < c["max_r2"]) & (col >= 0) & (col < c["w"]) & (row >= 0) & (row < c["h"])
    return col, row, ok


def mask_views(masks: Sequence[Any], rig: CameraRig) -> list[np.ndarray | None]:
    """Check one silhouette per camera and view each as a 2D uint8 array (H, W).

    Nonzero means silhouette. bool masks are viewed, not copied; (H, W, 1)
    is accepted; other dtypes are compared with zero. None (a missing or
    switched-off camera) stays None. Raises ValueError on a wrong count or a
    size that differs from the camera's.
    """
    if len(masks) != len(rig):
        raise ValueError(f"expected {len(rig)} silhouettes (one per camera), got {len(masks)}")
    out: list[np.ndarray | None] = []
    for cam, m in zip(rig, masks):
        if m is None:
            out.append(None)
            continue
        m = np.asarray(m)
        if m.ndim == 3 and m.shape[2] == 1:
            m = m[:, :, 0]
        if m.shape != (cam.height, cam.width):
            raise ValueError(f"camera {cam.name}: silhouette shape {m.shape}, expected "
                             f"{(cam.height, cam.width)} (height, width)")
        if m.dtype == np.bool_:
            m = m.view(np.uint8)
        elif m.dtype != np.uint8:
            m = (m != 0).view(np.uint8)
        out.append(m)
    return out
