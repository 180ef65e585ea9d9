"""Foot contacts (core.solve.contacts) and motion quality against the truth
(core.solve.metrics).

Contacts are measured on the simulated performer (core.sim.motion): its walk,
standing idle and jumps, at 15 and 30 frames/s. The pinned-seed tests hold
the numbers the defaults were chosen by (printed with `pytest -s`); the
fresh-seed tests (seed shown on failure) hold the ranges measured over 130
seeds. The simulated walk's stance foot slides (its Hips move at constant
speed while the legs play a gait by joint angles): about 0.6 m/s, 0.27 m per
step, which is why the speed thresholds are loose and why the truth's own
skate is reported next to the estimate's.

The metrics are checked against what can be computed by hand: the truth
against itself, white noise (the mean of a 3-D Gaussian norm and of its
second difference), a constant offset, a foot slid at a known speed, one
joint flipped by 90 degrees in one frame, NaN frames, uneven time steps.
"""

import math
from functools import lru_cache

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.sim.motion import Performer, ProceduralMotion
from core.sim.motion import params as pp
from core.sim.subject import Subject
from core.solve.contacts import FOOT_JOINTS, ContactConfig, ContactTracker, contact_intervals, detect_contacts
from core.solve.metrics import TURN_JOINTS, MotionQuality, motion_quality, second_difference, turn_angles_deg

J = sk.JOINT_INDEX
SECONDS = 20.0
WALK_SEED = 4          # a typical walk: about 0.9 m/s, each foot down about 65 % of the time


@lru_cache(maxsize=16)
def _take(action: str, seed: int, fps: float):
    """SECONDS of one procedural action from t = 0: times, truth poses, the motion."""
    motion = ProceduralMotion(seed, actions=[action], first_action=None)
    t = np.arange(0.0, SECONDS, 1.0 / fps)
    return t, Performer(Subject.from_seed(seed), motion).poses_at(t), motion


def _gait_cycles(motion) -> list[int]:
    """Gait cycles per [left, right] leg: maxima of the hip's flexion (the leg swung
    forward), sampled at 120 Hz."""
    sample = motion.sample(np.arange(0.0, SECONDS, 1.0 / 120.0))
    out = []
    for side in "LR":
        h = sample.params[:, pp.index("hip_flex", side)]
        d = np.diff(h)
        peaks = np.flatnonzero((d[:-1] > 0) & (d[1:] <= 0)) + 1
        out.append(int((h[peaks] > np.median(h)).sum()))
    return out


def _foot_angular_speed(times: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """(T, 2) deg/s of each foot's global orientation, what a foot IMU's gyro reads."""
    out = np.empty((len(times), 2))
    for f, (ankle, _) in enumerate(FOOT_JOINTS):
        turn = turn_angles_deg(rotations[:, ankle]) / np.diff(times)
        out[:, f] = np.concatenate([turn[:1], (turn[:-1] + turn[1:]) / 2, turn[-1:]])
    return out


def _track(times, positions, angular=None, config=ContactConfig()) -> np.ndarray:
    tracker = ContactTracker(config)
    return np.array([tracker.update(times[i], positions[i], None if angular is None else angular[i])
                     for i in range(len(times))])


def _counts(contact: np.ndarray) -> list[int]:
    return [len(contact_intervals(contact[:, f])) for f in range(2)]


def _fresh(rng) -> int:
    return int(rng.integers(10_000, 1_000_000))


# --------------------------------------------------------------------------- contacts


def test_contact_intervals_are_runs_with_exclusive_stops():
    assert contact_intervals(np.zeros(0, bool)) == []
    assert contact_intervals(np.array([0, 0, 0], bool)) == []
    assert contact_intervals(np.array([1, 1, 1], bool)) == [(0, 3)]
    assert contact_intervals(np.array([1, 0, 1, 1, 0, 0, 1], bool)) == [(0, 1), (2, 4), (6, 7)]


@pytest.mark.parametrize("fps, fraction, tracker_agrees, start_lag", [(15, 0.647, 0.825, 2), (30, 0.676, 0.858, 3)])
def test_walk_has_one_contact_per_step_at_15_and_30_fps(fps, fraction, tracker_agrees, start_lag):
    t, poses, motion = _take("walk", WALK_SEED, fps)
    contact = detect_contacts(t, poses.positions_mm)
    cycles = _gait_cycles(motion)
    live = _track(t, poses.positions_mm)
    print(f"\nwalk seed {WALK_SEED} at {fps} fps: contact fraction L/R {contact.mean(axis=0).round(3)}, "
          f"contacts {_counts(contact)}, gait cycles {cycles}, tracker agrees on {(live == contact).mean():.3f}")
    # Measured: 18 and 18 contacts for 18 and 18 cycles at both rates; fractions
    # 0.647 / 0.647 (15 fps) and 0.677 / 0.675 (30 fps): a foot's contact runs
    # from heel (or ball) strike to toe-off, about 2/3 of this simulated walk's cycle.
    assert _counts(contact) == cycles == [18, 18]
    np.testing.assert_allclose(contact.mean(axis=0), fraction, atol=0.01)
    # The live tracker lags: a contact starts a median 2 frames late at 15 fps,
    # 3 at 30 (0.13 and 0.1 s: min_frames - 1 plus the backward speed's lag; up
    # to 8 frames where this walk's sliding stance foot slows slowly through the
    # speed threshold) and ends about 1 frame late: 0.825 and 0.858 agreement.
    assert (live == contact).mean() == pytest.approx(tracker_agrees, abs=0.01)
    starts, stops = [], []
    for f in range(2):
        for a, b in contact_intervals(contact[:, f]):
            match = [(c, d) for c, d in contact_intervals(live[:, f]) if c < b and d > a]
            if match:                                     # (the take's last contact may end before the live one starts)
                starts.append(match[0][0] - a)
                stops.append(match[-1][1] - b)
    print(f"live contact start lag (frames): median {np.median(starts)}, max {max(starts)}; "
          f"end lag: mean {np.mean(stops):.2f}, max {max(stops)}")
    assert len(starts) >= 35 and np.median(starts) == start_lag and max(starts) <= 8
    assert 0.5 <= np.mean(stops) <= 1.3 and max(stops) <= 5     # measured 0.83 (15 fps), 0.97 (30 fps)


@pytest.mark.parametrize("fps", [15, 30])
def test_walk_contacts_on_a_fresh_performer(rng, fps):
    # Measured over 130 seeds: each foot's contacts minus its gait cycles -5..+3
    # (0 or +1 for 78 %), contact fraction 0.37-0.85 (mean 0.65, lower the faster
    # the walk: the stance foot slides faster), tracker agreement >= 0.717 at
    # 15 fps and >= 0.778 at 30 fps, >= 0.89 agreement with 10 mm noise added.
    seed = _fresh(rng)
    t, poses, motion = _take("walk", seed, fps)
    contact = detect_contacts(t, poses.positions_mm)
    cycles = _gait_cycles(motion)
    for n, c in zip(_counts(contact), cycles):
        assert c - 6 <= n <= c + 4, (seed, _counts(contact), cycles)
    assert 0.3 < contact.mean(axis=0).min() and contact.mean(axis=0).max() < 0.9, seed
    assert (_track(t, poses.positions_mm) == contact).mean() > (0.68 if fps == 15 else 0.74), seed
    noisy = poses.positions_mm + np.random.default_rng(seed).normal(0.0, 10.0, poses.positions_mm.shape)
    assert (detect_contacts(t, noisy) == contact).mean() > 0.86, seed


def test_standing_keeps_both_feet_down_and_a_jump_lifts_them():
    t, poses, _ = _take("idle", WALK_SEED, 30)
    contact = detect_contacts(t, poses.positions_mm)
    print(f"\nidle: fraction {contact.mean(axis=0).round(3)}, contacts {_counts(contact)}")
    assert contact.mean() > 0.98 and _counts(contact) == [1, 1]       # measured 1.0 (>= 0.989 over 100 seeds)
    t, poses, motion = _take("jump", WALK_SEED, 30)
    contact = detect_contacts(t, poses.positions_mm)
    lift = motion.frames(t).root_z_mm                                    # the lowest foot point's height
    print(f"jump: fraction {contact.mean(axis=0).round(3)}, contacts {_counts(contact)}, "
          f"airborne (lift > 50 mm) {np.mean(lift > 50):.3f}, no foot down {np.mean(~contact.any(axis=1)):.3f}")
    # Measured: 11 jumps, both feet down whenever the lowest point is on the
    # floor, neither while it is more than 50 mm up; no foot down in 16.5 % of
    # the frames (15-19.5 % over 100 seeds), more than 50 mm up in 14.2 %.
    assert _counts(contact) == [11, 11]
    assert contact[lift <= 0.0].all()
    assert not contact[lift > 50.0].any()
    assert np.mean(~contact.any(axis=1)) == pytest.approx(0.165, abs=0.01)


def test_foot_angular_speed_gates_contacts():
    t, poses, _ = _take("walk", WALK_SEED, 30)
    x = poses.positions_mm
    contact = detect_contacts(t, x)
    gyro = _foot_angular_speed(t, poses.rotations)
    # The walk's own foot rotation stays under the limits during its contacts
    # (measured: 99th percentile 311 deg/s, most 398 over 10 seeds): nothing changes.
    np.testing.assert_array_equal(detect_contacts(t, x, angular_speed_deg_s=gyro), contact)
    np.testing.assert_array_equal(_track(t, x, gyro), _track(t, x))
    # A left foot spinning at 600 deg/s is never planted; the right foot is not affected.
    spin = gyro.copy()
    spin[:, 0] = 600.0
    gated = detect_contacts(t, x, angular_speed_deg_s=spin)
    assert not gated[:, 0].any()
    np.testing.assert_array_equal(gated[:, 1], contact[:, 1])
    assert not _track(t, x, spin)[:, 0].any()


def test_nan_frames_are_never_in_contact():
    t, poses, _ = _take("idle", WALK_SEED, 30)
    x = poses.positions_mm.copy()
    x[100:105] = np.nan
    x[200, J["LeftToeBase"], 2] = np.nan                              # one point of one foot
    contact = detect_contacts(t, x)
    live = _track(t, x)
    for c in (contact, live):
        assert not c[100:105].any() and not c[200, 0]
        assert c[200, 1] and c[300].all()                             # the other foot, and later frames
    assert _counts(contact) == [3, 2]                                 # the left foot's contact split twice
    assert not detect_contacts(t, np.full_like(x, np.nan)).any()
    assert detect_contacts(t[:0], x[:0]).shape == (0, 2)
    assert not detect_contacts(t[:1], x[:1]).any()                    # no speed from one frame


def test_tracker_is_causal_and_restarts_when_time_goes_back():
    t, poses, _ = _take("walk", WALK_SEED, 30)
    x = poses.positions_mm
    full = _track(t, x)
    changed = x.copy()
    changed[300:] += 500.0                                            # a different future
    np.testing.assert_array_equal(_track(t, changed)[:300], full[:300])
    tracker = ContactTracker()
    for i in range(100):
        tracker.update(t[i], x[i])
    assert not tracker.update(t[0], x[0]).any()                        # restarted: no speed yet


def test_config_rejects_a_leave_threshold_stricter_than_its_enter_threshold():
    with pytest.raises(ValueError):
        ContactConfig(height_mm=50.0, height_leave_mm=40.0)
    with pytest.raises(ValueError):
        ContactConfig(speed_mm_s=900.0, speed_leave_mm_s=800.0)
    with pytest.raises(ValueError):
        ContactConfig(min_frames=0)
    with pytest.raises(ValueError):
        detect_contacts(np.array([0.0, 0.0]), np.zeros((2, sk.NUM_JOINTS, 3)))


# --------------------------------------------------------------------------- metrics


def _own_max_turn_under_10(rotations: np.ndarray) -> float:
    """The truth's largest frame-to-frame turn under 10 degrees, by scipy."""
    idx = list(TURN_JOINTS)
    r = Rotation.from_matrix(rotations[:, idx].reshape(-1, 3, 3))
    T = rotations.shape[0]
    rel = r[len(idx):] * r[:-len(idx)].inv()
    ang = np.degrees(rel.magnitude()).reshape(T - 1, len(idx))
    return float(ang[ang < 10.0].max())


def test_the_truth_against_itself_scores_zero():
    t, poses, _ = _take("walk", WALK_SEED, 30)
    x, r = poses.positions_mm, poses.rotations
    q = motion_quality(t, x, x, r, r)
    print(f"\ntruth against itself: {q}")
    assert q.frames == len(t) and q.mpjpe_mm == 0.0 and q.worst_tenth_mm == 0.0 and q.accel_error_mm_s2 == 0.0
    assert q.max_turn_deg == pytest.approx(_own_max_turn_under_10(r), abs=1e-6)
    assert q.turns_over_30 == 0
    assert q.contacts == 43 and q.relative_skate_mm == 0.0
    # The simulated walk's stance foot itself slides: measured 28.7 mm over each stretch where it is still
    # on the floor (slower than 0.3 m/s; metrics.TRUE_CONTACTS), 290 mm per contact with the looser
    # contacts of core.solve.contacts (landing and lift-off included).
    assert q.foot_skate_mm == q.true_skate_mm == pytest.approx(28.7, abs=0.5)


@pytest.mark.parametrize("fps", [15, 30])
def test_white_noise_gives_the_expected_position_and_acceleration_errors(rng, fps):
    t, poses, _ = _take("walk", WALK_SEED, fps)
    x = poses.positions_mm
    sigma = 10.0
    q = motion_quality(t, x + rng.normal(0.0, sigma, x.shape), x)
    maxwell = 2.0 * math.sqrt(2.0 / math.pi)                          # mean norm of a unit 3-D Gaussian
    assert q.mpjpe_mm == pytest.approx(sigma * maxwell, rel=0.02)     # 15.96 mm
    # A frame's MPJPE is a mean over 22 joints (sd 10 * 0.673 / sqrt(22) = 1.43 mm);
    # the mean of a Gaussian's top tenth is 1.755 sd above its mean: 18.5 mm.
    assert q.worst_tenth_mm == pytest.approx(sigma * maxwell + 1.755 * 1.435, abs=0.5)
    # (n+ - 2n + n-) / h^2 per coordinate has sd sqrt(6) sigma / h^2: 8.79 m/s^2 at 15 fps, 35.2 at 30.
    assert q.accel_error_mm_s2 == pytest.approx(math.sqrt(6.0) * sigma * fps ** 2 * maxwell, rel=0.03)


def test_a_constant_offset_is_all_position_error_and_no_jitter_or_skate():
    t, poses, _ = _take("walk", WALK_SEED, 30)
    x, r = poses.positions_mm, poses.rotations
    q = motion_quality(t, x + np.array([18.0, -24.0, 0.0]), x, r, r)
    own = motion_quality(t, x, x, r, r)
    assert q.mpjpe_mm == pytest.approx(30.0, abs=1e-9) and q.worst_tenth_mm == pytest.approx(30.0, abs=1e-9)
    assert q.accel_error_mm_s2 < 1e-6
    assert q.relative_skate_mm < 1e-9 and q.foot_skate_mm == pytest.approx(own.foot_skate_mm, abs=1e-9)
    assert q.max_turn_deg == own.max_turn_deg and q.contacts == own.contacts


def test_a_sliding_foot_gives_its_exact_slide():
    fps, T = 30.0, 60
    t = np.arange(T) / fps
    rest = Subject.from_seed(0).rest_positions()
    truth = np.repeat(rest[None], T, axis=0)
    contacts = np.zeros((T, 2), bool)
    contacts[10:40, 0] = True                 # left foot down for frames 10..39
    contacts[5:56, 1] = True                  # right foot down for frames 5..55
    est = truth.copy()
    left, right = FOOT_JOINTS[0][1], FOOT_JOINTS[1][1]
    est[10:40, left, 0] += 150.0 * (t[10:40] - t[10])                     # slides at 150 mm/s
    est[5:56, right, 1] += 40.0 * np.sin(np.pi * np.arange(51) / 50)      # out 40 mm and back
    est[40:, left, 0] = est[39, left, 0]
    q = motion_quality(t, est, truth, true_contacts=contacts)
    slides = [150.0 * 29 / fps, 40.0]
    assert q.contacts == 2
    assert q.foot_skate_mm == pytest.approx(np.mean(slides), abs=1e-9)
    assert q.foot_skate_p95_mm == pytest.approx(40.0 + 0.95 * (slides[0] - 40.0), abs=1e-9)
    assert q.true_skate_mm == 0.0 and q.relative_skate_mm == pytest.approx(q.foot_skate_mm, abs=1e-9)
    # Unsolved at a contact's first frame: the slide starts from its first solved frame.
    est[10:15, left] = np.nan
    q = motion_quality(t, est, truth, true_contacts=contacts)
    assert q.foot_skate_mm == pytest.approx((150.0 * 24 / fps + 40.0) / 2, abs=1e-9)


def test_a_joint_flipped_by_90_degrees_in_one_frame_is_two_big_turns():
    t, poses, _ = _take("walk", WALK_SEED, 30)
    x, r = poses.positions_mm, poses.rotations
    k, joint = 300, J["Spine"]
    flipped = r.copy()
    flipped[k, joint] = flipped[k, joint] @ Rotation.from_euler("x", 90.0, degrees=True).as_matrix()
    q = motion_quality(t, x, x, flipped, r)
    own = turn_angles_deg(r[k - 1:k + 2, joint]).max()                # the truth's own turn there
    assert own < 3.0 and abs(q.max_turn_deg - 90.0) <= own + 1e-9     # measured: 2.4, 90.03
    assert q.turns_over_30 == 2
    # An end joint's rotation drives nothing: a flipped hand is not counted.
    hand = r.copy()
    hand[k, J["LeftHand"]] = hand[k, J["LeftHand"]] @ Rotation.from_euler("x", 90.0, degrees=True).as_matrix()
    q = motion_quality(t, x, x, hand, r)
    assert q.turns_over_30 == 0 and q.max_turn_deg == pytest.approx(_own_max_turn_under_10(r), abs=1e-6)
    # Without rotations there is no turn measure.
    q = motion_quality(t, x, x, None, r)
    assert math.isnan(q.max_turn_deg) and q.turns_over_30 == 0


def test_nan_frames_and_joints_are_skipped():
    t, poses, _ = _take("walk", WALK_SEED, 30)
    x, r = poses.positions_mm, poses.rotations
    est = x + np.array([0.0, 30.0, 0.0])
    est[50:60] = np.nan
    est[100, J["Head"]] = np.nan
    rot = r.copy()
    rot[200, J["Chest"]] = np.nan
    q = motion_quality(t, est, x, rot, r)
    assert q.frames == len(t) - 10
    assert q.mpjpe_mm == pytest.approx(30.0, abs=1e-9) and q.accel_error_mm_s2 < 1e-6
    assert q.turns_over_30 == 0 and math.isfinite(q.max_turn_deg)
    # Nothing solved, or too few frames: NaN and zero counts, no exception.
    q = motion_quality(t, np.full_like(x, np.nan), x, np.full_like(r, np.nan), r)
    assert q.frames == 0 and q.contacts == 0 and q.turns_over_30 == 0
    assert all(math.isnan(v) for v in (q.mpjpe_mm, q.worst_tenth_mm, q.accel_error_mm_s2, q.max_turn_deg,
                                       q.foot_skate_mm, q.foot_skate_p95_mm))
    q = motion_quality(t[:2], x[:2], x[:2], r[:2], r[:2])
    assert q.frames == 2 and q.mpjpe_mm == 0.0 and math.isnan(q.accel_error_mm_s2)
    q = motion_quality(t[:0], x[:0], x[:0])
    assert q.frames == 0 and math.isnan(q.mpjpe_mm)


def test_uneven_time_steps_give_the_exact_acceleration_of_a_quadratic(rng):
    T = 40
    t = np.cumsum(rng.uniform(0.01, 0.08, T))
    a_true = rng.normal(0.0, 5000.0, (sk.NUM_JOINTS, 3))
    a_diff = rng.normal(0.0, 2000.0, (sk.NUM_JOINTS, 3))
    v0, x0 = rng.normal(0.0, 500.0, (2, sk.NUM_JOINTS, 3))
    tt = t[:, None, None]
    truth = x0 + v0 * tt + 0.5 * a_true * tt ** 2
    est = truth + 0.5 * a_diff * tt ** 2
    np.testing.assert_allclose(second_difference(t, truth), np.broadcast_to(a_true, (T - 2,) + a_true.shape),
                               rtol=1e-6, atol=1e-3)
    q = motion_quality(t, est, truth)
    assert q.accel_error_mm_s2 == pytest.approx(np.linalg.norm(a_diff, axis=-1).mean(), rel=1e-6)


def test_worst_tenth_is_the_mean_of_the_worst_tenth_of_frames():
    T = 100
    t = np.arange(T) / 30.0
    truth = np.zeros((T, sk.NUM_JOINTS, 3))
    est = truth + np.array([10.0, 0.0, 0.0])
    est[::10] = np.array([0.0, 0.0, 50.0])                            # every tenth frame 50 mm off
    q = motion_quality(t, est, truth, true_contacts=np.zeros((T, 2), bool))
    assert q.mpjpe_mm == pytest.approx(14.0) and q.worst_tenth_mm == pytest.approx(50.0)
    assert q.contacts == 0 and math.isnan(q.foot_skate_mm)


def test_a_quality_prints_as_one_table_row():
    t, poses, _ = _take("walk", WALK_SEED, 15)
    x = poses.positions_mm
    q = motion_quality(t, x + 1.0, x)
    row = q.row("walk")
    assert row["label"] == "walk" and row["frames"] == len(t) and row["mpjpe_mm"] == round(math.sqrt(3.0), 2)
    assert set(row) == {"label"} | set(MotionQuality.__dataclass_fields__)
    line = str(q)
    assert "\n" not in line and "MPJPE 1.7 mm" in line
    with pytest.raises(ValueError):
        motion_quality(t[::-1], x, x)
