"""BVH and CSV exports: an independent BVH reader (bvhio) runs forward
kinematics on the written file and must land on the joints CSV (the BVH's
root on the midpoint of the hip joints); names, frame count and frame time
agree; bad input is refused before any write. Per-target checks (names,
true size, the Hips bone) are in test_export_targets.py."""

import dataclasses
import os

import bvhio
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.export import (
    UNITS,
    joint_names,
    to_file_axes,
    write_bvh,
    write_joints_csv,
    write_raw_csv,
    write_rotations_csv,
)
from core.kinematics import forward_kinematics
from core.posefit import PoseFit, fit_pose
from core.rotations import angle_deg, to_wxyz
from core.sim.motion import Performer, ProceduralMotion
from core.sim.subject import Subject

FPS = 25.0
LEGS = [sk.JOINT_INDEX["LeftUpLeg"], sk.JOINT_INDEX["RightUpLeg"]]


def _as_bvh_skeleton(positions):
    """(..., J, 3) joint positions with the Hips moved to the hip joints' midpoint, as the BVH has them."""
    out = np.array(positions, float)
    out[..., sk.ROOT, :] = out[..., LEGS, :].mean(axis=-2)
    return out


@pytest.fixture
def take(rng):
    """45 noisy frames of a procedural performer, frames 20-24 unsolved."""
    seed = int(rng.integers(1 << 20))
    times = np.arange(45) / FPS
    truth = Performer(Subject.from_seed(seed), ProceduralMotion(seed)).poses_at(times + 5.0)
    rng = np.random.default_rng(seed)
    raw = truth.positions_mm + rng.normal(0.0, 10.0, truth.positions_mm.shape)
    raw[20:25] = np.nan
    conf = rng.uniform(0.3, 1.0, raw.shape[:2])
    return times, raw, conf, fit_pose(times, raw, confidence=conf), seed


def _read_csv(path):
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        rows = [[float(c) if c else np.nan for c in line.strip().split(",")] for line in f]
    return header, np.array(rows)


def _bvh_world_positions(path, frames):
    """(F, J, 3) world joint positions from bvhio's own forward kinematics, file units."""
    root = bvhio.readAsHierarchy(str(path))
    joints = [j for j, _, _ in root.layout()]
    out = np.empty((frames, len(joints), 3))
    for f in range(frames):
        root.loadPose(f)
        out[f] = [list(j.PositionWorld) for j in joints]
    return [j.Name for j in joints], out


@pytest.mark.parametrize("units", ["cm", "m", "mm"])
def test_bvh_forward_kinematics_lands_on_the_joints_csv(tmp_path, take, units):
    times, _, _, fit, seed = take
    bvh, csv = tmp_path / "take.bvh", tmp_path / "take_joints.csv"
    write_bvh(bvh, fit, FPS, units=units)
    write_joints_csv(csv, fit)
    header, table = _read_csv(csv)
    container = bvhio.readAsBvh(str(bvh))
    assert container.FrameCount == len(times)
    assert container.FrameTime == pytest.approx(1.0 / FPS, abs=1e-8)
    names, world = _bvh_world_positions(bvh, len(times))
    assert names == list(joint_names("blender"))
    assert header[:2] == ["time_s", "valid"]
    assert header[2::3] == [f"{n}_x" for n in sk.JOINTS]     # the CSVs keep FuseCap's names
    np.testing.assert_allclose(table[:, 0], times, atol=1e-6)
    np.testing.assert_array_equal(table[:, 1], fit.valid.astype(float))
    csv_mm = table[:, 2:].reshape(len(times), sk.NUM_JOINTS, 3)
    err = np.abs(world / UNITS[units] - _as_bvh_skeleton(csv_mm)).max()
    assert err < 1.0, f"{err:.3f} mm (performer seed {seed})"
    # The CSV is the fit in the export axes.
    np.testing.assert_allclose(csv_mm, to_file_axes(fit.positions_mm), atol=1e-3)


def test_file_axes_are_y_up_facing_plus_z(tmp_path, take):
    fit = take[3]
    write_bvh(tmp_path / "a.bvh", fit, FPS)
    layout = bvhio.readAsBvh(str(tmp_path / "a.bvh")).Root.layout()
    joints = {j.Name: np.array(list(j.Offset)) for j, _, _ in layout}
    assert joints["Hips"].tolist() == [0.0, 0.0, 0.0]
    assert joints["Spine1"][1] > 0.1                         # up is +Y (metres)
    assert joints["LeftForeArm"][0] > 0.1                    # the performer's left is +X
    assert joints["LeftToeBase"][2] > 0.05                   # the toes point forward: faces +Z
    assert joints["LeftLeg"][1] < -0.1
    # The root between the hip joints: their offsets are opposite, mostly along the performer's left.
    np.testing.assert_allclose(joints["LeftUpLeg"], -joints["RightUpLeg"], atol=2e-6)
    assert joints["LeftUpLeg"][0] > 0.05 and np.abs(joints["LeftUpLeg"][1:]).max() < 0.01


def test_rotations_csv_poses_the_same_skeleton(tmp_path, take):
    times, _, _, fit, _ = take
    write_bvh(tmp_path / "a.bvh", fit, FPS)
    write_rotations_csv(tmp_path / "r.csv", fit)
    write_joints_csv(tmp_path / "j.csv", fit)
    header, rot = _read_csv(tmp_path / "r.csv")
    _, pos = _read_csv(tmp_path / "j.csv")
    assert header[:5] == ["time_s", "valid", "root_x", "root_y", "root_z"]
    assert header[5::4] == [f"{n}_w" for n in sk.JOINTS]
    q = rot[:, 5:].reshape(len(times), sk.NUM_JOINTS, 4)
    np.testing.assert_allclose(np.linalg.norm(q, axis=2), 1.0, atol=1e-6)
    assert (np.einsum("tjk,tjk->tj", q[1:], q[:-1]) >= 0).all()      # no sign flips frame to frame
    # Forward kinematics in the file's axes with the BVH's offsets reproduces the joints CSV
    # (the root: the BVH's, between the hip joints).
    offsets = {j.Name: list(j.Offset) for j, _, _ in bvhio.readAsBvh(str(tmp_path / "a.bvh")).Root.layout()}
    off_mm = np.array([offsets[n] for n in joint_names()]) * 1000.0
    local = Rotation.from_quat(q.reshape(-1, 4), scalar_first=True)
    fk = forward_kinematics(off_mm, rot[:, 2:5], local).positions_mm
    csv_mm = pos[:, 2:].reshape(len(times), sk.NUM_JOINTS, 3)
    np.testing.assert_allclose(fk, _as_bvh_skeleton(csv_mm), atol=0.01)
    # And the BVH's Euler angles are the same rotations.
    with open(tmp_path / "a.bvh", encoding="utf-8") as f:
        lines = f.read().splitlines()
    motion = np.array([[float(v) for v in line.split()] for line in lines[lines.index("MOTION") + 3:]])
    euler = motion[:, 3:].reshape(-1, 3)
    from_bvh = Rotation.from_euler("ZXY", euler, degrees=True)
    assert angle_deg(from_bvh, local).max() < 0.01


def test_raw_csv_keeps_gaps_empty(tmp_path, take):
    times, raw, conf, _, _ = take
    write_raw_csv(tmp_path / "raw.csv", times, raw, conf)
    header, table = _read_csv(tmp_path / "raw.csv")
    assert header[0] == "time_s"
    assert header[1:5] == ["Hips_x", "Hips_y", "Hips_z", "Hips_confidence"]
    assert len(header) == 1 + 4 * sk.NUM_JOINTS
    cols = table[:, 1:].reshape(len(times), sk.NUM_JOINTS, 4)
    assert np.isnan(cols[20:25, :, :3]).all() and np.isfinite(table[:, 0]).all()
    ok = np.isfinite(raw).all(axis=2)
    np.testing.assert_allclose(cols[..., :3][ok], to_file_axes(raw)[ok], atol=1e-3)
    np.testing.assert_allclose(cols[..., 3], conf, atol=1e-4)
    with open(tmp_path / "raw.csv", encoding="utf-8") as f:
        gap_row = f.read().splitlines()[21]
    assert gap_row.split(",")[1:4] == ["", "", ""]
    write_raw_csv(tmp_path / "raw2.csv", times, raw)
    assert np.isnan(_read_csv(tmp_path / "raw2.csv")[1][:, 4]).all()


def test_euler_angles_stay_continuous_through_turns(tmp_path):
    """A performer turning two full circles: the Hips' yaw channel runs on
    to 720 degrees instead of jumping back at 180; an arm swinging past
    gimbal lock never jumps by a half or whole turn; FK still agrees."""
    n = 90
    subject = Subject.from_seed(1)
    yaw = np.linspace(0.0, 4 * np.pi, n)
    local = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (n, sk.NUM_JOINTS, 1))
    local[:, sk.ROOT] = to_wxyz(Rotation.from_rotvec(yaw[:, None] * [0.0, 0.0, 1.0]))
    wobble = Rotation.from_rotvec(np.stack([np.sin(yaw), np.cos(yaw), 0 * yaw], 1) * 1.4)  # near gimbal lock
    local[:, sk.JOINT_INDEX["LeftArm"]] = to_wxyz(wobble)
    offsets = subject.offsets_mm.copy()
    offsets[sk.ROOT] = 0.0
    root = np.tile([0.0, 0.0, 950.0], (n, 1))
    rot = Rotation.from_quat(local.reshape(-1, 4), scalar_first=True)
    pos = forward_kinematics(offsets, root, rot).positions_mm
    fit = PoseFit(np.arange(n) / 30.0, offsets, root, local, pos, np.ones(n, bool),
                  subject.bone_lengths(), np.zeros((n, sk.NUM_JOINTS)))
    path = tmp_path / "spin.bvh"
    write_bvh(path, fit, 30.0)
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    motion = np.array([[float(v) for v in line.split()] for line in lines[lines.index("MOTION") + 3:]])
    step = np.abs(np.diff(motion[:, 3:], axis=0))
    assert step.max() < 90.0
    assert motion[-1, 5] == pytest.approx(720.0, abs=0.01)      # Hips Yrotation: yaw about the file's up
    _, world = _bvh_world_positions(path, n)
    assert np.abs(world * 1000.0 - to_file_axes(_as_bvh_skeleton(pos))).max() < 1.0


def test_bad_input_is_refused_and_nothing_is_written(tmp_path, take):
    times, raw, _, fit, _ = take
    target = tmp_path / "keep.bvh"
    target.write_text("old")
    bad_fits = [
        dataclasses.replace(fit, local_wxyz=fit.local_wxyz[:, :5]),
        dataclasses.replace(fit, root_mm=fit.root_mm[:-1]),
        dataclasses.replace(fit, offsets_mm=np.full_like(fit.offsets_mm, np.nan)),
        dataclasses.replace(fit, times_s=np.zeros(0), root_mm=np.zeros((0, 3))),
    ]
    for bad in bad_fits:
        for writer in (lambda p, f: write_bvh(p, f, FPS), write_joints_csv, write_rotations_csv):
            with pytest.raises(ValueError):
                writer(target, bad)
    with pytest.raises(ValueError, match="units"):
        write_bvh(target, fit, FPS, units="inch")
    with pytest.raises(ValueError, match="blender, maya, motionbuilder, unity, unreal"):
        write_bvh(target, fit, FPS, target="houdini")
    for fps in (0.0, -30.0, float("nan")):
        with pytest.raises(ValueError, match="fps"):
            write_bvh(target, fit, fps)
    with pytest.raises(ValueError):
        write_raw_csv(target, times, raw[:, :10])
    with pytest.raises(ValueError):
        write_raw_csv(target, times[:-1], raw)
    with pytest.raises(ValueError, match="confidence"):
        write_raw_csv(target, times, raw, np.ones((len(times), 3)))
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["keep.bvh"]          # no temporary files left behind


def test_progress_reaches_the_frame_count(tmp_path, take):
    times, raw, conf, fit, _ = take
    for write, args in ((write_bvh, (fit, FPS)), (write_joints_csv, (fit,)),
                        (write_rotations_csv, (fit,)), (write_raw_csv, (times, raw, conf))):
        calls = []
        write(tmp_path / "out", *args, progress=lambda d, t: calls.append((d, t)))
        assert calls and calls[-1] == (len(times), len(times))


def test_exported_files_get_the_usual_permissions(tmp_path):
    """Atomic writes go through a private temporary file; the result is readable like any new file."""
    import os

    from core.files import atomic_write_text

    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.csv", "x\n")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.csv").stat().st_mode & 0o777 == 0o644
