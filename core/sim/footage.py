"""Footage of the simulated studio as a real studio would record it: one
lossless video per camera (FFV1) of colour images (core.sim.scene), the
stage empty for the first `empty_s` seconds and the performer in it after
that, with the true masks and joints kept for scoring."""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.sim.scene import SceneRenderer
from core.sim.studio import SimulatedStudio, StudioConfig


@dataclass
class StudioFootage:
    folder: Path
    studio: SimulatedStudio
    fps: float
    empty_frames: int
    masks: list[list[np.ndarray | None]]  # [frame][camera], None while the stage is empty

    @property
    def rig(self):
        return self.studio.rig

    def frame_at(self, t_recorded_s: float) -> int:
        return int(round(t_recorded_s * self.fps))


def render_footage(folder: Path, seconds: float = 3.0, fps: float = 10.0, empty_s: float = 1.0,
                   seed: int = 3, cameras: tuple[int, ...] | None = None) -> StudioFootage:
    """cameras: which of the standard studio's 8 cameras film (default all)."""
    from core.camera.rig import CameraRig, standard_studio

    folder.mkdir(parents=True, exist_ok=True)
    rig = standard_studio()
    if cameras is not None:
        rig = CameraRig(tuple(rig.cameras[k] for k in cameras), rig.area)
    studio = SimulatedStudio(StudioConfig(seed=seed, camera_fps=fps, rig=rig))
    scene = SceneRenderer(studio, seed=seed)
    w, h = studio.rig.cameras[0].size
    writers = [cv2.VideoWriter(str(folder / f"cam{k}.mkv"), cv2.VideoWriter_fourcc(*"FFV1"), fps, (w, h))
               for k in range(len(studio.rig))]
    assert all(wr.isOpened() for wr in writers), "OpenCV cannot write FFV1 here"
    n, n_empty = int(round(seconds * fps)), int(round(empty_s * fps))
    masks = []
    for i in range(n):
        t = i / fps
        if i < n_empty:
            images, frame_masks = scene.empty_frame(t), [None] * len(writers)
        else:
            shot = scene.render(t)
            images, frame_masks = shot.images, shot.masks
        for wr, img in zip(writers, images):
            wr.write(img)
        masks.append(frame_masks)
    for wr in writers:
        wr.release()
    return StudioFootage(folder, studio, fps, n_empty, masks)
