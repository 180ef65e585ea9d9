"""Camera calibration on board images rendered from known cameras (blur, noise,
uneven light, a textured background): intrinsics, the rig's extrinsics with
bundle adjustment and the floor, the files, and the quality gate."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.calibration.board import BoardDetector, BoardError, BoardSpec, Detection
from core.calibration.extrinsics import Intrinsics, calibrate_rig
from core.calibration.files import (
    CalibrationFile,
    CalibrationFileError,
    load_calibration,
    read_anipose_toml,
    save_calibration,
    write_anipose_toml,
)
from core.calibration.intrinsics import CalibrationError, Coverage, calibrate_intrinsics
from core.calibration.quality import GOOD, RECALIBRATE, assess, silhouette_consistency
from core.camera.model import Camera
from core.camera.rig import CameraRig
from core.sim.board_view import (
    board_corners_px,
    board_pose_facing,
    floor_pose,
    handheld_board_poses,
    render_board_view,
    waved_board_poses,
)

WALL_BOARD = BoardSpec(squares_x=9, squares_y=6, square_mm=40.0, marker_mm=30.0)
RIG_BOARD = BoardSpec(squares_x=7, squares_y=5, square_mm=120.0, marker_mm=90.0)


def angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return float(np.degrees(Rotation.from_matrix(Ra @ Rb.T).magnitude()))


# -- board -----------------------------------------------------------------------

def test_board_spec_rejects_bad_definitions():
    with pytest.raises(BoardError, match="smaller than the squares"):
        BoardSpec(square_mm=30, marker_mm=30)
    with pytest.raises(BoardError, match="at least 3 x 3"):
        BoardSpec(squares_x=2)
    with pytest.raises(BoardError, match="has 50"):
        BoardSpec(squares_x=14, squares_y=10, dictionary="DICT_4X4_50")
    with pytest.raises(BoardError, match="unknown ArUco dictionary"):
        BoardSpec(dictionary="DICT_9X9_1")
    with pytest.raises(BoardError, match="not a FuseCap board"):
        BoardSpec.from_dict({"kind": "charuco"})
    assert BoardSpec.from_dict(RIG_BOARD.to_dict()) == RIG_BOARD


def _png_size_and_dpi(path) -> tuple[int, int, float]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    i = data.index(b"pHYs")
    ppm_x, ppm_y, unit = struct.unpack(">IIB", data[i + 4:i + 13])
    assert unit == 1 and ppm_x == ppm_y
    return w, h, ppm_x * 0.0254


def test_printable_board_is_true_size(tmp_path):
    board = BoardSpec(squares_x=5, squares_y=4, square_mm=35.0, marker_mm=26.0)
    png = board.save_printable(tmp_path / "board.png", dpi=300, margin_mm=10)
    w, h, dpi = _png_size_and_dpi(png)
    mm_per_px = 25.4 / dpi
    # 5 x 35 mm of squares plus two 10 mm margins, to within a pixel (0.085 mm at 300 dpi).
    assert abs(w * mm_per_px - (5 * 35 + 20)) < mm_per_px * 1.01
    assert abs(h * mm_per_px - (4 * 35 + 20)) < mm_per_px * 1.01
    # The squares themselves are whole pixels, and exactly 35 mm at the stored resolution.
    square_px = round(35 * dpi / 25.4)
    assert abs(square_px * mm_per_px - 35.0) < 1e-6
    pdf = board.save_printable(tmp_path / "board.pdf", margin_mm=10)
    box = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf.read_bytes())
    assert box, "the PDF has a page size"
    assert abs(float(box.group(1)) / 72 * 25.4 - 195.0) < 0.2
    assert abs(float(box.group(2)) / 72 * 25.4 - 160.0) < 0.2
    with pytest.raises(BoardError, match=".png or .pdf"):
        board.save_printable(tmp_path / "board.jpg")


def test_printed_board_is_detected_with_every_corner():
    img = WALL_BOARD.image(px_per_mm=3.0, margin_mm=20)
    det = BoardDetector(WALL_BOARD).detect(img)
    assert det is not None and len(det) == WALL_BOARD.corner_count == 40
    s = WALL_BOARD.image_scale(3.0)
    expected = (WALL_BOARD.corners_mm[det.ids, :2] + 20) * s - 0.5
    assert np.abs(det.pixels - expected).max() < 0.05


def test_chessboard_is_detected_and_ordered():
    board = BoardSpec(kind="chessboard", squares_x=8, squares_y=6, square_mm=30.0)
    img = board.image(px_per_mm=3.0, margin_mm=30)
    det = BoardDetector(board).detect(img)
    assert det is not None and len(det) == 35
    s = board.image_scale(3.0)
    expected = (board.corners_mm[:, :2] + 30) * s - 0.5
    assert np.abs(det.pixels - expected).max() < 0.1
    # Upside down, the corners still come out numbered from the image's top left.
    det_flip = BoardDetector(board).detect(img[::-1, ::-1].copy())
    assert np.linalg.norm(det_flip.pixels[0]) < np.linalg.norm(det_flip.pixels[-1])


def test_detection_on_an_empty_scene_is_none():
    cam = Camera.look_at([0, -2000, 1200], [0, 0, 1000], 1000, (640, 360))
    R, t = board_pose_facing([0, 3000, 1000], [0, 0, 1000], WALL_BOARD)  # printed side away from the camera
    assert render_board_view(cam, WALL_BOARD, R, t, rng=0).std() > 1  # the board's back is there...
    assert BoardDetector(WALL_BOARD).detect(render_board_view(cam, WALL_BOARD, R, t, rng=0)) is None  # ...no corners


# -- intrinsics ------------------------------------------------------------------

def _intrinsic_views(cam: Camera, n: int, rng: np.random.Generator, region=None):
    det = BoardDetector(WALL_BOARD)
    if region is None:
        poses = handheld_board_poses(cam, WALL_BOARD, n, rng)
    else:  # centres only inside `region` ((u0, v0), (u1, v1))
        poses = []
        for _ in range(n):
            uv = rng.uniform(*region)
            centre = cam.pixel_rays(uv[None])[0] * rng.uniform(550, 1000)
            poses.append(board_pose_facing(cam.centre, centre, WALL_BOARD, tuple(rng.uniform(-35, 35, 2)),
                                           rng.uniform(-30, 30)))
    return [det.detect(render_board_view(cam, WALL_BOARD, R, t, rng=rng)) for R, t in poses]


def test_intrinsics_from_rendered_board_views(seed):
    rng = np.random.default_rng(seed)
    K = np.array([[rng.uniform(900, 1200), 0, 640 + rng.uniform(-15, 15)],
                  [0, 0, 360 + rng.uniform(-15, 15)], [0, 0, 1]])
    K[1, 1] = K[0, 0] * rng.uniform(0.995, 1.005)
    dist = np.array([rng.uniform(-0.25, -0.05), rng.uniform(0.0, 0.1), 0.001, -0.001, 0.0])
    cam = Camera(K, dist, np.eye(3), np.zeros(3), (1280, 720), "wall")
    views = _intrinsic_views(cam, 30, rng)
    assert sum(v is not None for v in views) >= 27, f"seed {seed}"
    res = calibrate_intrinsics(views, WALL_BOARD)
    assert res.rms_px < 0.5, f"seed {seed}: RMS {res.rms_px:.3f} px"
    assert abs(res.K[0, 0] / K[0, 0] - 1) < 0.005, f"seed {seed}: fx {res.K[0, 0]:.1f} vs {K[0, 0]:.1f}"
    assert abs(res.K[1, 1] / K[1, 1] - 1) < 0.005, f"seed {seed}: fy {res.K[1, 1]:.1f} vs {K[1, 1]:.1f}"
    assert np.abs(res.K[:2, 2] - K[:2, 2]).max() < 2.0, f"seed {seed}: principal point {res.K[:2, 2]} vs {K[:2, 2]}"
    assert res.rejected == []
    # Where the board reached the image's edges, a pixel undistorts where the truth says.
    edge = np.array([[20.0, 20.0], [1260.0, 700.0], [640.0, 30.0]])
    fitted = Camera(res.K, res.dist, np.eye(3), np.zeros(3), (1280, 720))
    ray_err = [np.degrees(np.arccos(np.clip(a @ b, -1, 1)))
               for a, b in zip(fitted.pixel_rays(edge), cam.pixel_rays(edge))]
    assert max(ray_err) < 0.25, f"seed {seed}: rays at the edge off by {ray_err} deg"


def test_bad_views_are_rejected_and_named():
    rng = np.random.default_rng(7)
    cam = Camera(np.array([[1000.0, 0, 640], [0, 1000, 360], [0, 0, 1]]), np.array([-0.1, 0.02, 0, 0, 0]),
                 np.eye(3), np.zeros(3), (1280, 720))
    views = _intrinsic_views(cam, 14, rng)
    good = [v for v in views if v is not None]
    # Two views whose corners were matched wrong (a detection that swapped rows).
    bad = []
    for v in good[:2]:
        pix = v.pixels.copy()
        pix[: len(pix) // 2] += rng.normal(0, 6.0, (len(pix) // 2, 2))
        bad.append(Detection(v.ids, pix, v.size))
    res = calibrate_intrinsics(good + bad + [None], WALL_BOARD)
    assert res.rejected == [len(good), len(good) + 1]
    assert res.rms_px < 0.5
    assert np.isnan(res.view_rms_px[len(good) + 2])
    with pytest.raises(CalibrationError, match="3 usable board views"):
        calibrate_intrinsics(good[:3], WALL_BOARD)


def test_coverage_names_the_places_the_board_has_not_been():
    rng = np.random.default_rng(3)
    cam = Camera(np.array([[1000.0, 0, 640], [0, 1000, 360], [0, 0, 1]]), np.zeros(5), np.eye(3), np.zeros(3),
                 (1280, 720))
    cov = Coverage(cam.size)
    for v in _intrinsic_views(cam, 4, rng, region=((560, 300), (720, 420))):
        if v is not None:
            cov.add(v)
    missing = cov.missing_regions()
    assert "top left corner" in missing and "bottom right corner" in missing and "centre" not in missing
    assert cov.fraction < 0.5
    with pytest.raises(ValueError, match="does not belong"):
        cov.add(Detection(np.arange(6), np.zeros((6, 2)), (640, 480)))


# -- the rig ---------------------------------------------------------------------

def _ring_rig(seed: int, n: int = 4, size=(1920, 1080)) -> CameraRig:
    rng = np.random.default_rng(seed)
    cams = []
    for k in range(n):
        a = 2 * np.pi * k / n + rng.uniform(-0.3, 0.3)
        pos = [3000 * np.cos(a), 3000 * np.sin(a), rng.uniform(1800, 2500)]
        cams.append(Camera.look_at(pos, [0, 0, 900], rng.uniform(1400, 1600), size,
                                   dist=np.array([rng.uniform(-0.15, -0.05), 0.03, 0, 0, 0]), name=f"cam{k + 1}"))
    return CameraRig(tuple(cams))


@pytest.fixture(scope="module")
def rig_session():
    """A rig, 30 moments of the board walked around the area, then the board on the floor."""
    rig = _ring_rig(11)
    rng = np.random.default_rng(12)
    det = BoardDetector(RIG_BOARD)
    poses = waved_board_poses(rig, RIG_BOARD, 30, rng) + [floor_pose(RIG_BOARD, (150.0, -80.0), 30.0)]
    detections = [[det.detect(render_board_view(cam, RIG_BOARD, R, t, rng=rng)) for cam in rig] for R, t in poses]
    intr = [Intrinsics(c.name, c.K, c.dist, c.size) for c in rig]
    return rig, poses, detections, intr


def test_rig_extrinsics_after_bundle_adjustment(rig_session):
    rig, poses, detections, intr = rig_session
    steps = []
    res = calibrate_rig(detections, intr, RIG_BOARD, floor_moment=len(poses) - 1,
                        progress=lambda i, n: steps.append((i, n)))
    assert steps[-1] == (4, 4)
    assert res.floor_aligned and res.rms_px < 0.5 and res.rms_px < res.initial_rms_px
    assert np.all(res.camera_rms_px < 0.5)
    # The world is the floor board's: origin at its centre (150, -80), its x turned 30 degrees.
    R_floor, t_floor = floor_pose(RIG_BOARD, (150.0, -80.0), 30.0)
    T_shift = np.eye(4)
    T_shift[:3, :3], T_shift[:3, 3] = R_floor @ np.diag([1.0, -1.0, -1.0]), np.array([150.0, -80.0, 0.0])
    for true, got in zip(rig, res.rig):
        centre_in_board_world = np.linalg.inv(T_shift) @ np.r_[true.centre, 1.0]
        err = np.linalg.norm(centre_in_board_world[:3] - got.centre)
        assert err < 5.0, f"{true.name}: centre off by {err:.1f} mm"
        R_expected = true.R @ T_shift[:3, :3]
        assert angle_deg(R_expected, got.R) < 0.1
    # Every camera took part.
    assert np.all(res.observations >= 5)


def test_disconnected_cameras_are_named():
    rig = _ring_rig(5)
    rng = np.random.default_rng(1)
    # Cameras 1-2 and 3-4 see the board, but never at the same moments.
    moments = []
    for pair in ((0, 1), (2, 3)) * 4:
        R, t = board_pose_facing((rig[pair[0]].centre + rig[pair[1]].centre) / 2,
                                 np.r_[rng.uniform(-300, 300, 2), 1100], RIG_BOARD)
        row = []
        for k, cam in enumerate(rig):
            uv, ok = board_corners_px(cam, RIG_BOARD, R, t)
            row.append(Detection(np.flatnonzero(ok), uv[ok] + rng.normal(0, 0.2, (ok.sum(), 2)), cam.size)
                       if k in pair and ok.sum() >= 6 else None)
        moments.append(row)
    intr = [Intrinsics(c.name, c.K, c.dist, c.size) for c in rig]
    with pytest.raises(CalibrationError, match=r"cam3, cam4 share no board view with camera\(s\) cam1, cam2"
                       r"|cam1, cam2 share no board view with camera\(s\) cam3, cam4"):
        calibrate_rig(moments, intr, RIG_BOARD)
    with pytest.raises(CalibrationError, match="needs a ChArUco board"):
        calibrate_rig(moments, intr, BoardSpec(kind="chessboard"))


# -- files -----------------------------------------------------------------------

ANIPOSE_SAMPLE = """\
[cam_0]
name = "A"
size = [ 1920, 1080,]
matrix = [ [ 1500.5, 0.0, 959.5,], [ 0.0, 1501.25, 539.5,], [ 0.0, 0.0, 1.0,],]
distortions = [ -0.12, 0.0, 0.0, 0.0, 0.0,]
rotation = [ 0.1, -0.2, 0.3,]
translation = [ 10.0, -20.0, 3000.0,]

[cam_1]
name = "B"
size = [ 1280, 720,]
matrix = [ [ 1000.0, 0.0, 639.5,], [ 0.0, 1000.0, 359.5,], [ 0.0, 0.0, 1.0,],]
distortions = [ -0.05,]
rotation = [ 1.2, 0.4, -0.1,]
translation = [ 100.0, 200.0, 2500.0,]

[metadata]
adjusted = true
error = 0.43
"""


def test_anipose_toml_is_read_as_written_by_anipose(tmp_path):
    path = tmp_path / "calibration.toml"
    path.write_text(ANIPOSE_SAMPLE)
    rig = read_anipose_toml(path)
    assert rig.names == ["A", "B"]
    a, b = rig
    assert a.size == (1920, 1080) and a.K[1, 1] == 1501.25 and a.dist[0] == -0.12
    assert np.allclose(a.t, [10, -20, 3000])
    assert np.allclose(Rotation.from_matrix(a.R).as_rotvec(), [0.1, -0.2, 0.3])
    assert b.dist.size == 5 and b.dist[0] == -0.05 and np.all(b.dist[1:] == 0)
    # A point projects as aniposelib's (OpenCV's) model says.
    import cv2
    X = np.array([[100.0, 200.0, 900.0]])
    expect, _ = cv2.projectPoints(X, np.array([0.1, -0.2, 0.3]), np.array([10.0, -20, 3000]),
                                  np.array([[1500.5, 0, 959.5], [0, 1501.25, 539.5], [0, 0, 1]]),
                                  np.array([-0.12, 0, 0, 0, 0]))
    got, ok = a.project(X)
    assert ok[0] and np.abs(got - expect.reshape(1, 2)).max() < 1e-6
    # In metres, lengths scale.
    assert np.allclose(read_anipose_toml(path, units_mm=1000.0)[0].t, [10000, -20000, 3000000])


def test_toml_round_trip(tmp_path):
    rig = _ring_rig(3, n=5)
    write_anipose_toml(tmp_path / "rig.toml", rig, error_px=0.31)
    back = read_anipose_toml(tmp_path / "rig.toml")
    assert back.names == rig.names
    for a, b in zip(rig, back):
        assert np.allclose(a.K, b.K) and np.allclose(a.dist8, b.dist8) and np.allclose(a.t, b.t, atol=1e-9)
        assert angle_deg(a.R, b.R) < 1e-6
    assert "error = 0.31" in (tmp_path / "rig.toml").read_text()


@pytest.mark.parametrize("text, message", [
    ("[cam_0\nname=1", "not a camera-group TOML"),
    ("[other]\nx = 1\n", "no \\[cam_N\\] tables"),
    (ANIPOSE_SAMPLE.replace('size = [ 1920, 1080,]\n', ''), "has no 'size'"),
    (ANIPOSE_SAMPLE.replace(' [ 0.0, 0.0, 1.0,],]\ndistortions = [ -0.12', ']\ndistortions = [ -0.12'),
     "matrix 3x3"),
    (ANIPOSE_SAMPLE.replace('name = "A"', 'name = "A"\nfisheye = true'), "fisheye"),
    (ANIPOSE_SAMPLE.replace("rotation = [ 0.1, -0.2, 0.3,]", 'rotation = "x"'), "cam_0"),
])
def test_malformed_toml_gives_a_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CalibrationFileError, match=message):
        load_calibration(path)


def test_fusecap_calibration_file_round_trip_and_errors(tmp_path):
    rig = _ring_rig(8)
    calib = CalibrationFile(rig, RIG_BOARD, {"verdict": "good", "rms_px": 0.2})
    path = tmp_path / "studio.json"
    save_calibration(path, calib)
    back = load_calibration(path)
    assert back.board == RIG_BOARD and back.quality["verdict"] == "good"
    assert all(np.allclose(a.K, b.K) and np.allclose(a.R, b.R) for a, b in zip(rig, back.rig))
    # Bad files: a clear error, and the good file is untouched.
    text = path.read_text()
    (tmp_path / "cut.json").write_text(text[: len(text) // 2])
    with pytest.raises(CalibrationFileError, match="not valid JSON"):
        load_calibration(tmp_path / "cut.json")
    (tmp_path / "future.json").write_text(text.replace('"version": 1', '"version": 7', 1))
    with pytest.raises(CalibrationFileError, match="version 7 is not supported"):
        load_calibration(tmp_path / "future.json")
    with pytest.raises(CalibrationFileError, match="no such file"):
        load_calibration(tmp_path / "missing.json")
    assert path.read_text() == text
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left behind


# -- quality gate ----------------------------------------------------------------

def test_quality_gate_from_reprojection_error(rig_session):
    rig, poses, detections, intr = rig_session
    res = calibrate_rig(detections, intr, RIG_BOARD, floor_moment=len(poses) - 1)
    report = assess(res.rig, res.camera_rms_px)
    assert report.verdict == GOOD, report.summary
    for q in report.cameras:
        assert q.reprojection_mm < 3.5  # under a tenth of a 35 mm voxel at the performer
    worse = assess(res.rig, np.array([0.3, 0.3, 6.0, 0.3]))
    assert worse.verdict == RECALIBRATE and worse.summary.startswith("recalibrate: cam3")


def test_quality_gate_finds_the_camera_that_moved():
    from core.sim.studio import SimulatedStudio, StudioConfig

    # A fixed performer: with two frames the bumped camera is not always the
    # lowest for every pose (scripts/bench_consistency.py measures this one).
    studio = SimulatedStudio(StudioConfig(seed=3))
    times = (1.0, 3.0)
    frames = [studio.silhouettes(t) for t in times]
    centres = [studio.truth(t).joints_mm[0] for t in times]
    exact = silhouette_consistency(studio.rig, frames, centres)
    assert np.all(exact > 0.97), exact
    assert assess(studio.rig, consistency=exact).verdict == GOOD
    cams = list(studio.rig)
    moved = 3
    c = cams[moved]
    R = Rotation.from_rotvec(np.radians(1.0) * np.array([0.0, 1.0, 0.0])).as_matrix() @ c.R  # turned 1 degree
    cams[moved] = Camera(c.K, c.dist, R, -R @ c.centre, c.size, c.name)
    bumped = CameraRig(tuple(cams), studio.rig.area)
    score = silhouette_consistency(bumped, frames, centres)
    assert int(np.argmin(score)) == moved and score[moved] < 0.9, score
    report = assess(bumped, consistency=score)
    assert report.verdict == RECALIBRATE and report.summary.startswith(f"recalibrate: {c.name}")
