"""Temporal filters of solved joints: noise reduction on a simulated performer,
lag in milliseconds, gaps, "off" as the identity, and the config's JSON.

Performer and noise seeds are drawn fresh each run (and shown on failure);
the thresholds sit well below the values measured over many seeds."""

import json
import math

import numpy as np
import pytest

from core import skeleton as sk
from core.filters import (
    FilterConfig,
    OneEuroFilter,
    PassThroughFilter,
    apply_filter,
    butterworth_sos,
    live_filter,
    nominal_rate_hz,
    one_euro_take,
    smooth_zero_phase,
)
from core.sim.motion import Performer, ProceduralMotion
from core.sim.subject import Subject

FPS = 30.0
NOISE_MM = 15.0


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(1_000_000, 2_000_000))


def _noisy_take(seed: int, seconds: float = 30.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times, true joints and joints with 15 mm Gaussian noise per axis, at 30 frames/s."""
    performer = Performer(Subject.from_seed(seed), ProceduralMotion(seed))
    t = np.arange(0.0, seconds, 1.0 / FPS)
    truth = performer.poses_at(t).positions_mm
    noisy = truth + np.random.default_rng(seed + 1).normal(0.0, NOISE_MM, truth.shape)
    return t, truth, noisy


def _mpjpe(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=-1).mean())


# --------------------------------------------------------------------------- One Euro


def test_one_euro_and_zero_phase_reduce_noise_on_a_performer(rng):
    seed = _seed(rng)
    t, truth, noisy = _noisy_take(seed)
    raw = _mpjpe(noisy, truth)
    assert 22.0 < raw < 26.0, (seed, raw)           # 15 mm per axis: 15 * 1.596 = 23.9 mm mean
    live = _mpjpe(one_euro_take(t, noisy), truth)
    offline = _mpjpe(smooth_zero_phase(t, noisy), truth)
    offline_4hz = _mpjpe(smooth_zero_phase(t, noisy, cutoff_hz=4.0), truth)
    # Measured over 40 seeds: One Euro 1.19-1.67x, median 1.41x (it lets fast
    # motion through, noise included); zero-phase 1.55-1.60x at the 6 Hz
    # default and 1.79-1.93x at 4 Hz. A later seed gave One Euro 1.08x (a take of
    # mostly fast motion; FUSECAP_TEST_SEED=3804056242), so the bound is 1.05x.
    assert raw / live > 1.05, (seed, raw, live)
    assert raw / offline > 1.5, (seed, raw, offline)
    assert raw / offline_4hz > 1.72, (seed, raw, offline_4hz)
    assert offline_4hz < live, (seed, live, offline_4hz)


def test_one_euro_smooths_a_still_joint(rng):
    t = np.arange(0.0, 20.0, 1.0 / FPS)
    still = np.array([0.0, -100.0, 1000.0]) + rng.normal(0.0, NOISE_MM, (len(t), sk.NUM_JOINTS, 3))
    out = one_euro_take(t, still)[30:]
    jitter = np.linalg.norm(out - (0.0, -100.0, 1000.0), axis=-1).mean()
    # Measured: 0.50x of the raw 23.9 mm.
    assert jitter < 0.6 * NOISE_MM * 1.596, jitter


@pytest.mark.parametrize("speed_mm_s, most_ms", [(300.0, 30.0), (1000.0, 14.5), (3000.0, 5.2)])
def test_one_euro_lag_on_a_ramp_is_bounded(speed_mm_s, most_ms):
    # A joint sliding at constant speed, noise-free: the steady lag in time.
    t = np.arange(0.0, 3.0, 1.0 / FPS)
    ramp = np.zeros((len(t), 1, 3))
    ramp[:, 0, 0] = speed_mm_s * t
    out = one_euro_take(t, ramp)
    lag_ms = 1000.0 * (ramp[-1, 0, 0] - out[-1, 0, 0]) / speed_mm_s
    f = OneEuroFilter()
    bound_ms = 1000.0 / (2 * math.pi * (f.min_cutoff_hz + f.beta_per_mm * speed_mm_s))
    # Measured: 25.3, 11.1 and 4.5 ms; at most the first-order lag at that speed.
    assert 0.0 < lag_ms <= bound_ms, (lag_ms, bound_ms)
    assert lag_ms < most_ms
    assert np.allclose(out[:, 0, 1:], 0.0)


def test_one_euro_follows_a_step_within_a_few_frames():
    t = np.arange(0.0, 2.0, 1.0 / FPS)
    step = np.zeros((len(t), 2, 3))
    step[t >= 1.0, 0, 2] = 300.0                     # a 300 mm jump at 1 s; joint 1 stays
    out = one_euro_take(t, step)
    after = t[np.abs(out[:, 0, 2] - 300.0) < 30.0]   # within 10 % of the step
    settle_ms = 1000.0 * (after[0] - 1.0)
    # Measured: 78 % of the step on its own frame, within 10 % one frame
    # (33 ms) later: the jump raises the cutoff at once.
    assert out[t >= 1.0, 0, 2][0] > 200.0
    assert settle_ms <= 40.0, settle_ms
    assert np.all(out[:, 1] == 0.0)
    assert out[t < 1.0, 0, 2].max() == 0.0           # causal: nothing moves before the step


def test_one_euro_first_frame_passes_and_nan_frames_hold_the_state(rng):
    f = OneEuroFilter()
    x0 = rng.normal(0.0, 500.0, (sk.NUM_JOINTS, 3))
    assert np.array_equal(f.filter(0.0, x0), x0)
    x1 = x0 + rng.normal(0.0, 15.0, x0.shape)
    y1 = f.filter(1 / FPS, x1)
    assert not np.allclose(y1, x1)                   # filtered, not passed
    # A frame with no solve for the left arm: NaN there, the rest goes on.
    x2 = x1 + 5.0
    x2[sk.JOINT_INDEX["LeftForeArm"]] = np.nan
    y2 = f.filter(2 / FPS, x2)
    assert np.isnan(y2[sk.JOINT_INDEX["LeftForeArm"]]).all()
    assert np.isfinite(np.delete(y2, sk.JOINT_INDEX["LeftForeArm"], axis=0)).all()
    # Next frame: the arm comes back from its held state (filtered, not passed through).
    x3 = x1 + 10.0
    y3 = f.filter(3 / FPS, x3)
    assert np.isfinite(y3).all()
    arm = sk.JOINT_INDEX["LeftForeArm"]
    assert not np.allclose(y3[arm], x3[arm])
    # A whole missing frame: all NaN out, nothing spreads into the next one.
    assert np.isnan(f.filter(4 / FPS, np.full_like(x0, np.nan))).all()
    assert np.isfinite(f.filter(5 / FPS, x3)).all()


def test_one_euro_restarts_after_a_long_gap_or_time_going_back():
    f = OneEuroFilter(max_gap_s=0.25)
    a = np.zeros((3, 3))
    b = np.full((3, 3), 100.0)
    f.filter(0.0, a)
    f.filter(0.1, a)
    assert np.array_equal(f.filter(0.4, b), b)       # 0.3 s unseen: passes through
    assert not np.array_equal(f.filter(0.5, a), a)   # then filters again
    assert np.array_equal(f.filter(0.2, a), a)       # time went back: a fresh start
    f.reset()
    assert np.array_equal(f.filter(7.0, b), b)
    with pytest.raises(ValueError, match="joint count"):
        f.filter(7.1, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\(J, 3\)"):
        f.filter(7.2, np.zeros(9))
    with pytest.raises(ValueError, match="min_cutoff_hz"):
        OneEuroFilter(min_cutoff_hz=0.0)


def test_one_euro_with_uneven_timestamps_matches_even_ones_closely(rng):
    # Real timestamps: jitter of a few ms changes the output by well under the noise.
    seed = _seed(rng)
    t, truth, noisy = _noisy_take(seed, seconds=10.0)
    jittered = t + np.random.default_rng(seed).uniform(-0.004, 0.004, t.shape)
    a = one_euro_take(t, noisy)
    b = one_euro_take(jittered, noisy)
    assert np.abs(a - b).mean() < 2.0, seed


# --------------------------------------------------------------------------- zero-phase


def test_zero_phase_has_no_lag_and_the_cutoff_is_minus_3_db(rng):
    t = np.arange(0.0, 20.0, 1.0 / FPS)
    slow = 200.0 * np.sin(2 * math.pi * 1.5 * t)
    noisy = slow + rng.normal(0.0, NOISE_MM, t.shape)
    out = smooth_zero_phase(t, noisy[:, None, None] * np.ones((1, 1, 3)))[:, 0, 0]
    xc = np.correlate(out - out.mean(), slow - slow.mean(), mode="full")
    assert np.argmax(xc) - (len(t) - 1) == 0         # the peak at 0 samples: no lag
    # White noise keeps about the share of its band below the cutoff: sqrt(6.5 / 15) ~ 0.66.
    assert np.abs(out - slow)[30:-30].mean() < 0.72 * np.abs(noisy - slow).mean()
    # Gain in the middle of a long run: 1.5 Hz passes, 6 Hz (the cutoff) is 1/sqrt(2).
    mid = slice(60, -60)
    for hz, gain in ((1.5, 0.99), (6.0, 1 / math.sqrt(2))):
        wave = np.sin(2 * math.pi * hz * t)[:, None, None] * np.ones((1, 1, 3))
        got = smooth_zero_phase(t, wave, cutoff_hz=6.0)[mid, 0, 0]
        measured = np.sqrt(2 * np.mean(got ** 2))
        assert abs(measured - gain) < 0.02, (hz, measured)


def test_zero_phase_passes_a_ramp_unchanged():
    t = np.arange(0.0, 4.0, 1.0 / FPS)
    ramp = np.zeros((len(t), 3, 3))
    ramp[:, 0, 0] = 1000.0 * t + 5.0
    ramp[:, 1, 2] = -2500.0 * t
    ramp[:, 2] = (120.0, -40.0, 900.0)
    out = smooth_zero_phase(t, ramp)
    assert np.abs(out - ramp).max() < 0.05           # measured 0.024 mm at the ends


def test_zero_phase_gaps_stay_gaps_and_do_not_spread(rng):
    seed = _seed(rng)
    t, truth, noisy = _noisy_take(seed, seconds=8.0)
    take = noisy.copy()
    take[100:110] = np.nan                                 # no solve for a third of a second
    take[150:153, sk.JOINT_INDEX["RightHand"]] = np.nan     # one joint lost briefly
    out = smooth_zero_phase(t, take)
    assert np.array_equal(np.isnan(out), np.isnan(take)), seed
    # Each side of a gap is smoothed on its own: the same as filtering it alone.
    left = smooth_zero_phase(t[:100], take[:100])
    assert np.allclose(out[:100], left, atol=1e-9)
    hand = sk.JOINT_INDEX["RightHand"]
    alone = smooth_zero_phase(t[110:150], take[110:150, [hand]])
    assert np.allclose(out[110:150, [hand]], alone, atol=1e-9)
    # A run shorter than the padding (9 frames at 30 frames/s) is left as it is.
    tiny = take.copy()
    tiny[:195] = np.nan
    tiny[200:] = np.nan
    assert np.array_equal(smooth_zero_phase(t, tiny), tiny, equal_nan=True)


def test_zero_phase_splits_runs_at_time_gaps_and_uses_the_median_rate(rng):
    seed = _seed(rng)
    t, truth, noisy = _noisy_take(seed, seconds=6.0)
    t2 = t.copy()
    t2[90:] += 2.0                                          # recording paused for 2 s
    out = smooth_zero_phase(t2, noisy)
    assert np.allclose(out[:90], smooth_zero_phase(t[:90], noisy[:90]), atol=1e-9)
    assert np.allclose(out[90:], smooth_zero_phase(t[90:], noisy[90:]), atol=1e-9)
    assert nominal_rate_hz(t2) == pytest.approx(FPS)
    jitter = t + np.random.default_rng(seed).uniform(-0.003, 0.003, t.shape)
    assert nominal_rate_hz(jitter) == pytest.approx(FPS, rel=0.05)


def test_zero_phase_rejects_a_cutoff_above_nyquist():
    t = np.arange(0.0, 2.0, 1.0 / 10.0)
    with pytest.raises(ValueError, match="Nyquist"):
        smooth_zero_phase(t, np.zeros((len(t), 2, 3)), cutoff_hz=6.0)
    with pytest.raises(ValueError, match=r"\(T, J, 3\)"):
        smooth_zero_phase(t, np.zeros((len(t) + 1, 2, 3)))
    sos = butterworth_sos(6.0, 30.0, 2)
    assert sos.shape == (1, 6)


# --------------------------------------------------------------------------- config


def test_off_is_the_identity_live_and_offline(rng):
    seed = _seed(rng)
    t, truth, noisy = _noisy_take(seed, seconds=2.0)
    noisy[5] = np.nan
    off = FilterConfig()
    assert off.kind == "off"
    assert apply_filter(off, t, noisy) is noisy
    f = live_filter(off)
    assert isinstance(f, PassThroughFilter)
    for k, row in enumerate(noisy):
        assert f.filter(t[k], row) is row


def test_config_picks_the_filter_and_round_trips_through_json(rng):
    cfg = FilterConfig(kind="one-euro", min_cutoff_hz=0.8, beta_per_mm=0.02, d_cutoff_hz=1.5,
                       max_gap_s=0.5)
    back = FilterConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    f = live_filter(back)
    assert isinstance(f, OneEuroFilter)
    assert (f.min_cutoff_hz, f.beta_per_mm, f.d_cutoff_hz, f.max_gap_s) == (0.8, 0.02, 1.5, 0.5)
    zp = FilterConfig(kind="zero-phase", cutoff_hz=4.0, order=3)
    assert FilterConfig.from_dict(json.loads(json.dumps(zp.to_dict()))) == zp
    assert isinstance(live_filter(zp), PassThroughFilter)   # offline only
    # The take helper runs the filter the config names.
    t, truth, noisy = _noisy_take(_seed(rng), seconds=4.0)
    assert np.array_equal(apply_filter(zp, t, noisy), smooth_zero_phase(t, noisy, 4.0, 3))
    assert np.array_equal(apply_filter(cfg, t, noisy), one_euro_take(t, noisy, min_cutoff_hz=0.8,
                          beta_per_mm=0.02, d_cutoff_hz=1.5, max_gap_s=0.5))
    # Older metadata lacks keys, newer may carry more: defaults fill, extras are ignored.
    assert FilterConfig.from_dict({"kind": "zero-phase", "future": 1}) == FilterConfig("zero-phase")
    with pytest.raises(ValueError, match="unknown filter kind"):
        FilterConfig(kind="kalman")
    with pytest.raises(ValueError, match="order"):
        FilterConfig(kind="zero-phase", order=0)
    with pytest.raises(ValueError, match="cutoff_hz"):
        FilterConfig.from_dict({"kind": "zero-phase", "cutoff_hz": -1})
