"""A take of recorded human motion exported to BVH through `main.py export`,
read back by an independent reader (bvhio): no joint flips.

The take is built from tests/data/solve/cmu-006_07.npz (CMU subject 6,
basketball, 72 frames at 15 frames/s): the shipped lite network's joints and
confidences as the offline solve, the calibrated IMU bones as the take's
sensors (through an identity calibration, so the take's IMUs give exactly
the recorded bones), and the simulator's true rotations to judge by. Both
export paths are checked: the skeleton `process` stores beside the solve, and
a take without one (solved during the export); they write the same bytes.
A flip: a joint's world rotation turning more than 30 degrees between
neighbouring frames where the truth's turns less than 10
(core.solve.metrics)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bvhio
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.camera.rig import CameraRig, standard_studio
from core.export import joint_names, to_file_axes, write_bvh
from core.imu.calibration import ImuCalibration
from core.posefit import fit_pose
from core.solve.bench import Recorded
from core.solve.metrics import BIG_TURN_DEG, TRUTH_STILL_DEG, TURN_JOINTS, motion_quality
from core.solve.take import fit_globals
from core.take.layout import Joints, json_safe
from core.take.solved_skeleton import solve_skeleton, store_skeleton
from core.take.take import Take
from core.take.writer import TakeWriter, write_solve

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests" / "data" / "solve" / "cmu-006_07.npz"
T0_S = 1000.0


def take_from_recorded(root: Path, rec: Recorded, cameras: int = 1) -> Take:
    """A take folder holding `rec`: blank silhouettes at its frame times
    (so the take has its frames), its IMU bones as sensor samples, and its
    network joints as offline solve 001 (no skeleton stored)."""
    fps = 1.0 / float(np.median(np.diff(rec.times_s)))
    t = T0_S + rec.times_s - rec.times_s[0]
    rig = CameraRig(standard_studio().cameras[:cameras])
    calib = ImuCalibration(Rotation.identity(sk.NUM_IMUS), np.zeros(sk.NUM_IMUS))
    meta = json_safe({"source": "test", "t0_s": T0_S, "frame_rate": fps, "cameras": rig.names,
                      "rig": rig.to_dict(), "imu_calibration": calib.to_dict()})
    w = TakeWriter(root, meta)
    for k in range(cameras):
        w.write_silhouettes(k, t, np.arange(len(t)), [np.zeros((4, 8), bool)] * len(t))
    ok = np.isfinite(rec.bone_wxyz).all(axis=2)
    f, s = np.nonzero(ok)
    w.write_imu(t[f], s.astype(np.int16), rec.bone_wxyz[f, s])
    w.close()
    take = Take(root)
    assert len(take) == len(rec.times_s)
    write_solve(take.layout, {"model": {"name": "lite"}, "filter": {"kind": "off"}},
                Joints(take.frame_times(), np.arange(len(take)), rec.joints_mm, rec.confidence))
    return Take(root)


def bvh_global_rotations(path: Path) -> tuple[list[str], np.ndarray]:
    """Joint names and (F, J, 3, 3) world rotations from bvhio's own hierarchy."""
    root = bvhio.readAsHierarchy(str(path))
    joints = [j for j, _, _ in root.layout()]
    frames = bvhio.readAsBvh(str(path)).FrameCount
    out = np.empty((frames, len(joints), 3, 3))
    for f in range(frames):
        root.loadPose(f)
        q = np.array([[j.RotationWorld.w, j.RotationWorld.x, j.RotationWorld.y, j.RotationWorld.z] for j in joints])
        out[f] = Rotation.from_quat(q, scalar_first=True).as_matrix()
    return [j.Name for j in joints], out


def turns_deg(rot: np.ndarray) -> np.ndarray:
    """(F-1, J) the angle each joint's world rotation turns between neighbouring frames."""
    rel = np.einsum("fjab,fjcb->fjac", rot[1:], rot[:-1])  # R_{t+1} R_t^T
    cos = (np.trace(rel, axis1=2, axis2=3) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def flips(path: Path, rec: Recorded) -> tuple[float, int, int]:
    """(the largest turn of the exported file's joints where the truth turns
    under 10 degrees, how many such turns exceed 30 degrees, the pairs judged)."""
    names, rot = bvh_global_rotations(path)
    assert names == list(joint_names())
    est, truth = turns_deg(rot)[:, TURN_JOINTS], turns_deg(rec.true_rot)[:, TURN_JOINTS]
    still = truth < TRUTH_STILL_DEG
    return float(est[still].max()), int((est[still] > BIG_TURN_DEG).sum()), int(still.sum())


def _export(take: Path, bvh: Path, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "export", str(take), "--bvh", str(bvh),
                           *map(str, extra)], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    return Recorded.load(CLIP)


def _read_raw_csv(path: Path) -> np.ndarray:
    rows = path.read_text().splitlines()[1:]
    data = np.array([[float(v) if v else np.nan for v in r.split(",")] for r in rows])
    return data[:, 1:].reshape(len(rows), sk.NUM_JOINTS, 4)[..., :3]


def test_an_exported_take_of_recorded_motion_has_no_flips(recorded, tmp_path):
    rec = recorded
    take = take_from_recorded(tmp_path / "take", rec)
    store_skeleton(take, 1)  # what `main.py process` stores with its solve
    # Solve 002: the same joints, no skeleton stored (a take processed before process solved skeletons).
    write_solve(take.layout, {"model": {"name": "lite"}, "filter": {"kind": "off"}}, take.solved_joints(1))
    results = {}
    for version in (1, 2):
        bvh, csv = tmp_path / f"solve{version}.bvh", tmp_path / f"solve{version}.csv"
        out = _export(tmp_path / "take", bvh, "--csv", csv, "--solve", version, "--units", "mm")
        assert out.returncode == 0, out.stderr
        assert ("skeleton stored by process with offline solve 001" in out.stdout) == (version == 1), out.stdout
        assert ("skeleton solved for this export" in out.stdout) == (version == 2), out.stdout
        results[version] = flips(bvh, rec)
        print(f"solve {version:03d}: largest turn where the truth turns under 10 deg: {results[version][0]:.1f} deg "
              f"over {results[version][2]} joint-frame pairs; {results[version][1]} over 30")
        # The raw CSV keeps the network's own joints, in the file axes.
        np.testing.assert_allclose(_read_raw_csv(tmp_path / f"solve{version}_raw.csv"),
                                   to_file_axes(rec.joints_mm.astype(np.float32)), atol=0.01)
    # The stored skeleton is the one the export would solve: the same bytes.
    assert (tmp_path / "solve1.bvh").read_bytes() == (tmp_path / "solve2.bvh").read_bytes()
    # bvhio's rotations are the solve's: the same largest turn as the project's own measure on the solve.
    fit = solve_skeleton(take, take.solved_joints(1))
    own = motion_quality(fit.times_s, fit.positions_mm, rec.true_mm, fit_globals(fit), rec.true_rot)
    assert results[1][0] == pytest.approx(own.max_turn_deg, abs=0.05)
    worst, over, pairs = results[1]
    assert pairs == 988  # 71 neighbouring pairs x 14 joints with a child, less those the truth turns 10 deg or more
    assert over == 0
    # Measured 16.7 degrees (fixed inputs: the same on every run); the truth turns under 10 there.
    assert worst < 21.7
    # The measure sees flips where there are some: the frame-by-frame pose fit exports used before the
    # skeleton solve, written and read back the same way, turned joints by up to 67.1 degrees, 65 times over 30.
    write_bvh(tmp_path / "frame-by-frame.bvh", fit_pose(rec.times_s, rec.joints_mm, rec.bone_wxyz,
                                                        confidence=rec.confidence), 15.0, units="mm")
    worst, over, _ = flips(tmp_path / "frame-by-frame.bvh", rec)
    assert worst > 50.0 and over > 45
