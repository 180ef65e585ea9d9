"""Fuzzing the take reader: a real take (tests/takes.py) with its take.json,
a stream's framing, a chunk's npz payload or its arrays damaged opens and
plays as what it holds or raises TakeError naming the take's file, and
reading never changes a file."""

import json
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from core import skeleton as sk
from core.camera.rig import CameraRig, standard_studio
from core.take.chunks import SIGNATURE, encode_chunk, scan_chunks
from core.take.take import Take, TakeError, TakeLayout
from core.take.writer import write_solve
from tests.mutations import mutated_bytes, mutated_document
from tests.takes import file_digests, record_lockstep

FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def take_root(tmp_path_factory):
    """Half a second of two cameras with video, live joints and one offline solve."""
    root = tmp_path_factory.mktemp("fuzz-take") / "take"
    rig = CameraRig(standard_studio().cameras[:2])
    record_lockstep(root, seconds=0.5, fps=10.0, video=True, rig=rig)
    take = Take(root)
    write_solve(take.layout, {"model": "test"}, take.live_joints().on_frames(take.frame_times(), 0.06))
    summary = read_everything(root)
    assert summary["frames"] == 5 and summary["solves"] == [1] and summary["video"] == [5, 5]
    return root


def read_everything(root: Path) -> dict:
    """Open the take and read all it holds, as playback, process and export do."""
    take = Take(root)
    take.summary()
    rig = take.rig
    assert len(rig) >= 1
    take.imu_calibration
    times = take.frame_times()
    assert times.ndim == 1 and len(take) == len(times)
    quats, ages = take.imu_at(times)
    assert quats.shape == (len(times), sk.NUM_IMUS, 4) and ages.shape == (len(times), sk.NUM_IMUS)
    n = 0
    for bundle in take.frames():
        assert len(bundle.silhouettes) == len(take.cameras)
        for mask in bundle.silhouettes:
            assert mask is None or (mask.ndim == 2 and mask.dtype == np.uint8)
        n += 1
    assert n == len(times)
    video = []
    for k in range(len(take.cameras)):
        frames = list(take.video_frames(k))
        assert all(img.ndim in (2, 3) for _, img in frames)
        video.append(len(frames))
    live = take.live_joints()
    if live is not None:
        on = live.on_frames(times, 0.05)
        assert on.joints_mm.shape == (len(times), sk.NUM_JOINTS, 3)
    for v in take.solve_versions():
        take.solve_info(v)
        solved = take.solved_joints(v)
        assert solved.joints_mm.shape == (len(solved), sk.NUM_JOINTS, 3)
    try:
        take.best_joints()
    except TakeError as exc:
        assert "no solved joints" in str(exc)
    return {"frames": n, "solves": take.solve_versions(), "video": video}


def _opens_or_names_the_file(root: Path, read=read_everything) -> None:
    before = file_digests(root)
    try:
        read(root)
    except TakeError as exc:
        assert str(root) in str(exc), str(exc)
    assert file_digests(root) == before


def _streams(root: Path) -> list[Path]:
    layout = TakeLayout(root)
    return [layout.imu, layout.live, layout.silhouettes(0), layout.silhouettes(1), layout.video(0),
            layout.video(1), layout.solve_joints(1)]


def _fuzz(take_root, damage, read=read_everything) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "take"
        shutil.copytree(take_root, root)
        damage(root)
        _opens_or_names_the_file(root, read)


@FUZZ
@given(data=st.data())
def test_damaged_metadata(take_root, data):
    meta = (take_root / "take.json").read_bytes()
    if data.draw(st.booleans()):
        blob = data.draw(mutated_bytes(meta))
    else:
        blob = json.dumps(data.draw(mutated_document(json.loads(meta)))).encode()
    which = data.draw(st.sampled_from(["take.json", "solves/001/solve.json"]))
    if which != "take.json":
        blob = data.draw(mutated_bytes((take_root / which).read_bytes()))
    _fuzz(take_root, lambda root: (root / which).write_bytes(blob))


@FUZZ
@given(data=st.data())
def test_damaged_stream_bytes(take_root, data):
    k = data.draw(st.integers(0, 6))
    original = _streams(take_root)[k].read_bytes()
    blob = data.draw(mutated_bytes(original) | st.binary(max_size=64).map(lambda b: SIGNATURE + b))
    _fuzz(take_root, lambda root: _streams(root)[k].write_bytes(blob))


_DTYPES = st.sampled_from([np.float64, np.float32, np.int64, np.int16, np.uint8, np.bool_, np.complex64,
                           np.dtype("U3"), np.dtype("M8[s]"), np.dtype([("a", "<i4")])])
_ARRAYS = _DTYPES.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, max_side=5)))


def _reframed(path: Path, index: int, payload: bytes) -> bytes:
    """The stream file with chunk `index`'s payload replaced (a good checksum, so the reader trusts it)."""
    data = path.read_bytes()
    refs, _ = scan_chunks(path)
    ref = refs[index % len(refs)]
    head = 16  # magic, length, checksum
    chunk = struct.pack("<4sQI", b"FCCK", len(payload), zlib.crc32(payload)) + payload
    return data[:ref.offset - head] + chunk + data[ref.offset + ref.length:]


@FUZZ
@given(data=st.data())
def test_damaged_chunk_contents(take_root, data):
    """Chunks that pass their checksum but hold other arrays: other shapes,
    types, missing or extra names, or a broken npz archive."""
    k = data.draw(st.integers(0, 6))
    path = _streams(take_root)[k]
    refs, _ = scan_chunks(path)
    index = data.draw(st.integers(0, len(refs) - 1))
    arrays = refs[index].load()
    how = data.draw(st.sampled_from(["replace", "replace", "slice", "drop", "add", "payload"]))
    if how == "payload":
        payload = data.draw(mutated_bytes(path.read_bytes()[refs[index].offset:][:refs[index].length]))
    else:
        name = data.draw(st.sampled_from(sorted(arrays)))
        if how == "replace":
            arrays[name] = data.draw(_ARRAYS)
        elif how == "slice":
            arrays[name] = arrays[name][..., : data.draw(st.integers(0, 3))] if arrays[name].ndim else arrays[name] * 0
        elif how == "drop":
            del arrays[name]
        else:
            arrays[data.draw(st.text(min_size=1, max_size=4))] = data.draw(_ARRAYS)
        payload = encode_chunk(arrays)[16:]
    blob = _reframed(path, index, payload)
    rel = path.relative_to(take_root)
    _fuzz(take_root, lambda root: (root / rel).write_bytes(blob))


def test_deeply_nested_metadata_is_a_take_error(take_root, tmp_path):
    root = tmp_path / "take"
    shutil.copytree(take_root, root)
    (root / "take.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(TakeError, match="take.json"):
        Take(root)


@pytest.mark.parametrize("rate", [0, -10, float("nan"), float("inf"), "fast", None])
def test_a_frame_rate_that_is_not_a_positive_number_is_named(take_root, tmp_path, rate):
    root = tmp_path / "take"
    shutil.copytree(take_root, root)
    meta = json.loads((root / "take.json").read_text())
    meta["frame_rate"] = rate
    (root / "take.json").write_text(json.dumps(meta))
    with pytest.raises(TakeError, match=r"take\.json: .*frame_rate"):
        Take(root)


def test_json_nested_thousands_deep_is_a_clear_error(tmp_path):
    from core.files import read_json

    path = tmp_path / "deep.json"
    path.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="nested too deeply"):
        read_json(path)
    assert path.read_bytes() == before


# -- the skeleton `process` stores beside a solve (core.take.solved_skeleton) -------------------------------

@pytest.fixture(scope="module")
def skeleton_root(take_root, tmp_path_factory):
    """The fuzz take with the skeleton stored beside its solve, and the BVH an
    export writes from it."""
    from core.export.take_export import export_take
    from core.take.solved_skeleton import store_skeleton

    root = tmp_path_factory.mktemp("fuzz-skeleton") / "take"
    shutil.copytree(take_root, root)
    store_skeleton(Take(root), 1)
    rep = export_take(Take(root), root.parent / "intact.bvh")
    assert rep.skeleton == "stored by process with offline solve 001" and not rep.notes
    return root


def _exports_as_before(root: Path, intact_bvh: bytes) -> None:
    """The export writes the stored skeleton if it is still one, else solves
    again (the same file as the intact take's), with a note naming the file
    when one was stored but is unusable: never another error, and never a
    change to the take."""
    from core.export.take_export import export_take

    before = file_digests(root)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.bvh"
        rep = export_take(Take(root), out)
        if rep.skeleton != "stored by process with offline solve 001":
            assert rep.skeleton == "solved for this export"
            assert out.read_bytes() == intact_bvh
            for note in rep.notes:
                assert "solved the skeleton again" in note and str(root) in note, note
    assert file_digests(root) == before


def _fuzz_skeleton(skeleton_root, damage) -> None:
    intact = (skeleton_root.parent / "intact.bvh").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "take"
        shutil.copytree(skeleton_root, root)
        damage(root)
        _exports_as_before(root, intact)


def _recommit(root: Path, data: bytes) -> None:
    """Write the skeleton file and give its entry the matching checksum and size (so the reader trusts it)."""
    import hashlib

    from core.take.solved_skeleton import skeleton_path

    layout = TakeLayout(root)
    skeleton_path(layout, 1).write_bytes(data)
    meta = json.loads(layout.solve_meta(1).read_text())
    meta["skeleton"].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    layout.solve_meta(1).write_text(json.dumps(meta))


SKELETON_FUZZ = settings(FUZZ, max_examples=20)


@SKELETON_FUZZ
@given(data=st.data())
def test_damaged_stored_skeleton_bytes(skeleton_root, data):
    original = (skeleton_root / "solves/001/skeleton.npz").read_bytes()
    blob = data.draw(mutated_bytes(original))
    recommit = data.draw(st.booleans())  # damaged after process (the checksum fails) or with a good checksum

    def damage(root):
        if recommit:
            _recommit(root, blob)
        else:
            (root / "solves/001/skeleton.npz").write_bytes(blob)

    _fuzz_skeleton(skeleton_root, damage)


@SKELETON_FUZZ
@given(data=st.data())
def test_stored_skeleton_with_other_arrays(skeleton_root, data):
    """A good checksum over an archive that holds other arrays: other shapes,
    types, values, missing or extra names."""
    import io

    with np.load(skeleton_root / "solves/001/skeleton.npz") as z:
        arrays = {k: z[k] for k in z.files}
    how = data.draw(st.sampled_from(["replace", "slice", "drop", "add", "values"]))
    name = data.draw(st.sampled_from(sorted(arrays)))
    if how == "replace":
        arrays[name] = data.draw(_ARRAYS)
    elif how == "slice":
        arrays[name] = arrays[name][..., : data.draw(st.integers(0, 3))]
    elif how == "drop":
        del arrays[name]
    elif how == "add":
        arrays[data.draw(st.text(alphabet="abcxyz_", min_size=1, max_size=4))] = data.draw(_ARRAYS)
    else:
        a = arrays[name]
        arrays[name] = data.draw(hnp.arrays(a.dtype, a.shape, elements=hnp.from_dtype(a.dtype) if a.dtype == bool
                                            else st.sampled_from([0.0, -1.0, 1e300, np.nan, np.inf, 2.0])))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _fuzz_skeleton(skeleton_root, lambda root: _recommit(root, buf.getvalue()))


@SKELETON_FUZZ
@given(data=st.data())
def test_damaged_skeleton_entry(skeleton_root, data):
    meta = json.loads((skeleton_root / "solves/001/solve.json").read_text())
    if data.draw(st.booleans()):
        meta["skeleton"] = data.draw(mutated_document(meta["skeleton"]))
    else:
        meta = data.draw(mutated_document(meta))
    _fuzz_skeleton(skeleton_root, lambda root: (root / "solves/001/solve.json").write_text(json.dumps(meta)))


# -- takes of IMUs alone ---------------------------------------------------------------

@pytest.fixture(scope="module")
def imus_only_root(take_root, tmp_path_factory):
    """The fuzz take as one recorded with IMUs alone: no camera, a stature, its IMU samples and calibration."""
    root = tmp_path_factory.mktemp("fuzz-imus-only") / "take"
    shutil.copytree(take_root, root)
    shutil.rmtree(root / "cameras")
    shutil.rmtree(root / "solves")
    meta = json.loads((root / "take.json").read_text())
    meta.update(cameras=[], rig=None, imus_only={"stature_mm": 1750.0})
    (root / "take.json").write_text(json.dumps(meta))
    assert _imus_only_reads(root) == 4  # the IMU samples of half a second span 4 frames at 10 frames/s
    return root


def _imus_only_reads(root: Path) -> int | None:
    """Everything a reader of an IMU-only take does: open it, its frames, its skeleton (playback).
    None when the take is not one of IMUs alone (the damage listed cameras or dropped imus_only)."""
    from core.export.take_export import pick_joints

    take = Take(root)
    if not take.imus_only:
        return None
    take.stature_mm
    joints, which = pick_joints(take)
    assert which == "IMUs only" and joints.joints_mm.shape == (len(take), sk.NUM_JOINTS, 3)
    return len(take)


@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_damaged_imus_only_take(imus_only_root, data):
    """A damaged take.json or IMU stream of an IMU-only take opens as what it holds, or says which file is
    wrong (TakeError naming the take); nothing is written."""
    meta = (imus_only_root / "take.json").read_bytes()
    if data.draw(st.booleans()):
        target, blob = "take.json", json.dumps(data.draw(mutated_document(json.loads(meta)))).encode()
    else:
        target, blob = "imu.stream", data.draw(mutated_bytes((imus_only_root / "imu.stream").read_bytes()))
    _fuzz(imus_only_root, lambda root: (root / target).write_bytes(blob), _imus_only_reads)
