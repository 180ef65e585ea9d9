"""The per-frame pipeline, synchronous: one call per frame, no threads.

Frame bundle -> performer centre (coarse visual hull) -> K x 64^3 volume
centred on the performer -> (with an inference engine) DeepFuse joints.

IMU samples arrive as sensor orientations; the engine wants bone
orientations, which need each sensor's wear offset and heading (the IMU
calibration). `bones` maps a bundle to (13, 4) wxyz bone orientations (NaN
rows for missing sensors); without it the solve runs on vision alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from core.camera.rig import CameraRig
from core.frames import FrameBundle
from core.volume.grid import VoxelGrid
from core.volume.stage import FrameVolume, VolumeStage

if TYPE_CHECKING:  # torch is imported only when an engine is used
    from core.deepfuse.engine import InferenceEngine, Solve


@dataclass(frozen=True, eq=False)
class FrameResult:
    """centre_mm is None when no performer was found (then grid and volume
    are None). volume: (K, G, G, G) 0/1 on the host, for the view. bone_wxyz:
    the frame's (13, 4) IMU bone orientations the solve used (NaN rows:
    missing), computed once per frame for the solve and whoever draws or
    streams the pose; None without an IMU calibration."""

    index: int
    t_s: float
    centre_mm: np.ndarray | None
    grid: VoxelGrid | None
    volume: np.ndarray | None
    timings_ms: dict[str, float] = field(default_factory=dict)
    solve: Solve | None = None
    bone_wxyz: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class StagedFrame:
    """A frame between the pipeline's two parts (`Pipeline.stage`,
    `Pipeline.solve`): the bundle, its bone orientations and its volume
    (None: no performer found)."""

    bundle: FrameBundle
    bone_wxyz: np.ndarray | None
    volume: FrameVolume | None


class Pipeline:
    def __init__(self, rig: CameraRig, engine: InferenceEngine | None = None,
                 bones: Callable[[FrameBundle], np.ndarray | None] | None = None) -> None:
        self.rig = rig
        self.engine = engine
        self.bones = bones
        # The engine's volume stage when there is one (on its device, one
        # per-rig table in memory); a CPU stage of the default grid otherwise.
        self.volumes = engine.volumes if engine is not None else VolumeStage(rig)

    def prepare(self, progress=None) -> None:
        """Precompute per-rig tables now rather than on the first frame (and
        the engine's optimised forward: call this from the solving thread)."""
        self.volumes.prepare(progress)
        if self.engine is not None:
            self.engine.prepare()

    def process(self, bundle: FrameBundle) -> FrameResult:
        return self.solve(self.stage(bundle))

    def stage(self, bundle: FrameBundle) -> StagedFrame:
        """The frame's first part: its bone orientations, the performer centre
        and the volume (what holds Python's lock most; the live session runs it
        on one thread and `solve` on another)."""
        bones = self.bones(bundle) if self.bones is not None else None
        return StagedFrame(bundle, bones, self.volumes.build(bundle.silhouettes))

    def solve(self, staged: StagedFrame) -> FrameResult:
        """The frame's second part: the network on the staged volume."""
        bundle, bones, got = staged.bundle, staged.bone_wxyz, staged.volume
        if got is None:
            return FrameResult(bundle.index, bundle.t_s, None, None, None, {}, None, bones)
        timings = dict(got.timings_ms)
        solve = None
        if self.engine is not None:
            present = np.array([m is not None for m in bundle.silhouettes])
            solve = self.engine.solve_volume(got.centre_mm, got.grid, got.volume, present, bones)
            timings["network"] = solve.timings_ms["network"]
        return FrameResult(bundle.index, bundle.t_s, got.centre_mm, got.grid, got.host(), timings, solve, bones)
