"""`main.py calibrate FOLDER` as a user runs it: a drawn calibration scene
(core.sim.calibration_scene) written to disk as a folder of image folders or
one video per camera, calibrated by real subprocess runs, the written files
read back and compared with the true cameras. Then the floor that never
wastes the work, the lens options, and the errors a user meets.

The scene is drawn once per module from a fresh seed (named in the report of
a failing test; FUSECAP_TEST_SEED reruns it): 3 cameras of 1280x720 on an arc
of 120 degrees, a 7 x 5 ChArUco board of 80 mm squares walked through 24
positions after lying on the floor. Measured on this 2-core machine: 3
cameras render in about 7 s and calibrate in about 5 s, 4 cameras in 11 s and
8 s. On the scene's default half circle, 24 moments are too few: 3 cameras
left an end camera 3 views, fewer than the 4 a lens needs, in 1 of 10 draws,
and 4 cameras came down to 4 views in 2 of 10; on 120 degrees the fewest
views of any camera were 9 in 10 draws, and all 50 draws measured below
calibrated.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.calibration.board import BoardDetector
from core.calibration.files import load_calibration, read_anipose_toml
from core.calibration.recordings import find_recording
from core.sim.calibration_scene import SCENE_BOARD, BoardScene, draw_scene, rig_errors, scene_images, write_scene
from tests.conftest import SEED_ENV, seed_report

ROOT = Path(__file__).resolve().parents[1]
CAMERAS, SIZE, MOMENTS, ARC_DEG = 3, (1280, 720), 24, 120.0
NAMES = [f"cam{k + 1}" for k in range(CAMERAS)]

# Bounds: about 1.3x the worst of 30 draws, measured with this module's own helpers on a 2-core machine shared
# with other jobs (the floor was found in all 30, every camera's verdict "good"):
#   for seed in range(1000, 1030):
#       scene, render_seed = record_scene(np.random.default_rng(seed), work / "rec")
#       _calibrate(work / "rec", "--board", board, "--floor", "first")
#       rig_errors(scene.rig, load_calibration(work / "rec" / "calibration.json").rig)
#       ... then the floor images blanked and calibrated with --reference cam2 (the floor test), and for
#       seeds 1000-1011 write_scene(scene, work / "vid", render_seed, videos=True) calibrated the same way
#   camera centre after a similarity alignment, worst camera: mean 1.4 mm, worst 6.7 mm (7.4 without the floor)
#   focal length (fx + fy) / 2, worst camera: mean 0.18 %, worst 0.56 % (0.62 % without the floor)
#   principal point, worst camera: mean 5.2 px, worst 18.1 px (17.9 without the floor)
#   camera centre in the floor's world, no alignment, worst camera: mean 13 mm, worst 25.9 mm
#   RMS over all corners: 0.17-0.30 px
# The videos (12 draws) were no worse: worst centre 3.0 mm, focal 0.37 %, principal point 9.9 px.
CENTRE_MM, FOCAL_PCT, PRINCIPAL_PX, FLOOR_CENTRE_MM, RMS_PX = 9.6, 0.81, 23.5, 34.0, 0.39


def _calibrate(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "calibrate", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@dataclass
class Recorded:
    """A drawn scene written as a user records it: seed, the truth, the seed
    its images were rendered with, the board definition file, the folder of
    camera folders."""

    seed: int
    scene: BoardScene
    render_seed: int
    board: Path
    images: Path


def record_scene(rng: np.random.Generator, folder: Path) -> tuple[BoardScene, int]:
    """A scene whose floor board some camera finds (the floor moment's images
    rendered exactly as write_scene renders them, the board looked for),
    written to `folder`. The scene's floor board lies where the cameras see
    it steeply from 2-3 m: found in about half the draws; the others are
    drawn again (the floor that is not found is the subject of its own test)."""
    detector = BoardDetector(SCENE_BOARD)
    for _ in range(30):
        scene = draw_scene(rng, cameras=CAMERAS, size=SIZE, moments=MOMENTS, arc_deg=ARC_DEG)
        render_seed = int(rng.integers(2**32))
        _, floor = next(scene_images(scene, render_seed))
        if any(detector.detect(image) is not None for image in floor):
            write_scene(scene, folder, render_seed)
            return scene, render_seed
    raise AssertionError("30 draws without a floor board found")  # about 1 in 10^9


@pytest.fixture(scope="module")
def _recorded(tmp_path_factory) -> Recorded:
    # A fresh seed as tests/conftest.py draws them (FUSECAP_TEST_SEED's when set), for the whole module.
    env = os.environ.get(SEED_ENV, "").strip()
    seed = int(env) if env else int(np.random.SeedSequence().entropy % 2**32)
    print(seed_report([seed]))  # shown if drawing or writing the scene fails
    root = tmp_path_factory.mktemp("calibrate")
    scene, render_seed = record_scene(np.random.default_rng(seed), root / "recording")
    board = root / "board.json"
    board.write_text(json.dumps(scene.board.to_dict()), encoding="utf-8")
    return Recorded(seed, scene, render_seed, board, root / "recording")


@pytest.fixture
def recorded(_recorded, request) -> Recorded:
    """The module's recording, its seed named in this test's report if it fails."""
    request.node.add_report_section("call", "seed", seed_report([_recorded.seed]))
    return _recorded


@pytest.fixture(scope="module")
def images_run(_recorded) -> subprocess.CompletedProcess:
    return _calibrate(_recorded.images, "--board", _recorded.board, "--floor", "first")


def _copy(recorded: Recorded, to: Path) -> Path:
    """The recording's images, without what calibrating it wrote."""
    return Path(shutil.copytree(recorded.images, to, ignore=shutil.ignore_patterns("calibration.*")))


def _table(stdout: str) -> dict[str, tuple]:
    """The printed per-camera table: name -> (views, focal px, cx, cy, RMS px, verdict)."""
    rows = re.findall(r"^(\S+)\s+(\d+)\s+([\d.]+)\s+([\d.]+),\s*([\d.]+)\s+([\d.]+)\s+(?:[\d.]+|-)\s+(\w+)$",
                      stdout, re.M)
    return {r[0]: (int(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]), r[6]) for r in rows}


def _check_against_truth(scene: BoardScene, rig, what: str) -> None:
    err = rig_errors(scene.rig, rig)
    print(f"{what}: centre {err.centre_mm.round(2)} mm, focal {err.focal_pct.round(3)} %, "
          f"principal point {err.principal_px.round(1)} px")
    assert err.centre_mm.max() < CENTRE_MM, (what, err.centre_mm)
    assert err.focal_pct.max() < FOCAL_PCT, (what, err.focal_pct)
    assert err.principal_px.max() < PRINCIPAL_PX, (what, err.principal_px)


def test_images_calibrate_to_the_true_cameras_in_the_floor_world(recorded, images_run):
    out = images_run
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{CAMERAS} cameras ({', '.join(NAMES)}), {MOMENTS + 1} moments of images" in out.stdout
    found = re.search(r"^board found in cam1 (\d+), cam2 (\d+), cam3 (\d+) views; \d+ moments seen by two cameras",
                      out.stdout, re.M)
    assert found, out.stdout
    rms = re.search(r"^RMS ([\d.]+) px over all corners \(from ([\d.]+) before the adjustment", out.stdout, re.M)
    assert rms and float(rms.group(1)) < min(RMS_PX, float(rms.group(2))), out.stdout
    assert "world: the board on the floor (0000.png): origin at its centre, Z up, mm" in out.stdout
    assert f"wrote {recorded.images / 'calibration.json'} and {recorded.images / 'calibration.toml'}" in out.stdout
    calib = load_calibration(recorded.images / "calibration.json")
    rig = calib.rig
    assert rig.names == NAMES and [c.size for c in rig] == [SIZE] * CAMERAS
    assert calib.board == recorded.scene.board
    quality = calib.quality
    assert quality["world"] == "floor" and quality["source"] == str(recorded.images)
    # The printed table is the written calibration's, camera by camera, and every camera is good (so
    # in every measured draw).
    table = _table(out.stdout)
    assert list(table) == NAMES, out.stdout
    for k, cam in enumerate(rig):
        views, focal, cx, cy, px, verdict = table[cam.name]
        q = quality["cameras"][k]
        assert q["name"] == cam.name and verdict == q["verdict"] == "good", out.stdout
        assert 4 <= views == quality["views"][k] <= int(found.group(k + 1))
        assert abs(focal - (cam.K[0, 0] + cam.K[1, 1]) / 2) <= 0.051
        assert abs(cx - cam.K[0, 2]) <= 0.051 and abs(cy - cam.K[1, 2]) <= 0.051
        assert abs(px - q["reprojection_px"]) <= 0.0051
    assert quality["verdict"] == "good" and f"; {quality['summary']}" in out.stdout
    # aniposelib's TOML holds the same cameras (its translation is in mm here, as written).
    toml = read_anipose_toml(recorded.images / "calibration.toml")
    assert toml.names == NAMES
    for a, b in zip(rig, toml):
        assert a.size == b.size
        np.testing.assert_allclose(a.K, b.K, rtol=1e-9)
        np.testing.assert_allclose(a.t, b.t, atol=1e-6)
        np.testing.assert_allclose(a.R, b.R, atol=1e-9)
    _check_against_truth(recorded.scene, rig, "images")
    # The truth's world is the floor board's, so with the floor found the written centres are the true
    # ones without any alignment (the floor's one view sets the world: its error is the largest).
    direct = np.array([np.linalg.norm(a.centre - b.centre) for a, b in zip(rig, recorded.scene.rig)])
    print(f"centres in the floor's world: {direct.round(1)} mm")
    assert direct.max() < FLOOR_CENTRE_MM, direct


@pytest.fixture(scope="module")
def videos_run(_recorded, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The same renders as lossless videos (FFV1), one .mkv per camera."""
    folder = write_scene(_recorded.scene, tmp_path_factory.mktemp("videos") / "recording", _recorded.render_seed,
                         videos=True)
    return folder, _calibrate(folder, "--board", _recorded.board, "--floor", "first")


def test_videos_calibrate_as_the_images_do(recorded, images_run, videos_run):
    folder, out = videos_run
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".mkv") == [f"{n}.mkv" for n in NAMES]
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{CAMERAS} cameras ({', '.join(NAMES)}), {MOMENTS + 1} moments of videos" in out.stdout
    assert "world: the board on the floor (frame 0): origin at its centre, Z up, mm" in out.stdout
    rig = load_calibration(folder / "calibration.json").rig
    assert rig.names == NAMES and read_anipose_toml(folder / "calibration.toml").names == NAMES
    _check_against_truth(recorded.scene, rig, "videos")
    # Lossless video of the same renders: the frames are the images (pixel for pixel), and the
    # calibration is theirs up to the scatter between runs. Two runs on the same images differ: OpenCV's
    # threads sum in varying order (with OPENCV_FOR_THREADS_NUM=1 reruns are identical), and a principal
    # point the views pin down loosely moves with it. Measured, videos against images (12 draws, seeds
    # 1000-1011 above): K worst 1.62 px (mean 0.29), centres worst 0.49 mm; two runs on the same images
    # (20 draws, seeds 2000-2019, the loop above with two runs a draw): K worst 0.55 px, centres 0.37 mm.
    assert images_run.returncode == 0
    by_images = load_calibration(recorded.images / "calibration.json").rig
    for a, b in zip(rig, by_images):
        np.testing.assert_allclose(a.K, b.K, atol=2.1)
        assert np.linalg.norm(a.centre - b.centre) < 0.65, (a.name, a.centre, b.centre)


def test_a_floor_not_found_keeps_the_calibration_in_the_reference_camera(recorded, tmp_path):
    """The floor moment blanked in every camera: the calibration is written
    all the same, in --reference cam2's frame, and the output says why."""
    folder = _copy(recorded, tmp_path / "recording")
    for name in NAMES:
        cv2.imwrite(str(folder / name / "0000.png"), np.full(SIZE[::-1], 128, np.uint8))
    out = _calibrate(folder, "--board", recorded.board, "--floor", "first", "--reference", "cam2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert ("world: camera cam2's frame (no camera found the board on the floor (0000.png); the rig is kept in "
            "camera cam2's frame: set the floor from another view of the board lying on the floor, or from the "
            "performer standing)") in out.stdout, out.stdout
    calib = load_calibration(folder / "calibration.json")
    assert calib.quality["world"] == "camera cam2"
    cam2 = calib.rig[NAMES.index("cam2")]
    np.testing.assert_allclose(cam2.R, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(cam2.t, np.zeros(3), atol=1e-6)
    assert read_anipose_toml(folder / "calibration.toml").names == NAMES
    _check_against_truth(recorded.scene, calib.rig, "no floor")


@pytest.fixture(scope="module")
def lens_run(_recorded, tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """A copy of the recording with one image replaced by random bytes,
    calibrated without --floor, with every principal point and cam1's
    aspect ratio held."""
    folder = _copy(_recorded, tmp_path_factory.mktemp("lens") / "recording")
    corrupt = folder / "cam2" / "0007.png"
    corrupt.write_bytes(np.random.default_rng(_recorded.seed).bytes(5000))
    out = _calibrate(folder, "--board", _recorded.board, "--fix-principal-point", "--fix-aspect-ratio", "cam1")
    return folder, corrupt, out


def test_a_corrupt_image_is_noted_and_skipped(recorded, lens_run):
    folder, corrupt, out = lens_run
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"note: could not read {corrupt}; skipped" in out.stdout
    assert (folder / "calibration.json").is_file() and (folder / "calibration.toml").is_file()


def test_without_a_floor_the_world_is_the_first_camera(recorded, lens_run):
    folder, _, out = lens_run
    assert out.returncode == 0, out.stdout + out.stderr
    assert "world: camera cam1's frame; set the floor in the app, or calibrate again with --floor" in out.stdout
    calib = load_calibration(folder / "calibration.json")
    assert calib.quality["world"] == "camera cam1"
    np.testing.assert_allclose(calib.rig[0].R, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(calib.rig[0].t, np.zeros(3), atol=1e-6)


def test_lens_options_hold_what_they_name(recorded, lens_run):
    folder, _, out = lens_run
    assert out.returncode == 0, out.stdout + out.stderr
    calib = load_calibration(folder / "calibration.json")
    w, h = SIZE
    for cam in calib.rig:  # --fix-principal-point without names: every camera's at the image centre
        assert cam.K[0, 2] == pytest.approx((w - 1) / 2, abs=1e-9) and cam.K[1, 2] == pytest.approx((h - 1) / 2,
                                                                                                  abs=1e-9)
    fx, fy = (np.array([c.K[i, i] for c in calib.rig]) for i in (0, 1))
    assert fx[0] == pytest.approx(fy[0], rel=1e-12)  # --fix-aspect-ratio cam1: square pixels for cam1 ...
    assert np.all(np.abs(fy[1:] / fx[1:] - 1) > 1e-7), (fx, fy)  # ... the others fitted (true: within 0.5 %)
    freedom = calib.quality["lens_freedom"]
    assert [freedom[n]["fix_principal_point"] for n in NAMES] == [True] * CAMERAS
    assert [freedom[n]["fix_aspect_ratio"] for n in NAMES] == [True, False, False]
    assert [freedom[n]["fix_tangential"] for n in NAMES] == [False] * CAMERAS


def _nothing_written(folder: Path) -> bool:
    return not any(p.name.startswith("calibration.") for p in folder.rglob("*"))


def test_a_folder_without_a_recording_is_refused(tmp_path, recorded):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = _calibrate(empty, "--board", recorded.board)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"calibrate: {empty}: no camera folders of images" in out.stderr, out.stderr
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize("content, message", [
    (None, "give the board: --board FILE.json, or --squares XxY and --square-mm"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "board.json: cannot read the board definition"),
    (b'{"squares_x": 7}', "board.json: not a FuseCap board definition (missing format: fusecap-board)"),
    (b'{"format": "fusecap-board", "version": 1, "kind": "charuco", "squares_x": 1e400, "squares_y": 5, '
     b'"square_mm": 80}', "board.json: malformed board definition: cannot convert float infinity to integer"),
    (json.dumps({**SCENE_BOARD.to_dict(), "kind": "chessboard"}).encode(), "several cameras need a ChArUco board"),
], ids=["no-board", "not-json", "not-a-board", "infinite-squares", "chessboard"])
def test_a_missing_or_wrong_board_is_refused(tmp_path, recorded, content, message):
    args = ["--out", tmp_path / "c.json", "--toml", tmp_path / "c.toml"]
    if content is not None:
        (tmp_path / "board.json").write_bytes(content)
        args += ["--board", tmp_path / "board.json"]
    out = _calibrate(recorded.images, *args)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert message in out.stderr, out.stderr
    assert _nothing_written(tmp_path)


@pytest.mark.parametrize("option, message", [
    (["--floor", "0099.png"], "--floor 0099.png: no such moment"),
    (["--fix-principal-point", "cam1", "cam9"], "--fix-principal-point: no camera named cam9; the cameras are "
                                                "cam1, cam2, cam3"),
    (["--reference", "cam4"], "--reference cam4: no such camera; the cameras are cam1, cam2, cam3"),
], ids=["floor", "fix-principal-point", "reference"])
def test_an_option_naming_what_is_not_there_is_refused_before_the_work(recorded, tmp_path, option, message):
    out = _calibrate(recorded.images, "--board", recorded.board, "--out", tmp_path / "c.json", "--toml",
                     tmp_path / "c.toml", *option)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert message in out.stderr, out.stderr
    assert "cameras (" not in out.stdout  # said before the recording is read (that line comes first)
    assert _nothing_written(tmp_path)


def test_an_output_that_is_no_calibration_file_is_refused_before_the_work(recorded, tmp_path):
    out = _calibrate(recorded.images, "--board", recorded.board, "--out", tmp_path / "c.txt")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert f"--out {tmp_path / 'c.txt'}: save a calibration as .json (FuseCap) or .toml" in out.stderr
    assert list(tmp_path.iterdir()) == []


def _image(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full(size[::-1], 200, np.uint8))


def test_a_camera_with_images_of_two_sizes_is_refused(recorded, tmp_path):
    folder = tmp_path / "recording"
    for name in ("0001.png", "0002.png"):
        _image(folder / "left" / name, (640, 480))
        _image(folder / "right" / name, (640, 480))
    _image(folder / "right" / "0003.png", (320, 240))
    out = _calibrate(folder, "--board", recorded.board)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert (f"calibrate: {folder / 'right' / '0003.png'}: 320x240, but camera right's other images are 640x480"
            in out.stderr), out.stderr
    assert _nothing_written(folder)


def test_a_folder_of_both_images_and_videos_is_refused(recorded, tmp_path):
    folder = tmp_path / "recording"
    _image(folder / "cam1" / "0000.png", (640, 480))
    (folder / "cam2.mp4").write_bytes(b"not opened: the layout is refused first")
    out = _calibrate(folder, "--board", recorded.board)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert (f"calibrate: {folder}: holds both image folders (cam1) and videos (cam2.mp4); use one layout"
            in out.stderr), out.stderr
    assert _nothing_written(folder)


def test_frames_and_cameras_are_in_the_order_of_their_numbers(tmp_path):
    """Frames written without leading zeros (0.png ... 10.png) and cameras
    cam1 ... cam10 keep their order: --floor last is the last frame, the
    default reference the first camera."""
    for cam in ("cam10", "cam2", "cam1"):
        for m in range(11):
            _image(tmp_path / cam / f"{m}.png", (8, 8))
    rec = find_recording(tmp_path)
    assert rec.names == ["cam1", "cam2", "cam10"]
    assert rec.moments == [f"{m}.png" for m in range(11)]
