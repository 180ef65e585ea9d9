"""One frame's volume: the performer centre and the K x G^3 volume around it.

`VolumeStage` is the one place a frame's volume is built, for the live
pipeline (core.pipeline) and for the inference engine's single and batched
solves (core.deepfuse.engine) alike:

- CPU: the numpy builder's per-rig table (core.volume.builder);
- CUDA: the torch builder's per-rig table on the GPU
  (core.volume.builder_torch); the volume stays on the GPU for the network
  and `FrameVolume.host()` copies it out only for a view that draws it.

Units: world millimetres; the grid is G^3 voxels of `voxel_mm`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from core.camera.rig import CameraRig
from core.volume.centre import CentreFinder
from core.volume.grid import DEFAULT_GRID_SIZE, DEFAULT_VOXEL_MM, VoxelGrid


@dataclass(frozen=True, eq=False)
class FrameVolume:
    """centre_mm (3,); grid; volume (K, G, G, G) 0/1 uint8: a numpy array on
    the CPU, a tensor on the stage's device otherwise; timings_ms of the
    centre finder and the build."""

    centre_mm: np.ndarray
    grid: VoxelGrid
    volume: Any
    timings_ms: dict[str, float] = field(default_factory=dict)

    def host(self) -> np.ndarray:
        """The volume as a numpy array (a copy off the GPU when it is there)."""
        vol = self.volume
        return vol if isinstance(vol, np.ndarray) else vol.cpu().numpy()


class VolumeStage:
    def __init__(self, rig: CameraRig, grid_size: int | None = None, voxel_mm: float | None = None,
                 device="cpu") -> None:
        """device: a torch device name or object; "cpu" builds with numpy. The
        centre finder keeps the whole performer inside the grid's extent."""
        self.rig = rig
        self.grid_size = int(grid_size or DEFAULT_GRID_SIZE)
        self.voxel_mm = float(voxel_mm or DEFAULT_VOXEL_MM)
        self.device = str(device)
        self.centre_finder = CentreFinder(rig, fit_extent_mm=self.grid_size * self.voxel_mm)
        if self.device.startswith("cuda"):
            from core.volume.builder_torch import TorchVolumeBuilder

            self.builder = TorchVolumeBuilder(rig, device, self.grid_size, self.voxel_mm, table=True)
        else:
            from core.volume.builder import VolumeBuilder

            self.builder = VolumeBuilder(rig, self.grid_size, self.voxel_mm)

    def prepare(self, progress=None) -> None:
        """The per-rig table now rather than on the first frame."""
        self.builder.prepare(progress)

    def build(self, silhouettes: Sequence[np.ndarray | None]) -> FrameVolume | None:
        """The frame's volume (one silhouette per camera, None for a lost
        one); None when no performer is found."""
        masks = list(silhouettes)
        t0 = time.perf_counter()
        centre = self.centre_finder.find(masks)
        t1 = time.perf_counter()
        if centre is None:
            return None
        grid = VoxelGrid.around(centre, self.grid_size, self.voxel_mm)
        volume = self.builder.build(masks, grid)
        t2 = time.perf_counter()
        return FrameVolume(centre, grid, volume, {"centre": (t1 - t0) * 1e3, "volume": (t2 - t1) * 1e3})
