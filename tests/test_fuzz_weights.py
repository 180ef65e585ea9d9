"""Fuzzing the weights reader with the shipped lite model: damaged,
truncated, foreign or wrongly structured files either load as a working
model or raise ModelFileError naming the file, and are never changed."""

import copy
import io
import os
import pickle
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.deepfuse.weights import ModelFileError, load_weights, shipped_model_path
from tests.mutations import JSON_VALUES, Seed, mutated_bytes

FUZZ = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SHIPPED = shipped_model_path("lite")


class _Shipped(tuple):
    """(the file's bytes, the dict it holds), shown briefly in failure reports."""

    def __repr__(self) -> str:
        return f"<{SHIPPED.name}>"


@pytest.fixture(scope="module")
def shipped():
    data = Seed(SHIPPED.read_bytes(), SHIPPED.name)
    model, info = load_weights(SHIPPED)  # the seed file itself loads
    assert model.cfg.width == 32 and "steps" in info
    return _Shipped((data, torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)))


def _check(path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        model, info = load_weights(path)
    except ModelFileError as exc:
        assert str(path) in str(exc)
    else:
        assert not model.training and isinstance(info, dict)
        for name, p in model.state_dict().items():
            assert torch.isfinite(p).all(), name
    assert path.read_bytes() == data


@FUZZ
@given(data=st.data())
def test_damaged_or_truncated_weights(shipped, tmp_path_factory, data):
    original = shipped[0]
    if data.draw(st.booleans()):
        blob = original[:data.draw(st.integers(0, len(original) - 1))]
    else:
        blob = data.draw(mutated_bytes(original))
    _check(tmp_path_factory.mktemp("w") / "model.pt", blob)


_TENSORS = st.one_of(
    st.sampled_from([torch.zeros(0), torch.zeros(3, 3), torch.full((32,), float("nan")), torch.tensor(7),
                     torch.zeros(32, dtype=torch.int64), torch.zeros(32, dtype=torch.bool),
                     torch.zeros(2, 2, dtype=torch.complex64)]),
    st.integers(0, 3).map(lambda d: torch.ones([2] * d)),
)


@FUZZ
@given(data=st.data())
def test_weights_files_of_the_wrong_structure(shipped, tmp_path_factory, data):
    """A torch.save'd dict like FuseCap's with a field changed: the network
    described otherwise, a tensor of another shape or type, a key missing."""
    blob = copy.copy(shipped[1])
    blob["net"], blob["state"], blob["info"] = dict(blob["net"]), dict(blob["state"]), dict(blob["info"])
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(["top", "net", "state", "state", "info"]))
        if where == "top":
            key = data.draw(st.sampled_from(["format", "version", "net", "state", "info"]))
            blob[key] = data.draw(JSON_VALUES | _TENSORS)
        elif where == "net" and isinstance(blob["net"], dict) and blob["net"]:
            key = data.draw(st.sampled_from(sorted(blob["net"])))
            blob["net"][key] = data.draw(
                st.sampled_from([0, -1, 1, 3, 7, 2**20, 10**12, 0.5, float("nan"), "soft", "x", None, True]))
        elif where == "state" and isinstance(blob["state"], dict) and blob["state"]:
            key = data.draw(st.sampled_from(sorted(blob["state"])))
            if data.draw(st.booleans()):
                blob["state"][key] = data.draw(_TENSORS)
            else:
                del blob["state"][key]
        else:
            blob["info"] = data.draw(JSON_VALUES)
    buf = io.BytesIO()
    torch.save(blob, buf)
    _check(tmp_path_factory.mktemp("s") / "model.pt", buf.getvalue())


@FUZZ
@given(blob=st.binary(max_size=300))
def test_random_bytes_are_not_a_model(tmp_path_factory, blob):
    _check(tmp_path_factory.mktemp("r") / "model.pt", blob)


class _Runs:
    def __reduce__(self):
        return (os.system, ("echo this must never run > /dev/null",))


@pytest.mark.parametrize("make", [
    lambda: pickle.dumps({"format": "fusecap-deepfuse", "code": _Runs()}, protocol=2),  # a pickle that runs code
    lambda: _saved({"format": "fusecap-deepfuse", "version": 1, "net": {}, "state": {}, "code": _Runs()}),
    lambda: _saved([1, 2, 3]),
    lambda: _saved({"format": "fusecap-deepfuse", "version": 1, "net": {"width": 2**40}, "state": {}}),
    lambda: b"",
])
def test_foreign_files_are_refused(tmp_path, make):
    path = tmp_path / "model.pt"
    path.write_bytes(make())
    with pytest.raises(ModelFileError, match=str(path)):
        load_weights(path)


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize("field, value", [
    ("depth", 10**12),          # 2 ** depth alone would take minutes and all the memory
    ("width", 10**12), ("grid_size", 10**12), ("stride", -2), ("theta", float("nan")), ("fuse_imu", 1),
    ("head", None), ("depth", 3.0),
])
def test_a_network_description_out_of_range_is_refused_before_it_is_built(shipped, tmp_path, field, value):
    blob = copy.copy(shipped[1])
    blob["net"] = {**blob["net"], field: value}
    path = tmp_path / "model.pt"
    path.write_bytes(_saved(blob))
    with pytest.raises(ModelFileError, match=re.escape(f"{path}: the network it describes is not one FuseCap "
                                                       f"builds ({field} = {value!r})")):
        load_weights(path)


def test_nan_weights_are_refused(shipped, tmp_path):
    blob = copy.copy(shipped[1])
    blob["state"] = dict(blob["state"])
    name = next(k for k, v in blob["state"].items() if v.is_floating_point() and v.numel() > 1)
    blob["state"][name] = blob["state"][name].clone()
    blob["state"][name].view(-1)[1] = float("nan")
    path = tmp_path / "model.pt"
    path.write_bytes(_saved(blob))
    with pytest.raises(ModelFileError, match=f"{path}: .*{name}.*not finite"):
        load_weights(path)
    assert np.isfinite(shipped[1]["state"][name].numpy()).all()
