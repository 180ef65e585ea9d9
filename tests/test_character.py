"""The character: the shipped body fitted to a performer's skeleton, and posed."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.character import CharacterMesh, fit_character, read_template, rest_joints, template
from core.kinematics import forward_kinematics
from core.sim.motion import Performer, ProceduralMotion
from core.sim.subject import Subject

J = sk.JOINT_INDEX


def _dominant(t, name):
    return t.weights.argmax(1) == J[name]


def test_the_shipped_body():
    t = template()
    assert t.vertices_mm.shape == (1229, 3) and t.faces.shape == (2454, 3)
    stature = t.vertices_mm[:, 2].max() - t.vertices_mm[:, 2].min()
    assert 1745 < stature < 1765 and abs(t.vertices_mm[:, 2].min()) < 1.0    # 1.75 m, feet on the floor
    # A closed surface: every edge is shared by exactly two faces.
    e = np.sort(np.concatenate([t.faces[:, [0, 1]], t.faces[:, [1, 2]], t.faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    assert (counts == 2).all()
    # The T-pose: the hands out along +-X at shoulder height.
    lh, rh = t.rest_joints_mm[J["LeftHand"]], t.rest_joints_mm[J["RightHand"]]
    assert 660 < lh[0] < 720 and -720 < rh[0] < -660 and abs(lh[2] - t.rest_joints_mm[J["LeftArm"], 2]) < 20


def test_fitting_follows_the_bones():
    t = template()
    same = fit_character(t.offsets_mm)
    assert np.abs(same.vertices_mm - t.vertices_mm).max() < 1e-6
    # Every bone 10 % longer: the body 10 % larger about the Hips.
    big = fit_character(1.1 * t.offsets_mm)
    root = t.rest_joints_mm[sk.ROOT]
    assert np.abs(big.vertices_mm - (root + 1.1 * (t.vertices_mm - root))).max() < 1e-6
    # A forearm 50 mm longer: the hand moves 50 mm out, the upper arm stays.
    off = t.offsets_mm.copy()
    h = J["LeftHand"]
    off[h] *= 1 + 50.0 / np.linalg.norm(off[h])
    long = fit_character(off)
    d = np.linalg.norm(long.vertices_mm - t.vertices_mm, axis=1)
    hand = d[_dominant(t, "LeftHand")]
    assert 49 < hand.min() and hand.max() < 53
    assert d[_dominant(t, "LeftArm")].max() < 3 and d[_dominant(t, "RightHand")].max() < 3
    np.testing.assert_allclose(long.rest_joints_mm[h] - long.rest_joints_mm[J["LeftForeArm"]], off[h])


def test_posed_body_follows_a_performer(rng):
    """A simulated performer's skeleton and motion: the fitted body's
    vertices stay near the bones they are skinned to."""
    seed = int(rng.integers(1 << 20))
    subject = Subject.from_seed(seed)
    body = fit_character(subject.offsets_mm)
    np.testing.assert_allclose(body.offsets_mm[1:], subject.offsets_mm[1:], atol=1e-9)
    poses = Performer(subject, ProceduralMotion(seed)).poses_at(np.arange(10) / 10 + 3.0)
    verts = body.pose(poses.positions_mm, poses.rotations)
    assert verts.shape == (10, 1229, 3)
    one = body.pose(poses.positions_mm[4], poses.rotations[4])
    np.testing.assert_allclose(one, verts[4])
    # Each vertex keeps its distance to its main joint (rigid where one joint moves it).
    dom = body.weights.argmax(1)
    rigid = body.weights.max(1) > 1 - 1e-6
    rest_d = np.linalg.norm(body.vertices_mm - body.rest_joints_mm[dom], axis=1)
    posed_d = np.linalg.norm(verts - poses.positions_mm[:, dom], axis=2)
    assert np.abs(posed_d - rest_d)[:, rigid].max() < 1e-3
    # The rest pose gives the rest mesh.
    fk = forward_kinematics(body.offsets_mm, body.rest_joints_mm[None, sk.ROOT], Rotation.identity(sk.NUM_JOINTS))
    assert np.abs(body.pose(fk.positions_mm[0], fk.rotations[0]) - body.vertices_mm).max() < 1e-9
    np.testing.assert_allclose(rest_joints(body.offsets_mm), body.rest_joints_mm, atol=1e-9)


def test_bad_skeletons_and_files_are_refused(tmp_path, rng):
    t = template()
    with pytest.raises(ValueError, match="finite rest offsets"):
        fit_character(np.full((sk.NUM_JOINTS, 3), np.nan))
    with pytest.raises(ValueError, match="finite rest offsets"):
        fit_character(np.zeros((5, 3)))
    off = t.offsets_mm.copy()
    off[J["LeftLeg"]] = 0.0
    with pytest.raises(ValueError, match="longer than 1 mm"):
        fit_character(off)
    with pytest.raises(ValueError, match="pose is positions"):
        t.pose(np.zeros((3, 3)), np.zeros((22, 3, 3)))
    # Damaged character files: clear errors, never a crash.
    good = (tmp_path / "good.npz")
    np.savez(good, vertices=t.vertices_mm, faces=t.faces, weights=t.weights, rest_joints=t.rest_joints_mm)
    raw = good.read_bytes()
    for i in range(60):
        b = bytearray(raw)
        kind = i % 3
        if kind == 0:
            b = b[: int(rng.integers(0, len(b)))]
        elif kind == 1:
            for _ in range(int(rng.integers(1, 20))):
                b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        else:
            b = bytearray(rng.integers(0, 256, int(rng.integers(0, 2000)), dtype=np.uint8).tobytes())
        path = tmp_path / f"bad{i}.npz"
        path.write_bytes(bytes(b))
        try:
            m = read_template(path)
        except ValueError as exc:
            assert str(path) in str(exc)
        else:  # bytes that survived (a flip in padding): still a valid body
            assert isinstance(m, CharacterMesh) and len(m.vertices_mm) == 1229
    for broken in (dict(faces=t.faces + 5000), dict(weights=t.weights[:, :5]), dict(vertices=t.vertices_mm * np.nan)):
        arrays = dict(vertices=t.vertices_mm, faces=t.faces, weights=t.weights, rest_joints=t.rest_joints_mm)
        arrays.update(broken)
        np.savez(tmp_path / "b.npz", **arrays)
        with pytest.raises(ValueError, match="not a character file"):
            read_template(tmp_path / "b.npz")
