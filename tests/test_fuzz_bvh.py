"""Fuzzing the BVH reader: any bytes either read as a consistent clip or
raise ValueError naming the file and line, and the file is never changed."""

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.export import write_bvh
from core.kinematics import forward_kinematics
from core.posefit import PoseFit
from core.rotations import to_wxyz
from core.sim.motion import load_bvh, parse_bvh
from core.sim.subject import Subject
from tests.mutations import mutated_bytes, mutated_tokens

FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _exported_bvh(tmp_path_factory) -> bytes:
    """A 3-frame BVH as FuseCap's exporter writes it."""
    n = 3
    subject = Subject.from_seed(2)
    offsets = subject.offsets_mm.copy()
    offsets[sk.ROOT] = 0.0
    local = to_wxyz(Rotation.from_rotvec(np.random.default_rng(5).normal(0, 0.3, (n * sk.NUM_JOINTS, 3))))
    local = local.reshape(n, sk.NUM_JOINTS, 4)
    root = np.array([[0.0, 0.0, 950.0], [10.0, 0.0, 950.0], [20.0, 5.0, 940.0]])
    rot = Rotation.from_quat(local.reshape(-1, 4), scalar_first=True)
    pos = forward_kinematics(offsets, root, rot).positions_mm
    fit = PoseFit(np.arange(n) / 30.0, offsets, root, local, pos, np.ones(n, bool), subject.bone_lengths(),
                  np.zeros((n, sk.NUM_JOINTS)))
    path = tmp_path_factory.mktemp("bvh") / "take.bvh"
    write_bvh(path, fit, 30.0)
    return path.read_bytes()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    data = _exported_bvh(tmp_path_factory)
    clip = parse_bvh(data.decode())
    assert clip.num_frames == 3 and len(clip.joints) == sk.NUM_JOINTS  # the seed file itself reads
    return data


def _check(path, data: bytes) -> None:
    """load_bvh on `data` (written to `path`): a consistent clip or a ValueError naming the file and a line."""
    path.write_bytes(data)
    try:
        clip = load_bvh(path)
    except ValueError as exc:
        assert type(exc) is ValueError
        assert re.match(re.escape(str(path)) + r", line \d+: ", str(exc)), str(exc)
        line = int(re.search(r"line (\d+)", str(exc)).group(1))
        assert 1 <= line <= max(1, data.count(b"\n") + data.count(b"\r") + 1)
    else:
        n_ch = sum(len(j.channels) for j in clip.joints)
        assert clip.motion.shape == (clip.num_frames, n_ch) and clip.num_frames >= 1
        assert np.isfinite(clip.motion).all() and clip.frame_time_s > 0
        assert all(-1 <= j.parent < i for i, j in enumerate(clip.joints))
        # What a player does with a clip works on whatever was read.
        assert clip.rest_positions().shape == (len(clip.joints), 3)
        glob = clip.global_rotations()
        assert clip.positions(len(clip.joints) - 1, glob).shape == (clip.num_frames, 3)
    assert path.read_bytes() == data


_POOL = st.sampled_from(["{", "}", "ROOT", "JOINT", "End", "Site", "OFFSET", "CHANNELS", "MOTION", "HIERARCHY",
                         "Frames:", "Frame", "Time:", "0", "1", "3", "6", "7", "-1", "0.5", "nan", "inf", "1e400",
                         "1e9", "Xrotation", "Yposition", "Wrotation", "Hips", "", "\r", "\x00"]) | st.text(max_size=4)


@FUZZ
@given(data=st.data())
def test_mutated_exported_bvh_reads_or_names_the_line(exported, tmp_path_factory, data):
    if data.draw(st.booleans()):
        blob = data.draw(mutated_bytes(exported))
    else:
        blob = data.draw(mutated_tokens(exported.decode(), _POOL)).encode("utf-8", "surrogatepass")
    _check(tmp_path_factory.mktemp("m") / "clip.bvh", blob)


@FUZZ
@given(blob=st.binary(max_size=300) | st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_random_bytes_read_or_name_the_line(tmp_path_factory, blob):
    _check(tmp_path_factory.mktemp("r") / "clip.bvh", blob)


@pytest.mark.parametrize("depth", [1, 40, 3000])
def test_joints_nested_to_any_depth_read(tmp_path, depth):
    """A chain of joints nested deeper than Python's recursion limit reads as it is."""
    text = "HIERARCHY\n" + "".join(f"{'ROOT' if i == 0 else 'JOINT'} j{i}\n{{\nOFFSET 0 1 0\nCHANNELS 1 Zrotation\n"
                                   for i in range(depth))
    text += "}\n" * depth + f"MOTION\nFrames: 1\nFrame Time: 0.1\n{' '.join(['5'] * depth)}\n"
    path = tmp_path / "deep.bvh"
    path.write_text(text)
    clip = load_bvh(path)
    assert clip.names == tuple(f"j{i}" for i in range(depth))
    assert [j.parent for j in clip.joints] == list(range(-1, depth - 1))
    assert clip.rest_positions()[-1] == pytest.approx([0.0, depth, 0.0])
    assert np.array_equal(clip.motion, np.full((1, depth), 5.0))


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_error_lines_count_as_editors_do(newline):
    """Form feeds and other separators inside a line do not start a new line
    (str.splitlines would count them); \\n, \\r\\n and \\r do."""
    text = newline.join(["HIERARCHY", "ROOT Hips\x0c\x1c{", "OFFSET 0 0 0\x0b", "bogus"])
    with pytest.raises(ValueError, match=r"^clip\.bvh, line 4: unexpected 'bogus' in joint 'Hips'$"):
        parse_bvh(text, "clip.bvh")
