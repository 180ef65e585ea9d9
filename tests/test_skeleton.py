import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.kinematics import forward_kinematics
from core.rotations import from_wxyz, to_wxyz
from core.sim.splits import TEST_SUBJECT_SEEDS, is_test_seed, train_seed
from core.sim.subject import Subject, held_out_subjects, training_subject


def test_joint_names_animation_tools_expect():
    for name in ("Hips", "Spine", "Neck", "Head", "LeftUpLeg", "LeftLeg", "LeftFoot",
                 "LeftToeBase", "LeftArm", "LeftForeArm", "LeftHand", "RightUpLeg", "RightLeg",
                 "RightFoot", "RightToeBase", "RightArm", "RightForeArm", "RightHand"):
        assert name in sk.JOINT_INDEX
    assert sk.PARENTS[sk.ROOT] == -1
    assert sum(p == -1 for p in sk.PARENTS) == 1


def test_left_right_pairs_mirror_names():
    assert len(sk.LEFT_RIGHT_PAIRS) == 8
    for left, right in sk.LEFT_RIGHT_PAIRS:
        assert sk.JOINTS[left].replace("Left", "Right") == sk.JOINTS[right]
        # the parents mirror too (or are shared on the midline)
        pl, pr = sk.PARENTS[left], sk.PARENTS[right]
        assert pl == pr or sk.JOINTS[pl].replace("Left", "Right") == sk.JOINTS[pr]
    perm = sk.mirror_index()
    assert np.array_equal(perm[perm], np.arange(sk.NUM_JOINTS))


def test_thirteen_imu_bones_of_totalcapture_layout():
    assert sk.NUM_IMUS == 13
    names = [b.name for b in sk.IMU_BONES]
    assert len(set(names)) == 13
    for bone in sk.IMU_BONES:
        # every IMU bone is a real parent -> child segment of the skeleton
        assert sk.PARENTS[bone.end] == bone.start, bone
    foot = sk.IMU_BONES[sk.IMU_INDEX["LeftFoot"]]
    assert sk.JOINTS[foot.end] == "LeftToeBase"


def held_out_subjects_span_heights_and_test_set_is_held_out():
    heights = [training_subject(i).height_mm for i in range(200)]
    assert 1500 <= min(heights) < 1560 and 1940 < max(heights) <= 2000
    for s in held_out_subjects():
        assert is_test_seed(s.seed)
        top = s.rest_positions()[sk.JOINT_INDEX["HeadTop"]][2]
        assert top == pytest.approx(s.height_mm, abs=1e-6)
    assert not any(is_test_seed(train_seed(i)) for i in (0, 1, 10**6))
    assert set(TEST_SUBJECT_SEEDS).isdisjoint(train_seed(i) for i in range(1000))


def test_subject_is_human_shaped():
    for s in [training_subject(i) for i in range(50)]:
        rest = s.rest_positions()
        j = sk.JOINT_INDEX
        leg = rest[j["LeftUpLeg"], 2] - rest[j["LeftFoot"], 2]
        assert 0.42 < leg / s.height_mm < 0.53
        span = rest[j["LeftHand"], 0] - rest[j["RightHand"], 0]
        assert 0.76 < span / s.height_mm < 0.9  # wrist to wrist in a T-pose
        assert 0 < rest[j["LeftToeBase"], 2] < 40  # toes just above the floor
        assert s.offsets_mm[j["LeftArm"]][0] == pytest.approx(-s.offsets_mm[j["RightArm"]][0])


def test_forward_kinematics_keeps_bone_lengths_and_rotates_children():
    rng = np.random.default_rng(1)
    s = Subject.from_seed(3)
    T = 5
    local = Rotation.from_rotvec(rng.normal(0, 0.6, (T * sk.NUM_JOINTS, 3)))
    root = rng.uniform(-1000, 1000, (T, 3))
    poses = forward_kinematics(s.offsets_mm, root, local)
    lengths = s.bone_lengths()
    for c, p in enumerate(sk.PARENTS):
        if p >= 0:
            d = np.linalg.norm(poses.positions_mm[:, c] - poses.positions_mm[:, p], axis=1)
            np.testing.assert_allclose(d, lengths[c], rtol=1e-9)
    # Bend only the left elbow by 90 degrees about Z: the hand moves, nothing else.
    local = Rotation.identity(sk.NUM_JOINTS)
    rv = np.zeros((sk.NUM_JOINTS, 3))
    rv[sk.JOINT_INDEX["LeftForeArm"]] = [0, 0, -np.pi / 2]
    bent = forward_kinematics(s.offsets_mm, [[0, 0, 1000]], Rotation.from_rotvec(rv))
    rest = forward_kinematics(s.offsets_mm, [[0, 0, 1000]], local)
    moved = np.linalg.norm(bent.positions_mm[0] - rest.positions_mm[0], axis=1) > 1e-6
    assert [sk.JOINTS[i] for i in np.flatnonzero(moved)] == ["LeftHand"]
    fore = bent.positions_mm[0, sk.JOINT_INDEX["LeftHand"]] - bent.positions_mm[0, sk.JOINT_INDEX["LeftForeArm"]]
    assert fore[1] == pytest.approx(-s.offsets_mm[sk.JOINT_INDEX["LeftHand"], 0])  # now points forward (-Y)


def test_quaternions_cross_boundaries_scalar_first():
    r = Rotation.from_rotvec([0, 0, np.pi / 2])
    q = to_wxyz(r)
    assert q == pytest.approx([np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)])
    assert from_wxyz(q).approx_equal(r)
    with pytest.raises(ValueError):
        from_wxyz([1, 0, 0])


def test_rest_directions_are_the_templates_over_the_reference_bodies():
    d = sk.REST_DIRECTIONS
    assert d.shape == (sk.NUM_JOINTS, 3) and not d.flags.writeable
    assert np.all(d[sk.ROOT] == 0.0)
    np.testing.assert_allclose(np.linalg.norm(d[1:], axis=1), 1.0, atol=1e-12)
    # The mean unit direction over the reference bodies, to full precision.
    off = np.stack([s.offsets_mm for s in held_out_subjects()])
    mean = (off / np.linalg.norm(off, axis=2, keepdims=True)).mean(axis=0)[1:]
    np.testing.assert_allclose(d[1:], mean / np.linalg.norm(mean, axis=1, keepdims=True), rtol=0, atol=1e-15)
    # Within 1.5 degrees of the anthropometric fractions' own directions (the
    # Hips' and Spine's rows are closed by the performer's proportions).
    for name, frac in sk.REST_OFFSET_FRACTIONS.items():
        if name in ("Hips", "Spine"):
            continue
        for joint in {name, name.replace("Left", "Right")}:
            f = np.array(frac) * ((-1.0, 1.0, 1.0) if joint != name else 1.0)
            cos = d[sk.JOINT_INDEX[joint]] @ f / np.linalg.norm(f)
            assert np.degrees(np.arccos(min(cos, 1.0))) < 1.5, joint
    # A T-pose: arms out along +-X, legs straight down, head up.
    for name, axis in (("LeftForeArm", (1, 0, 0)), ("RightHand", (-1, 0, 0)), ("LeftLeg", (0, 0, -1)),
                       ("HeadTop", (0, 0, 1))):
        assert d[sk.JOINT_INDEX[name]] @ np.array(axis, float) == pytest.approx(1.0)


def test_children_table_matches_the_parents():
    for j in range(sk.NUM_JOINTS):
        assert sk.CHILDREN[j] == sk.children(j)
        assert all(sk.PARENTS[c] == j for c in sk.CHILDREN[j])
