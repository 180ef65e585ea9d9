"""The multi-channel volume on the CPU: K x G^3 uint8, one channel per camera.

Voxel (k, i, j, l) is 1 iff the centre of grid voxel (i, j, l) projects
(Camera.project maths, float64, nearest pixel col = floor(u + 0.5)) validly
onto a nonzero pixel of camera k's silhouette; a missing camera (None mask)
gives a zero channel. Volumes are NOT fused across cameras (DeepFuse input).

Why a table: every grid sits on the global lattice (core.volume.grid), so a
voxel's pixel in each camera depends only on its lattice index. On first use
the builder projects, per camera, every lattice cell of the box that any grid
centred over the capture area (performer centres ``centre_z_mm`` high) can
cover, and stores its pixel as an int16 (col, row) pair, (-1, -1) where it
misses the image. A frame is then, per camera, one block copy out of the
table and one ``cv2.remap`` (INTER_NEAREST, constant-0 border) that gathers
the silhouette through it. The table's pixels are spatially coherent, so the
gather walks the mask far more cache-friendly than random indices would
(measured numbers: docs/BENCHMARKS.md). Grids outside the box are projected
directly (same maths, same results), their maps kept in a small cache.

Memory: 4 bytes per cell per camera; about 14 MB a camera (105 MiB for the
8-camera standard studio) for the default 4 x 4 m area, 64^3 grids of 35 mm.
Building it takes about 2 s on a 2-core CPU (threads, one chunk of x slices
per task), reported through a progress(done, total) callback.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable, Sequence

import cv2
import numpy as np

from core.camera.rig import CameraRig
from core.volume.grid import DEFAULT_GRID_SIZE, DEFAULT_VOXEL_MM, LatticeBox, VoxelGrid
from core.volume.projection import RigProjection, mask_views, pixel_coords

Progress = Callable[[int, int], None]

# cv2 maps are int16 and remap's images and maps must be smaller than this on both axes.
_MAX_SIDE = 32767
# Cells projected per chunk while building: small enough that the float64
# temporaries stay in cache, large enough to amortise numpy's call overhead.
_CHUNK_CELLS = 1 << 16
_FALLBACK_CACHE = 4


def pixel_maps(proj: RigProjection, k: int, X: np.ndarray, Y: np.ndarray, Z: np.ndarray,
               out: np.ndarray) -> None:
    """Fill out (len(X), len(Y), len(Z), 2) int16 with camera k's (col, row)
    for the lattice points X x Y x Z (1D axes, mm); (-1, -1) off the image."""
    c = proj.camera(k)
    with np.errstate(all="ignore"):  # far-off or degenerate points are masked, not used
        col, row, ok = pixel_coords(c, X[:, None, None], Y[None, :, None], Z[None, None, :], np)
    out[..., 0] = np.where(ok, col, -1)
    out[..., 1] = np.where(ok, row, -1)


class VolumeBuilder:
    """Builds K x G^3 uint8 volumes from K silhouettes for grids of one lattice.

    rig: the calibrated cameras (their order is the channel order).
    grid_size, voxel_mm: the grids this builder is tuned for (64, 35 mm); a
    grid of another size or pitch still builds, by direct projection.
    centre_z_mm: (low, high) heights of performer centres the table covers;
    horizontally it covers centres anywhere over ``rig.area``.
    progress: called as progress(done, total) while the table is built
    (lazily on the first :meth:`build`, or by :meth:`prepare`).

    Thread safety: :meth:`build` may be called from several threads; the
    table is built once, under a lock.
    """

    def __init__(self, rig: CameraRig, grid_size: int = DEFAULT_GRID_SIZE,
                 voxel_mm: float = DEFAULT_VOXEL_MM, centre_z_mm: tuple[float, float] = (200.0, 1800.0),
                 progress: Progress | None = None) -> None:
        for cam in rig:
            if max(cam.size) > _MAX_SIDE:
                raise ValueError(f"camera {cam.name}: images up to {_MAX_SIDE} pixels a side, got {cam.size}")
        self.rig = rig
        self.grid_size = int(grid_size)
        self.voxel_mm = float(voxel_mm)
        self.projection = RigProjection.from_rig(rig)
        a = rig.area
        self.box = LatticeBox.for_centres((a.x_min, a.y_min, centre_z_mm[0]),
                                          (a.x_max, a.y_max, centre_z_mm[1]), self.grid_size, self.voxel_mm)
        self._progress = progress
        self._tables: list[np.ndarray] | None = None
        self._lock = threading.Lock()
        self._fallback: OrderedDict[tuple, list[np.ndarray]] = OrderedDict()

    # -- the table ----------------------------------------------------------
    @property
    def table_bytes(self) -> int:
        """Memory the lookup table takes (or will take once built), bytes."""
        return len(self.rig) * self.box.cells * 4

    @property
    def prepared(self) -> bool:
        return self._tables is not None

    def prepare(self, progress: Progress | None = None) -> None:
        """Build the lookup table now (no-op when built), reporting progress(done, total)."""
        with self._lock:
            if self._tables is None:
                self._tables = self._build_tables(progress or self._progress)

    def _build_tables(self, progress: Progress | None) -> list[np.ndarray]:
        X, Y, Z = self.box.axis_centres_mm()
        nx, ny, nz = self.box.shape
        step = max(1, _CHUNK_CELLS // (ny * nz))
        tables = [np.empty((nx, ny, nz, 2), np.int16) for _ in self.rig]
        jobs = [(k, a) for k in range(len(self.rig)) for a in range(0, nx, step)]

        def job(k: int, a: int) -> None:  # disjoint slices: no locking needed
            pixel_maps(self.projection, k, X[a:a + step], Y, Z, tables[k][a:a + step])

        # numpy releases the GIL inside its loops, so threads use every core;
        # progress is reported from the calling thread only.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            futures = [pool.submit(job, k, a) for k, a in jobs]
            for done, fut in enumerate(as_completed(futures), 1):
                fut.result()
                if progress is not None:
                    progress(done, len(jobs))
        for t in tables:
            t.setflags(write=False)
        return tables

    def in_table(self, grid: VoxelGrid) -> bool:
        """Whether `grid` is cut from the table (else it is projected directly)."""
        return self.box.block(grid) is not None

    def grid_around(self, centre_mm) -> VoxelGrid:
        """The builder's kind of grid, centred on centre_mm (3,) as closely as the lattice allows."""
        return VoxelGrid.around(centre_mm, self.grid_size, self.voxel_mm)

    # -- per frame ----------------------------------------------------------
    def build(self, masks: Sequence[np.ndarray | None], grid: VoxelGrid,
              out: np.ndarray | None = None) -> np.ndarray:
        """The volume (K, G, G, G) uint8 of 0/1, axes [camera, x, y, z].

        masks: one silhouette per camera, (H, W) uint8 or bool, nonzero =
        performer, or None for a missing camera (zero channel). out: an
        optional C-contiguous uint8 array of that shape to fill and return.
        """
        views = mask_views(masks, self.rig)
        g = grid.size
        shape = (len(self.rig), g, g, g)
        if out is None:
            out = np.empty(shape, np.uint8)
        elif out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous uint8 array of shape {shape}")
        # cv2.remap maps hold fewer than 32767 rows: whole x slices (g rows each) per call.
        rows = g * max(1, min(g, (_MAX_SIDE - 1) // g))
        block = self.box.block(grid)
        if block is not None:
            self.prepare()
            buf = np.empty((g * g, g, 2), np.int16)
            maps = None
        else:
            maps = self._direct_maps(grid)
        for k, mask in enumerate(views):
            if mask is None:
                out[k] = 0
                continue
            if maps is None:
                # remap wants a 2D map with contiguous rows; a block of the table has
                # three strides, so copy it (1 MB, much cheaper than the gather).
                np.copyto(buf.reshape(g, g, g, 2), self._tables[k][block])
                m = buf
            else:
                m = maps[k]
            dst = out[k].reshape(g * g, g)
            for r in range(0, g * g, rows):  # one call unless the grid is huge
                d = dst[r:r + rows]
                res = cv2.remap(mask, m[r:r + rows], None, cv2.INTER_NEAREST, dst=d,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                if not np.shares_memory(res, d):  # cv2 reallocated: keep the result
                    d[...] = res
        flat = out.reshape(-1, g)
        cv2.threshold(flat, 0, 1, cv2.THRESH_BINARY, dst=flat)  # silhouettes may be 0/255
        return out

    def _direct_maps(self, grid: VoxelGrid) -> list[np.ndarray]:
        """Per-camera (G*G, G, 2) int16 maps of a grid outside the table, cached
        because a performer who leaves the table's box usually stays a while."""
        key = (grid.origin_index, grid.size, grid.voxel_mm)
        with self._lock:
            maps = self._fallback.get(key)
            if maps is not None:
                self._fallback.move_to_end(key)
                return maps
        X, Y, Z = grid.axis_centres_mm()
        g = grid.size
        maps = []
        for k in range(len(self.rig)):
            m = np.empty((g, g, g, 2), np.int16)
            pixel_maps(self.projection, k, X, Y, Z, m)
            m.setflags(write=False)
            maps.append(m.reshape(g * g, g, 2))
        with self._lock:
            self._fallback[key] = maps
            while len(self._fallback) > _FALLBACK_CACHE:
                self._fallback.popitem(last=False)
        return maps
