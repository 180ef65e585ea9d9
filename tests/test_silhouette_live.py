"""Live silhouettes from colour cameras (core.silhouette.live) and recorded
footage standing in for live cameras (VideoFiles on the live clock), on
lossless videos of the simulated studio's colour images."""

import time

import cv2
import pytest

from core.devices import IMAGE_BGR, IMAGE_SILHOUETTE, DeviceError
from core.silhouette.live import SegmentedCamera
from plugins.cameras.video_files import VideoFiles

FPS = 5.0


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    from core.sim.footage import render_footage

    return render_footage(tmp_path_factory.mktemp("footage"), seconds=2.4, fps=FPS, empty_s=1.0, cameras=(1, 5))


@pytest.fixture(scope="module")
def double_size(footage, tmp_path_factory):
    """Camera 0's footage at twice the calibrated size (960x540), as a camera
    that delivers more pixels than the silhouettes need."""
    folder = tmp_path_factory.mktemp("big")
    cap = cv2.VideoCapture(str(footage.folder / "cam0.mkv"))
    out = cv2.VideoWriter(str(folder / "cam0.mkv"), cv2.VideoWriter_fourcc(*"FFV1"), FPS, (960, 540))
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out.write(cv2.resize(img, (960, 540), interpolation=cv2.INTER_LINEAR))
    out.release()
    return folder


def _iou(a, b) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_frames_pass_through_until_a_background_is_captured_then_silhouettes_follow(footage, double_size):
    files = VideoFiles(double_size, realtime=False)
    cam = SegmentedCamera(files.cameras[0], size=(480, 270))
    cam.open()
    try:
        first = cam.read()
        assert first.kind == IMAGE_BGR and first.image.shape == (540, 960, 3)
        assert cam.background_state.words() == "no background yet"
        with pytest.raises(ValueError, match="at least 2 frames"):
            cam.capture_background(1)
        cam.capture_background(3)
        states = []
        for _ in range(3):
            f = cam.read()
            assert f.kind == IMAGE_BGR  # the empty stage is handed on unchanged while it is taken
            states.append(cam.background_state.words())
        assert states == ["capturing the empty stage (1/3)", "capturing the empty stage (2/3)", "background ready"]
        ious = []
        for i in range(4, footage.empty_frames):  # the stage is still empty: nothing (or next to nothing) is cut out
            f = cam.read()
            assert f.kind == IMAGE_SILHOUETTE and f.image.shape == (270, 480)
            assert f.image.mean() < 0.002, i
        for i in range(footage.empty_frames, len(footage.masks)):
            f = cam.read()
            # Cut at the calibrated size from the resized image; the full image rides along.
            assert f.image.shape == (270, 480) and f.colour.shape == (540, 960, 3)
            assert f.t_s == pytest.approx(i / FPS)
            ious.append(_iou(f.image, footage.masks[i][0]))
        assert min(ious) > 0.85, ious
    finally:
        cam.close()


def test_a_camera_of_another_shape_is_refused_with_both_sizes(double_size):
    files = VideoFiles(double_size, realtime=False)
    cam = SegmentedCamera(files.cameras[0], size=(480, 480))
    cam.open()
    try:
        with pytest.raises(DeviceError, match="delivers 960x540 images, but its calibration is for 480x480"):
            cam.read()
    finally:
        cam.close()


def test_footage_on_the_live_clock_keeps_step_and_skips_what_a_slow_reader_missed(footage):
    files = VideoFiles(footage.folder, live_clock=True)
    a, b = files.cameras
    a.open()
    b.open()
    try:
        t0 = time.monotonic()
        fa, fb = a.read(2.0), b.read(2.0)
        # Frame 0 of both views, stamped with the moment it was due on the host clock.
        assert fa.t_s == fb.t_s and abs(fa.t_s - t0) < 0.1
        assert files.recorded_time(fa.t_s) == pytest.approx(0.0, abs=1e-9)
        time.sleep(3.5 / FPS)  # the readers stall for 3.5 frame periods
        fa = a.read(2.0)
        fb = b.read(2.0)
        # Both jump to the frame due now (3), still in step, and count the two they skipped.
        assert round(files.recorded_time(fa.t_s) * FPS) == 3 and a.dropped == 2
        assert fb.t_s == fa.t_s and b.dropped == 2
        assert fa.t_s - t0 == pytest.approx(3 / FPS, abs=0.1)
    finally:
        a.close()
        b.close()
    with pytest.raises(ValueError, match="real-time"):
        VideoFiles(footage.folder, realtime=False, live_clock=True)
