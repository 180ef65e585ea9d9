"""The per-frame pipeline, synchronous: one call per frame, no threads.

Frame bundle -> performer centre (coarse visual hull) -> K x 64^3 volume
centred on the performer. The DeepFuse solve plugs in after the volume.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from core.camera.rig import CameraRig
from core.frames import FrameBundle
from core.volume.builder import VolumeBuilder
from core.volume.centre import CentreFinder
from core.volume.grid import VoxelGrid


@dataclass(frozen=True, eq=False)
class FrameResult:
    """centre_mm is None when no performer was found (then grid and volume are None)."""

    index: int
    t_s: float
    centre_mm: np.ndarray | None
    grid: VoxelGrid | None
    volume: np.ndarray | None
    timings_ms: dict[str, float] = field(default_factory=dict)


class Pipeline:
    def __init__(self, rig: CameraRig) -> None:
        self.rig = rig
        self.centre_finder = CentreFinder(rig)
        self.builder = VolumeBuilder(rig)

    def prepare(self, progress=None) -> None:
        """Precompute per-rig tables now rather than on the first frame."""
        self.builder.prepare(progress)

    def process(self, bundle: FrameBundle) -> FrameResult:
        t0 = time.perf_counter()
        centre = self.centre_finder.find(list(bundle.silhouettes))
        t1 = time.perf_counter()
        timings = {"centre": (t1 - t0) * 1e3}
        if centre is None:
            return FrameResult(bundle.index, bundle.t_s, None, None, None, timings)
        grid = self.builder.grid_around(centre)
        volume = self.builder.build(list(bundle.silhouettes), grid)
        timings["volume"] = (time.perf_counter() - t1) * 1e3
        return FrameResult(bundle.index, bundle.t_s, centre, grid, volume, timings)
