"""The per-frame pipeline, synchronous: one call per frame, no threads.

Frame bundle -> performer centre (coarse visual hull) -> K x 64^3 volume
centred on the performer -> (with an inference engine) DeepFuse joints.

IMU samples arrive as sensor orientations; the engine wants bone
orientations, which need each sensor's wear offset and heading (the IMU
calibration). `bones` maps a bundle to (13, 4) wxyz bone orientations (NaN
rows for missing sensors); without it the solve runs on vision alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from core.camera.rig import CameraRig
from core.frames import FrameBundle
from core.volume.builder import VolumeBuilder
from core.volume.centre import CentreFinder
from core.volume.grid import VoxelGrid

if TYPE_CHECKING:  # torch is imported only when an engine is used
    from core.deepfuse.engine import InferenceEngine, Solve


@dataclass(frozen=True, eq=False)
class FrameResult:
    """centre_mm is None when no performer was found (then grid and volume are None)."""

    index: int
    t_s: float
    centre_mm: np.ndarray | None
    grid: VoxelGrid | None
    volume: np.ndarray | None
    timings_ms: dict[str, float] = field(default_factory=dict)
    solve: Solve | None = None


class Pipeline:
    def __init__(self, rig: CameraRig, engine: InferenceEngine | None = None,
                 bones: Callable[[FrameBundle], np.ndarray | None] | None = None) -> None:
        self.rig = rig
        self.engine = engine
        self.bones = bones
        if engine is not None and isinstance(engine.builder, VolumeBuilder):
            # On the CPU the engine's centre finder and per-rig table serve as the
            # pipeline's own: one table in memory, built once.
            self.centre_finder, self.builder = engine.centre_finder, engine.builder
        elif engine is not None:  # CUDA: the engine builds on the GPU; the pipeline keeps a host copy
            self.centre_finder = CentreFinder(rig, fit_extent_mm=engine.cfg.grid_size * engine.cfg.voxel_mm)
            self.builder = VolumeBuilder(rig, engine.cfg.grid_size, engine.cfg.voxel_mm)
        else:
            self.centre_finder = CentreFinder(rig)
            self.builder = VolumeBuilder(rig)

    def prepare(self, progress=None) -> None:
        """Precompute per-rig tables now rather than on the first frame (and
        the engine's optimised forward: call this from the solving thread)."""
        self.builder.prepare(progress)
        if self.engine is not None:
            self.engine.prepare()

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
        solve = None
        if self.engine is not None:
            present = np.array([m is not None for m in bundle.silhouettes])
            bones = self.bones(bundle) if self.bones is not None else None
            solve = self.engine.solve_volume(centre, grid, volume, present, bones)
            timings["network"] = solve.timings_ms["network"]
        return FrameResult(bundle.index, bundle.t_s, centre, grid, volume, timings, solve)
