"""`process` stores the whole-take skeleton beside the network's joints, and
exports write it instead of solving again when their settings are the ones
it was solved with; a stored skeleton that cannot be used is solved again,
with a note."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.deepfuse.engine import InferenceEngine
from core.export.take_export import export_take
from core.filters import FilterConfig
from core.take.process import load_model, process_take
from core.take.solved_skeleton import (
    SKELETON_FILE,
    SkeletonFileError,
    read_skeleton,
    skeleton_path,
    skeleton_settings,
    solve_skeleton,
)
from core.take.take import Take
from tests.takes import file_digests, record_lockstep

ROOT = Path(__file__).resolve().parents[1]
STORED = "stored by process with offline solve 001"


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    """18 frames of the simulated studio, processed with the lite model; the
    progress reports of both phases and the recording's bytes before."""
    root = tmp_path_factory.mktemp("store") / "take"
    record_lockstep(root, seconds=1.2, fps=15.0, seed=5)
    raw = file_digests(root)
    take = Take(root)
    model, info, _ = load_model("lite")
    network, skeleton = [], []
    version, joints, meta = process_take(take, InferenceEngine(model, take.rig, device="cpu", threads=2), info,
                                         batch_size=8, progress=lambda d, n: network.append((d, n)),
                                         skeleton_progress=lambda d, n: skeleton.append((d, n)))
    assert version == 1
    return root, meta, network, skeleton, raw


def test_process_stores_the_skeleton_beside_the_joints(processed):
    root, meta, network, skeleton, raw = processed
    take = Take(root)
    # Two progress phases: the network over the 18 frames, then the skeleton's windows (two passes over
    # the 18 frames: the second plants the feet).
    assert network[0] == (0, 18) and network[-1] == (18, 18)
    assert skeleton and skeleton[-1] == (36, 36) and all(n == 36 for _, n in skeleton)
    # The version folder holds the joints, the skeleton and the metadata; nothing half-written.
    folder = take.layout.solve_dir(1)
    assert sorted(p.name for p in folder.iterdir()) == ["joints.stream", "skeleton.npz", "solve.json"]
    entry = take.solve_info(1)["skeleton"]
    assert entry == meta["skeleton"]
    data = (folder / SKELETON_FILE).read_bytes()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
    assert entry["frames"] == entry["solved_frames"] == 18
    assert entry["settings"] == skeleton_settings(take) and entry["settings"]["imu"] is True
    assert entry["settings"]["plant_feet"] is True and entry["settings"]["filter"] == {"kind": "off"}
    # What is stored is the skeleton solve of the joints as stored.
    joints = take.solved_joints(1)
    stored = read_skeleton(take, 1, joints, skeleton_settings(take))
    fresh = solve_skeleton(take, joints)
    np.testing.assert_allclose(stored.root_mm, fresh.root_mm, atol=1e-9)
    np.testing.assert_allclose(stored.local_wxyz, fresh.local_wxyz, atol=1e-12)
    np.testing.assert_allclose(stored.positions_mm, fresh.positions_mm, atol=1e-6)
    np.testing.assert_allclose(stored.distance_mm, fresh.distance_mm, atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(stored.valid, fresh.valid)
    np.testing.assert_array_equal(stored.bone_lengths_mm, fresh.bone_lengths_mm)
    # The raw network joints are stored as before, and the recording is byte for byte as it was.
    assert take.best_joints()[1] == "offline solve 001"
    assert {k: v for k, v in file_digests(root).items() if not k.startswith("solves")} == raw


def test_export_writes_the_stored_skeleton_when_its_settings_match(processed, tmp_path):
    root = processed[0]
    take = Take(root)
    before = file_digests(root)
    rep = export_take(take, tmp_path / "a.bvh", tmp_path / "a.csv")
    assert rep.skeleton == STORED and rep.which == "offline solve 001" and not rep.notes
    # Other settings than process's: the export solves its own skeleton.
    for kwargs in ({"plant_feet": False}, {"use_imu": False},
                   {"smoothing": FilterConfig(kind="zero-phase", cutoff_hz=6.0)}, {"solve": "live"}):
        other = export_take(take, tmp_path / "b.bvh", None, **kwargs)
        assert other.skeleton == "solved for this export", kwargs
    # The same settings solved again give the same files, byte for byte.
    shutil.copytree(root, tmp_path / "copy")
    skeleton_path(Take(tmp_path / "copy").layout, 1).unlink()
    meta = json.loads((tmp_path / "copy/solves/001/solve.json").read_text())
    del meta["skeleton"]  # a take processed before process stored skeletons
    (tmp_path / "copy/solves/001/solve.json").write_text(json.dumps(meta))
    again = export_take(Take(tmp_path / "copy"), tmp_path / "c.bvh", tmp_path / "c.csv")
    assert again.skeleton == "solved for this export" and not again.notes
    for a, c in (("a.bvh", "c.bvh"), ("a.csv", "c.csv"), ("a_rotations.csv", "c_rotations.csv"),
                 ("a_raw.csv", "c_raw.csv")):
        assert (tmp_path / a).read_bytes() == (tmp_path / c).read_bytes(), a
    assert file_digests(root) == before  # exporting never writes into the take


@pytest.mark.parametrize("damage", ["truncated", "other bytes", "missing", "entry not an object", "newer format"])
def test_a_skeleton_that_cannot_be_used_is_solved_again_with_a_note(processed, tmp_path, damage):
    root = shutil.copytree(processed[0], tmp_path / "take")
    path = skeleton_path(Take(root).layout, 1)
    data = path.read_bytes()
    meta_path = Take(root).layout.solve_meta(1)
    meta = json.loads(meta_path.read_text())
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "other bytes":
        path.write_bytes(data[:100] + bytes([data[100] ^ 0x40]) + data[101:])
    elif damage == "missing":
        path.unlink()
    elif damage == "entry not an object":
        meta["skeleton"] = [1, 2]
    else:
        meta["skeleton"]["format_version"] = 2
    meta_path.write_text(json.dumps(meta))
    take = Take(root)
    with pytest.raises(SkeletonFileError, match=str(path).replace("\\", "\\\\")):
        read_skeleton(take, 1, take.solved_joints(1), skeleton_settings(take))
    before = file_digests(root)
    rep = export_take(take, tmp_path / "x.bvh")
    assert rep.skeleton == "solved for this export"
    assert len(rep.notes) == 1 and str(path) in rep.notes[0] and "solved the skeleton again" in rep.notes[0]
    export_take(Take(processed[0]), tmp_path / "y.bvh")  # the intact take
    assert (tmp_path / "x.bvh").read_bytes() == (tmp_path / "y.bvh").read_bytes()
    assert file_digests(root) == before


def test_the_export_command_warns_and_solves_again(processed, tmp_path):
    root = shutil.copytree(processed[0], tmp_path / "take")
    path = skeleton_path(Take(root).layout, 1)
    path.write_bytes(path.read_bytes()[:-40])
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "export", str(root), "--bvh", str(tmp_path / "x.bvh")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert f"note: {path}: the stored skeleton cannot be used" in out.stdout
    assert "skeleton solved for this export" in out.stdout


def test_a_cancelled_skeleton_solve_leaves_the_take_as_it_was(processed, tmp_path):
    root = shutil.copytree(processed[0], tmp_path / "take")
    before = file_digests(root)
    take = Take(root)
    model, info, _ = load_model("lite")

    def stop(done, total):
        if done > 0:
            raise Stop()

    with pytest.raises(Stop):
        process_take(take, InferenceEngine(model, take.rig, device="cpu", threads=2), info, batch_size=8,
                     skeleton_progress=stop)
    assert file_digests(root) == before
    assert not take.layout.solve_dir(2).exists()


@pytest.mark.slow  # 10 s; process_take's storing is tested by default above, the command in test_take_process.py
def test_the_process_command_stores_a_skeleton(processed, tmp_path):
    root = shutil.copytree(processed[0], tmp_path / "take")
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "process", str(root), "--model", "lite",
                          "--threads", "2"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "solve 002 stored" in out.stdout
    assert "skeleton solved over 18/18 frames" in out.stdout and "(with IMUs) and stored beside the joints" \
        in out.stdout
    take = Take(root)
    assert take.solve_info(2)["skeleton"]["settings"] == skeleton_settings(take)
    rep = export_take(take, tmp_path / "x.bvh")
    assert rep.skeleton == "stored by process with offline solve 002" and not rep.notes
    help_text = subprocess.run([sys.executable, str(ROOT / "main.py"), "process", "--help"], capture_output=True,
                               text=True, cwd=ROOT, timeout=60).stdout
    assert "solved skeleton" in " ".join(help_text.split())
