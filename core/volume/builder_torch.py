"""The multi-channel volume on a torch device (CUDA for training and live use
on a GPU; CPU works too, slowly). Same definition and identical bits as
core.volume.builder.VolumeBuilder: K x G^3 uint8 of 0/1, axes [camera, x, y, z].

Two ways to find each voxel's pixel, chosen per builder:

- direct (default): project every voxel centre on the device in float64 each
  frame, all cameras (and all frames of a batch) in one broadcast expression
  (core.volume.projection.pixel_coords, the same maths as the numpy builder).
  Needs no per-rig preparation, so it suits training, where rigs change per
  sample. Costs about 60 elementwise float64 kernels over K x G^3 voxels.
- table=True: as the numpy builder, project the lattice box once per rig
  (on the device) into int32 indices into the concatenated silhouettes, then
  a frame is one block slice and one gather. For a fixed rig (live capture).
  Grids outside the box fall back to direct projection.

Silhouettes of all cameras (differing sizes allowed) are flattened and
concatenated, one frame after another, each frame followed by one zero byte
that every off-image voxel points at, so one gather fills every channel.
The per-rig constants live on the device, so nothing but the silhouettes
(and, for a batch, the grid origins) crosses to the device per call.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

import numpy as np
import torch

from core.camera.rig import CameraRig
from core.volume.grid import DEFAULT_GRID_SIZE, DEFAULT_VOXEL_MM, LatticeBox, VoxelGrid
from core.volume.projection import RigProjection, pixel_coords

Progress = Callable[[int, int], None]

# Cells per chunk while building the device table (bounds the float64 temporaries).
_TABLE_CHUNK_CELLS = 1 << 21


class TorchVolumeBuilder:
    """Builds K x G^3 uint8 volumes on `device` from K silhouettes.

    rig: the calibrated cameras (channel order). device: a torch device or its
    name. grid_size, voxel_mm: the grids of the table (direct projection
    takes any grid). table: precompute a per-rig device table (see module
    docstring; int32, 4 bytes per lattice cell per camera). centre_z_mm: the
    heights of grid centres the table covers; horizontally ``rig.area``.
    """

    def __init__(self, rig: CameraRig, device: str | torch.device = "cpu",
                 grid_size: int = DEFAULT_GRID_SIZE, voxel_mm: float = DEFAULT_VOXEL_MM,
                 table: bool = False, centre_z_mm: tuple[float, float] = (200.0, 1800.0),
                 progress: Progress | None = None) -> None:
        self.rig = rig
        self.device = torch.device(device)
        self.grid_size = int(grid_size)
        self.voxel_mm = float(voxel_mm)
        self.projection = RigProjection.from_rig(rig)
        counts = self.projection.pixel_counts
        self._counts = [int(n) for n in counts]
        self._sizes = [tuple(int(v) for v in s) for s in self.projection.sizes]
        # Each frame's buffer: all cameras' pixels, then one zero byte (the sentinel).
        self.frame_stride = int(counts.sum()) + 1
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.float64)
        self._consts = self.projection.stacked(torch, 3, device=self.device)
        self._offsets = torch.as_tensor(offsets, device=self.device).reshape(-1, 1, 1, 1)
        self._arange = torch.arange(self.grid_size, dtype=torch.float64, device=self.device)
        self.use_table = bool(table)
        a = rig.area
        self.box = LatticeBox.for_centres((a.x_min, a.y_min, centre_z_mm[0]),
                                          (a.x_max, a.y_max, centre_z_mm[1]), self.grid_size, self.voxel_mm)
        self._progress = progress
        self._table: torch.Tensor | None = None
        self._lock = threading.Lock()

    # -- pixel indices --------------------------------------------------------
    def _flat_index(self, c: dict[str, torch.Tensor], X, Y, Z) -> torch.Tensor:
        """Index of each point's pixel in one frame's buffer (int64), the sentinel
        where off-image; shapes broadcast as in pixel_coords."""
        col, row, ok = pixel_coords(c, X, Y, Z, torch)
        # float64 holds these integers exactly (far below 2**53); the (K, 1, 1, 1)
        # offsets broadcast over (K, x, y, z) and (B, K, x, y, z) alike.
        pix = (row * c["w"] + col) + self._offsets
        return torch.where(ok, pix, float(self.frame_stride - 1)).long()

    def _axes(self, origins: torch.Tensor, g: int, voxel_mm: float):
        """Voxel-centre axes of B grids: X (B,1,g,1,1), Y (B,1,1,g,1), Z (B,1,1,1,g)
        mm, from lattice origins (B, 3) float64 -- numpy's ((n0 + i) + 0.5) * s
        (integers are exact in float64, so the sums match numpy's int64 ones)."""
        ar = self._arange if g == self.grid_size else torch.arange(g, dtype=torch.float64, device=self.device)
        ax = ((origins[:, :, None] + ar) + 0.5) * voxel_mm  # (B, 3, g)
        B = ax.shape[0]
        return (ax[:, 0].reshape(B, 1, g, 1, 1), ax[:, 1].reshape(B, 1, 1, g, 1),
                ax[:, 2].reshape(B, 1, 1, 1, g))

    # -- the table ------------------------------------------------------------
    @property
    def table_bytes(self) -> int:
        return len(self.rig) * self.box.cells * 4 if self.use_table else 0

    def prepare(self, progress: Progress | None = None) -> None:
        """Build the device table now when table=True (no-op otherwise or when built)."""
        if not self.use_table:
            return
        with self._lock:
            if self._table is None:
                self._table = self._build_table(progress or self._progress)

    def _build_table(self, progress: Progress | None) -> torch.Tensor:
        if self.frame_stride >= 2**31:
            raise ValueError("silhouettes too large for int32 table indices")
        X, Y, Z = (torch.as_tensor(a, device=self.device) for a in self.box.axis_centres_mm())
        nx, ny, nz = self.box.shape
        table = torch.empty((len(self.rig), nx, ny, nz), dtype=torch.int32, device=self.device)
        step = max(1, _TABLE_CHUNK_CELLS // (len(self.rig) * ny * nz))
        starts = range(0, nx, step)
        for n, a in enumerate(starts):
            xs = X[a:a + step]
            table[:, a:a + step] = self._flat_index(self._consts, xs.reshape(1, -1, 1, 1),
                                                    Y.reshape(1, 1, -1, 1), Z.reshape(1, 1, 1, -1)).int()
            if progress is not None:
                progress(n + 1, len(starts))
        return table

    # -- per frame --------------------------------------------------------------
    def _frame_pixels(self, masks: Sequence[Any]) -> list[torch.Tensor]:
        """One frame's silhouettes as flat uint8 device tensors, zeros for None."""
        if len(masks) != len(self.rig):
            raise ValueError(f"expected {len(self.rig)} silhouettes (one per camera), got {len(masks)}")
        parts = []
        for (w, h), n, m, cam in zip(self._sizes, self._counts, masks, self.rig):
            if m is None:
                parts.append(torch.zeros(n, dtype=torch.uint8, device=self.device))
                continue
            if isinstance(m, torch.Tensor):
                t = m
            else:
                a = np.ascontiguousarray(m)
                # torch wants writable memory even to read it: copy frozen frames.
                t = torch.from_numpy(a if a.flags.writeable else a.copy())
            if t.dim() == 3 and t.shape[2] == 1:
                t = t[:, :, 0]
            if tuple(t.shape) != (h, w):
                raise ValueError(f"camera {cam.name}: silhouette shape {tuple(t.shape)}, expected {(h, w)}")
            t = t.to(self.device, non_blocking=True)
            if t.dtype == torch.bool:
                t = t.view(torch.uint8)
            elif t.dtype != torch.uint8:
                t = (t != 0).view(torch.uint8)
            parts.append(t.reshape(-1))
        parts.append(torch.zeros(1, dtype=torch.uint8, device=self.device))
        return parts

    def build(self, masks: Sequence[Any], grid: VoxelGrid) -> torch.Tensor:
        """The volume (K, G, G, G) uint8 of 0/1 on the device, axes [camera, x, y, z].

        masks: one per camera, (H, W) numpy arrays or tensors (any device),
        uint8 or bool, nonzero = performer; None for a missing camera.
        """
        return self.build_batch([masks], [grid])[0]

    def build_batch(self, masks_batch: Sequence[Sequence[Any]], grids: Sequence[VoxelGrid]) -> torch.Tensor:
        """Volumes of B frames at once: (B, K, G, G, G) uint8 on the device.

        masks_batch: B lists of K silhouettes; grids: B grids of one size.
        """
        if len(masks_batch) != len(grids) or not grids:
            raise ValueError("need one grid per frame, and at least one frame")
        g = grids[0].size
        if any(gr.size != g or gr.voxel_mm != grids[0].voxel_mm for gr in grids):
            raise ValueError("all grids of a batch must share size and voxel_mm")
        flat = torch.cat([p for masks in masks_batch for p in self._frame_pixels(masks)])
        B, S = len(grids), self.frame_stride
        blocks = [self.box.block(gr) for gr in grids] if self.use_table else [None]
        if all(b is not None for b in blocks):
            self.prepare()
            idx = torch.stack([self._table[(slice(None),) + b] for b in blocks])  # (B,K,g,g,g) int32
            idx = idx.long()
        else:
            # The only per-call host-to-device copy besides the silhouettes: 3B integers.
            n0 = torch.tensor([gr.origin_index for gr in grids], dtype=torch.float64, device=self.device)
            idx = self._flat_index(self._consts, *self._axes(n0, g, grids[0].voxel_mm))
        if B > 1:
            idx = idx + torch.arange(B, device=self.device).reshape(B, 1, 1, 1, 1) * S
        vol = torch.take(flat, idx)
        return vol.clamp_(max=1)
