"""The OpenCV camera source (video files, an MJPEG stream over HTTP, open
errors) and the recorded-footage source (layout, timestamps, pacing, bad
input), on real video files and a real local HTTP stream."""

import time
from pathlib import Path

import numpy as np
import pytest
from footage import H, MjpegServer, W, frame_identity, servers_fixture, write_video  # noqa: F401

from core.devices import IMAGE_BGR, CameraSource, DeviceError, EndOfStream
from core.registry import Registry, registry
from plugins.cameras import register
from plugins.cameras.opencv_source import OpenCVCamera
from plugins.cameras.video_files import FootageError, VideoFiles

servers = pytest.fixture(servers_fixture)


def read_all(src, limit: int = 1000) -> list:
    out = []
    with pytest.raises(EndOfStream):
        for _ in range(limit):
            f = src.read(1.0)
            if f is not None:
                out.append(f)
    return out


# -- OpenCVCamera --------------------------------------------------------------

def test_video_file_plays_paced_like_a_camera(tmp_path, rng):
    n, fps = int(rng.integers(8, 14)), 50.0
    cam = OpenCVCamera(str(write_video(tmp_path / "take.avi", n, fps)), index=3)
    assert isinstance(cam, CameraSource)
    cam.open()
    assert (cam.actual.width, cam.actual.height, cam.actual.fps) == (W, H, fps)
    frames = read_all(cam)
    cam.close()
    assert len(frames) == n == cam.frames
    assert [frame_identity(f.image) for f in frames] == list(range(n))
    assert all(f.camera == 3 and f.kind == IMAGE_BGR and f.image.shape == (H, W, 3) for f in frames)
    dt = np.diff([f.t_s for f in frames])
    assert np.all(dt > 0)
    # Paced at the file's rate: the whole file takes (n - 1) frame periods.
    assert frames[-1].t_s - frames[0].t_s == pytest.approx((n - 1) / fps, abs=0.05)
    assert np.median(dt) == pytest.approx(1 / fps, abs=0.005)


def test_video_file_loops_and_plays_at_a_chosen_rate(tmp_path):
    cam = OpenCVCamera(str(write_video(tmp_path / "a.avi", 5)), fps=200, loop=True)
    cam.open()
    frames = [cam.read(1.0) for _ in range(12)]
    cam.close()
    assert [frame_identity(f.image) for f in frames] == [i % 5 for i in range(12)]
    assert frames[-1].t_s - frames[0].t_s == pytest.approx(11 / 200, abs=0.03)


def test_open_errors_name_the_source_and_what_to_check(tmp_path, rng):
    with pytest.raises(DeviceError, match=r"missing\.avi.*does not exist"):
        OpenCVCamera(str(tmp_path / "missing.avi")).open()
    (tmp_path / "junk.avi").write_bytes(rng.bytes(2000))
    with pytest.raises(DeviceError, match=r"junk\.avi.*format"):
        OpenCVCamera(str(tmp_path / "junk.avi")).open()
    with pytest.raises(DeviceError, match=r"camera 57.*plugged in"):
        OpenCVCamera(57).open()
    # A port nobody listens on (taken from a server that is gone).
    server = MjpegServer()
    url = server.url
    server.stop()
    with pytest.raises(DeviceError, match=rf"stream {url}.*reachable"):
        OpenCVCamera(url, open_timeout_s=1.0).open()
    with pytest.raises(ValueError, match="unknown OpenCV backend"):
        OpenCVCamera(0, backend="nonsense")
    cam = OpenCVCamera(str(tmp_path / "x.avi"))
    with pytest.raises(DeviceError, match="not open"):
        cam.read()


def test_stream_over_http_then_it_stops_answering(servers):
    server = servers(cam=2)
    cam = OpenCVCamera(server.url, width=1920, height=1080, index=1, stall_timeout_s=0.5)
    assert cam.kind == "stream"
    cam.open()
    frames = [cam.read(1.0) for _ in range(12)]
    # A stream gives what it holds, whatever was asked.
    assert (cam.actual.width, cam.actual.height) == (W, H)
    assert all(f is not None and f.image.shape == (H, W, 3) and f.camera == 1 for f in frames)
    cams = [round((f.image[8:-8, W // 2 + 4:-4].mean() - 30) / 50) for f in frames]
    assert cams == [2] * 12
    ids = [frame_identity(f.image) for f in frames]
    assert ids == [i % 256 for i in range(ids[0], ids[0] + 12)]  # consecutive frames, none lost
    t = np.array([f.t_s for f in frames])
    assert np.all(np.diff(t) > 0) and abs(t[-1] - time.monotonic()) < 1.0
    server.stop()
    start = time.monotonic()
    with pytest.raises(DeviceError, match="stopped answering"):
        for _ in range(100):  # frames already buffered may still come out first
            cam.read(1.0)
    assert time.monotonic() - start < 3.0
    cam.close()


def test_a_stream_that_goes_silent_is_noticed_after_the_stall_timeout(servers):
    server = servers()
    cam = OpenCVCamera(server.url, stall_timeout_s=0.4)
    cam.open()
    assert cam.read(1.0) is not None
    server.silent.set()
    start = time.monotonic()
    with pytest.raises(DeviceError, match="stopped answering"):
        for _ in range(100):
            cam.read(1.0)
    assert 0.3 < time.monotonic() - start < 2.0
    cam.close()


# -- VideoFiles ----------------------------------------------------------------

def make_footage(folder: Path, counts, fps=25.0, timestamps=None) -> Path:
    folder.mkdir(exist_ok=True)
    for k, n in enumerate(counts):
        write_video(folder / f"cam{k * 5}.avi", n, fps, cam=k)  # cam0, cam5, cam10: natural order
    if timestamps is not None:
        (folder / "timestamps.csv").write_text(timestamps)
    return folder


def random_times(rng, n: int, t0: float, fps: float) -> np.ndarray:
    """Frame times with jitter, strictly increasing."""
    return t0 + np.arange(n) / fps + rng.uniform(0, 0.3 / fps, n)


def test_footage_with_timestamps_offline(tmp_path, rng):
    counts = [int(c) for c in rng.integers(5, 12, 3)]
    times = [random_times(rng, n, 1000 + rng.uniform(0, 0.02), 30.0) for n in counts]
    rows = [(f"cam{k * 5}", i, t[i]) for k, t in enumerate(times) for i in range(len(t))]
    rng.shuffle(rows)  # any order
    csv = "camera,frame,t_s\n# recorded on the stage\n" + "".join(f"{c},{i},{float(t)!r}\n" for c, i, t in rows)
    footage = VideoFiles(make_footage(tmp_path / "f", counts, timestamps=csv), realtime=False)
    assert footage.names == ["cam0", "cam5", "cam10"]
    assert [v.frames for v in footage.views] == counts
    start = time.monotonic()
    for k, cam in enumerate(footage.cameras):
        cam.open()
        frames = read_all(cam)
        cam.close()
        assert len(frames) == counts[k]
        np.testing.assert_array_equal([f.t_s for f in frames], times[k])
        assert [frame_identity(f.image) for f in frames] == list(range(counts[k]))
        assert all(f.camera == k and abs(f.image[:, W // 2 + 4:].mean() - (30 + 50 * k)) < 4 for f in frames)
    assert time.monotonic() - start < 1.0  # as fast as decoding goes: no pacing


def test_footage_without_timestamps_uses_the_frame_rate_and_paces_in_real_time(tmp_path):
    footage = VideoFiles(make_footage(tmp_path / "f", [6, 6], fps=40.0))
    assert footage.timestamps_path is None
    assert footage.span_s == pytest.approx((0.0, 5 / 40))
    for cam in footage.cameras:
        cam.open()
    got = {0: [], 1: []}
    arrivals = []
    for i in range(6):
        for k, cam in enumerate(footage.cameras):
            f = cam.read(1.0)
            arrivals.append((time.monotonic(), f.t_s))
            got[k].append(f)
    for k in got:
        assert [f.t_s for f in got[k]] == pytest.approx(np.arange(6) / 40)
        assert [frame_identity(f.image) for f in got[k]] == list(range(6))
    wall = np.array([a for a, _ in arrivals])
    t = np.array([b for _, b in arrivals])
    # Delivered when due, never early: wall time since playback began follows the timestamps.
    lag = wall - (footage.playback.wall0 + t)
    assert lag.min() >= 0 and lag.max() < 0.25  # late only by scheduling (a loaded machine: tenths of a second)
    with pytest.raises(EndOfStream):
        footage.cameras[0].read(1.0)
    # Reopening resumes where it was; rewinding plays from the start.
    cam = footage.cameras[1]
    cam.close()
    cam.open()
    with pytest.raises(EndOfStream):
        cam.read(1.0)
    footage.rewind()
    cam.open()
    assert frame_identity(cam.read(1.0).image) == 0
    for c in footage.cameras:
        c.close()


def test_list_of_files_and_a_read_that_times_out(tmp_path):
    a = write_video(tmp_path / "left.avi", 3)
    b = write_video(tmp_path / "right.avi", 3)
    csv = tmp_path / "times.csv"
    rows = "".join(f"{c},{i},{5 + 2 * i}\n" for c in ("left", "right") for i in range(3))
    csv.write_text("camera,frame,t_s\n" + rows)
    footage = VideoFiles([b, a], timestamps=csv, realtime=True, speed=10.0)
    cam = footage.cameras[0]
    assert cam.name == "video:right"
    cam.open()
    assert cam.read(0.1).t_s == 5.0
    start = time.monotonic()
    assert cam.read(0.05) is None  # the next frame is 0.2 s away at 10x
    assert cam.read(0.5).t_s == 7.0
    assert 0.15 < time.monotonic() - start < 0.4
    cam.close()


@pytest.mark.parametrize("body, message", [
    ("camera,frame,time\n", r"line 1: expected the header camera,frame,t_s"),
    ("camera,frame,t_s\ncam0,0,0.0\ncam0,1\n", r"line 3: expected 3 values"),
    ("camera,frame,t_s\ncam0,0,0.0\n\ncam0,x,0.1\n", r"line 4: frame 'x' is not a whole number"),
    ("camera,frame,t_s\ncam0,0,soon\n", r"line 2: t_s 'soon' is not a number"),
    ("camera,frame,t_s\ncam0,0,nan\n", r"line 2: t_s 'nan' is not a finite"),
    ("camera,frame,t_s\ncam7,0,0.0\n", r"line 2: no video named 'cam7'"),
    ("camera,frame,t_s\ncam0,0,0.0\ncam0,0,0.1\n", r"line 3: frame 0 of 'cam0' is listed twice \(first on line 2\)"),
    ("camera,frame,t_s\ncam0,4,0.0\n", r"line 2: frame 4 of 'cam0' is outside 0..2"),
    ("camera,frame,t_s\ncam0,0,0\ncam0,2,1\ncam5,0,0\ncam5,1,1\ncam5,2,2\n",
     r"camera 'cam0' has 2 timestamps but .*cam0\.avi holds 3 frames \(frame 1 has none\)"),
    ("camera,frame,t_s\ncam0,0,0\ncam0,1,1\ncam0,2,1\ncam5,0,0\ncam5,1,1\ncam5,2,2\n",
     r"line 4: t_s of 'cam0' frame 2 \(1\.0\) is not after frame 1's"),
])
def test_bad_timestamps_name_the_file_and_line(tmp_path, body, message):
    folder = make_footage(tmp_path / "f", [3, 3], timestamps=body)
    with pytest.raises(FootageError, match=message) as err:
        VideoFiles(folder)
    assert "timestamps.csv" in str(err.value)


def test_bad_footage_names_the_file(tmp_path):
    with pytest.raises(FootageError, match="nowhere does not exist"):
        VideoFiles(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FootageError, match="holds no videos"):
        VideoFiles(tmp_path / "empty")
    with pytest.raises(FootageError, match=r"gone\.avi does not exist"):
        VideoFiles([tmp_path / "gone.avi"])
    (tmp_path / "broken.avi").write_bytes(b"RIFF not really a video")
    with pytest.raises(FootageError, match=r"broken\.avi could not be opened"):
        VideoFiles([tmp_path / "broken.avi"])
    a = write_video(tmp_path / "x.avi", 2)
    (tmp_path / "sub").mkdir()
    b = write_video(tmp_path / "sub" / "x.avi", 2)
    with pytest.raises(FootageError, match="two videos share the name 'x'"):
        VideoFiles([a, b])
    with pytest.raises(FootageError, match=r"times\.csv does not exist"):
        VideoFiles([a], timestamps=tmp_path / "times.csv")


def test_registered_through_the_entry_point(tmp_path):
    reg = Registry()
    register(reg)
    assert set(reg.camera_sources) == {"opencv", "video-files"}
    cam = reg.camera_sources["opencv"]("2", width=640, height=480, fps=60, index=4, fourcc="MJPG")
    assert (cam.source, cam.kind, cam.index, cam.requested, cam.name) == (2, "device", 4, (640, 480, 60), "opencv:2")
    footage = reg.camera_sources["video-files"](make_footage(tmp_path / "f", [2, 2]), realtime=False)
    assert len(footage.cameras) == 2 and all(isinstance(c, CameraSource) for c in footage.cameras)
    assert {"opencv", "video-files"} <= set(registry().camera_sources)
