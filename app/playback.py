"""Playing a take back in the 3D view, with a timeline.

`TakePlayer` loads a take's joints (the newest offline solve, else the live
solve placed on the take's frames) and IMU bone directions once, then steps
through them on a GUI timer at the take's frame rate, or jumps wherever the
timeline's scrubber is put. It emits `frame_changed(index)`; the main
window draws that frame in the 3D view (and ignores live frames meanwhile).

The character plays back on a skeleton posed from those joints and the
IMUs on load (:func:`body_poses`: the whole-take pose fit's analytic pose,
about 10,000 frames/s, so a minute of take costs a fifth of a second).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from core import skeleton as sk
from core.export.take_export import pick_joints
from core.kinematics import forward_kinematics
from core.posefit import fit_pose
from core.take.take import Take


@dataclass(frozen=True, eq=False)
class BodyPoses:
    """The character's skeleton over a take: offsets (22, 3) mm, positions
    (T, 22, 3) world mm, global rotations (T, 22, 3, 3)."""

    offsets_mm: np.ndarray
    positions_mm: np.ndarray
    rotations: np.ndarray


def body_poses(times_s: np.ndarray, joints_mm: np.ndarray, bone_wxyz: np.ndarray | None) -> BodyPoses | None:
    """One constant skeleton posed on every frame (frames without a performer
    filled as the export fills them); None when no frame has a performer."""
    try:
        fit = fit_pose(times_s, joints_mm, bone_wxyz, refine=False)
    except ValueError:
        return None
    poses = forward_kinematics(fit.offsets_mm, fit.root_mm, fit.local_rotations())
    return BodyPoses(fit.offsets_mm, poses.positions_mm, poses.rotations)


class TakePlayer(QObject):
    frame_changed = Signal(int)
    playing_changed = Signal(bool)
    unloaded = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.take: Take | None = None
        self.which = ""
        self.times_s = np.zeros(0)
        self.joints_mm = np.zeros((0, 0, 3))
        self.imu_origins = self.imu_dirs = None
        self.body: BodyPoses | None = None
        self.index = 0
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)

    def load(self, path: str | Path) -> None:
        """Open a take for playback (TakeError when it has no joints to show)."""
        self.stop()
        take = Take(path)
        joints, which = pick_joints(take)
        self.take, self.which = take, which
        self.times_s = joints.times_s
        self.joints_mm = joints.joints_mm
        calib = take.imu_calibration
        self.imu_origins = self.imu_dirs = None
        bones = None
        if calib is not None and len(joints):
            quats, _ = take.imu_at(joints.times_s)
            bones = np.stack([calib.bone_wxyz(q) for q in quats])
            arrows = [imu_bone_arrows(j, b) for j, b in zip(joints.joints_mm, bones)]
            self.imu_origins = np.stack([a[0] for a in arrows])
            self.imu_dirs = np.stack([a[1] for a in arrows])
        self.body = body_poses(joints.times_s, joints.joints_mm, bones)
        self._timer.setInterval(max(1, int(round(1000 / take.fps))))
        self.seek(0)

    def unload(self) -> None:
        self.stop()
        was_loaded = self.take is not None
        self.take = None
        self.times_s = np.zeros(0)
        self.joints_mm = np.zeros((0, 0, 3))
        self.body = None
        if was_loaded:
            self.unloaded.emit()

    @property
    def frames(self) -> int:
        return len(self.times_s)

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def seek(self, index: int) -> None:
        if self.frames == 0:
            return
        self.index = int(np.clip(index, 0, self.frames - 1))
        self.frame_changed.emit(self.index)

    def play(self) -> None:
        if self.frames and not self.playing:
            if self.index >= self.frames - 1:
                self.seek(0)
            self._timer.start()
            self.playing_changed.emit(True)

    def stop(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self.playing_changed.emit(False)

    def toggle(self) -> None:
        self.stop() if self.playing else self.play()

    def _tick(self) -> None:
        if self.index >= self.frames - 1:
            self.stop()
            return
        self.seek(self.index + 1)


def imu_bone_arrows(joints_mm: np.ndarray, bone_wxyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(13, 3) start joints and (13, 3) unit directions of the IMU bones (NaN where missing)."""
    from core.rotations import from_wxyz

    origins = np.array([joints_mm[b.start] for b in sk.IMU_BONES], float)
    dirs = np.full((sk.NUM_IMUS, 3), np.nan)
    ok = np.isfinite(bone_wxyz).all(axis=1)
    if ok.any():
        dirs[ok] = from_wxyz(bone_wxyz[ok]).apply(sk.IMU_BONE_REST_DIRECTIONS[ok])
    return origins, dirs
