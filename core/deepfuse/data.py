"""Training frames from the simulated studio, generated on the fly.

Every frame draws a training subject, a training motion and time, a camera
rig (a random 4-12 camera rig, or now and then the standard studio), and
renders silhouettes with noise; none of the seeds can be a held-out one
(core.sim.splits).

Motion comes in clips: a subject plays one motion and poses_per_clip poses
at random times of it are kept (clip_pool clips are open at once). Each
clip's motion is drawn from one of four sources:

- recorded human motion, with probability p_recorded: a clip of a CMU
  training subject (core.sim.splits.CMU_TRAIN_SUBJECTS; the held-out
  subjects never play) from the folder `motion_dir` (default: the
  FUSECAP_MOTION_DIR environment variable; with neither, this share goes to
  the procedural actions and a log line says so). A clip is drawn with a
  chance about proportional to its length (its file size), mirrored left
  for right with probability p_mirror, played at a speed uniform in
  `speed_range`, set on the floor (core.sim.motion.augment) and retargeted to
  the subject's proportions by the performer; poses are taken at random
  times of it (so for single frames the speed changes nothing but which
  instants are drawn; it is there for anything that reads poses in time).
  Parsed and retargeted clips are kept in an LRU of `motion_cache` clips
  (the CMU training set is 45 clips, ~1.5 MB each, ~0.3 s each to load);
- random poses within the joint limits, with probability p_random_poses
  (core.sim.motion.wide.RandomPoses);
- the upper body of one procedural motion on the lower body of another,
  with probability p_mixed (core.sim.motion.wide.UpperLowerMix);
- the IMU calibration routine (hold the T- or N-pose, bow, squat, heels;
  core.sim.motion.calibration), with probability p_routine: the network
  solves it from the cameras alone before the IMUs are calibrated, and the
  calibration is only as good as those joints;
- the procedural actions (core.sim.motion.ProceduralMotion): the rest.

Bodies: `body` "capsule" (a seed's capsules and ellipsoids) or "mesh" (a
skinned Anny mesh, clothed on some; core.sim.bodies, docs/BODIES.md), drawn
from `subject_pool` training seeds, each built once and cached on disk.

CMU clips: "The data used in this project was obtained from
mocap.cs.cmu.edu. The database was created with funding from NSF
EIA-0196217."

Augmentations, as the method asks:

- rotation of the performer about the vertical axis through the hips,
  uniform in [-pi, pi];
- Random Shut: with probability p_shut one present camera's silhouette is
  zeroed (the camera still counts as present, as a failed matte would);
- silhouette noise (edges, holes, blobs), partial views and cameras that go
  missing (core.sim.silhouette_noise);
- IMU errors as a run with an estimated (not true) calibration has them:
  mostly constant over a take, so drawn once per clip and sensor: a
  wear-offset error (a rotation in the bone's frame about a random axis,
  angle ~ N(0, imu_wear_error_deg)) and a heading error (about the
  vertical, ~ N(0, imu_heading_deg)); on top, every frame, a small random
  rotation (~ N(0, imu_noise_deg) per axis). With probability p_imu_drop
  one sensor is missing.

The grid is centred where the live centre finder would put it (it fits the
visual hull's extent into the volume): the middle of the joints' bounding
box plus a random error of centre_error_mm per axis. A performer whose
middle is outside centre_z_mm (hanging from a bar in a recorded clip) is
first moved to the nearest height in it.

Speed: projecting every voxel into every camera costs ~20 ms a camera, too
much per frame. So each rig of a small pool keeps pixel-index tables for a
few grid positions (each tall enough for any hip height); a frame picks a
rig and one of its positions and moves the performer there. The pool turns
over every rig_refresh frames, so over a run the rigs are all different.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.camera.rig import CameraRig, random_rig, standard_studio
from core.deepfuse.batch import Batch, Sample, collate
from core.deepfuse.imu_bone import bone_directions
from core.sim.bodies import make_subject, pose_body, render_body_silhouettes
from core.sim.motion import BvhMotion, Motion, Performer, ProceduralMotion, load_bvh
from core.sim.motion.augment import Floored, Mirrored, Retimed
from core.sim.motion.calibration import POSES, CalibrationRoutine
from core.sim.motion.wide import RandomPoses, UpperLowerMix
from core.sim.render import set_cache_capacity
from core.sim.silhouette_noise import SilhouetteNoise, apply_noise
from core.sim.splits import CMU_TRAIN_SUBJECTS, cmu_clips, train_seed
from core.sim.subject import Subject
from core.volume.grid import lattice_centres_mm, snap_origin
from core.volume.projection import FIELDS, RigProjection, pixel_coords

log = logging.getLogger(__name__)

_STARTS = np.array([b.start for b in sk.IMU_BONES])
MOTION_DIR_ENV = "FUSECAP_MOTION_DIR"
SOURCES = ("actions", "recorded", "random_poses", "mixed", "routine")
# Where a training frame's time goes (TrainingData.stage_s): new rigs' index
# tables, new clips (body, motion, poses), skinning, rendering, silhouette
# noise, the volume, the IMUs.
STAGES = ("rig", "clip", "skin", "render", "noise", "volume", "imu")


@dataclass(frozen=True)
class DataConfig:
    """seed: the stream of frames (two generators with one seed give the same
    frames). motion_dir: a folder of CMU clips (SSS_TT.bvh or .bvh.gz), None:
    $FUSECAP_MOTION_DIR if set, else procedural motion only. The rest: see
    the module docstring. Heights in mm, angles in degrees."""

    seed: int = 0
    motion_dir: str | None = None
    p_recorded: float = 0.5
    p_random_poses: float = 0.1
    p_mixed: float = 0.15
    p_routine: float = 0.0
    body: str = "capsule"
    subject_pool: int = 3000
    p_mirror: float = 0.5
    speed_range: tuple[float, float] = (0.8, 1.25)
    motion_cache: int = 64
    grid_size: int = 64
    voxel_mm: float = 35.0
    image_scale: float = 0.25
    p_standard_rig: float = 0.2
    rig_pool: int = 6
    grids_per_rig: int = 4
    rig_refresh: int = 150
    clip_pool: int = 8
    poses_per_clip: int = 12
    clip_seconds: float = 60.0
    centre_error_mm: float = 50.0
    centre_z_mm: tuple[float, float] = (350.0, 1450.0)
    yaw: bool = True
    p_shut: float = 0.2
    noise: SilhouetteNoise = field(default_factory=SilhouetteNoise)
    imu_wear_error_deg: float = 5.0
    imu_heading_deg: float = 4.0
    imu_noise_deg: float = 2.0
    p_imu_drop: float = 0.2


class _RigSlot:
    """A rig (image-scaled) and index tables for a few grid positions."""

    def __init__(self, rig: CameraRig, cfg: DataConfig, rng: np.random.Generator) -> None:
        self.rig = rig
        G, s = cfg.grid_size, cfg.voxel_mm
        proj = RigProjection.from_rig(rig)
        counts = proj.pixel_counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.stride = int(counts.sum()) + 1  # the last byte is the off-image sentinel
        tab = torch.tensor(proj.table.copy(), dtype=torch.float32)
        c = {n: tab[:, i].reshape(-1, 1, 1, 1) for i, n in enumerate(FIELDS)}
        off = torch.tensor(self.offsets, dtype=torch.float64).reshape(-1, 1, 1, 1)
        self.z0 = snap_origin(cfg.centre_z_mm[0], G, s)
        self.z1 = snap_origin(cfg.centre_z_mm[1], G, s)
        depth = self.z1 - self.z0 + G
        Z = torch.tensor(lattice_centres_mm(self.z0, depth, s), dtype=torch.float32).reshape(1, 1, 1, -1)
        a = rig.area
        self.origins_xy: list[tuple[int, int]] = []
        self.tables: list[np.ndarray] = []
        for _ in range(cfg.grids_per_rig):
            cx, cy = rng.uniform(a.x_min + 400, a.x_max - 400), rng.uniform(a.y_min + 400, a.y_max - 400)
            ox, oy = snap_origin(cx, G, s), snap_origin(cy, G, s)
            X = torch.tensor(lattice_centres_mm(ox, G, s), dtype=torch.float32).reshape(1, -1, 1, 1)
            Y = torch.tensor(lattice_centres_mm(oy, G, s), dtype=torch.float32).reshape(1, 1, -1, 1)
            col, row, ok = pixel_coords(c, X, Y, Z, torch)
            flat = (row.double() * c["w"].double() + col.double()) + off
            idx = torch.where(ok, flat, float(self.stride - 1)).to(torch.int32)
            self.origins_xy.append((ox, oy))
            self.tables.append(idx.numpy())

    def volume(self, masks: list[np.ndarray | None], grid_i: int, oz: int, G: int) -> np.ndarray:
        flat = np.zeros(self.stride, np.uint8)
        for m, o in zip(masks, self.offsets):
            if m is not None:
                flat[o:o + m.size] = m.reshape(-1)
        dz = oz - self.z0
        return np.take(flat, self.tables[grid_i][:, :, :, dz:dz + G])


@dataclass
class _Clip:
    """An open clip: its subject, the poses left to use, where its motion came
    from, and its sensors' errors that hold for the whole clip (wear-offset
    error in the bone frame, heading error about the vertical)."""

    subject: Subject
    body: object  # core.sim.bodies.SimBody: what is rendered
    poses: list
    source: str
    imu_wear: Rotation
    imu_heading: Rotation


class RecordedLibrary:
    """The training subjects' CMU clips in a folder, parsed, retargeted and set
    on the floor when first drawn, the last `capacity` kept (an LRU).
    load_s / loads: the time spent loading and how many loads (a clip that
    left the cache and comes back counts again)."""

    def __init__(self, folder: str | Path, capacity: int = 64) -> None:
        self.folder = Path(folder)
        self.files = cmu_clips(self.folder, "train")
        if not self.files:
            raise ValueError(f"motion folder {self.folder} holds no clips of the CMU training subjects "
                             f"{CMU_TRAIN_SUBJECTS} (named like 001_01.bvh or 001_01.bvh.gz)")
        sizes = np.array([max(p.stat().st_size, 1) for p in self.files], np.float64)
        self.weights = sizes / sizes.sum()   # about proportional to each clip's length
        self.capacity = max(int(capacity), 1)
        self._cache: OrderedDict[int, tuple[Motion, float]] = OrderedDict()
        self.load_s = 0.0
        self.loads = 0

    def __len__(self) -> int:
        return len(self.files)

    def draw(self, rng: np.random.Generator) -> int:
        return int(rng.choice(len(self.files), p=self.weights))

    def motion(self, i: int) -> tuple[Motion, float]:
        """Clip i as a motion on the floor (holding its last frame) and its duration, s."""
        hit = self._cache.get(i)
        if hit is not None:
            self._cache.move_to_end(i)
            return hit
        t0 = time.perf_counter()
        clip = BvhMotion(load_bvh(self.files[i]), loop=False)
        frame_times = np.arange(clip.clip.num_frames) * clip.clip.frame_time_s
        hit = (Floored(clip, frame_times), clip.duration_s)
        self.load_s += time.perf_counter() - t0
        self.loads += 1
        self._cache[i] = hit
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return hit


def motion_folder(cfg: DataConfig) -> Path | None:
    """The recorded-motion folder a config uses: cfg.motion_dir, else
    $FUSECAP_MOTION_DIR, else None."""
    folder = cfg.motion_dir or os.environ.get(MOTION_DIR_ENV) or None
    return Path(folder) if folder else None


class TrainingData:
    """An endless, reproducible stream of training frames (see module docstring).

    sources: how many clips each motion source has given so far (SOURCES).
    stage_s: seconds spent in each stage of making frames so far (STAGES)."""

    def __init__(self, cfg: DataConfig = DataConfig()) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng([cfg.seed, 0xDF])
        self._next_seed = int(self.rng.integers(0, 2**40))  # training item counter base
        self.standard = standard_studio().scaled(cfg.image_scale)
        set_cache_capacity(cameras=cfg.rig_pool * 12 + 16, rigs=cfg.rig_pool + 2)
        shares = (cfg.p_recorded, cfg.p_random_poses, cfg.p_mixed, cfg.p_routine)
        if min(shares) < 0 or sum(shares) > 1 + 1e-9:
            raise ValueError("p_recorded, p_random_poses, p_mixed and p_routine must be >= 0 with a sum <= 1, "
                             f"got {shares}")
        lo, hi = cfg.speed_range
        if not 0 < lo <= hi:
            raise ValueError(f"speed_range must be 0 < lo <= hi, got {cfg.speed_range}")
        folder = motion_folder(cfg)
        self.recorded = RecordedLibrary(folder, cfg.motion_cache) if folder is not None else None
        if self.recorded is None:
            log.info("training motion: procedural only (no DataConfig.motion_dir and %s unset)", MOTION_DIR_ENV)
        else:
            log.info("training motion: %d recorded clips of CMU subjects %s from %s for %.0f%% of clips",
                     len(self.recorded), CMU_TRAIN_SUBJECTS, folder, 100 * cfg.p_recorded)
        p_rec = cfg.p_recorded if self.recorded is not None else 0.0
        w = np.array([0.0, p_rec, cfg.p_random_poses, cfg.p_mixed, cfg.p_routine])
        w[0] = max(1.0 - w.sum(), 0.0)
        self._source_p = w / w.sum()
        self.sources = dict.fromkeys(SOURCES, 0)
        self.stage_s = dict.fromkeys(STAGES, 0.0)
        self.rigs = [self._new_rig() for _ in range(cfg.rig_pool)]
        self.clips: list[_Clip] = [self._new_clip() for _ in range(cfg.clip_pool)]
        self.frames = 0

    def _seed(self) -> int:
        self._next_seed += 1
        return train_seed(self._next_seed)

    def _subject_seed(self) -> int:
        """Mesh bodies come from a pool of `subject_pool` training seeds (each
        built once and cached on disk); capsule bodies from the endless stream."""
        if self.cfg.body == "mesh":
            return train_seed(int(self.rng.integers(self.cfg.subject_pool)))
        return self._seed()

    def _new_rig(self) -> _RigSlot:
        if self.rng.uniform() < self.cfg.p_standard_rig:
            rig = self.standard
        else:
            rig = random_rig(self._seed()).scaled(self.cfg.image_scale)
        return _RigSlot(rig, self.cfg, self.rng)

    def _motion(self, source: str) -> tuple[Motion, float]:
        """A motion of this source and the length of time to take poses from."""
        cfg, rng = self.cfg, self.rng
        if source == "recorded":
            motion, duration = self.recorded.motion(self.recorded.draw(rng))
            if rng.uniform() < cfg.p_mirror:
                motion = Mirrored(motion)
            speed = float(rng.uniform(*cfg.speed_range))
            return Retimed(motion, speed), duration / speed
        if source == "random_poses":
            return RandomPoses(self._seed()), cfg.clip_seconds
        if source == "mixed":
            return UpperLowerMix(ProceduralMotion(self._seed()), ProceduralMotion(self._seed())), cfg.clip_seconds
        if source == "routine":
            # The IMU calibration routine (known pose, bow, squat, heels) the
            # network must solve from the cameras alone before the IMUs are calibrated.
            routine = CalibrationRoutine(ProceduralMotion(self._seed()), str(rng.choice(POSES)),
                                         float(rng.uniform(2.0, 4.0)))
            return routine, routine.duration_s
        return ProceduralMotion(self._seed()), cfg.clip_seconds

    def _new_clip(self) -> _Clip:
        cfg, rng = self.cfg, self.rng
        source = SOURCES[int(rng.choice(len(SOURCES), p=self._source_p))]
        body = make_subject(self._subject_seed(), cfg.body)
        subject = body.subject
        motion, seconds = self._motion(source)
        times = np.sort(rng.uniform(0.0, seconds, cfg.poses_per_clip))
        p = Performer(subject, motion).poses_at(times)
        axis = rng.normal(size=(sk.NUM_IMUS, 3))
        axis /= np.linalg.norm(axis, axis=1, keepdims=True)
        wear = Rotation.from_rotvec(axis * np.radians(rng.normal(0.0, cfg.imu_wear_error_deg, (sk.NUM_IMUS, 1))))
        heading = Rotation.from_euler("z", rng.normal(0.0, cfg.imu_heading_deg, (sk.NUM_IMUS, 1)), degrees=True)
        self.sources[source] += 1
        return _Clip(subject, body, [(p.positions_mm[i], p.rotations[i]) for i in range(len(times))], source,
                     wear, heading)

    def _pose(self) -> tuple[_Clip, np.ndarray, np.ndarray]:
        i = int(self.rng.integers(len(self.clips)))
        clip = self.clips[i]
        pos, rot = clip.poses.pop()
        if not clip.poses:
            t0 = time.perf_counter()
            self.clips[i] = self._new_clip()
            self.stage_s["clip"] += time.perf_counter() - t0
        return clip, pos, rot

    def _lap(self, stage: str, t0: float) -> float:
        t = time.perf_counter()
        self.stage_s[stage] += t - t0
        return t

    def sample(self) -> Sample:
        cfg, rng, G, s = self.cfg, self.rng, self.cfg.grid_size, self.cfg.voxel_mm
        self.frames += 1
        if self.frames % cfg.rig_refresh == 0:
            t0 = time.perf_counter()
            self.rigs[int(rng.integers(len(self.rigs)))] = self._new_rig()
            self._lap("rig", t0)
        slot = self.rigs[int(rng.integers(len(self.rigs)))]
        gi = int(rng.integers(len(slot.tables)))
        clip, pos, rot = self._pose()
        hips = pos[sk.ROOT].copy()
        if cfg.yaw:
            yaw = Rotation.from_euler("z", rng.uniform(-np.pi, np.pi)).as_matrix()
            pos = (pos - hips) @ yaw.T + hips
            rot = yaw @ rot
        mid_z = 0.5 * (pos[:, 2].min() + pos[:, 2].max())
        pos = pos + [0.0, 0.0, np.clip(mid_z, *cfg.centre_z_mm) - mid_z]
        # Place the performer so that the (erroneous) centre estimate lands on the grid centre.
        centre = 0.5 * (pos.min(axis=0) + pos.max(axis=0)) + rng.normal(0.0, cfg.centre_error_mm, 3)
        ox, oy = slot.origins_xy[gi]
        shift = np.zeros(3)
        shift[:2] = (np.array([ox, oy]) + G / 2) * s - centre[:2]
        pos = pos + shift
        oz = int(np.clip(snap_origin(centre[2], G, s), slot.z0, slot.z1))
        t = time.perf_counter()
        posed = pose_body(clip.body, pos, rot)
        t = self._lap("skin", t)
        masks = render_body_silhouettes(posed, slot.rig)
        t = self._lap("render", t)
        masks = [apply_noise(m, cfg.noise, rng) for m in masks]
        present = np.array([m is not None for m in masks])
        partial = False
        if rng.uniform() < cfg.p_shut and present.any():
            k = int(rng.choice(np.flatnonzero(present)))
            masks[k] = np.zeros_like(masks[k])
            partial = True
        t = self._lap("noise", t)
        volume = slot.volume(masks, gi, oz, G)
        t = self._lap("volume", t)
        dirs, valid = self._bones(rot, clip)
        self._lap("imu", t)
        origin = np.array([ox, oy, oz], np.float64) * s
        return Sample(volume, present, origin, dirs, valid, pos.astype(np.float32), partial)

    def _bones(self, rot: np.ndarray, clip: _Clip) -> tuple[np.ndarray, np.ndarray]:
        cfg, rng = self.cfg, self.rng
        r = Rotation.from_matrix(rot[_STARTS])
        wobble = Rotation.from_rotvec(np.radians(rng.normal(0.0, cfg.imu_noise_deg, (sk.NUM_IMUS, 3))))
        dirs = bone_directions((clip.imu_heading * r * clip.imu_wear * wobble).as_matrix()).astype(np.float32)
        valid = np.ones(sk.NUM_IMUS, bool)
        if rng.uniform() < cfg.p_imu_drop:
            valid[int(rng.integers(sk.NUM_IMUS))] = False
        return dirs, valid

    def batch(self, size: int) -> Batch:
        return collate([self.sample() for _ in range(size)])


class TrainingStream(torch.utils.data.IterableDataset):
    """Endless batches for a torch DataLoader: each worker process runs its
    own TrainingData with its own seed (cfg.seed, worker id), so N workers
    render N times the frames a second (a GPU needs several hundred)."""

    def __init__(self, cfg: DataConfig, batch_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.batch_size = batch_size

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid = 0 if info is None else info.id
        torch.set_num_threads(1)  # workers render with numpy; leave the cores to them
        data = TrainingData(replace(self.cfg, seed=self.cfg.seed * 1009 + wid))
        while True:
            yield data.batch(self.batch_size)


def batches(cfg: DataConfig, batch_size: int, workers: int = 0, pin_memory: bool = False):
    """An endless iterator of Batches; workers > 0 renders in that many processes."""
    if workers <= 0:
        data = TrainingData(cfg)
        while True:
            yield data.batch(batch_size)
    loader = torch.utils.data.DataLoader(TrainingStream(cfg, batch_size), batch_size=None, num_workers=workers,
                                         pin_memory=pin_memory, prefetch_factor=4, persistent_workers=True)
    yield from loader
