"""The simulated performer with planted feet (core.sim.motion.planting): the
truth that foot skate is judged against. Measured on the held-out procedural
performers of scripts/bench_solve.py --planted (standard studio)."""

from __future__ import annotations

import numpy as np
import pytest

from core import skeleton as sk
from core.deepfuse.evaluate import Benchmark, scored_times, sequence_studio
from core.sim.motion.planting import contacts
from core.solve.metrics import _skates

BENCH = Benchmark(seconds=6.0, fps=15.0, random_rigs=False, sequences_per_kind=8)


def slides(planted: bool, index: int):
    """(ball slide per contact of the plan's contacts, the studio, the scored times, the poses)."""
    from dataclasses import replace

    bench = replace(BENCH, planted_feet=planted)
    seq = bench.sequences()[index]
    studio = sequence_studio(seq, bench)
    times = scored_times(seq, bench, studio)
    poses = studio.poses(times)
    perf = studio.performer
    grid = np.arange(0.0, times[-1] + 1.0, 1 / 120)
    on = contacts(grid, perf.foot_points_mm(perf._motion_poses(grid)))
    c = on[np.clip(np.searchsorted(grid, times), 0, len(grid) - 1)]
    _, true, _ = _skates(poses.positions_mm, poses.positions_mm, c)
    return np.array(true), studio, times, poses


@pytest.mark.parametrize("index, measured_mm, motion_mm", [
    (0, 3.4, 40.3),    # standing: the idle sway moved the feet apart by 40 mm; planted 3.4
    (4, 19.1, 216.1),  # walking: 19.1 mm per contact (the ball comes down as the foot rolls off the heel), 216 before
])
def test_planted_feet_hold_still(index, measured_mm, motion_mm):
    planted, studio, times, poses = slides(True, index)
    assert planted.mean() < 1.3 * measured_mm, planted.round(1)
    loose, *_ = slides(False, index)
    assert loose.mean() > motion_mm / 1.3, loose.round(1)
    # The legs keep their lengths; only leg joints turn away from the motion's own pose.
    perf = studio.performer
    own = perf._motion_poses(times)
    for a, b in (("LeftUpLeg", "LeftLeg"), ("LeftLeg", "LeftFoot"), ("RightUpLeg", "RightLeg"),
                 ("RightLeg", "RightFoot")):
        ia, ib = sk.JOINT_INDEX[a], sk.JOINT_INDEX[b]
        np.testing.assert_allclose(np.linalg.norm(poses.positions_mm[:, ib] - poses.positions_mm[:, ia], axis=-1),
                                   np.linalg.norm(own.positions_mm[:, ib] - own.positions_mm[:, ia], axis=-1),
                                   atol=1e-6)
    legs = {sk.JOINT_INDEX[s + n] for s in ("Left", "Right") for n in ("UpLeg", "Leg")}
    others = [j for j in range(sk.NUM_JOINTS) if j not in legs]
    np.testing.assert_allclose(poses.rotations[:, others], own.rotations[:, others], atol=1e-9)


def test_held_legs_move_no_faster_than_the_motion_s_own():
    """Bending a leg to hold its foot never snaps it: the legs' fastest turn
    over the scored seconds of the walks (sampled at 480 Hz) is near the
    motion's own (measured 565 against 499 deg/s on the fastest, seed 1)."""
    from dataclasses import replace

    worst = {}
    for planted in (False, True):
        bench = replace(BENCH, planted_feet=planted)
        seq = bench.sequences()[1]
        studio = sequence_studio(seq, bench)
        times = scored_times(seq, bench, studio)
        t = np.arange(times[0], times[-1], 1 / 480)
        legs = [sk.JOINT_INDEX[s + n] for s in ("Left", "Right") for n in ("UpLeg", "Leg")]
        r = studio.poses(t).rotations[:, legs]
        cos = (np.einsum("tjab,tjab->tj", r[1:], r[:-1]) - 1) / 2
        worst[planted] = float(np.degrees(np.arccos(np.clip(cos, -1, 1))).max() * 480)
    assert worst[True] < 1.3 * 565.0 and worst[False] == pytest.approx(488.0, abs=5.0), worst


def test_planted_feet_are_the_same_however_asked():
    _, studio, times, poses = slides(True, 4)
    again = sequence_studio(BENCH.sequences()[4], __import__("dataclasses").replace(BENCH, planted_feet=True))
    one = again.poses(times[len(times) // 2: len(times) // 2 + 1]).positions_mm[0]
    np.testing.assert_allclose(one, poses.positions_mm[len(times) // 2], atol=1e-6)
    later = again.poses(times[::-1]).positions_mm[::-1]
    np.testing.assert_allclose(later, poses.positions_mm, atol=1e-6)
