"""The multi-channel volume: K x 64^3 voxels, one channel per camera, on a
lattice-aligned grid centred on the performer (found by a coarse visual hull).

- grid.py: VoxelGrid (a cube on the global lattice) and LatticeBox
- projection.py: the rig's cameras stacked for batched, exact projection
- builder.py: VolumeBuilder, numpy + OpenCV on the CPU
- builder_torch.py: TorchVolumeBuilder, the same volumes on a torch device
- centre.py: CentreFinder / find_performer_centre
"""

from core.volume.builder import VolumeBuilder
from core.volume.centre import CentreFinder, find_performer_centre
from core.volume.grid import LatticeBox, VoxelGrid

__all__ = ["CentreFinder", "LatticeBox", "VolumeBuilder", "VoxelGrid", "find_performer_centre"]
