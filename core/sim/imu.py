"""Simulated body-worn IMUs: 13 sensors strapped to the TotalCapture bones.

Frames (all right-handed; rotations written "A -> B" map vectors expressed
in frame A to frame B):

- world: Z up, the studio's frame (positions in mm, as in :mod:`core.kinematics`).
- bone b: G_b(t), bone -> world, the global rotation of the bone's start
  joint (:data:`core.skeleton.IMU_BONES`, sensor id = index there).
- sensor k: W_k, sensor -> bone, the wear offset. Constant, unknown to the
  solver: a nominal mounting (one of the 24 axis-aligned rotations, so sensor
  axes need not match bone axes) times a random rotation of up to
  ``wear_max_deg`` about a random axis.
- reference k: the sensor's own "world", Z up (it finds up from gravity) but
  with an arbitrary heading. Reference -> world is H_k(t) = Rz(psi_k(t)) with
  psi_k(t) = h_k + r_k (t - t0) + w_k(t - t0): h_k uniform in [-pi, pi]
  (``heading_offsets``), r_k a constant drift rate uniform in
  [-drift, +drift] deg/min, w_k an optional random walk (knots every second,
  linear in between, zero before the rig's start t0).

Measured orientation (sensor -> reference), scalar-first at the boundary:

    q_k(t) = H_k(t)^-1 * G_b(t) * W_k * N_k(t)

N_k(t) a small random rotation with rotation vector ~ Normal(0, noise_deg^2 I)
(per axis; RMS angle sqrt(3) noise_deg), applied in the sensor frame. Without
noise the bone orientation comes back exactly: G_b = H_k(t) * q_k * W_k^-1
(:func:`recover_bone_orientations`).

Inertial channels (optional), in the sensor frame:

- accelerometer: specific force f = R_s^-1 (a + g_up), R_s = G_b W_k the
  sensor -> world rotation, a the second derivative (central differences of
  ``poses_fn`` at t +- dt) of the sensor's position, which sits at the bone's
  midpoint pushed ``surface_offset_mm`` out from the bone axis (a fixed
  direction in the bone frame), g_up = (0, 0, 9.81) m/s^2. A sensor at rest
  reads 9.81 m/s^2 along the world's up expressed in its own axes.
- gyroscope: angular rate in the sensor frame, rad/s: the rotation vector of
  R_s(t-dt)^-1 R_s(t+dt) over 2 dt.
- plus white noise and an optional constant per-sensor bias.

Timing: sensor k samples at t0 + phase_k + n / rate_hz + jitter_{k,n}
(phase uniform in one period, jitter uniform in [-jitter_s, jitter_s]); the
timestamp is that sampling time plus ``latency_s`` (monotonic seconds; a
consumer sensor's stamp is late by its radio link). Outages (explicit or
random) remove samples.

Every random quantity of a sample is a hash of (seed, sensor, sample index),
so the same rig and interval give the same samples, and synthesising [a, b)
then [b, c) gives exactly the samples of [a, c).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.devices import ImuSample
from core.imu.calibration import bone_orientations
from core.kinematics import Poses
from core.rotations import to_wxyz, yaw
from core.sim import imu_config as rnd
from core.sim.imu_config import GRAVITY_MPS2, ImuConfig

__all__ = ["ImuConfig", "ImuSamples", "SimulatedImus", "recover_bone_orientations", "PosesFn"]

PosesFn = Callable[[np.ndarray], Poses]

_START = np.array([b.start for b in sk.IMU_BONES])
_END = np.array([b.end for b in sk.IMU_BONES])
_WALK_KNOT_S = 1.0


@dataclass(frozen=True, eq=False)
class ImuSamples:
    """Samples of one or more sensors, sorted by (t_s, sensor_id).

    t_s: (N,) monotonic seconds. sensor_id: (N,) int, index into IMU_BONES.
    quat_wxyz: (N, 4) measured orientation, sensor -> its reference frame,
    scalar-first, unit, w >= 0. accel_mps2 / gyro_radps: (N, 3) specific
    force (m/s^2) and angular rate (rad/s) in the sensor frame, or None.

    Ground truth alongside: bone_wxyz (N, 4) the bone's global rotation
    (bone -> world); heading_rad (N,) the heading of the sensor's reference
    frame at t_s (reference -> world = Rz(heading)), drift included, wrapped
    to [-pi, pi); wear_wxyz (13, 4) every sensor's wear offset (sensor -> bone).
    """

    t_s: np.ndarray
    sensor_id: np.ndarray
    quat_wxyz: np.ndarray
    accel_mps2: np.ndarray | None
    gyro_radps: np.ndarray | None
    bone_wxyz: np.ndarray
    heading_rad: np.ndarray
    wear_wxyz: np.ndarray

    def __len__(self) -> int:
        return int(self.t_s.shape[0])

    @property
    def accel(self) -> np.ndarray | None:
        return self.accel_mps2

    @property
    def gyro(self) -> np.ndarray | None:
        return self.gyro_radps

    def take(self, index) -> "ImuSamples":
        """The samples at `index` (a boolean mask or integer indices), in that order."""
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return ImuSamples(self.t_s[index], self.sensor_id[index], self.quat_wxyz[index],
                          pick(self.accel_mps2), pick(self.gyro_radps), self.bone_wxyz[index],
                          self.heading_rad[index], self.wear_wxyz)

    def sensor(self, sensor_id: int) -> "ImuSamples":
        """One sensor's stream."""
        return self.take(self.sensor_id == sensor_id)

    @staticmethod
    def concatenate(parts: Sequence["ImuSamples"]) -> "ImuSamples":
        """Join sample sets of the same rig, re-sorted by (t_s, sensor_id)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
        opt = lambda name: None if any(getattr(p, name) is None for p in parts) else cat(name)  # noqa: E731
        out = ImuSamples(cat("t_s"), cat("sensor_id"), cat("quat_wxyz"), opt("accel_mps2"),
                         opt("gyro_radps"), cat("bone_wxyz"), cat("heading_rad"), parts[0].wear_wxyz)
        return out.take(np.lexsort((out.sensor_id, out.t_s)))

    def to_device_samples(self) -> list[ImuSample]:
        """The samples as :class:`core.devices.ImuSample` records (what an IMU source yields)."""
        out = []
        for i in range(len(self)):
            out.append(ImuSample(
                int(self.sensor_id[i]), float(self.t_s[i]), self.quat_wxyz[i].copy(),
                None if self.accel_mps2 is None else self.accel_mps2[i].copy(),
                None if self.gyro_radps is None else self.gyro_radps[i].copy()))
        return out


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (np.asarray(angle) + np.pi) % (2.0 * np.pi) - np.pi


class SimulatedImus:
    """A rig of 13 simulated sensors, drawn from `seed`.

    start_s: the time the rig was switched on (drift is zero there; sample
    grids are counted from it). Thread-safe for concurrent reads; the only
    mutable state is a cache of the heading random walk.
    """

    def __init__(self, seed: int, config: ImuConfig | None = None, start_s: float = 0.0):
        self.seed = int(seed)
        self.config = config if config is not None else ImuConfig()
        self.start_s = float(start_s)
        cfg = self.config
        rng = np.random.default_rng([self.seed % (1 << 63), 0x1A1B5])
        n = sk.NUM_IMUS
        if cfg.wear_axis_aligned:
            nominal = Rotation.create_group("O")[rng.integers(0, 24, n)]
        else:
            nominal = Rotation.identity(n)
        axis = rng.normal(size=(n, 3))
        axis /= np.linalg.norm(axis, axis=1, keepdims=True)
        tilt = np.radians(cfg.wear_max_deg) * rng.uniform(0.0, 1.0, n)
        #: (13) sensor -> bone rotations.
        self.wear_offsets: Rotation = nominal * Rotation.from_rotvec(axis * tilt[:, None])
        #: (13,) heading of each reference frame at start_s, rad.
        self.heading_offsets: np.ndarray = rng.uniform(-np.pi, np.pi, n)
        #: (13,) constant heading drift rates, rad/s.
        self.drift_rate_radps: np.ndarray = (
            np.radians(cfg.drift_deg_per_min) / 60.0 * rng.uniform(-1.0, 1.0, n))
        #: (13,) sampling phase of each sensor within one period, s.
        self.phase_s: np.ndarray = rng.uniform(0.0, 1.0 / cfg.rate_hz, n)
        surf = rng.normal(size=(n, 3))
        self._surface_dir = surf / np.linalg.norm(surf, axis=1, keepdims=True)
        self.accel_bias_mps2: np.ndarray = cfg.accel_bias_mps2 * rng.uniform(-1, 1, (n, 3))
        self.gyro_bias_radps: np.ndarray = np.radians(cfg.gyro_bias_dps) * rng.uniform(-1, 1, (n, 3))
        self._walk = np.zeros((n, 2))  # cumulative random walk at knots 0, 1, ... (rad)

    @property
    def wear_wxyz(self) -> np.ndarray:
        return to_wxyz(self.wear_offsets)

    # ------------------------------------------------------------ heading

    def _walk_at(self, sensor_id: np.ndarray, tau: np.ndarray) -> np.ndarray:
        sigma = np.radians(self.config.drift_walk_deg) * np.sqrt(_WALK_KNOT_S / 60.0)
        if sigma == 0.0 or tau.size == 0:
            return np.zeros(tau.shape)
        x = np.maximum(tau, 0.0) / _WALK_KNOT_S
        i = np.floor(x).astype(np.int64)
        need = int(i.max()) + 2
        walk = self._walk
        if walk.shape[1] < need:
            length = max(need, 2 * walk.shape[1])
            knots = np.arange(1, length)
            steps = np.stack([rnd.normal(self.seed, rnd.S_WALK, k, knots) for k in range(sk.NUM_IMUS)])
            walk = np.concatenate([np.zeros((sk.NUM_IMUS, 1)), np.cumsum(sigma * steps, axis=1)], 1)
            self._walk = walk
        f = x - i
        return walk[sensor_id, i] * (1.0 - f) + walk[sensor_id, i + 1] * f

    def heading_at(self, sensor_id, t_s) -> np.ndarray:
        """Heading of each sensor's reference frame at t_s (rad, wrapped to [-pi, pi));
        reference -> world = Rz(heading). Arrays broadcast."""
        sid, t = np.broadcast_arrays(np.asarray(sensor_id, np.int64), np.asarray(t_s, np.float64))
        tau = t - self.start_s
        psi = self.heading_offsets[sid] + self.drift_rate_radps[sid] * tau
        return _wrap(psi + self._walk_at(sid.ravel(), tau.ravel()).reshape(tau.shape))

    # ------------------------------------------------------------- timing

    def _dropped(self, sid: np.ndarray, t: np.ndarray) -> np.ndarray:
        cfg = self.config
        out = np.zeros(t.shape, bool)
        for k, a, b in cfg.dropouts:
            out |= (sid == k) & (t >= a) & (t < b)
        if cfg.dropout_per_min > 0 and cfg.dropout_s > 0:
            p = min(cfg.dropout_per_min / 60.0, 1.0)  # one chance per 1-s window
            tau = t - self.start_s
            w0 = np.floor(tau).astype(np.int64)
            for m in range(int(np.ceil(cfg.dropout_s)) + 1):
                w = w0 - m
                hit = rnd.uniform(self.seed, rnd.S_DROPOUT, sid, w, 0) < p
                begin = w + rnd.uniform(self.seed, rnd.S_DROPOUT, sid, w, 1)
                out |= hit & (tau >= begin) & (tau < begin + cfg.dropout_s)
        return out

    def sample_times(self, start_s: float, end_s: float, sensors=None):
        """Sampling times in [start_s, end_s) of the chosen sensors (an id, a
        list of ids, or None for all 13): (t_s, sensor_id, sample_index), sorted
        by (t_s, sensor_id)."""
        cfg = self.config
        ids = range(sk.NUM_IMUS) if sensors is None else np.atleast_1d(sensors).astype(int)
        ts, ss, ns = [], [], []
        period = 1.0 / cfg.rate_hz
        for k in ids:
            if not 0 <= k < sk.NUM_IMUS:
                raise ValueError(f"no sensor {k}")
            origin = self.start_s + self.phase_s[k]
            lo = int(np.floor((start_s - origin - cfg.jitter_s) * cfg.rate_hz)) - 1
            hi = int(np.ceil((end_s - origin + cfg.jitter_s) * cfg.rate_hz)) + 1
            n = np.arange(lo, max(hi, lo) + 1, dtype=np.int64)
            jit = cfg.jitter_s * (2.0 * rnd.uniform(self.seed, rnd.S_JITTER, k, n) - 1.0)
            t = origin + n * period + jit
            keep = (t >= start_s) & (t < end_s)
            ts.append(t[keep])
            ss.append(np.full(int(keep.sum()), k, np.int64))
            ns.append(n[keep])
        t, s, n = (np.concatenate(x) if x else np.zeros(0) for x in (ts, ss, ns))
        s, n = s.astype(np.int64), n.astype(np.int64)
        keep = ~self._dropped(s, t)
        t, s, n = t[keep], s[keep], n[keep]
        order = np.lexsort((s, t))
        return t[order], s[order], n[order]

    # ---------------------------------------------------------- synthesis

    def synthesize(self, poses_fn: PosesFn, start_s: float, end_s: float, sensors=None) -> ImuSamples:
        """All samples with timestamps in [start_s, end_s) of the chosen sensors
        (an id, a list of ids, or None: all 13 interleaved), sorted by time.
        A timestamp is the sampling time plus ``config.latency_s``; the truth
        (bone_wxyz, heading_rad) is at the sampling time.

        poses_fn(times_s (M,)) -> Poses of M frames: the performer at any time.
        It is called once per call (with 3x the sample times when accel or
        gyro is on) and must be deterministic per time for chunked synthesis
        to repeat itself."""
        lag = self.config.latency_s
        t, sid, n = self.sample_times(start_s - lag, end_s - lag, sensors)
        out = self.measure(poses_fn, t, sid, n)
        if lag == 0.0:
            return out
        return ImuSamples(out.t_s + lag, out.sensor_id, out.quat_wxyz, out.accel_mps2, out.gyro_radps,
                          out.bone_wxyz, out.heading_rad, out.wear_wxyz)

    def measure(self, poses_fn: PosesFn, t_s: np.ndarray, sensor_id: np.ndarray,
                sample_index: np.ndarray) -> ImuSamples:
        """Samples of the given sensors at the given times; `sample_index`
        keys the noise (see :meth:`sample_times`). Kept in the given order."""
        cfg = self.config
        t = np.asarray(t_s, np.float64).ravel()
        sid = np.asarray(sensor_id, np.int64).ravel()
        idx = np.asarray(sample_index, np.int64).ravel()
        m = t.shape[0]
        heading = self.heading_at(sid, t)
        if m == 0:
            z4, z3 = np.zeros((0, 4)), np.zeros((0, 3))
            return ImuSamples(t, sid, z4, z3 if cfg.accel else None, z3 if cfg.gyro else None,
                              z4, heading, self.wear_wxyz)
        inertial = cfg.accel or cfg.gyro
        dt = cfg.fd_dt_s
        eval_t = np.concatenate([t, t - dt, t + dt]) if inertial else t
        poses = poses_fn(eval_t)
        if len(poses) != eval_t.shape[0]:
            raise ValueError(f"poses_fn returned {len(poses)} frames for {eval_t.shape[0]} times")
        rows = np.arange(eval_t.shape[0])
        sid_all = np.tile(sid, eval_t.shape[0] // m)
        bone = Rotation.from_matrix(poses.rotations[rows, _START[sid_all]])
        wear = self.wear_offsets[sid_all]
        sensor_to_world = bone * wear  # (3M or M)

        g0 = bone[:m]
        noise = Rotation.from_rotvec(
            np.radians(cfg.noise_deg) * rnd.normal3(self.seed, rnd.S_ORIENT, sid, idx))
        q = yaw(heading).inv() * sensor_to_world[:m] * noise
        accel = gyro = None
        if cfg.accel:
            p_start = poses.positions_mm[rows, _START[sid_all]]
            p_end = poses.positions_mm[rows, _END[sid_all]]
            axis = g0.inv().apply(p_end[:m] - p_start[:m])  # bone direction in the bone frame
            out = np.cross(self._surface_dir[sid], axis)
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
            local = np.tile(cfg.surface_offset_mm * out, (3, 1))
            pos = 0.5 * (p_start + p_end) + bone.apply(local)  # mm
            acc = (pos[m:2 * m] - 2.0 * pos[:m] + pos[2 * m:]) / (dt * dt) / 1000.0
            acc[:, 2] += GRAVITY_MPS2
            accel = (sensor_to_world[:m].inv().apply(acc) + self.accel_bias_mps2[sid]
                     + cfg.accel_noise_mps2 * rnd.normal3(self.seed, rnd.S_ACCEL, sid, idx))
        if cfg.gyro:
            rel = sensor_to_world[m:2 * m].inv() * sensor_to_world[2 * m:]
            gyro = (rel.as_rotvec() / (2.0 * dt) + self.gyro_bias_radps[sid]
                    + np.radians(cfg.gyro_noise_dps) * rnd.normal3(self.seed, rnd.S_GYRO, sid, idx))
        return ImuSamples(t, sid, to_wxyz(q), accel, gyro, to_wxyz(g0), heading, self.wear_wxyz)


def recover_bone_orientations(samples: ImuSamples, wear, heading) -> Rotation:
    """Bone global rotations (bone -> world) from measured sensor orientations:
    G_b = Rz(heading) * q * W^-1.

    wear: the 13 wear offsets (sensor -> bone), a Rotation of length 13 or
    (13, 4) scalar-first quaternions, indexed by sensor id.
    heading: per sample, (N,) angles in rad (reference -> world = Rz), or a
    Rotation of length N (reference -> world). For per-sensor constants pass
    ``h[samples.sensor_id]``; the simulator's truth is ``samples.heading_rad``.
    """
    return bone_orientations(samples.quat_wxyz, samples.sensor_id, wear, heading)


def interleave(parts: Iterable[ImuSamples]) -> ImuSamples:
    """Several sensor streams merged into one, sorted by (t_s, sensor_id)."""
    return ImuSamples.concatenate(list(parts))
