"""The inference engine: one call from silhouettes, rig and IMU bones to
world joints, batch 1 and batched, CPU-optimised and CUDA paths, degradation."""

import numpy as np
import pytest
import torch

from core import skeleton as sk
from core.deepfuse.engine import InferenceEngine, bone_inputs, confidence_from_spread
from core.deepfuse.network import DeepFuseNet, NetConfig, native_bf16
from core.deepfuse.weights import SHIPPED, shipped_model_path
from core.sim.studio import SimulatedStudio, StudioConfig

NET = NetConfig(width=24, depth=2)


@pytest.fixture(scope="module")
def studio():
    return SimulatedStudio(StudioConfig(seed=3))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DeepFuseNet(NET).eval()


def test_bone_inputs_turn_orientations_into_directions_and_flag_missing_sensors():
    q = np.tile([1.0, 0.0, 0.0, 0.0], (sk.NUM_IMUS, 1))
    q[4] = np.nan
    q[3] = [np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)]  # 90 deg about Z
    q[7] = [np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0]  # 90 deg about X
    dirs, valid = bone_inputs(q)
    assert valid.sum() == 12 and not valid[4]
    np.testing.assert_allclose(dirs[0], sk.IMU_BONE_REST_DIRECTIONS[0], atol=1e-6)
    np.testing.assert_allclose(dirs[4], 0.0)
    # The left upper arm points along +X in the T-pose; 90 deg about Z turns it to +Y.
    np.testing.assert_allclose(dirs[3], [0.0, 1.0, 0.0], atol=1e-6)
    # The thigh points down (-Z); 90 deg about X swings it to +Y (backwards: the T-pose faces -Y).
    np.testing.assert_allclose(dirs[7], [0.0, 1.0, 0.0], atol=1e-6)
    dirs, valid = bone_inputs(None)
    assert not valid.any()


def test_confidence_falls_with_spread():
    c = confidence_from_spread(np.array([0.0, 100.0, 300.0]))
    np.testing.assert_allclose(c, [1.0, 0.5, 0.1])


def test_the_optimised_cpu_forward_matches_eager_and_batched(studio, model):
    fast = InferenceEngine(model, studio.rig, device="cpu", optimise=True, cpu_precision="fp32")
    slow = InferenceEngine(model, studio.rig, device="cpu", optimise=False, cpu_precision="fp32")
    truth = [studio.truth(t) for t in (0.5, 1.0)]
    frames = [(studio.silhouettes(tr.t_s), tr.bone_wxyz) for tr in truth]
    a = fast.solve(*frames[0])
    b = slow.solve(*frames[0])
    np.testing.assert_allclose(a.joints_mm, b.joints_mm, atol=0.05)
    np.testing.assert_allclose(a.spread_mm, b.spread_mm, atol=0.05)
    batch = slow.solve_batch(frames, batch_size=2)
    np.testing.assert_allclose(batch[0].joints_mm, b.joints_mm, atol=0.05)
    assert a.joints_mm.shape == (sk.NUM_JOINTS, 3) and a.confidence.shape == (sk.NUM_JOINTS,)
    assert set(a.timings_ms) == {"volume", "network", "total"}
    # Joints come out inside the volume the engine built around the found centre.
    lo = np.asarray(a.grid.origin_index) * a.grid.voxel_mm
    assert ((a.joints_mm >= lo) & (a.joints_mm <= lo + a.grid.size * a.grid.voxel_mm)).all()
    assert np.linalg.norm(a.centre_mm - truth[0].joints_mm[sk.ROOT]) < 400


def test_bf16_on_the_cpu_stays_close_to_fp32_and_auto_follows_the_cpu(studio):
    """Measured with the shipped lite weights on 8 frames of this studio: the
    bf16 forward (channels-last, traced) 1.86 mm from fp32 on average (12.0 at
    most), MPJPE 32.3 against fp32's 32.6 mm; the batched bf16 path 2.1 mm
    from the traced one. Both are given the simulator's bone orientations:
    a comparison of the two precisions on the same input, not an accuracy
    figure (those are main.py evaluate's, docs/RESULTS.md)."""
    if not shipped_model_path("lite").exists():
        pytest.skip("no shipped lite weights")
    truth = [studio.truth(t) for t in np.arange(0.5, 4.5, 0.5)]
    frames = [(studio.silhouettes(tr.t_s), tr.bone_wxyz) for tr in truth]
    fp32 = InferenceEngine.shipped("lite", studio.rig, device="cpu", optimise=False, cpu_precision="fp32")
    bf16 = InferenceEngine.shipped("lite", studio.rig, device="cpu", cpu_precision="bf16")
    assert (fp32.precision_name, bf16.precision_name) == ("fp32", "bf16")
    assert next(fp32.model.parameters()).dtype == torch.float32  # the model itself is left as it was
    a = np.array([fp32.solve(*f).joints_mm for f in frames])
    b = np.array([bf16.solve(*f).joints_mm for f in frames])
    c = np.array([s.joints_mm for s in bf16.solve_batch(frames, batch_size=4)])
    gt = np.array([tr.joints_mm for tr in truth])
    moved = np.linalg.norm(b - a, axis=-1)
    print(f"bf16 vs fp32: mean {moved.mean():.2f} mm, max {moved.max():.1f} mm; batched vs traced bf16 "
          f"{np.linalg.norm(c - b, axis=-1).mean():.2f} mm")
    assert 0.0 < moved.mean() < 2.4 and moved.max() < 15.5
    assert np.linalg.norm(c - b, axis=-1).mean() < 2.8
    mpjpe = [float(np.linalg.norm(x - gt, axis=-1).mean()) for x in (a, b)]
    assert abs(mpjpe[1] - mpjpe[0]) < 0.4, mpjpe  # measured 0.30
    auto = InferenceEngine(bf16.model, studio.rig, device="cpu", optimise=False)
    assert auto.precision_name == ("bf16" if native_bf16(torch.device("cpu")) else "fp32")
    with pytest.raises(ValueError, match="cpu_precision"):
        InferenceEngine(bf16.model, studio.rig, device="cpu", cpu_precision="int8")


def test_lost_cameras_and_sensors_degrade_without_failing(studio, model):
    engine = InferenceEngine(model, studio.rig, device="cpu", optimise=False)
    tr = studio.truth(1.0)
    masks = list(studio.silhouettes(1.0))
    masks[2] = None
    bones = tr.bone_wxyz.copy()
    bones[[3, 9]] = np.nan
    r = engine.solve(masks, bones)
    assert r is not None and np.isfinite(r.joints_mm).all()
    assert engine.solve([None] * len(masks), None) is None
    with pytest.raises(ValueError, match="one per camera"):
        engine.solve(masks[:3], bones)
    out = engine.solve_batch([(masks, bones), ([None] * len(masks), None)])
    assert out[0] is not None and out[1] is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_cuda_graph_matches_eager_on_the_gpu(studio, model):
    graph = InferenceEngine(model, studio.rig, device="cuda", precision="fp32", optimise=True)
    eager = InferenceEngine(model, studio.rig, device="cuda", precision="fp32", optimise=False)
    tr = studio.truth(0.7)
    masks = studio.silhouettes(0.7)
    np.testing.assert_allclose(graph.solve(masks, tr.bone_wxyz).joints_mm,
                               eager.solve(masks, tr.bone_wxyz).joints_mm, atol=0.05)
    again = graph.solve(studio.silhouettes(1.3), studio.truth(1.3).bone_wxyz)
    ref = eager.solve(studio.silhouettes(1.3), studio.truth(1.3).bone_wxyz)
    np.testing.assert_allclose(again.joints_mm, ref.joints_mm, atol=0.05)


@pytest.mark.slow  # 19 s; tests/test_accuracy_guards.py holds the shipped model to its numbers by default
@pytest.mark.skipif(not shipped_model_path("lite").exists(), reason="no shipped lite model")
def test_the_shipped_lite_model_tracks_a_held_out_performer():
    from core.deepfuse.evaluate import Benchmark, evaluate_model, summarise
    from core.deepfuse.weights import load_weights

    model, info = load_weights(shipped_model_path("lite"))
    assert info["frames"] > 0
    bench = Benchmark(seconds=1.2, fps=5.0, sequences_per_kind=1, random_rigs=False, partial_every=0)
    s = summarise(evaluate_model(model, bench, device="cpu"))
    assert s["missed"] == 0 and s["frames"] == 6
    g = s["groups"]["standard/all"]
    print(f"held-out performer, 6 full frames: MPJPE {g['mpjpe2']:.1f} mm, PA-MPJPE {g['pa2']:.1f} mm")
    # Measured 19.5 mm (PA-MPJPE 14.1) on every run (two runs): the inputs are fixed (a mesh body,
    # the IMUs calibrated from the routine), with the shipped weights (sha256 db1a5545...); 27.2 mm
    # (PA-MPJPE 19.8) with the weights shipped before. docs/RESULTS.md prints 24.8 mm for the full
    # frames of the whole benchmark's standard studio.
    assert g["mpjpe2"] < 25.0
    assert g["pa2"] < g["mpjpe2"]


def test_shipped_model_names():
    assert set(SHIPPED) == {"full", "lite"}
    with pytest.raises(ValueError):
        shipped_model_path("huge")


@pytest.mark.skipif(not shipped_model_path("lite").exists(), reason="no shipped lite model")
def test_without_a_single_imu_bone_the_answer_is_the_vision_stage():
    """Stage 2 was trained with at most one sensor missing; with none present
    the answer is stage 1, which is far closer."""
    from core.deepfuse.weights import load_weights

    studio = SimulatedStudio(StudioConfig(seed=3, body="mesh"))
    model, _ = load_weights(shipped_model_path("lite"))
    engine = InferenceEngine(model, studio.rig, device="cpu")
    truth = studio.truth(1.3)
    sil = studio.silhouettes(truth.t_s)
    blind = engine.solve(sil, None)
    np.testing.assert_array_equal(blind.joints_mm, blind.stage1_mm)
    print(f"no IMU (stage 1): {np.linalg.norm(blind.joints_mm - truth.joints_mm, axis=1).mean():.1f} mm")
    # Measured 20.7 mm (stage 1) and 14.5 mm fused below, on every run (fixed inputs), with the
    # shipped weights (sha256 db1a5545...); 24.2 and 14.3 mm with the weights shipped before.
    assert np.linalg.norm(blind.joints_mm - truth.joints_mm, axis=1).mean() < 27.0
    nan_rows = engine.solve(sil, np.full((sk.NUM_IMUS, 4), np.nan))
    np.testing.assert_allclose(nan_rows.joints_mm, blind.joints_mm, atol=1e-6)
    fused = engine.solve(sil, truth.bone_wxyz)
    assert not np.allclose(fused.joints_mm, fused.stage1_mm)
    print(f"fused: {np.linalg.norm(fused.joints_mm - truth.joints_mm, axis=1).mean():.1f} mm")
    assert np.linalg.norm(fused.joints_mm - truth.joints_mm, axis=1).mean() < 18.6
    one = truth.bone_wxyz.copy()
    one[1:] = np.nan  # a single sensor left: still stage 2
    assert not np.allclose(engine.solve(sil, one).joints_mm, blind.joints_mm)
