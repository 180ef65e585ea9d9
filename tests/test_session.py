"""The session and its events: subscribe and unsubscribe, camera lost and
back (real MJPEG streams over HTTP), a recording stopped by a failed write
(a real file-size limit), one volume and one set of bone orientations per
frame, and the live path waiting on a condition instead of polling."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from footage import servers_fixture  # noqa: F401

from core.capture.threads import LOST, RUNNING
from core.events import Event
from core.session import CaptureSession, Studio
from plugins.cameras.opencv_source import OpenCVCamera

ROOT = Path(__file__).resolve().parents[1]
servers = pytest.fixture(servers_fixture)


def test_an_event_calls_its_listeners_in_order_until_they_leave():
    event = Event("test")
    got = []
    first = event.connect(lambda x: got.append(("first", x)))
    assert event.connect(first) is first and len(event) == 1  # connected once, however often

    def broken(x):
        raise RuntimeError("a listener's defect")

    event.connect(broken)
    event.connect(lambda x: got.append(("last", x)))
    event.emit(1)  # the broken listener is logged; the others still hear it
    assert got == [("first", 1), ("last", 1)]
    assert event.disconnect(first) and not event.disconnect(first)
    event.emit(2)
    assert got[-1] == ("last", 2) and ("first", 2) not in got


def test_listeners_may_leave_while_another_thread_emits():
    event = Event("busy")
    counts = [0]
    stop = threading.Event()

    def emitter():
        while not stop.is_set():
            event.emit(1)

    thread = threading.Thread(target=emitter)
    thread.start()
    try:
        for _ in range(200):
            cb = event.connect(lambda x: counts.__setitem__(0, counts[0] + x))
            assert event.disconnect(cb)
    finally:
        stop.set()
        thread.join(5.0)
    assert len(event) == 0


def test_the_session_says_when_a_camera_is_lost_and_when_it_is_back(servers):
    a, b = servers(cam=0), servers(cam=1)
    cams = [OpenCVCamera(s.url, index=k, stall_timeout_s=0.5) for k, s in enumerate((a, b))]
    session = CaptureSession(Studio(cams, [], None, "two streams"), None, 40.0, label="capture only")
    heard = []
    session.events.camera.connect(heard.append)
    for thread in session.capture.group.threads:
        thread.reconnect_s = 0.2
    session.start()
    try:
        deadline = time.monotonic() + 10.0
        while [s.state for s in session.camera_status()] != [RUNNING, RUNNING] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted((s.name, s.state) for s in heard) == sorted((c.name, RUNNING) for c in cams)
        a.stop()
        assert session.capture.group[0].wait_for(LOST, 5.0)
        time.sleep(0.3)  # reconnect attempts while lost are not news
        lost = [s for s in heard if s.state == LOST]
        assert [s.name for s in lost] == [cams[0].name] and lost[0].last_error
        servers(port=a.port, cam=0)
        assert session.capture.group[0].wait_for(RUNNING, 5.0)
        time.sleep(0.1)
        assert [(s.name, s.state) for s in heard[-2:]] == [(cams[0].name, LOST), (cams[0].name, RUNNING)]
        assert heard[-1].reconnects == 1
    finally:
        session.stop()
    assert [s.state for s in heard[-2:]] == ["stopped", "stopped"]


RECORD_UNTIL_IT_FAILS = """
import faulthandler, resource, signal, sys, threading, time
faulthandler.dump_traceback_later(40, exit=True)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from core.session.opening import open_simulated_session
from core.sim.studio import StudioConfig

session = open_simulated_session(StudioConfig(seed=5, camera_fps=10), "none")
stopped = []
done = threading.Event()
session.events.recording_stopped.connect(lambda s: (stopped.append(s), done.set()))
session.start()
resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))
session.start_recording(sys.argv[1], flush_s=0.2)
ok = done.wait(30.0)
print("event", ok, "recording", session.recording, "threads", threading.current_thread().name)
s = stopped[0]
print("root", s.root.name, "frames", sum(s.stats.camera_frames), "error", s.error)
session.stop()
"""


def test_a_failed_write_stops_the_recording_and_the_session_says_why(tmp_path):
    out = tmp_path / "limited"
    result = subprocess.run([sys.executable, "-c", RECORD_UNTIL_IT_FAILS, str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("event True recording None"), result.stdout
    assert f"root {out.name}" in lines[1] and "a file grew beyond what the disk allows" in lines[1], lines[1]
    assert int(lines[1].split("frames ")[1].split()[0]) > 0  # what was written before is kept


def test_one_volume_stage_and_one_set_of_bone_orientations_per_frame():
    from core.deepfuse.engine import InferenceEngine
    from core.frames import FrameBundle
    from core.pipeline import Pipeline
    from core.sim.studio import SimulatedStudio, StudioConfig

    studio = SimulatedStudio(StudioConfig(seed=11))
    engine = InferenceEngine.shipped("lite", studio.rig, optimise=False)
    calls = []

    def bones(bundle):
        calls.append(bundle.index)
        return studio.truth(bundle.t_s).bone_wxyz

    pipeline = Pipeline(studio.rig, engine, bones)
    assert pipeline.volumes is engine.volumes  # one per-rig table, built where the network runs
    masks = studio.silhouettes(1.0)
    bundle = FrameBundle(0, 1.0, tuple(masks), np.zeros((13, 4)), np.zeros(13))
    result = pipeline.process(bundle)
    assert calls == [0] and result.bone_wxyz is not None
    np.testing.assert_array_equal(result.bone_wxyz, studio.truth(1.0).bone_wxyz)
    assert isinstance(result.volume, np.ndarray) and result.volume.shape[0] == len(studio.rig)
    direct = engine.solve(list(masks), result.bone_wxyz)
    np.testing.assert_allclose(result.solve.joints_mm, direct.joints_mm, atol=1e-6)


def test_blas_runs_on_one_thread_while_the_app_is_live_and_gets_its_threads_back_at_stop():
    """OpenBLAS's idle workers spin: while the desktop app is live, numpy's and SciPy's BLAS keep to one thread."""
    from threadpoolctl import threadpool_info

    from core.session.opening import open_simulated_session
    from core.sim.studio import StudioConfig

    def blas_threads():
        return sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})

    before = blas_threads()
    session = open_simulated_session(StudioConfig(seed=4, camera_fps=5), "none")
    session.start(blas_threads=1)  # as the desktop app starts it
    try:
        assert blas_threads() == [1]
    finally:
        session.stop()
    assert blas_threads() == before
    session = open_simulated_session(StudioConfig(seed=4, camera_fps=5), "none")
    session.start()  # without a window: left as they are
    try:
        assert blas_threads() == before
    finally:
        session.stop()


def test_the_live_path_sleeps_until_a_frame_arrives_instead_of_polling():
    """With no frames coming, waiting 0.4 s for a bundle looks at the cameras
    a handful of times (when a frame could have arrived or a deadline
    passed), not every few milliseconds."""
    from core.capture.live import LiveCapture
    from core.registry import registry
    from core.sim.studio import StudioConfig

    devices = registry().studios["simulated"](StudioConfig(seed=2, camera_fps=15), realtime=True)
    capture = LiveCapture(devices.cameras, [], 15.0)
    looks = [0]

    class Counting:
        def __init__(self, reader):
            self.reader = reader

        def read(self, timeout_s):
            looks[0] += 1
            return self.reader.read(timeout_s)

    capture._latest = [Counting(r) for r in capture._latest]
    t0 = time.monotonic()
    assert capture.latest_bundle(timeout_s=0.4) is None
    waited = time.monotonic() - t0
    assert 0.39 < waited < 1.0
    # Measured: 3 looks per camera (start, half a period, four half periods); a 5 ms poll made 80.
    assert looks[0] <= 4 * len(devices.cameras), looks[0]


@pytest.mark.slow  # 22 s (the routine in real time); by default tests/test_imu_tracking.py calibrates from the
# routine, and tests/test_imu_only.py runs a session through it
def test_the_simulated_session_calibrates_its_imus_from_the_routine(tmp_path):
    """The simulated studio hands the session no calibration: the performer
    does the routine as the session starts, the session estimates the wear
    offsets and headings from the sensors and its own live joints, says so
    (imu_calibrated), solves with them from then on, and a take records
    the estimate and the IMU time offset."""
    import json

    from core.deepfuse.weights import shipped_model_path
    from core.rotations import from_wxyz
    from core.session.opening import open_simulated_session
    from core.sim.studio import StudioConfig

    if not shipped_model_path("lite").exists():
        pytest.skip("no shipped lite model")
    session = open_simulated_session(StudioConfig(seed=5, camera_fps=10.0, body="mesh"), "lite")
    assert session.imu_calibration is None and session.imu_tracking.calibration is None
    got, fused = [], []
    session.events.imu_calibrated.connect(got.append)
    session.events.frame.connect(lambda f: fused.append(f.result.bone_wxyz is not None))
    session.prepare()
    session.start()
    try:
        deadline = time.monotonic() + 90.0
        while not got and time.monotonic() < deadline and session.imu_tracking.error is None:
            time.sleep(0.2)
        assert got, session.imu_tracking.state().message
        calib = got[0]
        assert session.imu_calibration is calib
        # Cameras alone first, the IMUs once calibrated (from the next frame the worker solves on).
        deadline = time.monotonic() + 10.0
        while not fused[-1] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not fused[0] and fused[-1]
        sim = session.studio.devices.studio
        t = time.monotonic() - session.studio.devices.t0_s
        q = sim.imus.measure(sim.poses, np.full(13, t), np.arange(13), np.arange(13)).quat_wxyz
        deg = np.degrees((from_wxyz(calib.bone_wxyz(q)).inv() * from_wxyz(sim.truth(t).bone_wxyz)).magnitude())
        print(f"calibrated from the routine: bones off the truth by median {np.median(deg):.1f}°, "
              f"worst {deg.max():.1f}°")
        # Measured with the shipped weights (sha256 db1a5545...), in real time on 2 cores: medians
        # 0.9-1.1° (worst bone 1.8-4.5°) over 9 runs, 4 on a quiet machine, 3 beside two and 2
        # beside four busy processes (the live solves during the routine vary with the load);
        # 2.8° (worst bone 3.9°) with the weights shipped before.
        assert np.median(deg) < 1.4
        session.start_recording(tmp_path / "take")
        time.sleep(0.5)
        session.stop_recording()
    finally:
        session.stop()
    meta = json.loads((tmp_path / "take" / "take.json").read_text())
    assert meta["imu_calibration"]["format"] == "fusecap-imu-calibration"
    assert "imu_time_offset_s" in meta


class _StaggeredCamera:
    """A camera of a synchronised rig whose frame of each instant (every 1/15 s
    from `t0`) arrives `delay_s` after the instant: cameras on one USB hub
    deliver one after another."""

    def __init__(self, k: int, t0: float, delay_s: float) -> None:
        self.name, self.k, self.t0, self.delay_s, self.n = f"cam{k}", k, t0, delay_s, 0

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def read(self, timeout_s: float = 1.0):
        from core.devices import IMAGE_SILHOUETTE, CameraFrame

        t = self.t0 + self.n / 15.0
        wait = t + self.delay_s - time.monotonic()
        if wait > timeout_s:
            time.sleep(timeout_s)
            return None
        time.sleep(max(0.0, wait))
        self.n += 1
        return CameraFrame(self.k, t, np.zeros((4, 4), np.uint8), IMAGE_SILHOUETTE)


def test_a_free_worker_waits_for_every_camera_of_an_instant_that_comes_within_half_a_period():
    """The cameras of one instant come 4 ms apart (28 ms for all eight, under
    half the 15 fps period): a worker that asked well before the instant
    gets all eight, not the first few as though they were late. How long an
    instant has waited counts from its first frame, not from the call."""
    from core.capture.live import LiveCapture

    t0 = time.monotonic() + 0.3
    cams = [_StaggeredCamera(k, t0, 0.004 * k) for k in range(8)]
    capture = LiveCapture(cams, [], 15.0)
    capture.start()
    try:
        counts = []
        for _ in range(4):
            bundle = capture.latest_bundle(timeout_s=1.0)  # asked ~0.3 s ahead, then each instant
            counts.append(sum(m is not None for m in bundle.silhouettes))
            time.sleep(0.01)
    finally:
        capture.stop()
    assert counts == [8, 8, 8, 8], counts


def test_the_live_path_runs_its_three_stages_on_three_threads_in_order():
    """Volume on the worker, network on its own thread, the rest on the
    poser: every frame passes the three in order, and stop ends all three."""
    from core.session.opening import open_simulated_session
    from core.sim.studio import StudioConfig

    session = open_simulated_session(StudioConfig(seed=3, camera_fps=10), "none")
    seen: list[tuple[int, str]] = []
    session.events.frame.connect(lambda f: seen.append((f.bundle.index, threading.current_thread().name)))
    staged_on, solved_on = set(), set()
    stage, solve = session.pipeline.stage, session.pipeline.solve
    session.pipeline.stage = lambda b: (staged_on.add(threading.current_thread().name), stage(b))[1]
    session.pipeline.solve = lambda s: (solved_on.add(threading.current_thread().name), solve(s))[1]
    session.start()
    try:
        time.sleep(1.5)
        names = {t.name for t in threading.enumerate()}
        assert {"live-solve", "live-network", "live-pose"} <= names
    finally:
        t0 = time.monotonic()
        session.stop()
        stopped_s = time.monotonic() - t0
    print(f"stopped in {stopped_s:.3f} s; {len(seen)} frames")
    # Measured 0.18-0.19 s and 13 frames (three runs). Stopping waits at most for the worker's wait for a
    # bundle (0.2 s) and the network hand-over's poll (0.1 s).
    assert stopped_s < 0.6, stopped_s
    assert not {"live-solve", "live-network", "live-pose"} & {t.name for t in threading.enumerate()}
    assert staged_on == {"live-solve"} and solved_on == {"live-network"}
    indices = [i for i, _ in seen]
    assert len(indices) >= 10 and indices == sorted(indices) and len(set(indices)) == len(indices), indices
    assert {name for _, name in seen} == {"live-pose"}
