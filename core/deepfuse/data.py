"""Training frames from the simulated studio, generated on the fly.

Every frame draws a training subject, a training motion and time, a camera
rig (a random 4-12 camera rig, or now and then the standard studio), and
renders silhouettes with noise; none of the seeds can be a held-out one
(core.sim.splits). Augmentations, as the method asks:

- rotation of the performer about the vertical axis through the hips,
  uniform in [-pi, pi];
- Random Shut: with probability p_shut one present camera's silhouette is
  zeroed (the camera still counts as present, as a failed matte would);
- silhouette noise (edges, holes, blobs), partial views and cameras that go
  missing (core.sim.silhouette_noise);
- IMU noise: per-sensor heading error (drift, calibration) and a small
  random rotation; with probability p_imu_drop one sensor is missing.

The grid is centred where the live centre finder would put it (it fits the
visual hull's extent into the volume): the middle of the joints' bounding
box plus a random error of centre_error_mm per axis.

Speed: projecting every voxel into every camera costs ~20 ms a camera, too
much per frame. So each rig of a small pool keeps pixel-index tables for a
few grid positions (each tall enough for any hip height); a frame picks a
rig and one of its positions and moves the performer there. The pool turns
over every rig_refresh frames, so over a run the rigs are all different.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.camera.rig import CameraRig, random_rig, standard_studio
from core.deepfuse.batch import Batch, Sample, collate
from core.deepfuse.imu_bone import bone_directions
from core.sim.body import body_primitives
from core.sim.motion import Performer, ProceduralMotion
from core.sim.render import render_silhouettes, set_cache_capacity
from core.sim.silhouette_noise import SilhouetteNoise, apply_noise
from core.sim.splits import train_seed
from core.sim.subject import Subject
from core.volume.grid import lattice_centres_mm, snap_origin
from core.volume.projection import FIELDS, RigProjection, pixel_coords

_STARTS = np.array([b.start for b in sk.IMU_BONES])


@dataclass(frozen=True)
class DataConfig:
    """seed: the stream of frames (two generators with one seed give the same
    frames). The rest: see the module docstring. Heights in mm."""

    seed: int = 0
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


class TrainingData:
    """An endless, reproducible stream of training frames (see module docstring)."""

    def __init__(self, cfg: DataConfig = DataConfig()) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng([cfg.seed, 0xDF])
        self._next_seed = int(self.rng.integers(0, 2**40))  # training item counter base
        self.standard = standard_studio().scaled(cfg.image_scale)
        set_cache_capacity(cameras=cfg.rig_pool * 12 + 16, rigs=cfg.rig_pool + 2)
        self.rigs = [self._new_rig() for _ in range(cfg.rig_pool)]
        self.clips: list[tuple[Subject, list]] = [self._new_clip() for _ in range(cfg.clip_pool)]
        self.frames = 0

    def _seed(self) -> int:
        self._next_seed += 1
        return train_seed(self._next_seed)

    def _new_rig(self) -> _RigSlot:
        if self.rng.uniform() < self.cfg.p_standard_rig:
            rig = self.standard
        else:
            rig = random_rig(self._seed()).scaled(self.cfg.image_scale)
        return _RigSlot(rig, self.cfg, self.rng)

    def _new_clip(self) -> tuple[Subject, list]:
        subject = Subject.from_seed(self._seed())
        performer = Performer(subject, ProceduralMotion(self._seed()))
        times = np.sort(self.rng.uniform(0.0, self.cfg.clip_seconds, self.cfg.poses_per_clip))
        p = performer.poses_at(times)
        return subject, [(p.positions_mm[i], p.rotations[i]) for i in range(len(times))]

    def _pose(self) -> tuple[Subject, np.ndarray, np.ndarray]:
        i = int(self.rng.integers(len(self.clips)))
        subject, poses = self.clips[i]
        pos, rot = poses.pop()
        if not poses:
            self.clips[i] = self._new_clip()
        return subject, pos, rot

    def sample(self) -> Sample:
        cfg, rng, G, s = self.cfg, self.rng, self.cfg.grid_size, self.cfg.voxel_mm
        self.frames += 1
        if self.frames % cfg.rig_refresh == 0:
            self.rigs[int(rng.integers(len(self.rigs)))] = self._new_rig()
        slot = self.rigs[int(rng.integers(len(self.rigs)))]
        gi = int(rng.integers(len(slot.tables)))
        subject, pos, rot = self._pose()
        hips = pos[sk.ROOT].copy()
        if cfg.yaw:
            yaw = Rotation.from_euler("z", rng.uniform(-np.pi, np.pi)).as_matrix()
            pos = (pos - hips) @ yaw.T + hips
            rot = yaw @ rot
        # Place the performer so that the (erroneous) centre estimate lands on the grid centre.
        centre = 0.5 * (pos.min(axis=0) + pos.max(axis=0)) + rng.normal(0.0, cfg.centre_error_mm, 3)
        ox, oy = slot.origins_xy[gi]
        shift = np.zeros(3)
        shift[:2] = (np.array([ox, oy]) + G / 2) * s - centre[:2]
        pos = pos + shift
        oz = int(np.clip(snap_origin(centre[2], G, s), slot.z0, slot.z1))
        body = body_primitives(subject, pos, rot)
        masks = render_silhouettes(body, slot.rig)
        masks = [apply_noise(m, cfg.noise, rng) for m in masks]
        present = np.array([m is not None for m in masks])
        partial = False
        if rng.uniform() < cfg.p_shut and present.any():
            k = int(rng.choice(np.flatnonzero(present)))
            masks[k] = np.zeros_like(masks[k])
            partial = True
        volume = slot.volume(masks, gi, oz, G)
        dirs, valid = self._bones(rot)
        origin = np.array([ox, oy, oz], np.float64) * s
        return Sample(volume, present, origin, dirs, valid, pos.astype(np.float32), partial)

    def _bones(self, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cfg, rng = self.cfg, self.rng
        r = Rotation.from_matrix(rot[_STARTS])
        heading = Rotation.from_euler("z", rng.normal(0.0, cfg.imu_heading_deg, (sk.NUM_IMUS, 1)), degrees=True)
        wobble = Rotation.from_rotvec(np.radians(rng.normal(0.0, cfg.imu_noise_deg, (sk.NUM_IMUS, 3))))
        dirs = bone_directions((heading * r * wobble).as_matrix()).astype(np.float32)
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
