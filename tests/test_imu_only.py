"""Capture with IMUs alone: the calibration from the routine without a
camera, the feet that move the body, the IMU-only solve, and `main.py
record --imu PORT` with no camera end to end over a pseudo-terminal, exported
and read back.

The simulated performer does the routine exactly as core.imu.routine
describes it (consumer sensors: random wear offsets and headings, drift,
noise); with no camera the world is the performer's own at the known pose,
so the truth is compared after turning it to the performer's facing then."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from core import skeleton as sk
from core.imu.calibration import ImuCalibrationError, calibrate_without_cameras, performer_facing
from core.rotations import from_wxyz, yaw
from core.sim.studio import SimulatedStudio, StudioConfig
from core.solve.inertial import FootPlacement, standing_root_mm
from core.solve.live import solve_imus_only

ROOT = Path(__file__).resolve().parents[1]
needs_pty = pytest.mark.skipif(not hasattr(os, "openpty"), reason="pseudo-terminals are POSIX-only")


def sensors_at(studio: SimulatedStudio, times: np.ndarray) -> np.ndarray:
    """(T, 13, 4) each simulated sensor's orientation at the times."""
    s = studio.imu_samples(0.0, float(times[-1]) + 0.5)
    out = []
    for k in range(sk.NUM_IMUS):
        m = s.sensor_id == k
        t_k = s.t_s[m]
        out.append(Slerp(t_k, from_wxyz(s.quat_wxyz[m]))(np.clip(times, t_k[0], t_k[-1])).as_quat(scalar_first=True))
    return np.stack(out, 1)


def calibrated(seed: int, pose: str):
    studio = SimulatedStudio(StudioConfig(seed=seed, calibration_pose=pose))
    times = np.arange(0.0, 18.0, 1 / 30)
    calib = calibrate_without_cameras(times, sensors_at(studio, times), pose)
    # The performer's facing in the known pose: the world of an IMU-only capture.
    facing = performer_facing(studio.poses(np.array([calib.t_s])).positions_mm[0])
    return studio, calib, facing


@pytest.mark.parametrize("seed, pose, mean_deg, p95_deg", [
    (1253, "T", 2.3, 3.0),   # measured: worst bone's mean 2.3 deg, 95th percentile 3.0
    pytest.param(5, "N", 5.5, 7.6, marks=pytest.mark.slow),  # measured: 5.5 and 7.6 (a forearm and a shank sensor)
])
def test_calibration_without_cameras_puts_the_imu_bones_within_a_few_degrees(seed, pose, mean_deg, p95_deg):
    studio, calib, facing = calibrated(seed, pose)
    assert 0.5 < calib.t_s < 3.0  # found in the 3 s hold
    assert all(f.observable for f in calib.fits), [(f.bone, round(f.observability_deg)) for f in calib.fits]
    times = np.arange(26.0, 40.0, 1 / 3)  # free movement after the routine
    imu = sensors_at(studio, times)
    truth = studio.poses(times).rotations[:, [b.start for b in sk.IMU_BONES]]
    err = []
    for q, g in zip(imu, truth):
        rot, ok = calib.bone_orientations(q)
        assert ok.all()
        err.append(np.degrees(((yaw(-facing) * Rotation.from_matrix(g)).inv() * rot).magnitude()))
    err = np.array(err)
    assert err.mean(0).max() < 1.3 * mean_deg, err.mean(0).round(1)
    assert np.percentile(err, 95) < 1.3 * p95_deg
    # Without the moves' headings (every sensor's reference taken as the world) the bones are far off.
    wrong = type(calib)(calib.wear, np.zeros(sk.NUM_IMUS), calib.t_s, pose)
    far = [np.degrees(((yaw(-facing) * Rotation.from_matrix(g)).inv() * wrong.bone_orientations(q)[0]).magnitude())
           for q, g in zip(imu[::10], truth[::10])]
    assert np.mean(far) > 70  # measured 99 and 91 deg


def test_calibration_without_cameras_says_what_the_performer_should_do():
    studio = SimulatedStudio(StudioConfig(seed=3, calibration_pose="T"))
    times = np.arange(0.0, 18.0, 1 / 30)
    imu = sensors_at(studio, times)
    with pytest.raises(ImuCalibrationError, match="ended before the moves"):
        calibrate_without_cameras(times[:200], imu[:200], "T")  # stopped 6.7 s in: the squat is missing
    moving = SimulatedStudio(StudioConfig(seed=3))  # no routine: the performer never holds still
    with pytest.raises(ImuCalibrationError, match="hold the T-pose"):
        calibrate_without_cameras(times, sensors_at(moving, times), "T")
    imu[:, 4] = np.nan
    with pytest.raises(ImuCalibrationError, match="RightUpperArm|LeftUpperArm|sensor"):
        calibrate_without_cameras(times, imu, "T")


def test_the_planted_foot_carries_the_body():
    """A pose stepping forward: while one foot point carries the body it stays
    exactly where it is, and the body moves by the steps."""
    from core.kinematics import forward_kinematics
    from core.solve.lengths import default_offsets

    off = default_offsets(1750.0)
    n = 60
    t = np.linspace(0.0, 4 * np.pi, n)
    local = np.zeros((n, sk.NUM_JOINTS, 3))
    swing = 0.45 * np.sin(t)  # legs swing opposite ways about the left-right axis,
    local[:, sk.JOINT_INDEX["LeftUpLeg"], 0] = swing
    local[:, sk.JOINT_INDEX["RightUpLeg"], 0] = -swing
    # the leg swinging forward bent at the knee, off the floor
    local[:, sk.JOINT_INDEX["LeftLeg"], 0] = -0.8 * np.clip(np.cos(t), 0.0, None)
    local[:, sk.JOINT_INDEX["RightLeg"], 0] = -0.8 * np.clip(-np.cos(t), 0.0, None)
    rel = forward_kinematics(off, np.zeros((n, 3)), Rotation.from_rotvec(local.reshape(-1, 3))).positions_mm
    fp = FootPlacement()
    root = standing_root_mm(rel[0])
    roots, pivots = [], []
    for p in rel:
        root = fp.place(p, root)
        roots.append(root)
        pivots.append(fp.pivot)
    roots, pivots = np.array(roots), np.array(pivots)
    world = rel + roots[:, None]
    for i in range(1, n):
        if pivots[i] == pivots[i - 1]:
            assert np.allclose(world[i, pivots[i], :2], world[i - 1, pivots[i], :2], atol=1e-6)
    # Two cycles of the legs: the feet take turns carrying the body (measured: 7 hand-overs), which walks
    # on by what the stance legs swept, 8 x 0.45 rad of straight leg: 2881 mm measured (the knee bend
    # shortens the last part of each stance).
    assert 5 <= (np.diff(pivots) != 0).sum() <= 9
    travel = np.linalg.norm(roots[-1, :2] - roots[0, :2])
    leg = np.linalg.norm(off[sk.JOINT_INDEX["LeftLeg"]]) + np.linalg.norm(off[sk.JOINT_INDEX["LeftFoot"]])
    assert 0.9 * 8 * leg * np.sin(0.45) < travel < 1.02 * 8 * leg * np.sin(0.45), travel
    # The lowest foot point is always on its floor height.
    from core.solve.inertial import FLOOR_MM, POINTS
    assert np.allclose((world[:, POINTS, 2] - FLOOR_MM).min(axis=1), 0.0, atol=1e-6)


def test_imus_only_solve_of_a_simulated_performer():
    """The template skeleton posed by the IMUs, calibrated without a camera:
    its joints against the truth's, relative to the Hips (an IMU-only
    number: the truth's feet slide in the simulator, so the body's path is
    not judged here; docs/RESULTS.md)."""
    studio, calib, facing = calibrated(0, "T")
    times = np.arange(16.0, 28.0, 1 / 15)
    bones = np.stack([calib.bone_wxyz(q) for q in sensors_at(studio, times)])
    pos, glob, poses = solve_imus_only(times, bones, studio.subject.height_mm)
    assert all(p is not None and p.source == "imus" for p in poses)
    truth = studio.poses(times).positions_mm
    rel = np.linalg.norm((pos - pos[:, :1]) - (truth - truth[:, :1]) @ yaw(-facing).as_matrix().T, axis=-1)
    assert rel.mean() < 1.3 * 40.2, rel.mean()  # measured 40.2 mm (template proportions, not the body's)
    # Standing on the floor: the Hips at the truth's height.
    assert np.abs(pos[:, 0, 2] - truth[:, 0, 2]).mean() < 1.3 * 13.6  # measured 13.6 mm


def _main(*args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


@needs_pty
def test_record_with_imus_alone_from_the_command_line(tmp_path):
    """`main.py record --imu PORT` with no camera: the routine is prompted,
    the IMUs calibrated from it, a take recorded; then exported to BVH and
    read back by bvhio."""
    import bvhio

    from core.take.take import Take
    from plugins.imu.sim_hub import SimulatedHub, studio_samples

    studio = SimulatedStudio(StudioConfig(seed=2, calibration_pose="T", body="capsule"))
    with SimulatedHub(studio_samples(studio)) as hub:
        hub.start()
        started = time.monotonic()  # studio time 0, on the clock the take's stamps are on
        out = _main("record", "--imu", hub.port, "--seconds", 3, "--fps", 15, "--stature", 1800,
                    "--out", tmp_path / "take")
    assert out.returncode == 0, out.stdout + out.stderr
    for step in ("Hold the T-pose still", "Bow forward", "Squat", "Rock back", "IMUs calibrated",
                 "recording 3 s of the IMUs alone"):
        assert step in out.stdout, out.stdout
    take = Take(tmp_path / "take")
    assert take.finished and take.imus_only and take.stature_mm == 1800.0 and take.cameras == []
    assert take.imu_calibration is not None and take.meta["rig"] is None
    assert set(np.unique(take.imu_samples()["sensor"]).tolist()) == set(range(sk.NUM_IMUS))
    assert 40 <= len(take) <= 50, len(take)  # 3 s at 15 frames/s
    out = _main("process", tmp_path / "take")
    assert out.returncode == 1 and "IMUs alone" in out.stderr and "Traceback" not in out.stderr
    out = _main("export", tmp_path / "take", "--bvh", tmp_path / "imus.bvh", "--csv", tmp_path / "imus.csv")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "IMUs only" in out.stdout and "no imus_raw.csv" in out.stdout
    root = bvhio.readAsHierarchy(str(tmp_path / "imus.bvh"))
    frames = bvhio.readAsBvh(str(tmp_path / "imus.bvh")).FrameCount
    assert frames == len(take)
    heights = []
    for f in range(frames):
        root.loadPose(f)
        heights.append(root.PositionWorld.y)
    # The BVH's root, the midpoint of the hip joints, stands about a leg above the floor, in metres
    # (the default target, Blender; an 1800 mm template: 0.951 m measured).
    assert 0.85 < np.median(heights) < 1.05, np.median(heights)
    print(f"root height {np.median(heights):.3f} m")
    # What was exported against the truth, on the studio's clock (the hub played studio time 0 as the
    # test started it), relative to the Hips and turned to the performer's facing in the known pose.
    from core.solve.metrics import motion_quality
    from core.solve.take import fit_globals, fit_imus_only
    from core.take.solved_skeleton import imu_bones

    times = take.frame_times()
    fit = fit_imus_only(times, imu_bones(take, times), take.stature_mm)
    studio_t = times + take.t0_s - started
    truth = studio.poses(studio_t)
    facing = performer_facing(studio.poses(np.array([take.imu_calibration.t_s - started])).positions_mm[0])
    turn_to = yaw(-facing).as_matrix()
    true_rel = (truth.positions_mm - truth.positions_mm[:, :1]) @ turn_to.T
    est_rel = fit.positions_mm - fit.positions_mm[:, :1]
    q = motion_quality(times, est_rel, true_rel, fit_globals(fit), turn_to @ truth.rotations)
    assert q.mpjpe_mm < 1.3 * 51.6, q  # measured 51.6 mm relative to the Hips
    assert q.max_turn_deg < 1.3 * 21.6, q  # measured: no joint turns more than 21.6 deg unless the truth does
