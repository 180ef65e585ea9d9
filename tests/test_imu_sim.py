"""Simulated IMUs: offsets, noise, drift, inertial channels, timing, determinism."""

from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.frames import ImuBuffer
from core.kinematics import Poses, forward_kinematics
from core.rotations import angle_deg, from_wxyz, yaw
from core.sim.imu import ImuConfig, ImuSamples, SimulatedImus, interleave, recover_bone_orientations
from core.sim.subject import Subject

BONE_START = np.array([b.start for b in sk.IMU_BONES])


class Performer:
    """Smooth random motion: every joint's local rotation vector is a sum of
    sinusoids, the root wanders on the floor and bobs."""

    def __init__(self, seed: int, amplitude_rad: float = 0.5):
        rng = np.random.default_rng(seed)
        self.subject = Subject.from_seed(int(rng.integers(1000, 2000)))
        j = sk.NUM_JOINTS
        self.amp = amplitude_rad * rng.uniform(0.2, 1.0, (j, 3))
        self.freq = rng.uniform(0.2, 1.5, (j, 3))
        self.phase = rng.uniform(-np.pi, np.pi, (j, 3))
        self.root_amp = rng.uniform(100, 600, 3) * np.array([1, 1, 0.1])
        self.root_freq = rng.uniform(0.1, 0.5, 3)

    def __call__(self, t_s: np.ndarray) -> Poses:
        t = np.asarray(t_s, float)[:, None, None]
        rotvec = self.amp * np.sin(2 * np.pi * self.freq * t + self.phase)  # (T, J, 3)
        root = self.subject.offsets_mm[sk.ROOT] + self.root_amp * np.sin(
            2 * np.pi * self.root_freq * t[:, 0])
        return forward_kinematics(self.subject.offsets_mm, root, Rotation.from_rotvec(rotvec.reshape(-1, 3)))


def constant_pose_fn(poses: Poses):
    """The same pose at every time."""
    return lambda t: Poses(np.repeat(poses.positions_mm, len(t), 0), np.repeat(poses.rotations, len(t), 0))


def true_bones(performer, samples: ImuSamples) -> Rotation:
    """Bone rotations straight from the pose function (independent of the simulator's truth)."""
    poses = performer(samples.t_s)
    return Rotation.from_matrix(poses.rotations[np.arange(len(samples)), BONE_START[samples.sensor_id]])


@pytest.fixture
def performer(rng):
    return Performer(seed=int(rng.integers(1 << 30)))


def test_noise_free_recovery_is_exact(performer, rng):
    seed = int(rng.integers(1 << 30))
    rig = SimulatedImus(seed, ImuConfig.noise_free(drift_deg_per_min=3.0), start_s=1.5)
    s = rig.synthesize(performer, 1.5, 6.5)
    assert len(s) > 13 * 290
    bones = true_bones(performer, s)
    assert angle_deg(from_wxyz(s.bone_wxyz), bones).max() < 1e-6
    rec = recover_bone_orientations(s, rig.wear_offsets, s.heading_rad)
    assert angle_deg(rec, bones).max() < 1e-6
    # wear given as scalar-first quaternions works the same
    rec2 = recover_bone_orientations(s, s.wear_wxyz, s.heading_rad)
    assert angle_deg(rec2, bones).max() < 1e-6
    # ignoring the drift (heading fixed at switch-on) leaves exactly the drift, a yaw
    drift = np.abs(rig.drift_rate_radps[s.sensor_id]) * (s.t_s - rig.start_s)
    static = recover_bone_orientations(s, rig.wear_offsets, rig.heading_offsets[s.sensor_id])
    np.testing.assert_allclose(np.radians(angle_deg(static, bones)), drift, atol=1e-9)
    assert drift.max() > np.radians(3.0 / 60 * 5) * 0.3


def test_noise_and_drift_statistics(performer, rng):
    sigma = 2.0
    rate = 4.0  # deg/min
    cfg = ImuConfig(noise_deg=sigma, drift_deg_per_min=rate, jitter_s=0.002)
    rig = SimulatedImus(int(rng.integers(1 << 30)), cfg)
    s = rig.synthesize(performer, 0.0, 10.0)
    bones = true_bones(performer, s)
    err = angle_deg(recover_bone_orientations(s, rig.wear_offsets, s.heading_rad), bones)
    rms = np.sqrt(np.mean(err ** 2))
    assert 0.9 < rms / (np.sqrt(3) * sigma) < 1.1, rms
    # the noise is a rotation in the sensor frame with per-axis std sigma
    r_s = bones * rig.wear_offsets[s.sensor_id]
    comp = np.degrees((r_s.inv() * yaw(s.heading_rad) * from_wxyz(s.quat_wxyz)).as_rotvec())
    np.testing.assert_allclose(comp.std(axis=0), sigma, rtol=0.1)
    assert np.abs(comp.mean(axis=0)).max() < 0.15
    # heading drift stays within the configured rate, and is really there
    drift = np.abs(np.angle(np.exp(1j * (s.heading_rad - rig.heading_offsets[s.sensor_id]))))
    bound = np.radians(rate) / 60 * (s.t_s - rig.start_s)
    assert np.all(drift <= bound + 1e-12)
    assert np.degrees(drift.max()) > 0.3 * rate / 6
    assert np.all(np.abs(rig.drift_rate_radps) <= np.radians(rate) / 60)


def test_wear_offsets_matter(performer, rng):
    cfg = ImuConfig(noise_deg=0.5, wear_max_deg=35.0)
    rig = SimulatedImus(int(rng.integers(1 << 30)), cfg)
    s = rig.synthesize(performer, 0.0, 2.0)
    bones = true_bones(performer, s)
    q = from_wxyz(s.quat_wxyz)
    # raw measurements are far from the bone orientations
    assert np.median(angle_deg(q, bones)) > 30.0
    # only heading removed: the remainder, seen in the bone frame, is the wear offset
    offset = bones.inv() * yaw(s.heading_rad) * q
    assert np.percentile(angle_deg(offset, rig.wear_offsets[s.sensor_id]), 99) < 4.0
    # wear offsets of another rig do not fit
    other = SimulatedImus(rig.seed + 1, cfg)
    wrong = recover_bone_orientations(s, other.wear_offsets, s.heading_rad)
    assert np.median(angle_deg(wrong, bones)) > 30.0
    # each wear offset is within wear_max_deg of an axis-aligned mounting
    cube = Rotation.create_group("O")
    for k in range(sk.NUM_IMUS):
        assert angle_deg(cube, rig.wear_offsets[k]).min() <= 35.0 + 1e-9
    # heading offsets spread over the circle
    assert np.ptp(rig.heading_offsets) > np.pi / 2


def test_accelerometer_static_pose_reads_gravity_up(performer, rng):
    pose = performer(np.array([0.37]))
    cfg = ImuConfig.noise_free(accel=True, gyro=True)
    rig = SimulatedImus(int(rng.integers(1 << 30)), cfg)
    s = rig.synthesize(constant_pose_fn(pose), 0.0, 0.5)
    np.testing.assert_allclose(np.linalg.norm(s.accel, axis=1), 9.81, atol=1e-6)
    r_s = from_wxyz(s.bone_wxyz) * rig.wear_offsets[s.sensor_id]  # sensor -> world
    up = r_s.inv().apply([0.0, 0.0, 9.81])
    np.testing.assert_allclose(s.accel, up, atol=1e-6)
    # the measured orientation says the same: gravity up in the reference frame is Z
    np.testing.assert_allclose(from_wxyz(s.quat_wxyz).apply(s.accel), np.tile([0, 0, 9.81], (len(s), 1)),
                               atol=1e-6)
    np.testing.assert_allclose(s.gyro, 0.0, atol=1e-9)
    # with noise: mean magnitude still 9.81, spread as configured
    noisy = SimulatedImus(rig.seed, replace(cfg, accel_noise_mps2=0.05)).synthesize(
        constant_pose_fn(pose), 0.0, 5.0)
    mag = np.linalg.norm(noisy.accel, axis=1)
    assert abs(mag.mean() - 9.81) < 0.01
    assert 0.04 < mag.std() < 0.06


def test_accelerometer_linear_acceleration():
    subject = Subject.from_seed(5)
    a_mm = np.array([300.0, -200.0, 100.0])  # mm/s^2
    local = Rotation.from_rotvec(np.random.default_rng(1).normal(0, 0.3, (sk.NUM_JOINTS, 3)))

    def fn(t):
        t = np.asarray(t, float)
        root = subject.offsets_mm[sk.ROOT] + 0.5 * a_mm * t[:, None] ** 2
        return forward_kinematics(subject.offsets_mm, root, Rotation.concatenate([local] * len(t)))

    rig = SimulatedImus(7, ImuConfig.noise_free(accel=True))
    s = rig.synthesize(fn, 0.0, 1.0)
    r_s = from_wxyz(s.bone_wxyz) * rig.wear_offsets[s.sensor_id]
    expect = r_s.inv().apply(a_mm / 1000 + np.array([0, 0, 9.81]))
    np.testing.assert_allclose(s.accel, expect, atol=1e-5)
    assert s.gyro is None


def test_gyro_constant_rate_rotation(rng):
    subject = Subject.from_seed(6)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    omega = 2.0  # rad/s
    rest = Rotation.from_rotvec(rng.normal(0, 0.3, (sk.NUM_JOINTS, 3)))

    def fn(t):
        t = np.asarray(t, float)
        spin = Rotation.from_rotvec(omega * t[:, None] * axis)  # world-fixed axis
        local = Rotation.concatenate([rest] * len(t))
        quats = local.as_quat().reshape(len(t), sk.NUM_JOINTS, 4)
        quats[:, sk.ROOT] = (spin * rest[sk.ROOT]).as_quat()
        root = np.tile(subject.offsets_mm[sk.ROOT], (len(t), 1))
        return forward_kinematics(subject.offsets_mm, root, Rotation.from_quat(quats.reshape(-1, 4)))

    rig = SimulatedImus(int(rng.integers(1 << 30)), ImuConfig.noise_free(gyro=True, accel=True))
    s = rig.synthesize(fn, 0.0, 1.0)
    np.testing.assert_allclose(np.linalg.norm(s.gyro, axis=1), omega, atol=1e-8)
    r_s = from_wxyz(s.bone_wxyz) * rig.wear_offsets[s.sensor_id]
    np.testing.assert_allclose(s.gyro, r_s.inv().apply(omega * axis), atol=1e-8)
    # spinning sensors feel a centripetal acceleration on top of gravity
    assert np.linalg.norm(s.accel, axis=1).max() > 9.81 + 0.05


@pytest.mark.parametrize("rate", [60.0, 100.0])
def test_rate_timestamps_and_jitter(performer, rate, rng):
    jitter = 0.001
    rig = SimulatedImus(int(rng.integers(1 << 30)),
                        ImuConfig(rate_hz=rate, jitter_s=jitter), start_s=100.0)
    T = 7.0
    s = rig.synthesize(performer, 100.0, 100.0 + T)
    assert np.all(np.diff(s.t_s) >= 0)
    assert s.t_s.min() >= 100.0 and s.t_s.max() < 100.0 + T
    for k in range(sk.NUM_IMUS):
        t = s.sensor(k).t_s
        assert abs(len(t) - rate * T) <= 1
        dt = np.diff(t)
        assert np.all(np.abs(dt - 1 / rate) <= 2 * jitter + 1e-9)
        grid = (t - rig.start_s - rig.phase_s[k]) * rate
        dev = (grid - np.round(grid)) / rate
        assert np.abs(dev).max() <= jitter + 1e-9
        assert np.abs(dev).max() > 0.5 * jitter  # jitter is really there
    # one sensor alone is the same stream
    one = rig.synthesize(performer, 100.0, 100.0 + T, sensors=4)
    for name in ("t_s", "sensor_id", "quat_wxyz", "bone_wxyz", "heading_rad"):
        assert np.array_equal(getattr(one, name), getattr(s.sensor(4), name))


def test_dropouts():
    fn = constant_pose_fn(Performer(3)(np.array([0.0])))
    cfg = ImuConfig(dropouts=((3, 2.0, 4.0),), rate_hz=60.0)
    s = SimulatedImus(11, cfg).synthesize(fn, 0.0, 10.0)
    t3 = s.sensor(3).t_s
    assert not np.any((t3 >= 2.0) & (t3 < 4.0))
    assert abs(len(t3) - 8 * 60) <= 1
    assert abs(len(s.sensor(2)) - 10 * 60) <= 1
    # random outages: a gap of about dropout_s appears, the rest stays regular
    rnd = SimulatedImus(11, ImuConfig(dropout_per_min=6.0, dropout_s=0.5)).synthesize(fn, 0.0, 120.0)
    gaps = np.concatenate([np.diff(rnd.sensor(k).t_s) for k in range(sk.NUM_IMUS)])
    long = gaps[gaps > 0.1]
    assert 13 * 12 * 0.5 < len(long) < 13 * 12 * 1.5
    assert np.all(long < 0.5 + 2 / 60 + 0.6)  # overlapping outages may merge
    assert np.median(long) == pytest.approx(0.5, abs=2 / 60)


def test_deterministic_and_chunking_invariant(performer, rng):
    cfg = ImuConfig(noise_deg=1.0, drift_deg_per_min=2.0, drift_walk_deg=3.0, jitter_s=0.002,
                    accel=True, gyro=True, accel_bias_mps2=0.1, gyro_bias_dps=0.5,
                    dropout_per_min=10.0, dropout_s=0.3)
    seed = int(rng.integers(1 << 30))
    whole = SimulatedImus(seed, cfg).synthesize(performer, 0.0, 10.0)
    again = SimulatedImus(seed, cfg).synthesize(performer, 0.0, 10.0)
    rig = SimulatedImus(seed, cfg)
    parts = [rig.synthesize(performer, a, b) for a, b in ((0.0, 5.0), (5.0, 7.3), (7.3, 10.0))]
    chunked = ImuSamples.concatenate(parts)
    for name in ("t_s", "sensor_id", "quat_wxyz", "accel_mps2", "gyro_radps", "bone_wxyz",
                 "heading_rad", "wear_wxyz"):
        assert np.array_equal(getattr(whole, name), getattr(again, name)), name
        assert np.array_equal(getattr(whole, name), getattr(chunked, name)), name
    streams = interleave(rig.synthesize(performer, 0.0, 10.0, sensors=k) for k in range(sk.NUM_IMUS))
    assert np.array_equal(streams.quat_wxyz, whole.quat_wxyz)
    other = SimulatedImus(seed + 1, cfg).synthesize(performer, 0.0, 10.0)
    assert not np.allclose(other.wear_wxyz, whole.wear_wxyz)
    # the random walk moves the heading beyond the linear drift, continuously
    h = whole.sensor(0)
    lin = rig.heading_offsets[0] + rig.drift_rate_radps[0] * h.t_s
    walk = np.angle(np.exp(1j * (h.heading_rad - lin)))
    assert np.abs(walk).max() > 0.01 * np.radians(3.0)
    assert np.abs(np.diff(walk)).max() < np.radians(3.0) * 0.2


def test_quaternions_scalar_first_unit_and_feed_the_buffer(performer, rng):
    rig = SimulatedImus(int(rng.integers(1 << 30)), ImuConfig(noise_deg=1.0))
    s = rig.synthesize(performer, 0.0, 1.0)
    for q in (s.quat_wxyz, s.bone_wxyz, s.wear_wxyz):
        np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)
        assert np.all(q[:, 0] >= 0)
    # scalar-first: same rotation as SciPy's scalar-last quaternion moved around
    xyzw = np.roll(s.quat_wxyz, -1, axis=1)
    r = Rotation.from_quat(xyzw)
    assert angle_deg(r, from_wxyz(s.quat_wxyz)).max() < 1e-9
    np.testing.assert_allclose(s.quat_wxyz[:, 0], np.cos(r.magnitude() / 2), atol=1e-12)
    # the device records carry the same numbers and synchronise through ImuBuffer
    records = s.to_device_samples()
    assert len(records) == len(s) and records[5].sensor_id == s.sensor_id[5]
    buf = ImuBuffer()
    buf.extend(records)
    q, age = buf.at(0.5)
    assert np.all(age < 1 / 60)
    # Each sensor's orientation at 0.5 s lies between its samples just before and just after
    # (the slerp between them): no further from either than they are from each other.
    for k in range(sk.NUM_IMUS):
        sk_s = s.sensor(k)
        i = int(np.searchsorted(sk_s.t_s, 0.5))
        before, after = from_wxyz(sk_s.quat_wxyz[i - 1]), from_wxyz(sk_s.quat_wxyz[i])
        gap = angle_deg(before, after)
        here = from_wxyz(q[k])
        assert angle_deg(here, before) <= gap + 1e-6 and angle_deg(here, after) <= gap + 1e-6, (k, gap)


def test_config_validation():
    with pytest.raises(ValueError):
        ImuConfig(rate_hz=0)
    with pytest.raises(ValueError):
        ImuConfig(rate_hz=100, jitter_s=0.005)
    with pytest.raises(ValueError):
        ImuConfig(noise_deg=-1)
    rig = SimulatedImus(0)
    empty = rig.synthesize(lambda t: (_ for _ in ()).throw(AssertionError("no call")), 3.0, 3.0)
    assert len(empty) == 0 and empty.quat_wxyz.shape == (0, 4)
    assert len(recover_bone_orientations(empty, rig.wear_offsets, empty.heading_rad)) == 0
