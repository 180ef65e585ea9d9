"""Offline solve of a recorded take: every frame, batched, stored as a new
version beside the untouched recording."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.deepfuse.engine import InferenceEngine
from core.take.process import load_model, process_take
from core.take.take import Take, TakeError
from tests.takes import file_digests, record_lockstep

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("proc") / "take"
    devices, stats, truth, times = record_lockstep(root, seconds=1.2, fps=15.0, seed=5)
    return root, truth


def test_process_solves_every_frame_and_keeps_the_recording(recorded):
    root, truth = recorded
    raw = file_digests(root)
    take = Take(root)
    model, info, _ = load_model("lite")
    engine = InferenceEngine(model, take.rig, device="cpu", threads=2)
    seen = []
    version, joints, meta = process_take(take, engine, info, batch_size=8, progress=lambda d, n: seen.append((d, n)))
    assert version == 1 and len(joints) == len(take) == 18
    # The network over the 18 frames, then the skeleton solve from 0 again (two passes: the feet planted).
    assert seen[0] == (0, 18) and (18, 18) in seen and seen[-1] == (36, 36) and len(seen) >= 3
    found = ~np.isnan(joints.joints_mm[:, 0, 0])
    assert found.all() and meta["frames_found"] == 18
    mpjpe = np.linalg.norm(joints.joints_mm - truth, axis=-1).mean()
    print(f"offline lite solve MPJPE {mpjpe:.1f} mm")
    # Measured 17.0 mm on every run (seed 5, a mesh body: fixed inputs) with the shipped weights
    # (sha256 db1a5545...); 24.2 mm with the weights shipped before.
    assert mpjpe < 22.0, f"offline lite solve MPJPE {mpjpe:.1f} mm"
    assert np.all((joints.confidence > 0) & (joints.confidence <= 1))
    # Stored beside the recording, which is byte for byte as it was.
    after = file_digests(root)
    assert {k: v for k, v in after.items() if not k.startswith("solves")} == raw
    reopened = Take(root)
    assert reopened.solve_versions() == [1]
    stored = reopened.solved_joints()
    np.testing.assert_allclose(stored.joints_mm, joints.joints_mm, atol=1e-3)  # float32 on disk
    info1 = reopened.solve_info(1)
    assert info1["model"]["name"] == "lite" and len(info1["model"]["sha256"]) == 64 and info1["imu"] is True
    assert reopened.best_joints()[1] == "offline solve 001"


def test_process_shares_takes_among_two_ranks_under_torchrun(recorded, tmp_path):
    """Two gloo ranks over three takes and a folder that is not one: each
    take is solved and written by exactly one rank, the bad one is reported
    and the rest go on."""
    import shutil

    roots = [shutil.copytree(recorded[0], tmp_path / name) for name in ("a", "b", "c")]
    before = [Take(r).solve_versions() for r in roots]
    (tmp_path / "photos").mkdir()
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(ROOT / "main.py"), "process", *map(str, roots), str(tmp_path / "photos"),
                             str(roots[0]), "--model", "full", "--batch", "6"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    out = result.stdout
    assert result.returncode == 1, result.stderr  # one of the four was not a take
    assert "this build ships no full model; solving with the lite model" in out
    assert "rank 1 of 2: error:" in result.stderr and "not a FuseCap take" in result.stderr
    # Rank r takes items r, r + 2, ...: a and c on rank 0, b and the photos on rank 1; a given twice counts once.
    assert "3 of 4 takes solved by 2 ranks:" in out
    for name, rank, verdict in (("a", 0, "solved"), ("b", 1, "solved"), ("c", 0, "solved"), ("photos", 1, "FAILED")):
        assert f"{tmp_path / name}: {verdict} (rank {rank})" in out, out
    assert "rank 0 of 2: solve" in out and "rank 1 of 2: solve" in out
    joints = []
    for root, old in zip(roots, before):
        take = Take(root)
        assert take.solve_versions() == old + [old[-1] + 1 if old else 1]  # exactly one new version each
        meta = json.loads(take.layout.solve_meta(take.solve_versions()[-1]).read_text())
        assert meta["batch_size"] == 6 and meta["frames"] == 18 and meta["filter"] == {"kind": "off"}
        assert take.solve_info(take.solve_versions()[-1])["skeleton"]["solved_frames"] == 18
        joints.append(take.solved_joints().joints_mm)
    # Both ranks solve alike: the same recording gives the same joints on either.
    np.testing.assert_allclose(joints[1], joints[0], atol=0.01)
    np.testing.assert_allclose(joints[2], joints[0], atol=0.01)
    with pytest.raises(TakeError, match="no solve version 99"):
        Take(roots[0]).solved_joints(99)


def test_an_interrupted_solve_is_not_taken_for_a_finished_one(recorded, tmp_path):
    import shutil

    root = shutil.copytree(recorded[0], tmp_path / "copy")
    take = Take(root)
    versions = take.solve_versions()
    half = take.layout.solve_dir(50)
    half.mkdir(parents=True)
    (half / "joints.stream").write_bytes(b"FCSTRM\x01\n")  # joints begun, solve.json never written
    take = Take(root)
    assert take.solve_versions() == versions
    assert take.layout.next_solve_version() == 51


def test_offline_solving_finds_the_imu_time_offset_and_corrects_drift(tmp_path):
    """A take of consumer sensors (stamped 30 ms late, drifting): offline
    solving estimates the time offset from its own solved frames, as the
    live session does, and the solve's record says what it found. Measured
    18.1 ms for the true 30 on this 9 s take, the same on every run (fixed
    inputs), with the shipped lite weights (sha256 db1a5545...); 11.5 and
    15.5 with the two weights shipped before: the lite network's joints at
    10 frames/s are noisy turn-rate probes; tests/test_imu_tracking.py finds
    29 ms over a minute with network-like noise. Bound: above 14 ms (1.3x
    below)."""
    root = tmp_path / "take"
    record_lockstep(root, seconds=9.0, fps=10.0, seed=6)
    take = Take(root)
    assert take.meta.get("imu_time_offset_s", 0.0) == 0.0  # recorded without an estimate
    model, info, _ = load_model("lite")
    engine = InferenceEngine(model, take.rig, device="cpu", threads=2)
    _, joints, meta = process_take(take, engine, info, batch_size=8)
    print(f"time offset {meta['imu_time_offset_s'] * 1e3:.1f} ms, heading corrections "
          f"{np.round(meta['heading_corrections_deg'], 1)} deg")
    assert 0.014 < meta["imu_time_offset_s"] < 0.049
    assert len(meta["heading_corrections_deg"]) == 13
    assert np.abs(meta["heading_corrections_deg"]).max() > 0.0
    assert Take(root).solve_info(1)["imu_time_offset_s"] == meta["imu_time_offset_s"]
