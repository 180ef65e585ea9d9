"""The take commands end to end: export of a solved take to BVH and CSV, and
`record --vmc` streaming the live pose to a real OSC server on loopback."""

import csv
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.deepfuse.engine import InferenceEngine
from core.export import to_file_axes
from core.export.targets import joint_names
from core.kinematics import forward_kinematics
from core.session.session import LIVE_SOLVE
from core.stream import vmc
from core.take.process import load_model, process_take
from core.take.take import Take
from tests.takes import file_digests, record_lockstep

ROOT = Path(__file__).resolve().parents[1]


def _main(*args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def solved_take(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "take"
    record_lockstep(root, seconds=2.0, fps=15.0, seed=11)
    take = Take(root)
    model, info, _ = load_model("lite")
    process_take(take, InferenceEngine(model, take.rig, device="cpu", threads=2), info, batch_size=10)
    return root


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    data = np.array([[float(v) if v != "" else np.nan for v in r] for r in rows[1:]])
    return rows[0], data


def test_export_writes_bvh_glb_and_three_csvs(solved_take, tmp_path):
    before = file_digests(solved_take)
    result = _main("export", solved_take, "--bvh", tmp_path / "t.bvh", "--csv", tmp_path / "t.csv",
                   "--glb", tmp_path / "t.glb", "--units", "mm", "--filter", "off")
    assert result.returncode == 0, result.stderr
    assert "offline solve 001" in result.stdout
    take = Take(solved_take)
    solve = take.solved_joints()
    # The joints CSV: one row a frame, the BVH's joint names, fitted positions in mm.
    head, joints = _read_csv(tmp_path / "t.csv")
    assert head[:2] == ["time_s", "valid"] and head[2:5] == ["Hips_x", "Hips_y", "Hips_z"]
    assert len(joints) == len(take) == 30 and np.all(joints[:, 1] == 1)
    np.testing.assert_allclose(joints[:, 0], take.frame_times(), atol=1e-4)
    # The raw CSV is the offline solve as stored, in the same file axes.
    head_raw, raw = _read_csv(tmp_path / "t_raw.csv")
    assert head_raw[1:5] == ["Hips_x", "Hips_y", "Hips_z", "Hips_confidence"]
    raw_xyz = raw[:, 1:].reshape(30, sk.NUM_JOINTS, 4)[..., :3]
    np.testing.assert_allclose(raw_xyz, to_file_axes(solve.joints_mm), atol=0.01)
    # The solved skeleton stays near the raw joints (the printed report agrees); it departs from
    # them where the IMUs, the limits and the motion prior disagree with a frame's network joints.
    fitted = joints[:, 2:].reshape(30, sk.NUM_JOINTS, 3)
    dist = np.linalg.norm(fitted - raw_xyz, axis=-1).mean()
    print(f"solved joints to raw: mean {dist:.1f} mm")
    # Measured 15.7 mm on every run (seed 11, a mesh body: fixed inputs) with the shipped weights
    # (sha256 db1a5545...); 17.1 mm with the weights shipped before.
    assert dist < 20.5
    assert f"mean {dist:.1f} mm" in result.stdout
    # The rotations CSV: unit quaternions for every joint.
    head_rot, rot = _read_csv(tmp_path / "t_rotations.csv")
    q = rot[:, [head_rot.index(f"{n}_{c}") for n in sk.JOINTS for c in "wxyz"]].reshape(30, sk.NUM_JOINTS, 4)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-4)
    # The BVH, read by bvhio, has every frame and the take's frame rate.
    import bvhio

    bvh = bvhio.readAsBvh(str(tmp_path / "t.bvh"))
    assert bvh.FrameCount == 30 and abs(bvh.FrameTime - 1 / 15) < 1e-6
    # The glTF: the same joints as the joints CSV (metres there, mm here), a key a frame at 15 fps.
    from tests.gltf_reader import Glb

    g = Glb(tmp_path / "t.glb")
    ids = [g.node_index(n) for n in joint_names("blender")]
    keys = g.accessor(g.model.animations[0].samplers[0].input)
    assert len(keys) == 30 and keys[-1] == pytest.approx(29 / 15, abs=1e-5)
    for f in (0, 14, 29):
        np.testing.assert_allclose(1000.0 * g.world_matrices(f)[ids, :3, 3], fitted[f], atol=1.0)
    assert f"{tmp_path / 't.glb'}" in result.stdout.splitlines()[-1]
    assert file_digests(solved_take) == before


def test_export_target_picks_names_and_units(solved_take, tmp_path):
    """--target: the tool's joint names and unit, named in the last line; the default is Blender, in metres."""
    import bvhio

    from core.export.targets import joint_names

    heights = {}
    for target, extra, units in (("blender", (), "m"), ("unreal", ("--target", "unreal"), "cm"),
                                 ("unreal", ("--target", "unreal", "--units", "m"), "m")):
        path = tmp_path / f"{target}-{units}.bvh"
        result = _main("export", solved_take, "--bvh", path, *extra)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == f"wrote {path} (BVH for {target} in {units}, 15 fps)"
        root = bvhio.readAsHierarchy(str(path))
        assert [j.Name for j, _, _ in root.layout()] == list(joint_names(target))
        root.loadPose(0)
        heights[(target, units)] = max(j.PositionWorld.y for j, _, _ in root.layout())
    # The same head top in each file's unit.
    assert heights[("unreal", "cm")] == pytest.approx(100.0 * heights[("blender", "m")], abs=1e-3)
    assert heights[("unreal", "m")] == pytest.approx(heights[("blender", "m")], abs=1e-6)
    result = _main("export", solved_take, "--bvh", tmp_path / "x.bvh", "--target", "houdini")
    assert result.returncode == 2 and "invalid choice: 'houdini'" in result.stderr


def test_export_with_smoothing_reports_distance_to_raw(solved_take, tmp_path):
    result = _main("export", solved_take, "--csv", tmp_path / "s.csv", "--filter", "zero-phase")
    assert result.returncode == 0, result.stderr
    assert "to the raw network joints mean" in result.stdout
    assert (tmp_path / "s_rotations.csv").is_file() and (tmp_path / "s_raw.csv").is_file()


def test_export_errors_are_clear(solved_take, tmp_path):
    bare = tmp_path / "bare"
    record_lockstep(bare, seconds=0.5, fps=10.0, joints=False)
    result = _main("export", bare, "--bvh", tmp_path / "x.bvh")
    assert result.returncode == 1 and "no solved joints" in result.stderr and "Traceback" not in result.stderr
    result = _main("export", solved_take, "--bvh", tmp_path / "missing-folder" / "x.bvh")
    assert result.returncode == 1 and "does not exist" in result.stderr
    result = _main("export", solved_take, "--solve", "7", "--csv", tmp_path / "y.csv")
    assert result.returncode == 1 and "no solve version 7" in result.stderr
    result = _main("export", solved_take)
    assert result.returncode == 2 and "nothing to write" in result.stderr


class _VmcReceiver:
    """A real OSC server on loopback collecting every bone message."""

    def __init__(self) -> None:
        self.frames: list[dict[str, tuple]] = []
        self._current: dict[str, tuple] = {}
        self.times: list[float] = []
        d = Dispatcher()
        d.map(vmc.ADDRESS_TIME, self._time)
        d.map(vmc.ADDRESS_BONE, self._bone)
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), d)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _time(self, address, t):
        if self._current:
            self.frames.append(self._current)
        self._current = {}
        self.times.append(t)

    def _bone(self, address, name, *values):
        self._current[name] = values

    def close(self):
        import time

        # Let the server thread handle every datagram already in its socket.
        seen = -1
        while seen != len(self.times):
            seen = len(self.times)
            time.sleep(0.3)
        self.server.shutdown()
        self.server.server_close()
        if self._current:
            self.frames.append(self._current)


@pytest.mark.slow  # 12 s; VMC frames reach a real OSC server by default in test_vmc.py
def test_record_streams_the_live_pose_over_vmc(tmp_path):
    receiver = _VmcReceiver()
    out = tmp_path / "vmc-take"
    try:
        result = _main("record", "--demo", "--seconds", "4", "--out", out, "--vmc", f"127.0.0.1:{receiver.port}",
                       "--live-filter", "off", "--fps", "10")
    finally:
        receiver.close()
    assert result.returncode == 0, result.stderr
    live = Take(out).live_joints()
    assert live is not None and len(live) >= 3
    frames = receiver.frames
    assert len(frames) == len(live), (len(frames), len(live))  # one bundle per live solve
    # The stream carries the live skeleton solve (core.solve.live). Solving the take's live joints
    # again, frame by frame as the session did (no IMU bones yet: the first 15 s are the IMU
    # calibration routine, cameras alone), gives the same poses.
    from core.solve.live import solve_sequence

    _, _, solved = solve_sequence(live.times_s, live.joints_mm, live.confidence, None, LIVE_SOLVE)
    names = dict(vmc.SENT_JOINTS)
    worst, mean_to_raw = 0.0, []
    for joints, frame, pose in zip(live.joints_mm, frames, solved):
        assert set(frame) == set(names.values())
        local = np.tile([0.0, 0.0, 0.0, 1.0], (sk.NUM_JOINTS, 1))
        for j, name in names.items():
            local[j] = frame[name][3:7]
        rot = vmc.unity_to_world_rotation(Rotation.from_quat(local))
        hips = vmc.unity_to_world_position(np.array(frame["Hips"][:3]))
        # The root is the solved Hips (to float32 precision in metres).
        np.testing.assert_allclose(hips, pose.root_mm, atol=0.5)
        got = forward_kinematics(pose.offsets_mm, hips[None], rot).positions_mm[0]
        worst = max(worst, float(np.abs(got - pose.positions_mm).max()))
        mean_to_raw.append(np.linalg.norm(got - joints, axis=-1).mean())
    assert worst < 1.0, f"the received pose is {worst:.2f} mm from the solved one"
    print(f"VMC skeleton to the raw network joints: mean {np.mean(mean_to_raw):.1f} mm over {len(frames)} frames")
    # Measured 11.8-12.8 mm over three runs on 2 cores with the shipped weights (sha256 db1a5545...;
    # real time: the frames solved vary; 17.4 with the weights shipped before).
    assert np.mean(mean_to_raw) < 16.5
