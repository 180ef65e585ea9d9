"""Fuzzing the calibration readers (FuseCap's JSON and aniposelib's TOML):
any bytes, and any damage to a real file, either read as a usable rig or
raise CalibrationFileError naming the file; the file is never changed."""

import json
import re
import tomllib

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
from core.camera.model import Camera
from core.camera.rig import CameraRig, standard_studio
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
