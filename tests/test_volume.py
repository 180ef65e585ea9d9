"""The multi-channel volume, its grid and the performer-centre finder.

Silhouettes for the geometric checks are rendered here by casting each
pixel's ray (Camera.pixel_rays) at a solid of known shape, so the expected
occupancy follows from geometry, not from the code under test.
"""

import cv2
import numpy as np
import pytest
import torch

from core.camera.rig import CameraRig, CaptureArea, random_rig, standard_studio
from core.volume.builder import VolumeBuilder
from core.volume.builder_torch import TorchVolumeBuilder
from core.volume.centre import CentreFinder, find_performer_centre
from core.volume.grid import VoxelGrid

SMALL_AREA = CaptureArea(-400.0, 400.0, -400.0, 400.0)
# Tables for centres 0.9-1.1 m high over a 0.8 m square: quick to build in tests.
SMALL_Z = (900.0, 1100.0)


# -- references and renderers ----------------------------------------------------
def reference_volume(rig, masks, grid):
    """Per point, straight from Camera.project: the definition of the volume."""
    pts = grid.voxel_centres().reshape(-1, 3)
    out = np.zeros((len(rig),) + grid.shape, np.uint8)
    for k, (cam, m) in enumerate(zip(rig, masks)):
        if m is None:
            continue
        uv, valid = cam.project(pts)
        px = np.floor(uv + 0.5)
        ok = valid & (px[:, 0] >= 0) & (px[:, 0] < cam.width) & (px[:, 1] >= 0) & (px[:, 1] < cam.height)
        col = np.where(ok, px[:, 0], 0).astype(int)
        row = np.where(ok, px[:, 1], 0).astype(int)
        out[k] = (ok & (np.asarray(m)[row, col] != 0)).reshape(grid.shape)
    return out


def random_masks(rig, rng):
    """Random blobs, lines and speckle, in the dtypes silhouettes come in."""
    masks = []
    for k, cam in enumerate(rig):
        w, h = cam.size
        m = np.zeros((h, w), np.uint8)
        for _ in range(8):
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(5, w // 3)), int(rng.integers(5, h // 3)))
            cv2.ellipse(m, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        for _ in range(4):
            p = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(2)]
            cv2.line(m, p[0], p[1], 0, int(rng.integers(1, 12)))
        m[rng.random((h, w)) < 0.02] ^= 255
        kind = k % 3
        masks.append(m if kind == 0 else (m > 0) if kind == 1 else (m > 0).astype(np.uint8))
    return masks


_RAYS = {}


def pixel_ray_grid(cam):
    """Unit world rays through every pixel centre, (h * w, 3), row-major."""
    key = id(cam)
    if key not in _RAYS:
        c, r = np.meshgrid(np.arange(cam.width, dtype=float), np.arange(cam.height, dtype=float))
        _RAYS[key] = (cam, cam.pixel_rays(np.stack([c.ravel(), r.ravel()], -1)))
    return _RAYS[key][1]


def sphere_mask(cam, centre, radius):
    d = pixel_ray_grid(cam)
    oc = cam.centre - centre
    b = d @ oc
    disc = b * b - (oc @ oc - radius**2)
    return ((disc >= 0) & (-b + np.sqrt(np.maximum(disc, 0)) > 0)).reshape(cam.height, cam.width)


def cylinder_mask(cam, centre_xy, radius, z0, z1):
    """A vertical capped cylinder; 0/255 uint8."""
    d = pixel_ray_grid(cam)
    o = cam.centre
    ox, oy = o[0] - centre_xy[0], o[1] - centre_xy[1]
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = 2 * (ox * d[:, 0] + oy * d[:, 1])
    c = ox * ox + oy * oy - radius**2
    disc = b * b - 4 * a * c
    with np.errstate(all="ignore"):
        sq = np.sqrt(np.maximum(disc, 0))
        t0, t1 = (-b - sq) / (2 * a), (-b + sq) / (2 * a)
        tz0, tz1 = (z0 - o[2]) / d[:, 2], (z1 - o[2]) / d[:, 2]
        lo = np.maximum(t0, np.minimum(tz0, tz1))
        hi = np.minimum(t1, np.maximum(tz0, tz1))
    hit = (disc >= 0) & (hi >= lo) & (hi > 0)
    return (hit.reshape(cam.height, cam.width) * 255).astype(np.uint8)


# -- the grid -------------------------------------------------------------------
def test_grid_centres_sit_on_the_lattice_and_round_trip():
    rng = np.random.default_rng(1)
    for _ in range(20):
        voxel = float(rng.choice([35.0, 20.0, 70.0, 12.5]))
        grid = VoxelGrid(tuple(rng.integers(-200, 200, 3)), int(rng.integers(4, 70)), voxel)
        ijk = rng.integers(0, grid.size, (50, 3))
        centres = grid.voxel_to_world(ijk)
        n = centres / voxel - 0.5
        assert np.array_equal(n, np.round(n))  # exactly (lattice index + 0.5) * voxel_mm
        assert np.array_equal(n, np.asarray(grid.origin_index) + ijk)
        all_c = grid.voxel_centres()
        assert all_c.shape == (grid.size,) * 3 + (3,)
        assert np.array_equal(all_c[ijk[:, 0], ijk[:, 1], ijk[:, 2]], centres)
        assert np.array_equal(grid.world_to_voxel(centres), ijk.astype(float))
        q = rng.uniform(-0.5, grid.size - 0.5, (50, 3))
        np.testing.assert_allclose(grid.world_to_voxel(grid.voxel_to_world(q)), q, atol=1e-9)
        assert grid.contains(grid.voxel_to_world(q)).all()
        assert grid.contains(grid.origin_mm)
        assert not grid.contains(grid.origin_mm + grid.extent_mm).any()
        assert not grid.contains(grid.origin_mm - [0.0, 0.0, 1e-6])


def test_around_snaps_to_the_nearest_lattice_grid():
    rng = np.random.default_rng(2)
    for _ in range(200):
        voxel = float(rng.choice([35.0, 50.0, 7.5]))
        size = int(rng.integers(1, 80))
        want = rng.uniform(-5000, 5000, 3)
        grid = VoxelGrid.around(want, size, voxel)
        assert np.all(np.abs(grid.centre_mm - want) <= voxel / 2 + 1e-9)
        corner = grid.origin_mm / voxel
        assert np.array_equal(corner, np.round(corner))
        assert VoxelGrid.around(grid.centre_mm, size, voxel) == grid
    g = VoxelGrid.around([0.0, 0.0, 1000.0])
    assert (g.size, g.voxel_mm, g.extent_mm) == (64, 35.0, 2240.0)
    with pytest.raises(ValueError):
        VoxelGrid((0, 0), 64)
    with pytest.raises(ValueError):
        VoxelGrid((0, 0, 0), 64, -1.0)


# -- the numpy builder ----------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_numpy_builder_equals_per_point_projection(seed):
    rng = np.random.default_rng(seed)
    rig = CameraRig(random_rig(seed).cameras, SMALL_AREA)
    masks = random_masks(rig, rng)
    builder = VolumeBuilder(rig, centre_z_mm=SMALL_Z)
    for _ in range(3):
        grid = builder.grid_around(rng.uniform([-400, -400, 900], [400, 400, 1100]))
        assert builder.in_table(grid)
        vol = builder.build(masks, grid)
        ref = reference_volume(rig, masks, grid)
        assert vol.dtype == np.uint8 and vol.shape == (len(rig), 64, 64, 64)
        assert 0.05 < ref.mean() < 0.95  # a test that could fail
        assert np.array_equal(vol, ref)


def test_other_grid_sizes_and_out_buffer():
    rng = np.random.default_rng(5)
    rig = CameraRig(random_rig(5).cameras, SMALL_AREA)
    masks = random_masks(rig, rng)
    builder = VolumeBuilder(rig, grid_size=24, voxel_mm=60.0, centre_z_mm=SMALL_Z)
    grid = builder.grid_around([100.0, -50.0, 1000.0])
    out = np.full((len(rig), 24, 24, 24), 7, np.uint8)
    assert builder.build(masks, grid, out=out) is out
    assert np.array_equal(out, reference_volume(rig, masks, grid))
    # A grid of another pitch is not in this builder's table but still builds.
    other = VoxelGrid.around([100.0, -50.0, 1000.0], 16, 35.0)
    assert not builder.in_table(other)
    assert np.array_equal(builder.build(masks, other), reference_volume(rig, masks, other))


def test_grids_outside_the_table_fall_back_to_direct_projection():
    rng = np.random.default_rng(6)
    rig = CameraRig(random_rig(6).cameras, SMALL_AREA)
    masks = random_masks(rig, rng)
    builder = VolumeBuilder(rig, centre_z_mm=SMALL_Z)
    inside = builder.grid_around([0.0, 0.0, 1000.0])
    for centre in ([2500.0, 0.0, 1000.0], [0.0, -900.0, 300.0], [0.0, 0.0, 1200.0]):
        grid = builder.grid_around(centre)
        assert not builder.in_table(grid)
        ref = reference_volume(rig, masks, grid)
        assert np.array_equal(builder.build(masks, grid), ref)
        assert np.array_equal(builder.build(masks, grid), ref)  # from the cache of maps
    assert builder.in_table(inside)
    assert np.array_equal(builder.build(masks, inside), reference_volume(rig, masks, inside))


def test_missing_camera_gives_a_zero_channel():
    rng = np.random.default_rng(7)
    rig = CameraRig(random_rig(7, n_cameras=6).cameras, SMALL_AREA)
    masks = random_masks(rig, rng)
    builder = VolumeBuilder(rig, centre_z_mm=SMALL_Z)
    grid = builder.grid_around([0.0, 0.0, 1000.0])
    full = builder.build(masks, grid)
    assert full.reshape(len(rig), -1).any(axis=1).all()
    for missing in (0, 3):
        partial = list(masks)
        partial[missing] = None
        vol = builder.build(partial, grid)
        assert not vol[missing].any()
        keep = [k for k in range(len(rig)) if k != missing]
        assert np.array_equal(vol[keep], full[keep])
    assert not builder.build([None] * len(rig), grid).any()


def test_table_build_reports_progress_and_size():
    rig = CameraRig(standard_studio((480, 270)).cameras, SMALL_AREA)
    builder = VolumeBuilder(rig, centre_z_mm=SMALL_Z)
    calls = []
    assert not builder.prepared
    builder.prepare(lambda done, total: calls.append((done, total)))
    assert builder.prepared
    assert calls and calls[-1][0] == calls[-1][1] and [c[0] for c in calls] == list(range(1, len(calls) + 1))
    nx, ny, nz = builder.box.shape
    assert builder.table_bytes == 8 * nx * ny * nz * 4
    # Every centre over the area at the covered heights is in the table.
    for centre in ([-400, -400, 900], [400, 400, 1100], [400, -400, 1000]):
        assert builder.in_table(builder.grid_around(centre))


def test_silhouettes_are_checked():
    rig = CameraRig(standard_studio((480, 270)).cameras, SMALL_AREA)
    builder = VolumeBuilder(rig, centre_z_mm=SMALL_Z)
    grid = builder.grid_around([0, 0, 1000])
    good = [np.zeros((270, 480), np.uint8)] * 8
    with pytest.raises(ValueError, match="8 silhouettes"):
        builder.build(good[:7], grid)
    with pytest.raises(ValueError, match="shape"):
        builder.build(good[:7] + [np.zeros((480, 270), np.uint8)], grid)


# -- the torch builder -------------------------------------------------------------------
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("seed", range(3))
def test_torch_builder_equals_numpy_builder(seed, device):
    rng = np.random.default_rng(10 + seed)
    # Few cameras: float64 projection of every voxel is slow on a CPU.
    rig = CameraRig(random_rig(10 + seed, n_cameras=4).cameras, SMALL_AREA)
    masks = random_masks(rig, rng)
    masks[1] = None
    mixed = [torch.from_numpy(m) if (m is not None and k % 2) else m for k, m in enumerate(masks)]
    numpy_builder = VolumeBuilder(rig, centre_z_mm=SMALL_Z)
    direct = TorchVolumeBuilder(rig, device)
    table = TorchVolumeBuilder(rig, device, table=True, centre_z_mm=SMALL_Z)
    grids = [numpy_builder.grid_around(c) for c in rng.uniform([-400, -400, 900], [400, 400, 1100], (2, 3))]
    grids.append(numpy_builder.grid_around([1500.0, 0.0, 1000.0]))  # outside the table
    expected = [numpy_builder.build(masks, g) for g in grids]
    assert expected[0][0].any() and not expected[0][1].any()
    for g, e in zip(grids, expected):
        v = direct.build(mixed, g)
        assert v.dtype == torch.uint8 and tuple(v.shape) == e.shape and v.device.type == device
        assert np.array_equal(v.cpu().numpy(), e)
        assert np.array_equal(table.build(mixed, g).cpu().numpy(), e)
    batch = direct.build_batch([mixed] * 2, grids[1:])
    assert np.array_equal(batch.cpu().numpy(), np.stack(expected[1:]))
    batch = table.build_batch([masks, mixed], grids[:2])
    assert np.array_equal(batch.cpu().numpy(), np.stack(expected[:2]))
    assert not direct.build([None] * len(rig), grids[0]).any()


# -- geometry: a rendered sphere ----------------------------------------------------------
@pytest.mark.parametrize("rig_name", ["studio", "random"])
def test_volume_of_a_rendered_sphere(rig_name):
    base = standard_studio((480, 270)) if rig_name == "studio" else random_rig(21).scaled(0.25)
    rig = CameraRig(base.cameras, SMALL_AREA)
    rng = np.random.default_rng(3)
    centre = rng.uniform([-200, -200, 900], [200, 200, 1100])
    radius = 500.0
    masks = [sphere_mask(cam, centre, radius) for cam in rig]
    builder = VolumeBuilder(rig, centre_z_mm=SMALL_Z)
    grid = builder.grid_around(centre)
    vol = builder.build(masks, grid)
    pts = grid.voxel_centres().reshape(-1, 3)
    dist = np.linalg.norm(pts - centre, axis=1)
    for k, cam in enumerate(rig):
        occupied = vol[k].reshape(-1).astype(bool)
        uv, valid = cam.project(pts)
        seen = (valid & (uv[:, 0] >= 0.5) & (uv[:, 0] < cam.width - 1.5)
                & (uv[:, 1] >= 0.5) & (uv[:, 1] < cam.height - 1.5))
        pixel_mm = cam.depth(pts) / cam.K[0, 0]  # one pixel's width at each point's depth
        inside = dist < radius - 2 * pixel_mm
        assert (inside & seen).sum() > 1000
        assert occupied[inside & seen].all()
        # Outside the silhouette's cone (the sphere's tangent cone from the camera) by 3 pixels.
        to_p = pts - cam.centre
        to_s = centre - cam.centre
        cos = to_p @ to_s / (np.linalg.norm(to_p, axis=1) * np.linalg.norm(to_s))
        angle = np.arccos(np.clip(cos, -1, 1))
        cone = np.arcsin(radius / np.linalg.norm(to_s))
        outside = angle > cone + 3 / cam.K[0, 0]
        assert outside.sum() > 1000
        assert not occupied[outside].any()
        # And the channels are not fused: points outside the sphere but inside this cone are set.
        assert occupied[~outside & (dist > radius + 100) & seen].any()


# -- the performer centre -------------------------------------------------------------------
def _cylinder_scene(rig, rng):
    xy = rng.uniform(-1500, 1500, 2)
    radius, height = rng.uniform(180, 300), rng.uniform(1400, 1900)
    masks = [cylinder_mask(cam, xy, radius, 0.0, height) for cam in rig]
    return masks, np.array([xy[0], xy[1], height / 2])


@pytest.mark.parametrize("rig_name", ["studio", "random"])
def test_centre_of_a_cylinder_with_missing_and_noisy_cameras(rig_name):
    rig = standard_studio((480, 270)) if rig_name == "studio" else random_rig(31, n_cameras=8).scaled(0.5)
    finder = CentreFinder(rig)
    rng = np.random.default_rng(4)
    for _ in range(3):
        masks, truth = _cylinder_scene(rig, rng)
        assert np.linalg.norm(finder.find(masks) - truth) < 30
        missing = list(masks)
        missing[int(rng.integers(len(rig)))] = None
        assert np.linalg.norm(finder.find(missing) - truth) < 30
        # Eroded edges and holes everywhere, spurious blobs in two cameras.
        noisy = [cv2.erode(m, np.ones((3, 3), np.uint8)) for m in masks]
        for m in noisy:
            for _ in range(5):
                cv2.circle(m, (int(rng.integers(m.shape[1])), int(rng.integers(m.shape[0]))), 2, 0, -1)
        for k in rng.choice(len(rig), 2, replace=False):
            w, h = rig[k].size
            for _ in range(3):
                at = (int(rng.integers(w)), int(rng.integers(h)))
                cv2.circle(noisy[k], at, int(rng.integers(5, w // 12)), 255, -1)
        assert np.linalg.norm(finder.find(noisy) - truth) < 30
        # Two noisy cameras and one missing: still found.
        noisy[int(rng.integers(len(rig)))] = None
        assert np.linalg.norm(finder.find(noisy) - truth) < 40


@pytest.mark.parametrize("max_misses", [0, 1, 2])
def test_hull_score_is_the_lowest_coverage_once_the_misses_are_dropped(max_misses):
    """The score, voxel by voxel as the rule reads: the cameras that see the
    voxel, their coverages sorted, the lowest after dropping up to
    max_misses of them where at least two stay (shared lowest values
    included); 0 where fewer than two cameras see it."""
    rig = standard_studio((480, 270))
    finder = CentreFinder(rig, max_misses=max_misses)
    rng = np.random.default_rng(9)
    masks, _ = _cylinder_scene(rig, rng)
    masks[1] = cv2.circle(np.zeros((270, 480), np.uint8), (200, 120), 90, 255, -1)  # a camera that disagrees
    for drop in ([], [3], [0, 4, 6], list(range(6)), list(range(7)), list(range(8))):
        views = [None if k in drop else m for k, m in enumerate(masks)]
        score, n_seen = finder.scores(views)
        cov = np.array([finder._coverage(k, m) for k, m in enumerate(views) if m is not None]).reshape(-1, score.size)
        seen = np.array([finder._seen[k] for k, m in enumerate(views) if m is not None]).reshape(-1, score.size)
        expected = np.zeros(score.size, np.uint8)
        for v in range(score.size):
            c = np.sort(cov[seen[:, v] > 0, v])
            if c.size >= 2:
                expected[v] = c[min(max_misses, c.size - 2)]
        np.testing.assert_array_equal(n_seen.reshape(-1), seen.sum(axis=0))
        np.testing.assert_array_equal(score.reshape(-1), expected)


def test_no_performer_means_none():
    rig = standard_studio((480, 270))
    empty = [np.zeros((270, 480), np.uint8) for _ in rig]
    assert find_performer_centre(empty, rig) is None
    assert find_performer_centre([None] * 8, rig) is None
    one_blob = list(empty)
    one_blob[2] = cv2.circle(np.zeros((270, 480), np.uint8), (240, 135), 60, 255, -1)
    assert find_performer_centre(one_blob, rig) is None  # a blob in one camera is no performer


def test_centre_keeps_a_raised_arm_inside_the_volume():
    rig = standard_studio((480, 270))
    torso = [cylinder_mask(cam, (300.0, -200.0), 300.0, 0.0, 1300.0) for cam in rig]
    arm = [cylinder_mask(cam, (300.0, 0.0), 90.0, 1300.0, 2200.0) for cam in rig]
    masks = [np.maximum(a, b) for a, b in zip(torso, arm)]
    plain = CentreFinder(rig, fit_extent_mm=None).find(masks)
    centre = find_performer_centre(masks, rig)
    grid = VoxelGrid.around(centre)
    assert plain[2] < 1000  # the centroid alone sits low ...
    feet_and_hand = np.array([[300.0, -200.0, 20.0], [300.0, 0.0, 2180.0]])
    assert grid.contains(feet_and_hand).all()  # ... the fitted centre keeps both inside
    assert np.linalg.norm(centre[:2] - plain[:2]) < 1
