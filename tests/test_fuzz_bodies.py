"""Fuzzing the body cache reader (core.sim.anny_body): a cached performer's
file, damaged anywhere (flips, overwrites, insertions, deletions,
truncation), either reads as a whole, consistent body or raises ValueError
naming the file; a damaged cache file is built again, never used."""

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import skeleton as sk
from core.sim import anny_body as ab
from tests.mutations import Seed, mutated_bytes

FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def cached():
    ms = ab.load_mesh_subject(3)
    path = ab.cache_path(3)
    assert path.is_file()
    return path, Seed(path.read_bytes(), path.name), ms


@FUZZ
@given(data=st.data())
def test_a_damaged_body_file_reads_whole_or_raises_value_error(cached, tmp_path_factory, data):
    path, seed, ms = cached
    damaged = tmp_path_factory.mktemp("fuzz") / "seed-3.npz"
    if data.draw(st.booleans()):
        damaged.write_bytes(bytes(seed)[:data.draw(st.integers(0, len(seed) - 1))])
    else:
        damaged.write_bytes(data.draw(mutated_bytes(seed)))
    try:
        got = ab.read_mesh_subject(damaged)
    except ValueError as exc:
        assert damaged.name in str(exc)
        return
    # Whatever reads is consistent: every face indexes a vertex, every vertex's weights sum to 1.
    assert got.faces.max() < len(got.vertices) and got.weights.shape == (len(got.vertices), sk.NUM_JOINTS)
    assert np.isfinite(got.vertices).all() and got.subject.offsets_mm.shape == (sk.NUM_JOINTS, 3)


def test_a_damaged_cache_file_is_built_again(cached, tmp_path):
    path, seed, ms = cached
    cache = tmp_path / "bodies"
    target = ab.cache_path(3, cache)
    target.parent.mkdir(parents=True)
    target.write_bytes(bytes(seed)[: len(seed) // 2])  # cut in half
    ab.clear_memory_cache()
    again = ab.load_mesh_subject(3, cache)
    assert ab.LAST_LOAD["built"] is True
    np.testing.assert_allclose(again.vertices, ms.vertices, atol=1e-3)
    assert ab.read_mesh_subject(target).faces.shape == ms.faces.shape  # rewritten whole
    shutil.rmtree(cache)
