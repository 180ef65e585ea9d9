"""Procedural performer motion: determinism, joint limits, smoothness, the
capture area, feet on the floor, and actions that do what their names say.

Seeds are drawn fresh each run (and shown on failure) where the property
must hold for every seed."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.camera.rig import CaptureArea
from core.sim.motion import Performer, ProceduralMotion
from core.sim.motion import params as pp
from core.sim.subject import Subject

J = sk.JOINT_INDEX
HZ = 120.0


def _seeds(rng: np.random.Generator, n: int) -> list[int]:
    return [int(s) for s in rng.integers(1_000_000, 2_000_000, n)]


def _performer(seed: int, subject_seed: int | None = None, **kw) -> tuple[ProceduralMotion, Performer]:
    motion = ProceduralMotion(seed, **kw)
    return motion, Performer(Subject.from_seed(seed if subject_seed is None else subject_seed), motion)


def test_same_seed_same_poses_whatever_the_request_pattern(rng):
    seed = _seeds(rng, 1)[0]
    t = np.sort(np.random.default_rng(seed).uniform(-0.5, 90.0, 1500))
    _, whole = _performer(seed)
    ref = whole.poses_at(t)
    # A fresh motion asked late times first, in shuffled chunks of odd sizes.
    _, chunked = _performer(seed)
    order = np.random.default_rng(seed + 1).permutation(len(t))
    pos = np.empty_like(ref.positions_mm)
    rot = np.empty_like(ref.rotations)
    chunked.poses_at(np.array([89.0]))
    for part in np.array_split(order, 17):
        p = chunked.poses_at(t[part])
        pos[part], rot[part] = p.positions_mm, p.rotations
    assert np.abs(pos - ref.positions_mm).max() < 1e-6, seed
    assert np.abs(rot - ref.rotations).max() < 1e-9, seed
    # Before t = 0 the performer holds the first pose; no times, no poses.
    p = whole.poses_at(np.array([-1.0, 0.0]))
    assert np.allclose(p.positions_mm[0], p.positions_mm[1])
    assert whole.poses_at(np.zeros(0)).positions_mm.shape == (0, sk.NUM_JOINTS, 3)


def test_different_seeds_give_different_motion(rng):
    a, b = _seeds(rng, 2)
    t = np.arange(0, 60, 0.25)
    ma, pa = _performer(a, subject_seed=0)
    mb, pb = _performer(b, subject_seed=0)
    gap = np.linalg.norm(pa.poses_at(t).positions_mm - pb.poses_at(t).positions_mm, axis=-1)
    assert gap.mean() > 200.0, (a, b)
    assert [s[0] for s in ma.segments(60)] != [s[0] for s in mb.segments(60)]


def test_joint_angles_stay_within_anatomical_limits(rng):
    seed = _seeds(rng, 1)[0]
    motion = ProceduralMotion(seed)
    t = np.arange(0, 600, 0.1)                       # ten minutes, every action many times
    s = motion.sample(t)
    params, residual = pp.decompose(s.frames.local, s.heading_rad)
    tol = 1e-6
    below, above = params < pp.LO - tol, params > pp.HI + tol
    bad = [pp.PARAMS[i].name for i in np.flatnonzero((below | above).any(axis=0))]
    assert not bad, (seed, bad)
    # Nothing moves outside the parametrisation: knees and elbows turn only
    # about their hinge, end joints (hands, toes, head top) not at all.
    assert residual.max() < 1e-6, (seed, sk.JOINTS[int(residual.max(axis=0).argmax())])
    # The same limits seen from positions alone: knee and elbow flexion in 0..150 degrees.
    P = Performer(Subject.from_seed(seed), motion).poses_at(t)
    x = P.positions_mm
    for a, b, c in (("LeftUpLeg", "LeftLeg", "LeftFoot"), ("RightArm", "RightForeArm", "RightHand")):
        u, v = x[:, J[b]] - x[:, J[a]], x[:, J[c]] - x[:, J[b]]
        flex = np.degrees(np.arccos(np.clip((u * v).sum(-1) / np.linalg.norm(u, axis=-1)
                                            / np.linalg.norm(v, axis=-1), -1, 1)))
        assert flex.max() < 150.5, (seed, b, flex.max())
    # A knee never bends forward: the shank swings back relative to the thigh.
    thigh = Rotation.from_matrix(P.rotations[:, J["LeftUpLeg"]])
    shank_in_thigh = thigh.inv().apply(x[:, J["LeftFoot"]] - x[:, J["LeftLeg"]])
    assert (shank_in_thigh[:, 1] > -1.0).all(), seed        # +Y is backward in the bone frame


def test_motion_is_smooth_at_120_hz(rng):
    seed = _seeds(rng, 1)[0]
    motion, perf = _performer(seed)
    t = np.arange(0, 120, 1 / HZ)
    s = motion.sample(t)
    n = sk.NUM_JOINTS
    loc = s.frames.local
    turn = np.degrees((loc[:-n].inv() * loc[n:]).magnitude()).reshape(-1, n) * HZ
    assert turn.max() < 1500.0, (seed, turn.max())
    x = perf.poses_at(t).positions_mm
    step = np.linalg.norm(np.diff(x, axis=0), axis=-1)
    ends = [J[name] for side in ("Left", "Right") for name in (side + "Hand", side + "Foot", side + "ToeBase")]
    body = [j for j in range(n) if j not in ends]
    assert step[:, body].max() < 60.0, (seed, step[:, body].max())
    assert step[:, ends].max() < 100.0, (seed, step[:, ends].max())
    # No jump in position or velocity: second differences stay human (< 30 mm at 120 Hz ~ 430 m/s^2).
    assert np.linalg.norm(np.diff(x, 2, axis=0), axis=-1).max() < 30.0, seed
    # Floor-plane Hips velocity is continuous through every crossfade.
    v = np.diff(x[:, J["Hips"], :2], axis=0) * HZ
    assert np.linalg.norm(np.diff(v, axis=0), axis=-1).max() * HZ < 60_000.0, seed   # < 60 m/s^2


@pytest.mark.parametrize("area", [CaptureArea(), CaptureArea(500.0, 3500.0, -1500.0, 500.0)])
def test_performer_stays_inside_the_capture_area(area, rng):
    for seed in _seeds(rng, 2):
        _, perf = _performer(seed, area=area)
        t = np.arange(0, 240, 1 / 20)
        x = perf.poses_at(t).positions_mm
        assert area.contains(x[:, J["Hips"], :2]).all(), seed
        if area == CaptureArea():
            # In the 4 x 4 m studio the Hips keep clear of the walls, and no
            # hand or foot reaches more than 0.5 m past them (arms out near a wall).
            assert area.contains(x[:, J["Hips"], :2], margin_mm=200.0).all(), seed
            assert area.contains(x[:, :, :2], margin_mm=-500.0).all(), seed
        # ... and it does move about the area, not stand in one spot.
        span = np.ptp(x[:, J["Hips"], :2], axis=0)
        assert (span > 0.5 * np.array([area.x_max - area.x_min, area.y_max - area.y_min])).all(), seed


def test_feet_on_the_floor_on_any_subject(rng):
    seed = _seeds(rng, 1)[0]
    motion = ProceduralMotion(seed)
    t = np.arange(0, 180, 1 / 30)
    lift = motion.frames(t).root_z_mm
    grounded = lift == 0.0
    assert grounded.mean() > 0.8, seed
    for subject_seed in (0, 7, seed):
        perf = Performer(Subject.from_seed(subject_seed), motion)
        P = perf.poses_at(t)
        lowest = perf.foot_points_mm(P)[..., 2].reshape(len(t), -1).min(axis=1)
        assert np.abs(lowest[grounded]).max() < 20.0, (seed, subject_seed)
        assert lowest.min() > -20.0, (seed, subject_seed)
        # Airborne frames really leave the floor by their lift.
        air = lift > 50.0
        assert np.allclose(lowest[air], lift[air], atol=20.0), (seed, subject_seed)
        # Ankles stay above the floor and below the knees.
        for side in ("Left", "Right"):
            assert (P.positions_mm[:, J[side + "Foot"], 2] > 0).all()


def test_bone_lengths_are_constant(rng):
    seed = _seeds(rng, 1)[0]
    subject = Subject.from_seed(seed)
    x = Performer(subject, ProceduralMotion(seed)).poses_at(np.arange(0, 60, 0.05)).positions_mm
    for parent, child in sk.BONES:
        length = np.linalg.norm(x[:, child] - x[:, parent], axis=-1)
        assert np.abs(length - subject.bone_lengths()[child]).max() < 1e-6, sk.JOINTS[child]


def test_library_has_many_actions_and_each_plays(rng):
    names = ProceduralMotion.ACTIONS
    assert len(names) >= 12
    for required in ("walk", "run", "jump", "squat", "lunge", "kick", "reach", "arm_circles",
                     "crouch", "wave", "side_step", "pick_up", "jumping_jacks", "idle", "turn"):
        assert required in names
    seed = _seeds(rng, 1)[0]
    seen = {str(a) for a in ProceduralMotion(seed).sample(np.arange(0, 900, 0.5)).action}
    assert len(seen) >= 12, seen
    for name in names:
        motion = ProceduralMotion(seed, actions=[name])
        s = motion.sample(np.arange(0, 12, 0.1))
        assert set(s.action) == {name}
        # Every action moves some joint by more than 15 degrees.
        assert np.ptp(s.params, axis=0).max() > np.radians(15), name


def _one(name: str, seed: int, seconds: float = 12.0):
    motion = ProceduralMotion(seed, actions=[name], first_action=None)
    perf = Performer(Subject.from_seed(seed), motion)
    t = np.arange(0, seconds, 1 / 30)
    return motion, perf, t, perf.poses_at(t).positions_mm


def test_actions_do_what_their_names_say(rng):
    seed = _seeds(rng, 1)[0]
    stand = Subject.from_seed(seed).offsets_mm[sk.ROOT, 2]
    _, _, t, x = _one("walk", seed)
    speed = np.linalg.norm(np.diff(x[:, 0, :2], axis=0), axis=-1) * 30 / 1000
    assert 0.4 < np.median(speed[30:-30]) < 1.7, seed                   # m/s (slower in turns)
    _, _, _, x = _one("squat", seed)
    assert stand - x[:, 0, 2].min() > 120.0, seed                       # the Hips drop
    motion, perf, t, x = _one("jump", seed)
    lowest = perf.foot_points_mm(perf.poses_at(t))[..., 2].reshape(len(t), -1).min(axis=1)
    assert lowest.max() > 80.0, seed                                     # both feet leave the floor
    _, _, _, x = _one("wave", seed)
    hand = np.maximum(x[:, J["LeftHand"], 2], x[:, J["RightHand"], 2])
    assert (hand - x[:, J["Head"], 2]).max() > 0.0, seed                # a hand above the head
    _, _, _, x = _one("kick", seed)
    toes = np.maximum(x[:, J["LeftToeBase"], 2], x[:, J["RightToeBase"], 2])
    knee = Subject.from_seed(seed).rest_positions()[J["LeftLeg"], 2]
    assert toes.max() > knee + 50.0, seed                                # a foot kicked up past knee height
    motion, _, t, _ = _one("turn", seed)
    heading = motion.sample(t).heading_rad
    assert np.degrees(np.ptp(heading)) > 60.0, seed


def test_mirrored_axes_mean_the_same_motion_on_both_sides():
    p = np.tile(pp.NEUTRAL, (1, 1))
    for name, deg in (("hip_flex", 40), ("arm_fwd", 90), ("arm_down", 0), ("elbow_flex", 90), ("knee_flex", 60)):
        p[0, pp.index(name, "L")] = p[0, pp.index(name, "R")] = np.radians(deg)
    subject = Subject.from_seed(3)

    class Still:
        def frames(self, times_s):
            from core.sim.motion.frames import MotionFrames
            n = len(times_s)
            return MotionFrames(times_s, pp.compose(np.repeat(p, n, 0)), np.zeros((n, 2)),
                                np.zeros(n), True)

    x = Performer(subject, Still()).poses_at(np.zeros(1)).positions_mm[0]
    for side, sx in (("Left", 1), ("Right", -1)):
        assert x[J[side + "Leg"], 1] < x[J[side + "UpLeg"], 1] - 100      # knee forward (-Y)
        assert x[J[side + "Foot"], 1] > x[J[side + "Leg"], 1]              # shank swings back
        assert x[J[side + "ForeArm"], 1] < x[J[side + "Arm"], 1] - 100     # arm forward
        assert sx * (x[J[side + "Hand"], 0] - x[J[side + "ForeArm"], 0]) < -100   # forearm toward the midline
    mirrored = x[sk.mirror_index()] * [-1, 1, 1]
    assert np.allclose(mirrored, x, atol=1e-6)
