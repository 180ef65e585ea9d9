"""The performer's body, its silhouettes (numpy and torch ray casts) and silhouette noise."""

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.camera.model import Camera
from core.camera.rig import random_rig, standard_studio
from core.kinematics import forward_kinematics
from core.sim.body import Body, body_primitives
from core.sim.render import render_silhouettes
from core.sim.render_torch import render_silhouettes_torch
from core.sim.silhouette_noise import SilhouetteNoise, apply_noise, apply_noise_all, crop_partial, erode_or_dilate
from core.sim.subject import Subject

J = sk.JOINT_INDEX


def _pose(subject, rng, spread=0.5, xy=None):
    """A random (not necessarily plausible) pose standing somewhere in the area."""
    local = rng.normal(size=(sk.NUM_JOINTS, 3)) * spread
    local[J["Hips"]] = [0.0, 0.0, rng.uniform(-np.pi, np.pi)]
    root = subject.offsets_mm[J["Hips"]].copy()
    root[:2] = rng.uniform(-1500, 1500, 2) if xy is None else xy
    poses = forward_kinematics(subject.offsets_mm, root[None], Rotation.from_rotvec(local))
    return poses.positions_mm[0], poses.rotations[0]


def _body(seed, spread=0.5, xy=None):
    rng = np.random.default_rng(seed)
    subject = Subject.from_seed(seed)
    return body_primitives(subject, *_pose(subject, rng, spread, xy))


def _t_pose(subject):
    poses = forward_kinematics(subject.offsets_mm, subject.offsets_mm[:1], Rotation.identity(sk.NUM_JOINTS))
    return poses.positions_mm[0], poses.rotations[0]


def _distance_lower_bound(body, points):
    """(N,) a lower bound on the distance (mm) from each point to the body (<= 0 inside)."""
    cap = (body.capsule_distance(points) - body.capsule_r).min(1, initial=np.inf)
    # |p - q| >= min semi-axis * |A (p - q)| >= min semi-axis * (|A (p - c)| - 1).
    local = np.linalg.norm(body.ellipsoid_local(points), axis=-1)
    ell = ((local - 1.0) * body.ellipsoid_axes.min(1)).min(1, initial=np.inf)
    return np.minimum(cap, ell)


# -- body -------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 7, 23])
def test_body_has_human_proportions_in_t_pose(seed):
    subject = Subject.from_seed(seed)
    pos, rot = _t_pose(subject)
    body = body_primitives(subject, pos, rot)
    lo, hi = body.bounds()
    assert abs(lo[2]) < 1.0  # feet reach the floor, not through it
    assert abs(hi[2] - subject.height_mm) < 0.02 * subject.height_mm  # the head is on top
    assert hi[0] - lo[0] == pytest.approx(-2 * lo[0])  # symmetric arm span
    assert 0.9 < (hi[0] - lo[0]) / subject.height_mm < 1.15  # arm span about the stature
    # The chest is wider than it is deep (from the body itself, 1 mm steps).
    chest = pos[J["Chest"]]
    line = np.linspace(-400, 400, 801)
    across = chest + np.outer(line, [1, 0, 0])
    depth = chest + np.outer(line, [0, 1, 0])
    width_mm = body.contains(across).sum()  # the arms are higher, at the shoulders
    depth_mm = body.contains(depth).sum()
    assert 1.3 < width_mm / depth_mm < 2.2
    assert 180 < depth_mm < 350
    # Head, hands and toes are solid where they should be.
    for p in (pos[J["HeadTop"]] - [0, 0, 30], pos[J["LeftHand"]] + [60, 0, 0],
              pos[J["RightHand"]] - [60, 0, 0], pos[J["LeftToeBase"]] * [1, 1, 0] + [0, -20, 5]):
        assert body.contains(p[None])[0], p
    # ... and the space between the legs below the crotch and beside the neck is empty.
    assert not body.contains([[0, 0, 0.25 * subject.height_mm]])[0]
    assert not body.contains([[0.1 * subject.height_mm, 0, pos[J["Head"], 2] + 40]])[0]


def test_body_poses_with_the_skeleton_and_batches():
    subject = Subject.from_seed(4)
    rng = np.random.default_rng(4)
    frames = [_pose(subject, rng) for _ in range(3)]
    batch = body_primitives(subject, np.stack([f[0] for f in frames]), np.stack([f[1] for f in frames]))
    assert batch.batch_shape == (3,)
    for i, (pos, rot) in enumerate(frames):
        one = body_primitives(subject, pos, rot)
        np.testing.assert_allclose(batch.frame(i).capsule_a, one.capsule_a)
        # A limb capsule runs joint to joint, whatever the pose.
        np.testing.assert_allclose(one.capsule_a[4], pos[J["LeftUpLeg"]], atol=1e-9)
        np.testing.assert_allclose(one.capsule_b[4], pos[J["LeftLeg"]], atol=1e-9)
        # The head turns with the Head joint: the skull's top stays under HeadTop.
        top = one.ellipsoid_centre[3] + one.ellipsoid_rotation[3][:, 2] * one.ellipsoid_axes[3, 2]
        assert np.linalg.norm(top - pos[J["HeadTop"]]) < 0.15 * one.ellipsoid_axes[3, 1]
        assert np.allclose(one.ellipsoid_rotation @ np.swapaxes(one.ellipsoid_rotation, 1, 2), np.eye(3))
    assert Body.stack([batch.frame(0), batch.frame(2)]).capsule_r.shape == (2, 13)


def test_contains_is_exact_at_the_surface_and_samples_are_inside():
    rng = np.random.default_rng(11)
    body = _body(11)
    pts = body.sample_interior(4000, rng)
    assert body.contains(pts).all()
    assert (_distance_lower_bound(body, pts) <= 1e-9).all()
    no_capsules = (np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))
    for i in range(len(body.capsule_r)):
        single = body.capsule_body(i)
        a, b, r = body.capsule_a[i], body.capsule_b[i], body.capsule_r[i]
        n = np.cross(b - a, rng.normal(size=3))
        n /= np.linalg.norm(n)
        p = a + rng.uniform() * (b - a)
        assert single.contains([p + 0.99 * r * n])[0] and not single.contains([p + 1.01 * r * n])[0]
        assert body.contains([p + 0.99 * r * n])[0]
    for e in range(len(body.ellipsoid_axes)):
        single = Body(*no_capsules, body.ellipsoid_centre[e : e + 1], body.ellipsoid_rotation[e : e + 1],
                      body.ellipsoid_axes[e : e + 1])
        v = rng.normal(size=3)
        v /= np.linalg.norm(v)
        surf = body.ellipsoid_centre[e] + body.ellipsoid_rotation[e] @ (body.ellipsoid_axes[e] * v)
        c = body.ellipsoid_centre[e]
        assert single.contains([c + 0.99 * (surf - c)])[0] and not single.contains([c + 1.01 * (surf - c)])[0]
    far = pts + [0, 0, 5000]
    assert not body.contains(far).any()


# -- renderer against the geometry -------------------------------------------------

@pytest.mark.parametrize("seed", [0, 3, 8])
def test_interior_points_land_on_silhouette_pixels(seed):
    rng = np.random.default_rng(seed)
    rig = standard_studio((480, 270)) if seed == 0 else random_rig(seed).scaled(0.4)
    body = _body(seed)
    masks = render_silhouettes(body, rig)
    pts = body.sample_interior(20000, rng)
    checked = on_mask = 0
    for cam, mask in zip(rig, masks):
        uv, valid = cam.project(pts)
        pix = np.round(uv).astype(int)
        ok = valid & (pix[:, 0] >= 0) & (pix[:, 0] < cam.width) & (pix[:, 1] >= 0) & (pix[:, 1] < cam.height)
        pix = pix[ok]
        near = cv2.dilate(mask, np.ones((3, 3), np.uint8))
        assert near[pix[:, 1], pix[:, 0]].all(), cam.name  # within 1 px of the silhouette
        on_mask += int(mask[pix[:, 1], pix[:, 0]].sum())
        checked += len(pix)
    assert checked > 50000
    assert on_mask / checked > 0.99  # the rest fall within 1 px of the boundary


STEP_MM = 4.0


def _march(body, cam, uv):
    """Walk the rays of pixels uv (n, 2) forward from the camera centre in
    STEP_MM steps: (some sample is inside the body (n,), a lower bound on the
    clearance between the body and the samples (n,) mm)."""
    d = cam.pixel_rays(uv)
    lo, hi = body.bounds()
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    # From 10 mm before the body's bounding box to 200 mm past it: the rest of
    # the ray is farther from the body than any threshold used below.
    to_box = np.linalg.norm(np.maximum(0.0, np.maximum(lo - cam.centre, cam.centre - hi)))
    far = np.linalg.norm(corners - cam.centre, axis=1).max()
    s = np.arange(max(to_box - 10.0, 0.0), far + 200, STEP_MM)
    samples = (cam.centre + d[:, None, :] * s[None, :, None]).reshape(-1, 3)
    inside = body.contains(samples).reshape(len(d), -1).any(1)
    return inside, _distance_lower_bound(body, samples).reshape(len(d), -1).min(1)


def _check_rays(body, cam, mask, uv):
    """Pixels whose ray passes through the body are 1; pixels whose ray clears
    it are 0. Returns the counts of each and of rays clearing it by >= 100 mm."""
    inside, clearance = _march(body, cam, uv)
    value = mask[uv[:, 1].astype(int), uv[:, 0].astype(int)]
    assert (value[inside] == 1).all(), cam.name
    # Between samples a ray can come at most STEP_MM / 2 closer than at one.
    clear = clearance > STEP_MM / 2 + 0.5
    assert (value[clear] == 0).all(), cam.name
    return int(inside.sum()), int(clear.sum()), int((clearance >= 100).sum())


@pytest.mark.parametrize("seed", [2, 5])
def test_rays_through_the_body_are_one_and_rays_that_miss_are_zero(seed):
    rng = np.random.default_rng(seed)
    rig = random_rig(seed).scaled(0.3)
    body = _body(seed)
    counts = np.zeros(3, int)
    for cam, mask in zip(rig, render_silhouettes(body, rig)):
        ys, xs = np.nonzero(cv2.dilate(mask, np.ones((15, 15), np.uint8)))
        pick = rng.choice(len(xs), min(80, len(xs)), replace=False)
        counts += _check_rays(body, cam, mask, np.stack([xs[pick], ys[pick]], 1).astype(float))
    ones, zeros, far = counts
    assert ones > 150 and zeros > 150 and far > 50


# -- numpy and torch agree ---------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 4, 9])
def test_numpy_and_torch_renderers_agree(seed):
    rig = random_rig(seed).scaled(0.15)
    bodies = [_body(seed * 10 + i, spread=0.6) for i in range(2)]
    batch = render_silhouettes_torch(Body.stack(bodies), rig, device="cpu")
    batch64 = render_silhouettes_torch(Body.stack(bodies), rig, device="cpu", dtype=torch.float64)
    differ32 = total = 0
    for i, body in enumerate(bodies):
        ref = render_silhouettes(body, rig)
        for k, mask in enumerate(ref):
            assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
            assert batch[k].shape == (2, rig[k].height, rig[k].width)
            assert np.array_equal(batch64[k][i].numpy(), mask)  # float64: identical, culling loses nothing
            differ32 += int((batch[k][i].numpy() != mask).sum())
            total += int(mask.sum())
    assert total > 2000
    assert differ32 <= 3  # float32: at most a handful of pixels exactly on a boundary


def test_torch_single_body_and_cameras_off():
    rig = standard_studio((192, 108))
    body = _body(6)
    ref = render_silhouettes(body, rig, cameras_off=(2, 5))
    out = render_silhouettes_torch(body, rig, cameras_off=(2, 5), device="cpu")
    assert ref[2] is None and ref[5] is None and out[2] is None and out[5] is None
    for k in (0, 1, 3, 4, 6, 7):
        assert out[k].shape == (108, 192) and out[k].dtype == torch.uint8
        assert (out[k].numpy() != ref[k]).sum() <= 1 and ref[k].sum() > 50


def test_cameras_close_to_behind_and_inside_the_body():
    body = _body(3, spread=0.3, xy=(0.0, 0.0))
    lo, hi = body.bounds()
    centre = (lo + hi) / 2
    chest = body.ellipsoid_centre[2]
    chest_front = chest - body.ellipsoid_rotation[2][:, 1] * (body.ellipsoid_axes[2, 1] + 60)
    cams = [
        # 30 cm from the chest, looking at it: primitives reach behind this camera.
        Camera.look_at(centre + [0, -450, 350], centre + [0, 0, 350], 150.0, (160, 120),
                       dist=np.array([-0.1, 0.01, 0, 0, 0])),
        # Looking away from the performer: everything is behind it.
        Camera.look_at([0, -3000, 1000], [0, -6000, 1000], 200.0, (160, 120)),
        # Inside the pelvis.
        Camera.look_at(body.ellipsoid_centre[0], [3000, 0, 1000], 200.0, (160, 120)),
        # Just in front of the chest, looking sideways: half the body is behind it,
        # and only the ray's forward half may hit.
        Camera.look_at(chest_front, chest_front + [3000, 0, 0], 200.0, (160, 120)),
    ]
    masks = render_silhouettes(body, cams)
    torch_masks = render_silhouettes_torch(body, cams, device="cpu", dtype=torch.float64)
    rng = np.random.default_rng(0)
    for cam, m, t in zip(cams, masks, torch_masks):
        assert np.array_equal(m, t.numpy())
        uv = np.stack([rng.integers(0, 160, 150), rng.integers(0, 120, 150)], 1).astype(float)
        _check_rays(body, cam, m, uv)
    assert 0.2 < masks[0].mean() < 1.0
    assert masks[1].sum() == 0
    assert masks[2].all()
    assert 0.05 < masks[3].mean() < 0.9


def test_a_capsule_reaching_behind_the_camera_is_seen_only_ahead():
    # From (0, -100, 0) looking along +X, a wide lens: the capsule's far end is
    # behind the camera and in the backward extension of many pixels' rays.
    body = Body(np.array([[-500.0, 0, 200]]), np.array([[50.0, 0, 0]]), np.array([40.0]),
                np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros((0, 3)))
    cam = Camera.look_at([0, -100, 0], [1000, -100, 0], 60.0, (160, 120))
    mask = render_silhouettes(body, [cam])[0]
    assert np.array_equal(mask, render_silhouettes_torch(body, [cam], device="cpu", dtype=torch.float64)[0].numpy())
    assert np.array_equal(mask, render_silhouettes_torch(body, [cam], device="cpu")[0].numpy())
    uv = np.stack(np.meshgrid(np.arange(0, 160, 3.0), np.arange(0, 120, 3.0)), -1).reshape(-1, 2)
    ones, zeros, _ = _check_rays(body, cam, mask, uv)
    assert ones > 20 and zeros > 500


# -- silhouette noise ----------------------------------------------------------------
@pytest.fixture(scope="module")
def clean_mask():
    cam = Camera.look_at([0, -4000, 1000], [0, 0, 900], 700.0, (480, 480))
    return render_silhouettes(_body(5, spread=0.3, xy=(0.0, 0.0)), [cam])[0]


def _perimeter(mask):
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return sum(cv2.arcLength(c, True) for c in contours)


def _holes(mask):
    _, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    return 0 if hierarchy is None else int((hierarchy[0, :, 3] >= 0).sum())


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_erosion_and_dilation_change_area_by_perimeter_times_radius(clean_mask, radius):
    area, perimeter = int(clean_mask.sum()), _perimeter(clean_mask)
    eroded = erode_or_dilate(clean_mask, radius, dilate=False)
    dilated = erode_or_dilate(clean_mask, radius, dilate=True)
    assert (eroded <= clean_mask).all() and (dilated >= clean_mask).all()
    for changed in (area - int(eroded.sum()), int(dilated.sum()) - area):
        assert 0.75 < changed / (perimeter * radius) < 1.25


def test_holes_and_blobs_change_area_by_their_size(clean_mask):
    area = int(clean_mask.sum())
    r = 4
    opts = SilhouetteNoise.none()
    for seed in range(10):
        rng = np.random.default_rng(seed)
        holed = apply_noise(clean_mask, replace(opts, p_holes=1.0, hole_count=(1, 1), hole_px=(r, r)), rng)
        lost = area - int(holed.sum())
        # One ellipse of semi-axes r and 0.5-1 r, wholly inside: a new hole in the outline.
        assert 0.4 * np.pi * r * r < lost < 1.3 * np.pi * r * r
        assert (holed <= clean_mask).all() and _holes(holed) == _holes(clean_mask) + 1
        blobbed = apply_noise(clean_mask, replace(opts, p_blobs=1.0, blob_count=(1, 1), blob_px=(r, r)), rng)
        gained = int(blobbed.sum()) - area
        assert 0.4 * np.pi * r * r < gained < 1.3 * np.pi * r * r
        assert (blobbed >= clean_mask).all()
        n_before = cv2.connectedComponents(clean_mask)[0]
        assert cv2.connectedComponents(blobbed)[0] == n_before + 1  # separate from the body


def test_partial_view_keeps_30_to_70_percent_behind_a_line(clean_mask):
    area = clean_mask.sum()
    opts = SilhouetteNoise(p_edge=0, p_holes=0, p_blobs=0, p_partial=1.0, p_off=0)
    kept = []
    for seed in range(40):
        out = apply_noise(clean_mask, opts, np.random.default_rng(seed))
        kept.append(out.sum() / area)
        assert (out <= clean_mask).all()
    kept = np.array(kept)
    assert kept.min() > 0.29 and kept.max() < 0.71 and kept.max() - kept.min() > 0.25
    # The cut is a straight line: the removed pixels are one side of it.
    rng = np.random.default_rng(3)
    out = crop_partial(np.ones((100, 100), np.uint8), 0.5, rng)
    gone = np.argwhere(out == 0).astype(float)
    assert 0.49 < out.mean() < 0.51
    centred = gone - gone.mean(0)
    assert np.linalg.svd(centred, compute_uv=False)[1] > 10  # a half-plane, not a sliver


def test_cameras_drop_out_at_the_given_rate_and_noise_is_reproducible(clean_mask):
    masks = [clean_mask] * 8
    opts = SilhouetteNoise(p_off=0.25)
    outs = [apply_noise_all(masks, opts, np.random.default_rng(s)) for s in range(50)]
    off = np.mean([m is None for o in outs for m in o])
    assert 0.18 < off < 0.32
    again = apply_noise_all(masks, opts, np.random.default_rng(7))
    assert all((a is None and b is None) or np.array_equal(a, b) for a, b in zip(outs[7], again))
    assert apply_noise_all([None, clean_mask], SilhouetteNoise.none(), np.random.default_rng(0))[0] is None
    clean = apply_noise(clean_mask, SilhouetteNoise.none(), np.random.default_rng(0))
    assert np.array_equal(clean, clean_mask) and clean is not clean_mask
    doubled = SilhouetteNoise().scaled(2.0)
    assert doubled.max_edge_px == 4 and doubled.hole_px == (4, 10) and doubled.blob_px == (4, 16)
