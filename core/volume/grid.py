"""Voxel grids on one global lattice, and boxes of that lattice.

Every FuseCap voxel grid sits on a single world lattice of pitch ``voxel_mm``:
the grid's corner is an integer multiple of ``voxel_mm`` on each axis, so
voxel (i, j, k) of a grid whose corner has lattice index (n0x, n0y, n0z) has
its centre at ``((n0 + ijk) + 0.5) * voxel_mm`` world mm, computed exactly
that way in float64 everywhere (numpy and torch alike). Because of this, a
voxel's centre -- and so its projection into every camera -- depends only on
its lattice index, which lets the volume builders precompute per-rig lookup
tables once and slice them for any grid position.

Units: world millimetres, right-handed, Z up. Volume axis order:
``[channel, x, y, z]``; grid arrays are ``[x, y, z]`` and world coordinate
arrays end in ``(x, y, z)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_GRID_SIZE = 64
DEFAULT_VOXEL_MM = 35.0


def lattice_centres_mm(start: int, count: int, voxel_mm: float) -> np.ndarray:
    """Centres (count,) float64 mm of lattice cells start .. start+count-1 along one axis.

    The one formula for a lattice centre; torch code mirrors it op for op
    (integer + 0.5, then one multiply) so both give identical bits.
    """
    return (np.arange(start, start + count, dtype=np.int64) + 0.5) * float(voxel_mm)


def snap_origin(centre_mm: float, size: int, voxel_mm: float) -> int:
    """Lattice index of the corner that best centres a `size`-voxel span on centre_mm.

    floor(x + 0.5) rather than round(): no banker's rounding, so snapping is
    monotonic and the same on every platform.
    """
    return int(math.floor(float(centre_mm) / voxel_mm - size / 2 + 0.5))


@dataclass(frozen=True)
class VoxelGrid:
    """A cube of ``size``^3 voxels of ``voxel_mm`` on the global lattice.

    origin_index: global lattice index (x, y, z) of voxel (0, 0, 0); its
    corner is at ``origin_index * voxel_mm`` mm. Build one centred on a point
    with :meth:`around`.
    """

    origin_index: tuple[int, int, int]
    size: int = DEFAULT_GRID_SIZE
    voxel_mm: float = DEFAULT_VOXEL_MM

    def __post_init__(self) -> None:
        idx = tuple(int(v) for v in np.asarray(self.origin_index).reshape(-1))
        if len(idx) != 3 or np.any(np.asarray(self.origin_index).reshape(-1) != idx):
            raise ValueError(f"origin_index must be three integers, got {self.origin_index!r}")
        size, voxel = int(self.size), float(self.voxel_mm)
        if size <= 0 or size != self.size:
            raise ValueError(f"size must be a positive integer, got {self.size!r}")
        if not (voxel > 0 and math.isfinite(voxel)):
            raise ValueError(f"voxel_mm must be positive, got {self.voxel_mm!r}")
        object.__setattr__(self, "origin_index", idx)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "voxel_mm", voxel)

    @classmethod
    def around(cls, centre_mm, size: int = DEFAULT_GRID_SIZE,
               voxel_mm: float = DEFAULT_VOXEL_MM) -> "VoxelGrid":
        """The lattice grid whose centre is nearest to centre_mm (x, y, z) mm:
        at most voxel_mm / 2 away on each axis."""
        c = np.asarray(centre_mm, np.float64).reshape(3)
        if not np.isfinite(c).all():
            raise ValueError(f"grid centre must be finite, got {c}")
        return cls(tuple(snap_origin(v, size, voxel_mm) for v in c), size, voxel_mm)

    # -- extent -------------------------------------------------------------
    @property
    def origin_mm(self) -> np.ndarray:
        """World position (3,) of the grid's low corner (not a voxel centre), mm."""
        return np.asarray(self.origin_index, np.float64) * self.voxel_mm

    @property
    def extent_mm(self) -> float:
        """Edge length of the cube, mm (64 x 35 = 2240 by default)."""
        return self.size * self.voxel_mm

    @property
    def centre_mm(self) -> np.ndarray:
        """World position (3,) of the cube's centre, mm."""
        return (np.asarray(self.origin_index, np.float64) + self.size / 2) * self.voxel_mm

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, self.size)

    # -- conversions --------------------------------------------------------
    def axis_centres_mm(self) -> np.ndarray:
        """Voxel centre coordinates (3, size) mm: row a holds axis a (x, y, z)."""
        return np.stack([lattice_centres_mm(n, self.size, self.voxel_mm) for n in self.origin_index])

    def voxel_centres(self) -> np.ndarray:
        """Every voxel centre, (size, size, size, 3) float64 mm, indexed [i, j, k]."""
        ax = self.axis_centres_mm()
        return np.stack(np.meshgrid(ax[0], ax[1], ax[2], indexing="ij"), -1)

    def voxel_to_world(self, ijk) -> np.ndarray:
        """Voxel indices (..., 3), integer or continuous -> world mm (..., 3).

        Integer indices give the voxel centres exactly as :meth:`voxel_centres`.
        """
        ijk = np.asarray(ijk)
        n0 = np.asarray(self.origin_index, np.int64)
        if np.issubdtype(ijk.dtype, np.integer):
            return ((n0 + ijk.astype(np.int64)) + 0.5) * self.voxel_mm
        return ((n0 + ijk.astype(np.float64)) + 0.5) * self.voxel_mm

    def world_to_voxel(self, points_mm) -> np.ndarray:
        """World mm (..., 3) -> continuous voxel index (..., 3); a voxel's centre
        maps to its integer index, its faces to index +- 0.5."""
        p = np.asarray(points_mm, np.float64)
        return p / self.voxel_mm - 0.5 - np.asarray(self.origin_index, np.float64)

    def contains(self, points_mm) -> np.ndarray:
        """Whether world points (..., 3) mm lie inside the cube (low faces in, high faces out)."""
        q = self.world_to_voxel(points_mm)
        return np.all((q >= -0.5) & (q < self.size - 0.5), axis=-1)


@dataclass(frozen=True)
class LatticeBox:
    """A box of lattice cells: indices lo .. lo + shape - 1 on each axis (x, y, z).

    The volume builders precompute per-camera pixel tables over one such box
    and cut any grid inside it out as a block.
    """

    lo: tuple[int, int, int]
    shape: tuple[int, int, int]
    voxel_mm: float

    @classmethod
    def for_centres(cls, lo_mm, hi_mm, size: int, voxel_mm: float) -> "LatticeBox":
        """The smallest box holding every grid of `size` whose :meth:`VoxelGrid.around`
        centre request lies in the axis-aligned box lo_mm .. hi_mm (3,) mm."""
        a = VoxelGrid.around(lo_mm, size, voxel_mm).origin_index
        b = VoxelGrid.around(hi_mm, size, voxel_mm).origin_index
        return cls(a, tuple(hb - la + size for la, hb in zip(a, b)), float(voxel_mm))

    @property
    def cells(self) -> int:
        return int(np.prod(self.shape))

    def block(self, grid: VoxelGrid) -> tuple[slice, slice, slice] | None:
        """Slices of this box's [x, y, z] arrays covering `grid`, or None when
        the grid is on another lattice or not wholly inside."""
        if grid.voxel_mm != self.voxel_mm:
            return None
        out = []
        for n, lo, count in zip(grid.origin_index, self.lo, self.shape):
            a = n - lo
            if a < 0 or a + grid.size > count:
                return None
            out.append(slice(a, a + grid.size))
        return tuple(out)

    def axis_centres_mm(self) -> list[np.ndarray]:
        """Cell centre coordinates along x, y, z (three 1D float64 arrays, mm)."""
        return [lattice_centres_mm(lo, n, self.voxel_mm) for lo, n in zip(self.lo, self.shape)]
