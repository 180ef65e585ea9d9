"""Fuzzing the calibration readers (FuseCap's JSON and aniposelib's TOML):
any bytes, and any damage to a real file, either read as a usable rig or
raise CalibrationFileError naming the file; the file is never changed. And
the recordings `main.py calibrate` reads (image folders, videos): a damaged
image or video is skipped with a note or refused with RecordingError naming
it, never another error."""

import json
import re
import shutil
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from core.calibration.board import BoardSpec
from core.calibration.files import (
    CalibrationFile,
    CalibrationFileError,
    load_calibration,
    read_anipose_toml,
    save_calibration,
    write_anipose_toml,
)
from core.calibration.recordings import RecordingError, find_recording, read_views
from core.camera.model import Camera
from core.camera.rig import CameraRig, standard_studio
from core.sim.calibration_scene import draw_scene, write_scene
from tests.mutations import TOML_VALUES, Seed, mutated_bytes, mutated_document, mutated_tokens

FUZZ = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
BOARD = BoardSpec(squares_x=7, squares_y=5, square_mm=120.0, marker_mm=90.0)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A FuseCap calibration and an anipose TOML as FuseCap's writers write them (3 cameras)."""
    folder = tmp_path_factory.mktemp("calib")
    rig = standard_studio((640, 360))
    rig = type(rig)(rig.cameras[:3], rig.area)
    save_calibration(folder / "studio.json", CalibrationFile(rig, BOARD, {"verdict": "good", "rms_px": 0.2}))
    write_anipose_toml(folder / "studio.toml", rig, error_px=0.4)
    json_bytes, toml_bytes = (folder / "studio.json").read_bytes(), (folder / "studio.toml").read_bytes()
    assert load_calibration(folder / "studio.json").rig.names == rig.names  # the seed files themselves read
    assert load_calibration(folder / "studio.toml").rig.names == rig.names
    return Seed(json_bytes, "studio.json"), Seed(toml_bytes, "studio.toml")


def _check(path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        calib = load_calibration(path)
    except CalibrationFileError as exc:
        assert str(exc).startswith(f"{path}:"), str(exc)
    else:
        assert len(calib.rig) >= 1
        for cam in calib.rig:
            for value in (cam.K, cam.R, cam.t, cam.dist):
                assert np.isfinite(value).all()
            assert cam.width > 0 and cam.height > 0
            # The rig is usable: a point in front of the camera projects somewhere.
            cam.project(np.array([[0.0, 0.0, 1000.0]]))
        assert isinstance(calib.quality, dict)
    assert path.read_bytes() == data


_POOL = st.sampled_from(["{", "}", "[", "]", ",", ":", "=", '"', "null", "true", "NaN", "Infinity", "-1", "0",
                         "1e999", "9" * 5000, "[cam_0]", "[[cam_0]]", "fisheye = true", '"\\ud800"']) \
    | st.text(max_size=4)


def _mutated_text(data, original: bytes, how: str) -> bytes:
    """The file's bytes flipped, or its tokens swapped for pieces of the pool."""
    if how == "bytes":
        return data.draw(mutated_bytes(original))
    return data.draw(mutated_tokens(original.decode(), _POOL)).encode("utf-8", "surrogatepass")


@FUZZ
@given(data=st.data())
def test_mutated_json_calibration_reads_or_is_refused(written, tmp_path_factory, data):
    original = written[0]
    how = data.draw(st.sampled_from(["bytes", "tokens", "values"]))
    if how != "values":
        blob = _mutated_text(data, original, how)
    else:
        blob = json.dumps(data.draw(mutated_document(json.loads(original)))).encode()
    _check(tmp_path_factory.mktemp("j") / "studio.json", blob)


@FUZZ
@given(data=st.data())
def test_mutated_anipose_toml_reads_or_is_refused(written, tmp_path_factory, data):
    original = written[1]
    how = data.draw(st.sampled_from(["bytes", "tokens", "values"]))
    if how != "values":
        blob = _mutated_text(data, original, how)
    else:
        doc = data.draw(mutated_document(tomllib.loads(original.decode()), values=TOML_VALUES))
        if not isinstance(doc, dict):
            doc = {"cam_0": doc}
        blob = tomli_w.dumps(doc).encode()
    _check(tmp_path_factory.mktemp("t") / "studio.toml", blob)


@FUZZ
@given(blob=st.binary(max_size=200), suffix=st.sampled_from([".json", ".toml"]))
def test_random_bytes_are_refused(tmp_path_factory, blob, suffix):
    _check(tmp_path_factory.mktemp("r") / f"calib{suffix}", blob)


def _json_with(edit) -> str:
    rig = standard_studio((640, 360))
    doc = {"format": "fusecap-calibration", "version": 1, "rig": rig.to_dict(), "board": None, "quality": {}}
    edit(doc["rig"]["cameras"][0])
    return json.dumps(doc)


_TOML_CAM = """[cam_0]
size = [640, 360]
matrix = [[400.0, 0.0, 320.0], [0.0, 400.0, 180.0], [0.0, 0.0, 1.0]]
rotation = ROTATION
translation = [0.0, 0.0, 3000.0]
"""


@pytest.mark.parametrize("suffix, text, message", [
    (".json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    (".toml", "x = " + "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    (".json", '{"format": 1' + "0" * 5000 + "}", "not valid JSON"),                   # over int's digit limit
    (".toml", "x = 1" + "0" * 5000, "not a camera-group TOML file"),
    (".json", _json_with(lambda cam: cam["K"][0].__setitem__(0, None)), "'cam1': K holds a value that is not finite"),
    (".json", _json_with(lambda cam: cam["R"][1].__setitem__(1, float("nan"))), "'cam1': R holds a value"),
    (".json", _json_with(lambda cam: cam.__setitem__("size", [float("inf"), 360])), "cannot convert float infinity"),
    (".toml", _TOML_CAM.replace("ROTATION", "[1e308, 0.0, 0.0]"), r"\[cam_0\]: rotation .* not a usable rotation"),
    (".toml", _TOML_CAM.replace("ROTATION", "[0.1, 0.2, 0.3]").replace("[640, 360]", "[inf, 360]"),
     r"\[cam_0\]: cannot convert float infinity"),
])
def test_what_the_fuzzers_found_is_refused_with_the_file_named(tmp_path, suffix, text, message):
    path = tmp_path / f"calib{suffix}"
    path.write_text(text)
    with pytest.raises(CalibrationFileError, match=f"^{path}: ") as err:
        load_calibration(path)
    assert re.search(message, str(err.value)), str(err.value)
    assert path.read_text() == text


_NAMES = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)  # any text UTF-8 can hold


@settings(max_examples=40, deadline=None, database=None)
@given(names=st.lists(_NAMES, min_size=2, max_size=2), units_mm=st.sampled_from([1.0, 10.0, 1000.0]))
@example(names=["Kamera Süd", "カメラ1"], units_mm=1.0)
@example(names=["cam 😀", "𠮷野家"], units_mm=1.0)   # outside the Basic Multilingual Plane
@example(names=['quote " and \\', "tab\tnewline\n"], units_mm=1000.0)
def test_anipose_toml_round_trips_any_camera_name(tmp_path_factory, names, units_mm):
    cams = [Camera.look_at([3000.0, -1000.0 * k, 2200.0], [0, 0, 900], 1400.0 + 100 * k, (1280, 720),
                           dist=np.array([-0.1, 0.03, 0.001, -0.002, 0.0]), name=name)
            for k, name in enumerate(names)]
    rig = CameraRig(tuple(cams))
    path = tmp_path_factory.mktemp("names") / "rig.toml"
    write_anipose_toml(path, rig, error_px=0.25, units_mm=units_mm)
    doc = tomllib.loads(path.read_text(encoding="utf-8"))  # Python's own TOML reader takes the file
    assert [doc["cam_0"]["name"], doc["cam_1"]["name"]] == names and doc["metadata"]["error"] == 0.25
    back = read_anipose_toml(path, units_mm=units_mm)
    assert back.names == names
    for a, b in zip(rig, back):
        assert a.size == b.size and np.array_equal(a.K, b.K) and np.array_equal(a.dist, b.dist)
        assert np.allclose(a.t, b.t, rtol=1e-12, atol=1e-9)
        assert (Rotation.from_matrix(a.R).inv() * Rotation.from_matrix(b.R)).magnitude() < 1e-9


# -- the recordings `main.py calibrate` reads (core.calibration.recordings) ----------------------------------

RECORDING_FUZZ = settings(max_examples=100, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """A small real recording in each layout: 2 cameras, 3 moments of a drawn
    calibration scene at 640x360, as image folders and as videos (cam1 a
    lossless .mkv as write_scene writes it, cam2 an MPEG-4 .mp4), and the
    board found in each moment as the undamaged recording reads (a draw
    where both cameras find it: 16-18 corners in cam1's last two moments, 15
    in cam2's last)."""
    scene = draw_scene(6, cameras=2, size=(640, 360), moments=2, arc_deg=60.0)
    root = tmp_path_factory.mktemp("recordings")
    images = write_scene(scene, root / "images", 7)
    videos = write_scene(scene, root / "videos", 7, videos=True)
    cap = cv2.VideoCapture(str(videos / "cam2.mkv"))
    writer = cv2.VideoWriter(str(videos / "cam2.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 360))
    while (frame := cap.read())[0]:
        writer.write(frame[1])
    writer.release()
    cap.release()
    (videos / "cam2.mkv").unlink()
    found = {}
    for folder in (images, videos):
        rec = find_recording(folder)
        views = read_views(rec, scene.board)
        assert rec.names == ["cam1", "cam2"] and len(views) == 3 and rec.unreadable == []
        assert views.counts()[0] == 2 and (rec.kind == "videos" or views.counts()[1] == 1), views.counts()
        found[rec.kind] = [[None if d is None else d.ids.tolist() for d in row] for row in views.rows]
    return scene.board, images, videos, found


def _damaged(data, original: bytes) -> bytes:
    how = data.draw(st.sampled_from(["random", "truncated", "mutated"]))
    if how == "random":
        return data.draw(st.binary(max_size=3000))
    if how == "truncated":
        return original[:data.draw(st.integers(0, len(original) - 1))]
    return data.draw(mutated_bytes(original))


def _read_damaged(board, folder: Path, damaged: Path, kind: str, found) -> None:
    """The recording reads, every file or frame that could not be read noted
    (the damaged file's only) and its view empty, the other camera's views
    as before; or RecordingError names the folder or the file. Nothing else
    is raised."""
    try:
        rec = find_recording(folder)
        views = read_views(rec, board)
    except RecordingError as exc:
        assert str(exc).startswith(str(folder)), str(exc)
        return
    assert rec.kind == kind and list(views.names) == rec.names == ["cam1", "cam2"]
    assert 0 < len(views) == len(rec.moments) <= 3
    assert all(name.startswith(str(damaged)) for name in rec.unreadable), rec.unreadable
    k = rec.names.index(damaged.stem if kind == "videos" else damaged.parent.name)
    for m, row in enumerate(views.rows):
        other = row[1 - k]
        assert (None if other is None else other.ids.tolist()) == found[kind][m][1 - k]
        unread = f"{damaged} frame {m}" if kind == "videos" else str(damaged) if rec.moments[m] == damaged.name else ""
        if unread in rec.unreadable:
            assert row[k] is None


@RECORDING_FUZZ
@given(data=st.data())
def test_damaged_images_are_skipped_or_refused(recordings, tmp_path_factory, data):
    board, images, _, found = recordings
    folder = Path(shutil.copytree(images, tmp_path_factory.mktemp("i") / "images"))
    damaged = folder / data.draw(st.sampled_from(["cam1", "cam2"])) / f"000{data.draw(st.integers(0, 2))}.png"
    damaged.write_bytes(_damaged(data, (images / damaged.parent.name / damaged.name).read_bytes()))
    _read_damaged(board, folder, damaged, "images", found)


@RECORDING_FUZZ
@given(data=st.data())
def test_damaged_videos_are_skipped_or_refused(recordings, tmp_path_factory, data):
    board, _, videos, found = recordings
    folder = Path(shutil.copytree(videos, tmp_path_factory.mktemp("v") / "videos"))
    damaged = folder / data.draw(st.sampled_from(["cam1.mkv", "cam2.mp4"]))
    damaged.write_bytes(_damaged(data, (videos / damaged.name).read_bytes()))
    _read_damaged(board, folder, damaged, "videos", found)
