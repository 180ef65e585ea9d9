"""IMU tracking without the simulator's answers (core.imu.tracking): the
calibration from the routine, the IMU-camera time offset and heading drift
correction, fed as a capture feeds them: sensor samples as stamped (30 ms
late, drifting: ImuConfig.consumer) and a vision skeleton that is the truth
plus noise like the network's (no network here, so these run in seconds;
tests/test_accuracy_guards.py runs the whole chain with the shipped model)."""

import numpy as np
import pytest

from core import skeleton as sk
from core.frames import ImuBuffer
from core.imu.tracking import ImuTracking, SampleFeed, solve_tracked
from core.rotations import from_wxyz
from core.sim.imu_config import ImuConfig
from core.sim.studio import SimulatedStudio, StudioConfig

FPS = 10.0


def vision(studio, times, noise_mm, seed=0):
    """The skeleton as a network would see it: the truth plus per-joint noise (mm)."""
    rng = np.random.default_rng(seed)
    joints = studio.poses(times).positions_mm
    return joints + rng.normal(0.0, noise_mm, joints.shape)


def bone_error_deg(bones, truth):
    ok = np.isfinite(bones[:, 0])
    return np.degrees((from_wxyz(bones[ok]).inv() * from_wxyz(truth[ok])).magnitude())


def run(studio, seconds, noise_mm=12.0, **tracking):
    """Feed `seconds` of the studio through an ImuTracking frame by frame
    (batches of 8, as offline solving does); per scored frame (after the
    routine), the bones' angles off the truth (F, 13)."""
    end = studio.routine_ends_s or 15.0
    times = np.arange(0.0, seconds, 1.0 / FPS)
    joints = vision(studio, times, noise_mm)
    track = ImuTracking(capture_s=end, **tracking)
    samples = studio.imu_samples(0.0, seconds + 1.0)
    feed = SampleFeed(track, samples.t_s, samples.sensor_id, samples.quat_wxyz)

    class Solve:
        def __init__(self, j):
            self.joints_mm, self.confidence = j, np.ones(sk.NUM_JOINTS)

    errors = []
    for i, _, bones, _ in solve_tracked(track, feed, times, lambda i: i,
                                        lambda items: [Solve(joints[i]) for i, _ in items]):
        if bones is not None and times[i] > end:
            errors.append(bone_error_deg(bones, studio.truth(times[i]).bone_wxyz))
    return track, np.array(errors), times


@pytest.fixture(scope="module")
def tracked():
    studio = SimulatedStudio(StudioConfig(seed=3, calibration_pose="T"))
    return studio, *run(studio, 60.0)


def test_the_routine_calibrates_the_imus_without_the_truth(tracked):
    """Measured (seed 3, 12 mm joint noise): right after the routine every bone
    within 2.2° of the truth, median 1.1°."""
    studio, track, errors, times = tracked
    assert track.calibration is not None and track.captured and track.error is None
    first = errors[:10]  # the first second after the routine
    print(f"after the routine: median {np.median(first):.1f}°, worst {first.max():.1f}°")
    assert np.median(first) < 1.5
    assert first.max() < 3.0


def test_the_time_offset_is_found_from_the_motion(tracked):
    """The sensors stamp 30 ms late (ImuConfig.consumer); the estimate over free
    motion measured 32 ms (the routine's slow moves leave it ambiguous)."""
    studio, track, errors, times = tracked
    assert studio.config.imu.latency_s == pytest.approx(0.03)
    assert track.offset is not None and track.offset.reliable
    print(f"time offset {track.offset_s * 1e3:.1f} ms")
    assert abs(track.offset_s - 0.03) < 0.012


def test_drift_correction_holds_the_bones_over_a_minute(tracked):
    """Consumer drift (3°/min plus a random walk) and late stamps, over the
    last 22 s of a minute: tracked, measured median 0.9°, worst frame of
    any bone 3.9°; the same take without drift correction or time offset,
    median 1.8°, worst 16.9° (a fast limb 30 ms behind)."""
    studio, track, errors, times = tracked
    _, uncorrected, _ = run(studio, 60.0, drift=False, time_offset=False)
    late = slice(len(errors) // 2, None)
    print(f"last 22 s, corrected: median {np.median(errors[late]):.1f}°, worst {errors[late].max():.1f}°; "
          f"uncorrected: median {np.median(uncorrected[late]):.1f}°, worst {uncorrected[late].max():.1f}°")
    assert np.median(errors[late]) < 1.2
    assert errors[late].max() < 5.0
    assert np.median(uncorrected[late]) > 1.5 * np.median(errors[late])
    assert uncorrected[late].max() > 2.5 * errors[late].max()


def test_a_performer_who_skips_the_routine_gets_a_clear_error():
    """No still pose at the start: the capture says what the performer should do."""
    studio = SimulatedStudio(StudioConfig(seed=4))  # procedural motion from the first frame
    track = run(studio, 20.0)[0]
    assert track.calibration is None
    assert "hold the T-pose" in track.error or "still" in track.error
    assert track.state().stage == "failed"
    assert track.bone_wxyz(np.full((sk.NUM_IMUS, 4), 0.5)) is None


def test_the_imu_buffer_looks_the_sensors_up_on_the_cameras_clock():
    from core.devices import ImuSample

    buf = ImuBuffer()
    q0 = np.array([1.0, 0.0, 0.0, 0.0])
    q1 = np.array([np.cos(np.radians(15)), np.sin(np.radians(15)), 0.0, 0.0])  # 30° about x
    buf.extend([ImuSample(0, 1.00, q0), ImuSample(0, 1.10, q1)])
    at, _ = buf.at(1.05)
    buf.offset_s = 0.05  # stamps 50 ms late: camera time 1.05 is stamp 1.10
    late, _ = buf.at(1.05)
    assert np.degrees((from_wxyz(at[0]).inv() * from_wxyz(q0)).magnitude()) == pytest.approx(15.0, abs=0.1)
    np.testing.assert_allclose(np.abs(late[0]), np.abs(q1), atol=1e-9)


def test_consumer_sensors_stamp_late_and_drift():
    """ImuConfig.consumer: 30 ms late stamps, 3°/min drift bound plus a walk."""
    cfg = ImuConfig.consumer()
    assert (cfg.latency_s, cfg.drift_deg_per_min, cfg.drift_walk_deg) == (0.03, 3.0, 1.0)
    studio = SimulatedStudio(StudioConfig(seed=1, imu=cfg))
    s = studio.imu_samples(2.0, 3.0)
    assert s.t_s.min() >= 2.0 and s.t_s.max() < 3.0
    # The stamps are the sampling times + 30 ms: the truth at a stamp is the pose 30 ms before.
    sid = s.sensor_id == 5
    truth = studio.imus.measure(studio.poses, s.t_s[sid] - 0.03, np.full(sid.sum(), 5),
                                np.zeros(sid.sum(), int))
    np.testing.assert_allclose(truth.bone_wxyz, s.bone_wxyz[sid], atol=1e-9)


def test_samples_kept_are_bounded_whatever_happens():
    """A capture that never starts (no performer) keeps at most what a
    capture or an offset window needs: here 2 x 25 s of 60 Hz samples."""
    from core.devices import ImuSample

    track = ImuTracking()
    q = np.array([1.0, 0.0, 0.0, 0.0])
    for i in range(120 * 60):  # two minutes of one sensor at 60 Hz
        track.add_samples([ImuSample(0, i / 60.0, q)])
    kept = len(track._samples[0])
    assert 25 * 60 <= kept <= 50 * 60 + 1
    assert track.state().stage == "waiting"
