"""Guards on the accuracy docs/RESULTS.md and the lite model card print: the
shipped lite model on a small slice of the held-out benchmark
(core/deepfuse/evaluate.py), solved as the live path solves (centre finder,
volume, the optimised engine).

The slice: held-out subjects 0 and 1 (mesh bodies) in the standard studio
and two unseen random rigs (test rig seeds 0 and 1), each sequence first
the IMU calibration routine solved from the cameras alone at 5 frames/s
(the IMUs are calibrated from it, never from the simulator), then 3 s at
5 frames/s, every third frame a partial frame (two cameras cut), and the
standard studio's full frames once more with one camera missing: 4 x 76 +
60 + 20 solves. Its inputs are fixed (test seeds only), so each number
below is the same on every run; each bound sits about 1.3x above (or, for a
quantity that should be large, 1.3x below) the value measured, so a model
30 % worse fails. Print them with `pytest -s`.
"""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from core.deepfuse.engine import InferenceEngine
from core.deepfuse.evaluate import Benchmark, rig_key, run_sequence
from core.deepfuse.weights import load_weights, shipped_model_path

pytestmark = pytest.mark.skipif(not shipped_model_path("lite").exists(), reason="no shipped lite model")

SMALL = Benchmark(seconds=3.0, fps=5.0, sequences_per_kind=2, calibration_fps=5.0)


@dataclass
class Solved:
    """Per solved frame: labels, and per-joint errors (mm) and confidences (F, 22)."""

    kind: np.ndarray  # "standard", "random", or "missing" (a standard full frame, one camera None)
    partial: np.ndarray
    e1: np.ndarray  # stage 1 (vision only)
    e2: np.ndarray  # stage 2 (fused): the engine's answer
    confidence: np.ndarray
    missed: int
    calibration: list  # core.deepfuse.evaluate.CalibrationReport per sequence

    def mpjpe(self, mask: np.ndarray, stage: int = 2) -> float:
        return float((self.e2 if stage == 2 else self.e1)[mask].mean())


@pytest.fixture(scope="module")
def small() -> Solved:
    model, _ = load_weights(shipped_model_path("lite"))
    engines: dict = {}
    kind, partial, e1, e2, conf, missed, calib = [], [], [], [], [], 0, []

    def record(s, frame, label):
        nonlocal missed
        if s is None:
            missed += 1
            return
        kind.append(label)
        partial.append(frame.partial)
        e1.append(np.linalg.norm(s.stage1_mm - frame.truth_mm, axis=1))
        e2.append(np.linalg.norm(s.joints_mm - frame.truth_mm, axis=1))
        conf.append(s.confidence)

    def engine_for(rig):
        key = rig_key(rig)  # the standard studio's sequences share one engine
        if key not in engines:
            # One thread: on a shared 2-core machine two threads can be ten times slower.
            engines[key] = InferenceEngine(model, rig, device="cpu", threads=1)
        return engines[key]

    threads = torch.get_num_threads()
    try:
        for seq in SMALL.sequences():
            run = run_sequence(seq, SMALL, engine_for)
            calib.append(run.calibration)
            engine = engine_for(run.studio.rig)
            for i, (frame, s) in enumerate(zip(run.frames, run.solves)):
                record(s, frame, seq.rig_kind)
                if seq.rig_kind == "standard" and not frame.partial:
                    masks = list(frame.silhouettes)
                    masks[i % len(masks)] = None  # a camera lost, a different one each frame
                    record(engine.solve(masks, frame.bone_wxyz), frame, "missing")
    finally:
        torch.set_num_threads(threads)
    return Solved(np.array(kind), np.array(partial), np.array(e1), np.array(e2), np.array(conf), missed, calib)


def test_the_small_benchmark_is_solved_nearly_whole(small):
    # 2 x 15 frames of each rig kind, 20 standard full frames again with a camera missing;
    # measured: one frame without a performer found (a partial frame of an unseen rig).
    assert small.missed <= 1
    counts = [int((small.kind == k).sum()) for k in ("standard", "random", "missing")]
    assert counts[0] == 30 and counts[2] == 20 and counts[1] == 30 - small.missed
    assert int(small.partial[small.kind != "missing"].sum()) == 20 - small.missed


def test_fusing_the_imus_beats_the_vision_stage(small):
    """Stage 2 (fused, with the IMU calibration estimated from the routine)
    against stage 1 (vision only) of the same network. Measured with the
    shipped weights (sha256 db1a5545...): standard 31.8 vs 44.7 mm (-29 %),
    random rigs 29.1 vs 43.5 mm (-33 %), both 30.5 vs 44.1 mm (-31 %).
    docs/RESULTS.md (whole benchmark, standard studio) prints both stages.
    Bound: at least 22 % below (29 / 1.3)."""
    for name, m in (("standard", small.kind == "standard"), ("random", small.kind == "random"),
                    ("both", small.kind != "missing")):
        s1, s2 = small.mpjpe(m, 1), small.mpjpe(m, 2)
        print(f"{name}: stage 2 {s2:.1f} mm, stage 1 {s1:.1f} mm ({100 * (s2 / s1 - 1):+.0f} %)")
        assert s2 < 0.78 * s1, (name, s2, s1)


def test_full_and_partial_frames_in_the_standard_studio(small):
    """Measured with the shipped weights (sha256 db1a5545...): full frames
    20.8 mm, partial frames (two cameras cut) 53.9 mm, full frames with one
    camera missing 20.7 mm (23.7, 55.5 and 24.5 with the weights shipped
    before). docs/RESULTS.md prints the whole benchmark's."""
    std = small.kind == "standard"
    full = small.mpjpe(std & ~small.partial)
    partial = small.mpjpe(std & small.partial)
    missing = small.mpjpe(small.kind == "missing")
    print(f"standard studio: full frames {full:.1f} mm, partial frames {partial:.1f} mm, "
          f"one camera missing {missing:.1f} mm")
    assert full < 27.0
    assert partial < 70.0
    assert missing < 27.0
    # Cut cameras cost far more than a camera lost whole: the hull trusts a cut view.
    assert partial > 2 * full


def test_unseen_random_rigs(small):
    """Measured with the shipped weights (sha256 db1a5545...): 29.1 mm over
    the random rigs' frames (full 24.2, partial 40.0; 31.7, 27.4 and 41.1
    with the weights shipped before). docs/RESULTS.md prints the whole
    benchmark's."""
    rnd = small.kind == "random"
    every, full, partial = (small.mpjpe(rnd), small.mpjpe(rnd & ~small.partial), small.mpjpe(rnd & small.partial))
    print(f"random rigs: {every:.1f} mm (full frames {full:.1f}, partial frames {partial:.1f})")
    assert every < 37.5
    assert full < 31.5
    assert partial < 52.0


def test_confidence_falls_where_the_error_rises(small):
    """Per joint over the 60 benchmark frames (1,320 joints): Spearman
    correlation of confidence and error measured -0.179 with the shipped
    weights (sha256 db1a5545...); the least confident quarter's mean error
    31.3 mm against the most confident quarter's 26.0 mm (1.21x). Bounds:
    correlation below -0.14, ratio above 1.16 (the margins 1.3x looser).
    The two weights shipped before measured -0.12 and 1.12x (sha256
    53ced394...), and -0.21 and 1.37x before those: the confidence of the
    longest-trained network again separates good joints from bad ones
    better."""
    m = small.kind != "missing"
    conf, err = small.confidence[m].ravel(), small.e2[m].ravel()
    rho = float(spearmanr(conf, err).statistic)
    low, high = np.quantile(conf, [0.25, 0.75])
    worst, best = float(err[conf <= low].mean()), float(err[conf >= high].mean())
    print(f"confidence vs error: Spearman {rho:.3f}; least confident quarter {worst:.1f} mm, "
          f"most confident quarter {best:.1f} mm ({worst / best:.2f}x)")
    assert rho < -0.14
    assert worst > 1.16 * best
