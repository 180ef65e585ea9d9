"""The constant-length skeleton fit: lengths, distance to the raw joints,
IMU twist, missing frames, the live single-frame fit.

Motion comes from the simulated performer (fixed subject and motion seeds:
the distance checks sit a few tenths of a millimetre from their limits)."""

import dataclasses

import numpy as np
import pytest
from scipy.optimize._numdiff import approx_derivative
from scipy.spatial.transform import Rotation

from core import posefit as pf
from core import posefit_refine
from core import skeleton as sk
from core.kinematics import forward_kinematics
from core.rotations import angle_deg, to_wxyz
from core.sim.motion import Performer, ProceduralMotion
from core.sim.subject import Subject

FPS = 30.0
J = sk.JOINT_INDEX


@pytest.fixture(scope="module")
def take():
    """10 s of a procedural performer: times, truth poses, the subject."""
    subject = Subject.from_seed(12)
    times = np.arange(0.0, 10.0, 1.0 / FPS)
    return times, Performer(subject, ProceduralMotion(12)).poses_at(times), subject


def _imus(rotations: np.ndarray, noise_deg: float, rng) -> np.ndarray:
    """(T, 13, 4) wxyz bone orientations read off global rotations, with noise."""
    g = rotations[:, [b.start for b in sk.IMU_BONES]].reshape(-1, 3, 3)
    noise = Rotation.from_rotvec(rng.normal(0.0, np.radians(noise_deg), (g.shape[0], 3)))
    return to_wxyz(Rotation.from_matrix(g) * noise).reshape(-1, sk.NUM_IMUS, 4)


def jittered(truth: np.ndarray, frac: float, rng) -> np.ndarray:
    """Truth with every bone's length scaled per frame by 1 + N(0, frac^2)."""
    out = truth.copy()
    scale = 1.0 + rng.normal(0.0, frac, truth.shape[:2])
    for c, p in enumerate(sk.PARENTS):
        if p >= 0:
            out[:, c] = out[:, p] + (truth[:, c] - truth[:, p]) * scale[:, c, None]
    return out


def test_noise_free_joints_are_fitted_exactly(take):
    times, poses, subject = take
    fit = pf.fit_pose(times, poses.positions_mm)
    assert fit.valid.all()
    np.testing.assert_allclose(fit.bone_lengths_mm, subject.bone_lengths(), atol=1e-6)
    assert fit.report().max_mm < 1e-3
    # The stored pose is the forward kinematics of the stored rig.
    fk = forward_kinematics(fit.offsets_mm, fit.root_mm, fit.local_rotations())
    np.testing.assert_allclose(fk.positions_mm, fit.positions_mm, atol=1e-6)


def test_lengths_are_constant_and_close_to_the_performers(take):
    times, poses, subject = take
    rng = np.random.default_rng(4)
    sigma = 8.0
    raw = poses.positions_mm + rng.normal(0.0, sigma, poses.positions_mm.shape)
    fit = pf.fit_pose(times, raw)
    parents = list(sk.PARENTS[1:])
    lengths = np.linalg.norm(fit.positions_mm[:, 1:] - fit.positions_mm[:, parents], axis=2)
    assert np.ptp(lengths, axis=0).max() < 1e-6
    np.testing.assert_allclose(lengths[0], fit.bone_lengths_mm[1:], atol=1e-6)
    # Noise across a bone lengthens it: the median by about 1.39 sigma^2 / length.
    truth = subject.bone_lengths()[1:]
    err = fit.bone_lengths_mm[1:] - truth - 1.39 * sigma ** 2 / truth
    assert np.abs(err).max() < 3.0, dict(zip(sk.JOINTS[1:], err.round(1)))
    assert np.median(np.abs(err)) < 1.0
    # The rest pose is a T-pose: arms out along -+X, legs straight down.
    d = fit.offsets_mm / np.maximum(np.linalg.norm(fit.offsets_mm, axis=1, keepdims=True), 1e-9)
    for name, axis in (("LeftForeArm", (1, 0, 0)), ("RightHand", (-1, 0, 0)), ("LeftFoot", (0, 0, -1))):
        assert d[J[name]] @ np.array(axis, float) > 0.999


def test_mean_distance_to_raw_is_under_5mm_for_bone_length_jitter(take):
    times, poses, _ = take
    rng = np.random.default_rng(5)
    raw = jittered(poses.positions_mm, 0.02, rng) + rng.normal(0.0, 2.0, poses.positions_mm.shape)
    report = pf.fit_pose(times, raw).report()
    assert report.frames == len(times)
    assert report.mean_mm <= 5.0, str(report)


def test_fit_reaches_the_floor_for_independent_joint_noise(take):
    """Constant lengths cannot follow noise along the bones: for independent
    noise of sigma per axis the least squares floor is an RMS distance of
    sigma * sqrt(27 / 22) (21 bone lengths and 6 more rigid-torso constraints
    over 22 joints). The fit should sit on it, and end nearer the truth than
    the raw joints are."""
    times, poses, _ = take
    sigma = 12.0  # about 19 mm mean error per joint
    rng = np.random.default_rng(7)
    truth = poses.positions_mm
    raw = truth + rng.normal(0.0, sigma, truth.shape)
    fit = pf.fit_pose(times, raw)
    rms = np.sqrt(np.nanmean(fit.distance_mm ** 2))
    assert 0.93 < rms / (sigma * np.sqrt(27 / 22)) < 1.07
    analytic = pf.fit_pose(times, raw, refine=False)
    assert fit.report().mean_mm < 0.8 * analytic.report().mean_mm
    to_truth = np.linalg.norm(fit.positions_mm - truth, axis=2).mean()
    assert to_truth < 0.85 * np.linalg.norm(raw - truth, axis=2).mean()


def test_forearm_roll_comes_from_its_imu(take):
    """A roll of the forearm about its own axis moves no joint: only the IMU
    can tell. With IMUs the fitted forearm follows it, without them it cannot."""
    times, poses, _ = take
    rng = np.random.default_rng(11)
    glob = poses.rotations.copy()
    fa = J["LeftForeArm"]
    roll = np.radians(70.0) * np.sin(2 * np.pi * 0.4 * times)
    glob[:, fa] = glob[:, fa] @ Rotation.from_rotvec(roll[:, None] * [1.0, 0.0, 0.0]).as_matrix()
    imus = _imus(glob, 2.0, rng)
    raw = poses.positions_mm + rng.normal(0.0, 8.0, poses.positions_mm.shape)
    errors = {}
    for name, bones in (("imu", imus), ("none", None)):
        fit = pf.fit_pose(times, raw, bones)
        got = forward_kinematics(fit.offsets_mm, fit.root_mm, fit.local_rotations()).rotations[:, fa]
        errors[name] = angle_deg(Rotation.from_matrix(got), Rotation.from_matrix(glob[:, fa]))
    assert errors["imu"].mean() < 8.0 and np.percentile(errors["imu"], 95) < 15.0
    assert errors["none"].mean() > 30.0


def test_frames_without_a_solve_are_marked_and_filled(take):
    times, poses, _ = take
    raw = poses.positions_mm.copy()
    raw[:4] = np.nan                 # before the first solve
    raw[100:110] = np.nan            # a gap
    raw[150, :, 0] = np.nan          # one NaN coordinate spoils the whole frame
    raw[200, [J["LeftHand"], J["Neck"]]] = np.nan   # two joints missing: still a solve
    raw[250, :15] = np.nan           # Hips missing: no solve
    calls = []
    fit = pf.fit_pose(times, raw, progress=lambda d, t: calls.append((d, t)))
    expect = np.ones(len(times), bool)
    expect[[*range(4), *range(100, 110), 150, 250]] = False
    np.testing.assert_array_equal(fit.valid, expect)
    for arr in (fit.root_mm, fit.local_wxyz, fit.positions_mm):
        assert np.isfinite(arr).all()
    assert np.isnan(fit.distance_mm[~expect]).all()
    assert np.isnan(fit.distance_mm[200, [J["LeftHand"], J["Neck"]]]).all()
    # The missing hand was aimed at where it usually is relative to the Hips.
    hand = J["LeftHand"]
    assert np.linalg.norm(fit.positions_mm[200, hand] - poses.positions_mm[200, hand]) < 60.0
    # Held before the first solve; interpolated by frame inside a gap.
    np.testing.assert_allclose(fit.local_wxyz[:4], fit.local_wxyz[[4, 4, 4, 4]], rtol=0, atol=1e-12)
    r0, r1 = fit.root_mm[99], fit.root_mm[110]
    np.testing.assert_allclose(fit.root_mm[104], r0 + 5 / 11 * (r1 - r0), rtol=0, atol=1e-6)
    rot = lambda t: Rotation.from_quat(fit.local_wxyz[t], scalar_first=True)  # noqa: E731
    a, b = angle_deg(rot(99), rot(104)), angle_deg(rot(104), rot(110))
    np.testing.assert_allclose(a * 6 / 5, b, atol=1e-6)
    # Progress counts frames up to the whole take.
    assert calls[-1] == (len(times), len(times))
    assert all(d1 <= d2 for (d1, _), (d2, _) in zip(calls, calls[1:]))


def test_bad_input_is_refused(take):
    times, poses, _ = take
    with pytest.raises(ValueError, match="joints_mm"):
        pf.fit_pose(times, poses.positions_mm[:, :20])
    with pytest.raises(ValueError, match="times_s"):
        pf.fit_pose(times[:-1], poses.positions_mm)
    with pytest.raises(ValueError, match="bone_wxyz"):
        pf.fit_pose(times, poses.positions_mm, np.zeros((len(times), 12, 4)))
    with pytest.raises(ValueError, match="no frame"):
        pf.fit_pose(times, np.full_like(poses.positions_mm, np.nan))
    with pytest.raises(ValueError, match="Hips"):
        pf.fit_frame(np.full((sk.NUM_JOINTS, 3), np.nan), None, np.zeros((sk.NUM_JOINTS, 3)))


def test_live_frame_fit_matches_the_takes_analytic_pose(take):
    times, poses, _ = take
    rng = np.random.default_rng(13)
    raw = poses.positions_mm[:60] + rng.normal(0.0, 10.0, (60, sk.NUM_JOINTS, 3))
    imus = _imus(poses.rotations[:60], 2.0, rng)
    imus[:, IMU_MISSING] = np.nan
    fit = pf.fit_pose(times[:60], raw, imus, refine=False)
    for t in (0, 31, 59):
        root, local = pf.fit_frame(raw[t], imus[t], fit.offsets_mm)
        np.testing.assert_allclose(root, fit.root_mm[t], rtol=0, atol=1e-6)
        assert angle_deg(local, Rotation.from_quat(fit.local_wxyz[t], scalar_first=True)).max() < 1e-6
    # A missing hand: the forearm keeps its IMU's orientation.
    frame = raw[5].copy()
    frame[J["RightHand"]] = np.nan
    _, local = pf.fit_frame(frame, imus[5], fit.offsets_mm)
    fk = forward_kinematics(fit.offsets_mm, np.zeros(3), local)
    sensor = Rotation.from_quat(imus[5, sk.IMU_INDEX["RightForeArm"]], scalar_first=True)
    assert angle_deg(Rotation.from_matrix(fk.rotations[0, J["RightForeArm"]]), sensor) < 1e-6


IMU_MISSING = sk.IMU_INDEX["LeftShank"]


def test_batched_kabsch_matches_align_vectors():
    rng = np.random.default_rng(17)
    rest = rng.normal(size=(3, 3))
    truth = Rotation.random(5, random_state=18)
    target = np.stack([truth[i].apply(rest) for i in range(5)])
    target += rng.normal(0.0, 0.2, target.shape)
    w = rng.uniform(0.2, 1.0, (5, 3))
    got = Rotation.from_matrix(pf._best_rotation(rest, target, w))
    for i in range(5):
        ref, _ = Rotation.align_vectors(target[i], rest, weights=w[i])
        assert angle_deg(got[i], ref) < 1e-6


def test_refinement_jacobian_matches_finite_differences(take):
    times, poses, _ = take
    rng = np.random.default_rng(19)
    raw = poses.positions_mm[:4] + rng.normal(0.0, 10.0, (4, sk.NUM_JOINTS, 3))
    offsets = pf.skeleton_offsets(pf.bone_lengths(raw))
    w = rng.uniform(0.2, 1.0, (4, sk.NUM_JOINTS))
    glob, pos = pf._analytic(raw, w, pf._imu_matrices(None, 4), offsets)
    chunk = posefit_refine.RefineProblem(raw, w, glob, pos[:, sk.ROOT], offsets)
    x = chunk.x0.ravel() + np.concatenate([rng.normal(0, 5, (4, 3)), rng.normal(0, 0.3, (4, chunk.ncol - 3))],
                                          axis=1).ravel()
    numeric = approx_derivative(chunk.fun, x, method="3-point")
    np.testing.assert_allclose(chunk.jac(x).toarray(), numeric, atol=1e-5 * np.abs(numeric).max())


def test_fit_is_a_frozen_record(take):
    times, poses, _ = take
    fit = pf.fit_pose(times[:30], poses.positions_mm[:30])
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.valid = None
    assert fit.num_frames == 30 and fit.local_wxyz.shape == (30, sk.NUM_JOINTS, 4)


def test_swing_is_the_smallest_turn_also_for_opposite_directions():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(400, 3)), rng.normal(size=(400, 3))
    b[:4] = -3.0 * a[:4]   # opposite: half a turn
    b[4:8] = 2.0 * a[4:8]  # the same direction: no turn
    rot = pf._swing(a, b)
    unit = b / np.linalg.norm(b, axis=1, keepdims=True)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", rot, a / np.linalg.norm(a, axis=1, keepdims=True)), unit,
                               atol=1e-12)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, 1, 2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-12)
    turn = np.degrees(Rotation.from_matrix(rot).magnitude())
    cos = np.einsum("ni,ni->n", a, b) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(turn, np.degrees(np.arccos(np.clip(cos, -1, 1))), atol=1e-5)
    np.testing.assert_allclose(turn[:4], 180.0, atol=1e-9)
    np.testing.assert_allclose(turn[4:8], 0.0, atol=1e-5)
