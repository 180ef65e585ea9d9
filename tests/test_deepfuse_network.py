"""The DeepFuse network's parts: output layers, the IMU-bone layer, the
camera encoder, and the network's shapes, units and variants."""

import math

import numpy as np
import pytest
import torch

from core import skeleton as sk
from core.deepfuse.imu_bone import bone_directions, cylinder_volumes
from core.deepfuse.layers import CameraEncoder, gaussian_heatmaps, hard_argmax3d, soft_argmax3d
from core.deepfuse.network import FULL, LITE, DeepFuseNet, NetConfig, conv_macs, count_parameters

TINY = NetConfig(grid_size=16, stride=2, width=24, depth=2)


def peak(side, at, height=30.0):
    h = torch.zeros(1, 1, side, side, side)
    h[0, 0, at[0], at[1], at[2]] = height
    return h


def test_soft_argmax_finds_a_sharp_peak_and_reports_its_spread():
    c, spread = soft_argmax3d(peak(32, (3, 17, 29)), theta=3.0)
    assert torch.allclose(c[0, 0], torch.tensor([3.0, 17.0, 29.0]), atol=1e-3)
    assert spread.item() < 0.01
    flat = torch.zeros(1, 1, 32, 32, 32)
    c, spread = soft_argmax3d(flat, theta=3.0)
    assert torch.allclose(c[0, 0], torch.full((3,), 15.5), atol=1e-4)
    # A uniform distribution over 0..31 has variance (32^2 - 1) / 12 per axis.
    assert spread.item() == pytest.approx(math.sqrt(3 * (32 ** 2 - 1) / 12), rel=1e-4)


def test_soft_argmax_is_subvoxel_between_two_equal_peaks():
    h = peak(16, (4, 4, 4)) + peak(16, (5, 4, 4))
    c, _ = soft_argmax3d(h, theta=3.0)
    assert torch.allclose(c[0, 0], torch.tensor([4.5, 4.0, 4.0]), atol=1e-3)


def test_soft_argmax_sharpness_theta_weights_the_peak():
    h = peak(16, (2, 8, 8), height=1.0) + peak(16, (12, 8, 8), height=2.0)
    xs = [soft_argmax3d(h, theta)[0][0, 0, 0].item() for theta in (1.0, 3.0, 100.0)]
    assert xs[0] < xs[1] < xs[2] and xs[2] == pytest.approx(12.0, abs=1e-3)


def test_hard_argmax_and_gaussian_targets_agree():
    coords = torch.tensor([[[3.0, 9.0, 14.0], [0.0, 0.0, 15.0]]])
    g = gaussian_heatmaps(coords, 16)
    assert g.shape == (1, 2, 16, 16, 16)
    assert torch.equal(hard_argmax3d(g), coords)
    assert g[0, 0, 3, 9, 14].item() == pytest.approx(1.0)
    assert g[0, 0, 4, 9, 14].item() == pytest.approx(math.exp(-0.5))


def test_cylinder_covers_the_ray_from_the_start_joint_only():
    start = torch.tensor([[[5.0, 5.0, 5.0]]])
    direction = torch.tensor([[[1.0, 0.0, 0.0]]])
    vol = cylinder_volumes(start, direction, torch.tensor([[True]]), side=32, radius_vox=1.5)[0, 0]
    assert vol[20, 5, 5] == 1 and vol[31, 6, 5] == 1       # along the ray, to the edge
    assert vol[20, 5, 7] == 0                              # 2 voxels off the axis
    assert vol[2, 5, 5] == 0                               # behind the start joint
    assert vol[4, 5, 5] == 1                               # within the radius of the start
    # Cross-section: lattice points within 1.5 of the axis: the 3x3 square (corners at sqrt 2).
    assert int(vol[20].sum()) == 9
    off = cylinder_volumes(start, direction, torch.tensor([[False]]), side=32, radius_vox=1.5)
    assert off.sum() == 0


def test_cylinder_follows_an_oblique_direction():
    d = torch.tensor([[[1.0, 1.0, 1.0]]]) / math.sqrt(3)
    vol = cylinder_volumes(torch.tensor([[[2.0, 2.0, 2.0]]]), d, torch.tensor([[True]]), side=16, radius_vox=0.6)[0, 0]
    diag = [int(vol[i, i, i]) for i in range(2, 16)]
    assert all(diag) and vol[10, 2, 2] == 0


def test_bone_directions_are_rest_directions_turned_by_the_start_joint():
    rots = np.tile(np.eye(3), (sk.NUM_IMUS, 1, 1))
    np.testing.assert_allclose(bone_directions(rots), sk.IMU_BONE_REST_DIRECTIONS)
    yaw90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    left_arm = sk.IMU_BONES.index(next(b for b in sk.IMU_BONES if b.name == "LeftUpperArm"))
    turned = bone_directions(np.tile(yaw90, (sk.NUM_IMUS, 1, 1)))
    np.testing.assert_allclose(turned[left_arm], [0.0, 1.0, 0.0], atol=1e-12)


def test_camera_encoder_ignores_camera_order_and_absent_padding():
    rng = np.random.default_rng(3)
    vol = torch.from_numpy((rng.uniform(size=(1, 5, 8, 8, 8)) > 0.5).astype(np.uint8))
    present = torch.ones(1, 5, dtype=torch.bool)
    enc = CameraEncoder(stride=2)
    ref = enc(vol, present)
    assert ref.shape == (1, 24, 4, 4, 4)
    perm = torch.tensor([3, 0, 4, 1, 2])
    assert torch.equal(enc(vol[:, perm], present), ref)
    padded = torch.cat([vol, torch.ones(1, 2, 8, 8, 8, dtype=torch.uint8)], dim=1)
    pad_present = torch.cat([present, torch.zeros(1, 2, dtype=torch.bool)], dim=1)
    assert torch.equal(enc(padded, pad_present), ref)
    # Fraction channel: the share of the 5 cameras that see each voxel.
    full = CameraEncoder(stride=1)(vol, present)
    np.testing.assert_allclose(full[0, 0].numpy(), vol[0].float().mean(0).numpy(), atol=1e-6)
    hull = vol[0].bool().all(0)
    assert torch.equal(full[0, 1].bool(), hull)
    assert torch.equal(full[0, 2].bool(), vol[0].sum(0) >= 4)


def test_a_silent_present_camera_differs_from_an_absent_one():
    vol = torch.ones(1, 3, 4, 4, 4, dtype=torch.uint8)
    vol[0, 2] = 0
    enc = CameraEncoder(stride=1)
    shut = enc(vol, torch.tensor([[True, True, True]]))
    gone = enc(vol, torch.tensor([[True, True, False]]))
    assert shut[0, 0, 0, 0, 0].item() == pytest.approx(2 / 3) and shut[0, 1].sum() == 0
    assert gone[0, 0, 0, 0, 0].item() == 1.0 and gone[0, 1].all()
    assert shut[0, 2].all()  # the hull forgiving one camera still holds


def inputs(cfg, batch=2, cams=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    G = cfg.grid_size
    vol = (torch.rand(batch, cams, G, G, G, generator=g) > 0.6).to(torch.uint8)
    d = torch.randn(batch, sk.NUM_IMUS, 3, generator=g)
    return (vol, torch.ones(batch, cams, dtype=torch.bool), torch.tensor([[1000.0, -350.0, 70.0]] * batch),
            d / d.norm(dim=-1, keepdim=True), torch.ones(batch, sk.NUM_IMUS, dtype=torch.bool))


@pytest.mark.parametrize("variant", [{}, {"fuse_imu": False}, {"head": "hard"}, {"head": "fc"}])
def test_every_variant_gives_joints_inside_its_grid_in_world_mm(variant):
    from dataclasses import replace

    cfg = replace(TINY, **variant)
    torch.manual_seed(0)
    model = DeepFuseNet(cfg).eval()
    args = inputs(cfg)
    with torch.no_grad():
        out = model(*args)
    assert out.joints1_mm.shape == out.joints2_mm.shape == (2, sk.NUM_JOINTS, 3)
    lo = args[2][:, None, :]
    hi = lo + cfg.grid_size * cfg.voxel_mm
    if cfg.head != "fc":  # regression can leave the grid; argmax layers cannot
        assert ((out.joints2_mm >= lo) & (out.joints2_mm <= hi)).all()
    # voxel -> mm: heatmap voxel i's centre sits (i + 0.5) heatmap voxels from the corner.
    expect = lo + (out.joints2_vox + 0.5) * cfg.heatmap_voxel_mm
    torch.testing.assert_close(out.joints2_mm, expect)


def test_channels_last_gives_the_same_joints():
    """The layout training uses on a CPU changes the memory order only: the
    same joints (fp32 rounding apart: measured 0.007 mm at most), and the
    weights load back in the usual layout for a weights file."""
    torch.manual_seed(2)
    plain = DeepFuseNet(TINY)
    fast = DeepFuseNet(TINY)
    fast.load_state_dict(plain.state_dict())
    fast.use_channels_last()
    conv = next(m for m in fast.modules() if isinstance(m, torch.nn.Conv3d) and m.kernel_size[0] > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d) and not conv.weight.is_contiguous()
    args = inputs(TINY)
    a, b = plain(*args), fast(*args)
    torch.testing.assert_close(b.joints2_mm, a.joints2_mm, atol=0.01, rtol=0)  # mm
    torch.testing.assert_close(b.joints1_mm, a.joints1_mm, atol=0.01, rtol=0)
    reloaded = DeepFuseNet(TINY)
    reloaded.load_state_dict(fast.state_dict())
    assert all(p.is_contiguous() for p in reloaded.parameters())


def test_imu_bones_change_the_fused_output_and_missing_ones_do_not_matter_when_absent():
    torch.manual_seed(1)
    model = DeepFuseNet(TINY).eval()
    vol, present, origin, dirs, valid = inputs(TINY, batch=1)
    with torch.no_grad():
        a = model(vol, present, origin, dirs, valid).joints2_mm
        b = model(vol, present, origin, -dirs, valid).joints2_mm
        none1 = model(vol, present, origin, dirs, torch.zeros_like(valid)).joints2_mm
        none2 = model(vol, present, origin, -dirs, torch.zeros_like(valid)).joints2_mm
    assert (a - b).abs().max() > 1e-3
    torch.testing.assert_close(none1, none2)


def test_sizes_of_the_presets():
    # The full preset is the paper's scale (128 channels, depth-4 hourglasses).
    full = count_parameters(DeepFuseNet(FULL))
    assert 3.0e6 < full < 4.5e6
    assert 35e9 < 2 * conv_macs(FULL) < 70e9
    lite = count_parameters(DeepFuseNet(LITE))
    assert lite < full / 10
    assert 2 * conv_macs(LITE) < 5e9


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="head"):
        NetConfig(head="argmin")
    with pytest.raises(ValueError, match="divide"):
        NetConfig(grid_size=64, stride=2, depth=6)
    assert NetConfig.from_dict({**LITE.to_dict(), "unknown": 1}) == LITE


def test_a_few_steps_fit_a_fixed_batch():
    from core.deepfuse.batch import Batch
    from core.deepfuse.train import loss_fn

    torch.manual_seed(0)
    model = DeepFuseNet(TINY)
    vol, present, origin, dirs, valid = inputs(TINY, batch=2)
    noise = torch.rand(2, sk.NUM_JOINTS, 3, generator=torch.Generator().manual_seed(2))
    joints = origin[:, None, :] + noise * 400 + 150
    batch = Batch(vol, present, origin, dirs, valid, joints, torch.zeros(2, dtype=torch.bool))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for _ in range(25):
        loss = loss_fn(model(*batch.inputs()), batch, TINY)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
