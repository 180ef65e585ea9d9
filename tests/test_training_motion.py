"""Training motion: the CMU split, recorded clips (mirrored, retimed, on the
floor), random in-limit poses, upper/lower mixes, and how the training
generator draws them.

Clips are written here (small Mixamo-named humanoids, Y up, cm, facing +Z)
into folders named like the CMU set, so nothing outside the repository is
needed."""

import gzip
import logging
from dataclasses import replace

import numpy as np
import pytest

from core import skeleton as sk
from core.deepfuse.data import MOTION_DIR_ENV, DataConfig, TrainingData
from core.sim.motion import BvhMotion, Performer, ProceduralMotion, load_bvh, parse_bvh
from core.sim.motion import params as pp
from core.sim.motion.augment import Floored, Mirrored, Retimed
from core.sim.motion.wide import LOWER_PARAMS, UPPER_PARAMS, RandomPoses, UpperLowerMix
from core.sim.splits import CMU_HELDOUT_SUBJECTS, CMU_TRAIN_SUBJECTS, cmu_clips, cmu_subject, train_seed
from core.sim.subject import Subject

J = sk.JOINT_INDEX
ROT = "Zrotation Xrotation Yrotation"
SMALL = dict(rig_pool=1, grids_per_rig=1, clip_pool=2, p_standard_rig=1.0)


def _humanoid():
    """(name, offset cm, children, end site) of a T-pose humanoid, Mixamo names."""
    def arm(side, sx):
        hand = (side + "Hand", (25 * sx, 0, 0), [], (10 * sx, 0, 0))
        fore = (side + "ForeArm", (28 * sx, 0, 0), [hand], None)
        return (side + "Shoulder", (5 * sx, 10, 0), [(side + "Arm", (12 * sx, 0, 0), [fore], None)], None)

    def leg(side, sx):
        toe = (side + "ToeBase", (0, -6, 14), [], (0, 0, 5))
        foot = (side + "Foot", (0, -43, 0), [toe], None)
        return (side + "UpLeg", (9 * sx, -5, 0), [(side + "Leg", (0, -44, 0), [foot], None)], None)

    head = ("Head", (0, 10, 0), [], (0, 18, 0))
    chest = ("Spine2", (0, 24, 0), [("Neck", (0, 15, 0), [head], None), arm("Left", 1), arm("Right", -1)], None)
    return ("Hips", (0, 100, 0), [("Spine", (0, 10, 0), [chest], None), leg("Left", 1), leg("Right", -1)], None)


def _bvh(values, frames: int, dt: float = 0.1) -> str:
    """values(frame, joint name) -> {channel: value} (missing channels are 0)."""
    lines, order = ["HIERARCHY"], []

    def emit(node, depth, keyword):
        name, off, kids, end = node
        pad = "\t" * depth
        ch = ("Xposition Yposition Zposition " + ROT if keyword == "ROOT" else ROT).split()
        lines.extend([f"{pad}{keyword} {name}", pad + "{", f"{pad}\tOFFSET {off[0]} {off[1]} {off[2]}",
                      f"{pad}\tCHANNELS {len(ch)} {' '.join(ch)}"])
        order.append((name, ch))
        for k in kids:
            emit(k, depth + 1, "JOINT")
        if end is not None:
            lines.extend([pad + "\tEnd Site", pad + "\t{", f"{pad}\t\tOFFSET {end[0]} {end[1]} {end[2]}", pad + "\t}"])
        lines.append(pad + "}")

    emit(_humanoid(), 0, "ROOT")
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {dt}"]
    for f in range(frames):
        lines.append(" ".join(f"{values(f, name).get(c, 0.0):.6f}" for name, ch in order for c in ch))
    return "\n".join(lines) + "\n"


def _raise_arm(side: str, hips_y: float = 100.0):
    """Raises one arm from the T-pose to straight up over frames 0..4 while
    the Hips move 5 cm a frame toward the performer's left (+X)."""
    sign = 1.0 if side == "Left" else -1.0

    def values(f, name):
        if name == "Hips":
            return {"Xposition": 5.0 * f, "Yposition": hips_y}
        return {"Zrotation": sign * 22.5 * f} if name == side + "Arm" else {}
    return _bvh(values, 5)


@pytest.fixture
def cmu_dir(tmp_path):
    """Two training clips and two held-out 'clips' that are not BVH at all
    (loading them would raise)."""
    (tmp_path / "001_01.bvh").write_text(_raise_arm("Left"))
    (tmp_path / "002_03.bvh.gz").write_bytes(gzip.compress(_raise_arm("Right").encode()))
    (tmp_path / "003_01.bvh").write_text("held out: never read")
    (tmp_path / "006_02.bvh.gz").write_bytes(b"held out: never read")
    (tmp_path / "notes.txt").write_text("not a clip")
    return tmp_path


# -- the split ---------------------------------------------------------------------

def test_the_cmu_split_lists_whole_subjects(cmu_dir):
    assert set(CMU_HELDOUT_SUBJECTS) == {3, 6} and set(CMU_TRAIN_SUBJECTS) == {1, 2, 5, 7}
    (cmu_dir / "004_01.bvh").write_text("a subject in neither split")
    assert [p.name for p in cmu_clips(cmu_dir)] == ["001_01.bvh", "002_03.bvh.gz"]
    assert [p.name for p in cmu_clips(cmu_dir, "heldout")] == ["003_01.bvh", "006_02.bvh.gz"]
    assert cmu_subject("05_12.BVH") == 5 and cmu_subject("walk.bvh") is None
    with pytest.raises(ValueError, match="unknown split"):
        cmu_clips(cmu_dir, "test")
    with pytest.raises(ValueError, match="does not exist"):
        cmu_clips(cmu_dir / "missing")


def test_gzipped_bvh_reads_like_plain_text(cmu_dir):
    plain = parse_bvh(_raise_arm("Right"))
    clip = load_bvh(cmu_dir / "002_03.bvh.gz")
    assert np.array_equal(clip.motion, plain.motion) and clip.names == plain.names
    with pytest.raises(ValueError, match="cannot read BVH file .*006_02.bvh.gz"):
        load_bvh(cmu_dir / "006_02.bvh.gz")


def test_held_out_subjects_never_play(cmu_dir):
    data = TrainingData(DataConfig(seed=1, motion_dir=str(cmu_dir), p_recorded=1.0, p_random_poses=0.0,
                                   p_mixed=0.0, **SMALL))
    assert [p.name for p in data.recorded.files] == ["001_01.bvh", "002_03.bvh.gz"]
    for _ in range(30):
        assert data._new_clip().source == "recorded"
    assert data.recorded.loads == 2           # both training clips, each once (the LRU holds them)
    data.sample()


# -- recorded-clip augmentations -----------------------------------------------------

def _poses(motion, t, seed=train_seed(7)):
    return Performer(Subject.from_seed(seed), motion).poses_at(np.asarray(t, float))


def test_mirroring_swaps_left_and_right():
    clip = BvhMotion(parse_bvh(_raise_arm("Left")), loop=False)
    t = np.array([0.0, 0.2, 0.4])
    plain, mirrored = _poses(clip, t), _poses(Mirrored(clip), t)
    up = lambda p, side: p.positions_mm[:, J[side + "Hand"], 2] - p.positions_mm[:, J[side + "Arm"], 2]  # noqa: E731
    # The clip raises the left hand ~59 cm over the shoulder; mirrored, the right one.
    assert up(plain, "Left")[-1] > 450 and abs(up(plain, "Right")[-1]) < 20
    assert up(mirrored, "Right")[-1] > 450 and abs(up(mirrored, "Left")[-1]) < 20
    # Exactly the reflected performer (x -> -x, left and right joints swapped),
    # so the Hips now move toward -X.
    perm = sk.mirror_index()
    np.testing.assert_allclose(mirrored.positions_mm, plain.positions_mm[:, perm] * [-1, 1, 1], atol=1e-6)
    assert mirrored.positions_mm[-1, sk.ROOT, 0] < mirrored.positions_mm[0, sk.ROOT, 0] - 100
    # Mirroring twice is the identity, for a clip and for procedural motion.
    for motion in (clip, ProceduralMotion(train_seed(3))):
        a, b = motion.frames(t), Mirrored(Mirrored(motion)).frames(t)
        assert np.allclose((a.local.inv() * b.local).magnitude(), 0.0, atol=1e-9)
        np.testing.assert_allclose(b.root_xy_mm, a.root_xy_mm)


def test_retiming_scales_time():
    clip = BvhMotion(parse_bvh(_raise_arm("Left")), loop=False)
    t = np.array([0.0, 0.05, 0.1, 0.15])
    fast = Retimed(clip, 2.0).frames(t)
    ref = clip.frames(2.0 * t)
    assert np.array_equal(fast.times_s, t)
    assert np.allclose((fast.local.inv() * ref.local).magnitude(), 0.0, atol=1e-12)
    np.testing.assert_allclose(fast.root_xy_mm, ref.root_xy_mm)
    late = Retimed(clip, 0.5, start_s=0.2).frames(t)
    assert np.allclose((late.local.inv() * clip.frames(0.2 + 0.5 * t).local).magnitude(), 0.0, atol=1e-12)
    with pytest.raises(ValueError):
        Retimed(clip, 0.0)


def test_a_clip_recorded_with_the_floor_elsewhere_is_set_on_it():
    # The Hips' position channel 7 cm over the origin (CC exports do this), so
    # played as recorded the feet are about a metre under the floor.
    clip = BvhMotion(parse_bvh(_raise_arm("Left", hips_y=7.0)), loop=False)
    t = np.arange(5) * 0.1
    for motion, lo, hi in ((clip, -1100.0, -800.0), (Floored(clip, t), -25.0, 25.0)):
        for seed in (train_seed(1), train_seed(2)):
            performer = Performer(Subject.from_seed(seed), motion)
            feet = performer.foot_points_mm(performer.poses_at(t))[..., 2].min()
            assert lo < feet < hi, (seed, feet)


# -- wider procedural poses ----------------------------------------------------------

def _coverage(params: np.ndarray) -> np.ndarray:
    """Per parameter, the share of its range between the 1st and 99th percentiles."""
    lo, hi = np.percentile(params, [1, 99], axis=0)
    return (hi - lo) / (pp.HI - pp.LO)


def test_random_poses_stay_in_the_limits_and_cover_more_of_them():
    t = np.linspace(0.0, 200.0, 4000)
    rand = RandomPoses(train_seed(1)).params(t)
    assert np.array_equal(pp.clamp(rand), rand)
    actions = np.concatenate([ProceduralMotion(train_seed(s)).sample(np.linspace(0, 100, 2000)).params
                              for s in range(2)])
    wide, narrow = _coverage(rand), _coverage(actions)
    # Measured: random poses 0.76 of each range on average (0.66 at least),
    # the actions 0.36 (several parameters they never move).
    assert wide.mean() > 0.65 and wide.min() > 0.5
    assert narrow.mean() < 0.47 and wide.mean() > 1.6 * narrow.mean()
    # A pure function of time, whatever the order of the request.
    np.testing.assert_array_equal(RandomPoses(train_seed(1)).params(t[::-1])[::-1], rand)
    # Grounded: the performer stands the lowest foot point on the floor.
    performer = Performer(Subject.from_seed(train_seed(2)), RandomPoses(train_seed(1)))
    feet = performer.foot_points_mm(performer.poses_at(np.linspace(0, 20, 30)))[..., 2].reshape(30, 4)
    assert np.abs(feet.min(axis=1)).max() < 5


def test_upper_and_lower_body_come_from_two_motions():
    upper, lower = ProceduralMotion(train_seed(11)), ProceduralMotion(train_seed(12))
    t = np.linspace(0.0, 30.0, 60)
    mix = UpperLowerMix(upper, lower).sample(t)
    a, b = upper.sample(t), lower.sample(t)
    assert len(UPPER_PARAMS) + len(LOWER_PARAMS) == pp.NUM_PARAMS
    np.testing.assert_array_equal(mix.params[:, UPPER_PARAMS], a.params[:, UPPER_PARAMS])
    np.testing.assert_array_equal(mix.params[:, LOWER_PARAMS], b.params[:, LOWER_PARAMS])
    assert not np.allclose(a.params[:, UPPER_PARAMS], b.params[:, UPPER_PARAMS])
    n = sk.NUM_JOINTS
    for joint, src in (("LeftForeArm", a), ("RightArm", a), ("LeftLeg", b), ("RightUpLeg", b)):
        got, want = mix.frames.local[J[joint]::n], src.frames.local[J[joint]::n]
        assert np.allclose((got.inv() * want).magnitude(), 0.0, atol=1e-9), joint
    np.testing.assert_array_equal(mix.frames.root_xy_mm, b.frames.root_xy_mm)
    assert mix.action[0] == f"{a.action[0]}/{b.action[0]}"


# -- the generator -------------------------------------------------------------------

def test_the_generator_draws_recorded_clips_at_p_recorded_reproducibly(cmu_dir):
    cfg = DataConfig(seed=4, motion_dir=str(cmu_dir), p_recorded=0.5, p_random_poses=0.1, p_mixed=0.15, **SMALL)
    runs = []
    for seed, n in ((4, 150), (4, 30), (5, 30)):
        data = TrainingData(replace(cfg, seed=seed))
        runs.append([data._new_clip() for _ in range(n)])
    share = {s: np.mean([c.source == s for c in runs[0]]) for s in ("recorded", "random_poses", "mixed", "actions")}
    # Measured over these 150 clips: 0.46, 0.12, 0.22 and 0.20 (drawn at 0.5, 0.1, 0.15, 0.25).
    assert 0.38 < share["recorded"] < 0.6 and 0.06 < share["random_poses"] < 0.18
    assert 0.1 < share["mixed"] < 0.3 and 0.13 < share["actions"] < 0.32
    same = all(a.source == b.source and np.array_equal(a.poses[0][0], b.poses[0][0])
               for a, b in zip(runs[0], runs[1]))
    assert same
    assert [c.source for c in runs[0][:30]] != [c.source for c in runs[2]]


def test_without_a_motion_folder_only_procedural_motion_plays(cmu_dir, monkeypatch, caplog):
    monkeypatch.delenv(MOTION_DIR_ENV, raising=False)
    with caplog.at_level(logging.INFO, logger="core.deepfuse.data"):
        data = TrainingData(DataConfig(seed=2, **SMALL))
    assert data.recorded is None and "procedural only" in caplog.text
    assert {data._new_clip().source for _ in range(40)} <= {"actions", "random_poses", "mixed"}
    monkeypatch.setenv(MOTION_DIR_ENV, str(cmu_dir))
    assert len(TrainingData(DataConfig(seed=2, **SMALL)).recorded) == 2
    with pytest.raises(ValueError, match="does not exist"):
        TrainingData(DataConfig(seed=2, motion_dir=str(cmu_dir / "missing"), **SMALL))
    (cmu_dir / "001_01.bvh").unlink()
    (cmu_dir / "002_03.bvh.gz").unlink()
    with pytest.raises(ValueError, match="no clips of the CMU training subjects"):
        TrainingData(DataConfig(seed=2, motion_dir=str(cmu_dir), **SMALL))
    with pytest.raises(ValueError, match="sum <= 1"):
        TrainingData(DataConfig(seed=2, p_recorded=0.8, p_mixed=0.3, **SMALL))


def test_imu_errors_hold_over_a_clip():
    from scipy.spatial.transform import Rotation

    from core.deepfuse.imu_bone import bone_directions

    data = TrainingData(DataConfig(seed=3, imu_noise_deg=0.0, imu_heading_deg=0.0, imu_wear_error_deg=5.0,
                                   p_imu_drop=0.0, **SMALL))
    rot = Rotation.random(sk.NUM_JOINTS, random_state=0).as_matrix()
    true = bone_directions(rot[[b.start for b in sk.IMU_BONES]])
    errors = []
    for _ in range(40):
        clip = data._new_clip()
        d1, _ = data._bones(rot, clip)
        d2, _ = data._bones(rot, clip)
        np.testing.assert_array_equal(d1, d2)           # no per-frame noise: the same every frame
        errors.append(np.degrees(np.arccos(np.clip((d1 * true).sum(-1), -1, 1))))
    # Measured: median 2.7 deg (5 deg about a random axis, seen along the bone).
    assert 2.0 < np.median(errors) < 3.6
