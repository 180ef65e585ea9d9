"""Takes on disk: recording, reopening, crash safety, bad input.

Takes are recorded from the simulated studio, lockstep (tests/takes.py) or
through the real `main.py record` in a subprocess that is killed with
SIGKILL or runs out of disk."""

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core import skeleton as sk
from core.frames import orientations_at
from core.take.chunks import SIGNATURE, ChunkWriter, scan_chunks
from core.take.recorder import Recorder
from core.take.take import SCHEMA, Take, TakeError, TakeLayout
from tests.takes import file_digests, record_lockstep

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lockstep_take(tmp_path_factory):
    root = tmp_path_factory.mktemp("takes") / "lockstep"
    devices, stats, truth, times = record_lockstep(root, seconds=2.0, fps=15.0, video=True)
    return root, devices, stats, truth, times


def test_lockstep_take_holds_every_sample(lockstep_take):
    root, devices, stats, truth, times = lockstep_take
    take = Take(root)
    assert take.finished and take.problems == []
    assert len(take) == 30 and stats.camera_frames == [30] * 8
    np.testing.assert_allclose(take.frame_times(), times, atol=1e-9)
    # Silhouettes come back bit for bit.
    studio = devices.studio
    for bundle in take.frames():
        if bundle.index in (0, 17, 29):
            expected = studio.silhouettes(times[bundle.index])
            for got, want in zip(bundle.silhouettes, expected):
                assert got.dtype == np.uint8 and np.array_equal(got, want)
    # Every IMU sample the hub produced is in the take, in order per sensor.
    imu = take.imu_samples()
    assert len(imu["t_s"]) == stats.imu_samples > 13 * 2 * 50
    assert np.all(imu["t_s"] >= 0) and imu["t_s"].max() <= times[-1] + 1e-9
    assert set(np.unique(imu["sensor"])) == set(range(sk.NUM_IMUS))
    # The orientation at a frame's time matches slerp over that sensor's samples.
    quats, ages = take.imu_at(times)
    k = sk.IMU_INDEX["LeftForeArm"]
    sel = imu["sensor"] == k
    ref, _ = orientations_at(imu["t_s"][sel], imu["quat_wxyz"][sel].astype(float), times)
    assert np.allclose(np.abs((quats[:, k] * ref).sum(-1)), 1.0, atol=1e-6)
    assert ages[5:].max() < 0.02  # samples at 60 Hz or more
    # Live joints: every other frame, as put.
    live = take.live_joints()
    assert len(live) == 15 and np.array_equal(live.index, np.arange(0, 30, 2))
    np.testing.assert_allclose(live.joints_mm, truth[::2] + 1.0, atol=1e-3)
    # Metadata: rig, IMU calibration and pairing.
    assert take.rig.names == devices.rig.names
    assert take.imu_calibration is not None and take.meta["imu_pairing"]["format"] == "fusecap-imu-pairing"
    assert take.meta["schema"] == SCHEMA and take.meta["video"] is True


def test_video_frames_decode(lockstep_take):
    root, devices, *_ = lockstep_take
    take = Take(root)
    frames = list(take.video_frames(2))
    assert len(frames) == 30
    t, img = frames[10]
    mask = devices.studio.silhouettes(t)[2]
    assert img.shape == mask.shape
    # Motion JPEG of a 0/255 mask: at most 1 % of the pixels land on the wrong side of 128.
    assert np.mean((img > 127) != (mask > 0)) < 0.01


def test_frames_with_a_missing_camera(tmp_path):
    root = tmp_path / "off"
    record_lockstep(root, seconds=1.0, fps=10.0, cameras_off=(3,), joints=False)
    take = Take(root)
    assert len(take) == 10
    for bundle in take.frames():
        assert bundle.silhouettes[3] is None
        assert all(m is not None for k, m in enumerate(bundle.silhouettes) if k != 3)
    assert take.live_joints() is None
    with pytest.raises(TakeError, match="no solved joints"):
        take.best_joints()


# -- crash safety -------------------------------------------------------------------

def _record_cmd(out: Path, seconds: float = 60.0) -> list[str]:
    return [sys.executable, str(ROOT / "main.py"), "record", "--demo", "--seconds", str(seconds),
            "--out", str(out), "--model", "none", "--fps", "15"]


def _wait_for_line(proc: subprocess.Popen, needle: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the recorder exited early: {proc.stderr.read()}")
        if needle in line:
            return
    raise AssertionError(f"no line with {needle!r} within {timeout_s} s")


def test_kill_9_while_recording_loses_at_most_the_last_second(tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen(_record_cmd(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        _wait_for_line(proc, "  3.0 s")
        time.sleep(0.3)
        t_kill = time.monotonic()  # CLOCK_MONOTONIC: the same clock the devices stamp with
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    before = file_digests(out)
    take = Take(out)
    assert not take.finished
    assert "did not end cleanly" in take.summary()
    fps = take.fps
    last_frame = take.t0_s + take.frame_times()[-1]
    last_imu = take.t0_s + take.imu_samples()["t_s"].max()
    assert t_kill - last_frame <= 1.0 + 1.0 / fps, f"lost {t_kill - last_frame:.2f} s of camera frames"
    assert t_kill - last_imu <= 1.0, f"lost {t_kill - last_imu:.2f} s of IMU samples"
    assert len(take) >= 2.0 * fps  # at least the 3 s announced, less machine hiccups
    frames = list(take.frames())
    assert len(frames) == len(take)
    # Each camera thread drops frames on its own when the machine falls behind; most frames are whole.
    whole = sum(1 for b in frames if all(m is not None for m in b.silhouettes))
    assert whole >= 0.5 * len(frames)
    assert file_digests(out) == before  # opening and reading changed nothing


def _expect_stopped_recording(proc_result, out: Path, what: str) -> Take:
    assert proc_result.returncode == 1, proc_result.stdout + proc_result.stderr
    assert what in proc_result.stderr and "everything written before is kept" in proc_result.stderr
    assert "Traceback" not in proc_result.stderr
    take = Take(out)
    assert len(take) > 0 and len(take.imu_samples()["t_s"]) > 0
    assert all(len(b.silhouettes) == 8 for b in take.frames())
    return take


@pytest.mark.slow  # 9 s; the full-disk test runs the same stop by default
def test_file_size_limit_stops_the_recording_and_keeps_the_take(tmp_path):
    """The kernel refuses writes past RLIMIT_FSIZE (EFBIG): the same path as a full disk."""
    out = tmp_path / "limited"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))

    result = subprocess.run(_record_cmd(out, 40.0), capture_output=True, text=True, cwd=ROOT,
                            preexec_fn=limit, timeout=180)
    take = _expect_stopped_recording(result, out, "a file grew beyond what the disk allows")
    assert take.meta.get("stopped_because", "").startswith("recording stopped")
    assert (out / "imu.stream").stat().st_size <= 150_000


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                        capture_output=True).returncode == 0
    return ok


def test_full_disk_stops_the_recording_and_keeps_the_take(tmp_path):
    disk = tmp_path / "small-disk"
    if not _mount_tmpfs(disk, "400k"):
        pytest.skip("needs root and permission to mount a small tmpfs (a real full disk)")
    try:
        out = disk / "take"
        result = subprocess.run(_record_cmd(out, 40.0), capture_output=True, text=True, cwd=ROOT, timeout=180)
        _expect_stopped_recording(result, out, "the disk is full")
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_unwritable_take_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = subprocess.run(_record_cmd(blocker / "take", 2.0), capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot start recording" in result.stderr and "not a folder" in result.stderr
    assert blocker.read_text() == "not a folder"


def test_an_existing_take_is_never_overwritten(lockstep_take):
    root = lockstep_take[0]
    before = file_digests(root)
    with pytest.raises(TakeError, match="already exists"):
        Recorder(root, {"t0_s": 0, "frame_rate": 15, "cameras": []}, 0)
    assert file_digests(root) == before


# -- bad input -------------------------------------------------------------------------

def _copy_take(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_truncated_last_chunk_opens_as_what_it_holds(lockstep_take, tmp_path):
    root = _copy_take(lockstep_take[0], tmp_path / "trunc")
    path = TakeLayout(root).silhouettes(4)
    refs, _ = scan_chunks(path)
    cut = refs[-1].offset + refs[-1].length // 2  # half of the last chunk: what a crash leaves
    os.truncate(path, cut)
    before = file_digests(root)
    take = Take(root)
    assert any("truncated" in p and "04.silhouettes" in p for p in take.problems)
    frames = list(take.frames())
    assert len(frames) == 30
    missing = [b.index for b in frames if b.silhouettes[4] is None]
    assert missing and missing == list(range(30 - len(missing), 30))  # only the tail of camera 4
    assert all(b.silhouettes[3] is not None for b in frames)
    assert file_digests(root) == before


def test_damaged_middle_chunk_is_skipped_with_a_message(lockstep_take, tmp_path):
    root = _copy_take(lockstep_take[0], tmp_path / "rot")
    path = TakeLayout(root).imu
    refs, _ = scan_chunks(path)
    assert len(refs) >= 3
    in_chunk = len(refs[1].load()["t_s"])
    data = bytearray(path.read_bytes())
    data[refs[1].offset + 40] ^= 0xFF
    path.write_bytes(bytes(data))
    take = Take(root)
    assert any("damaged (checksum mismatch); skipped" in p for p in take.problems)
    n_all = len(Take(lockstep_take[0]).imu_samples()["t_s"])
    n_left = len(take.imu_samples()["t_s"])
    assert n_all - n_left == in_chunk > 0  # exactly that chunk's samples are gone


@pytest.mark.parametrize("damage, message", [
    ("no-meta", "not a FuseCap take"),
    ("schema", "schema version is 2, newer than this FuseCap reads"),
    ("format", "not a FuseCap take"),
    ("json", "unreadable take metadata"),
    ("stream", "not a FuseCap stream file"),
    ("meta-fields", "malformed take metadata"),
])
def test_bad_takes_give_clear_errors_and_stay_untouched(lockstep_take, tmp_path, damage, message):
    import json

    root = _copy_take(lockstep_take[0], tmp_path / damage)
    meta_path = root / "take.json"
    meta = json.loads(meta_path.read_text())
    if damage == "no-meta":
        meta_path.unlink()
    elif damage == "schema":
        meta["schema"] = 2
        meta_path.write_text(json.dumps(meta))
    elif damage == "format":
        meta["format"] = "something-else"
        meta_path.write_text(json.dumps(meta))
    elif damage == "json":
        meta_path.write_text(meta_path.read_text()[:100])
    elif damage == "stream":
        (root / "live.stream").write_bytes(b"PK\x03\x04 this is a zip, not a stream")
    elif damage == "meta-fields":
        del meta["frame_rate"]
        meta_path.write_text(json.dumps(meta))
    before = file_digests(root)
    with pytest.raises(TakeError, match=message):
        Take(root)
    for cmd in (["process", str(root), "--model", "lite"], ["export", str(root), "--csv", str(tmp_path / "x.csv")]):
        result = subprocess.run([sys.executable, str(ROOT / "main.py"), *cmd], capture_output=True, text=True,
                                cwd=ROOT, timeout=120)
        assert result.returncode == 1, result.stderr
        assert message.split(",")[0] in result.stderr and "Traceback" not in result.stderr
    assert file_digests(root) == before


def test_a_folder_that_is_not_a_take(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(TakeError, match="not a FuseCap take"):
        Take(tmp_path / "photos")
    with pytest.raises(TakeError, match="no such take folder"):
        Take(tmp_path / "nothing-here")


def test_chunk_writer_appends_after_reopen(tmp_path):
    path = tmp_path / "s.stream"
    w = ChunkWriter(path)
    w.append({"a": np.arange(3)})
    w.close()
    w = ChunkWriter(path)
    w.append({"a": np.arange(5)})
    w.close()
    refs, problems = scan_chunks(path)
    assert problems == [] and [len(r.load()["a"]) for r in refs] == [3, 5]
    assert path.read_bytes().startswith(SIGNATURE) and path.read_bytes().count(SIGNATURE) == 1
