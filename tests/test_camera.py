import json

import cv2
import numpy as np
import pytest
import torch

from core.camera.model import Camera
from core.camera.rig import CameraRig, random_rig, standard_studio


def _points(rng, n=2000):
    return rng.uniform([-2500, -2500, -100], [2500, 2500, 2500], (n, 3))


@pytest.mark.parametrize("seed", range(6))
def test_numpy_torch_and_opencv_projections_agree(seed):
    rng = np.random.default_rng(seed)
    rig = random_rig(seed)
    pts = _points(rng)
    for cam in rig:
        uv, valid = cam.project(pts)
        ref, _ = cv2.projectPoints(pts, cv2.Rodrigues(cam.R)[0], cam.t, cam.K, cam.dist)
        assert valid.sum() > 100
        assert np.abs(uv - ref[:, 0])[valid].max() < 1e-3
        uv_t, valid_t = cam.project_torch(torch.tensor(pts))
        assert torch.equal(valid_t, torch.tensor(valid))
        assert np.abs(uv_t.numpy() - uv)[valid].max() < 1e-3
        uv32, _ = cam.project_torch(torch.tensor(pts, dtype=torch.float32))
        assert np.abs(uv32.numpy() - uv)[valid].max() < 0.05  # float32 for speed: still sub-pixel


def test_standard_studio_is_totalcapture_like():
    rig = standard_studio()
    assert len(rig) == 8
    centres = np.array([c.centre for c in rig])
    np.testing.assert_allclose(centres[:, 2], 2500)
    np.testing.assert_allclose(np.linalg.norm(centres[:, :2], axis=1), 4500)
    # Every camera sees the area's centre from floor to 2 m and its corners at 1 m;
    # the floor corners nearest a camera may fall below its frame, as in a real studio.
    def in_view(cam, pts):
        uv, valid = cam.project(np.asarray(pts, float))
        return valid & (uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0) & (uv[:, 1] < cam.height)

    corners = [[x, y] for x in (-2000, 2000) for y in (-2000, 2000)]
    for cam in rig:
        assert in_view(cam, [[0, 0, z] for z in (0, 1000, 2000)]).all()
        assert in_view(cam, [[x, y, 1000] for x, y in corners]).all()
    floor_seen = np.array([in_view(cam, [[x, y, 0] for x, y in corners]) for cam in rig])
    assert (floor_seen.sum(0) >= 5).all()


def test_random_rigs_vary_within_bounds():
    counts, heights, dists, widths = [], [], [], set()
    for seed in range(40):
        rig = random_rig(seed)
        counts.append(len(rig))
        for cam in rig:
            c = cam.centre
            heights.append(c[2])
            dists.append(np.hypot(*c[:2]))
            widths.add(cam.width)
            # the area's centre at chest height is in view
            uv, valid = cam.project(np.array([[0.0, 0.0, 1000.0]]))
            assert valid[0] and 0 <= uv[0, 0] < cam.width and 0 <= uv[0, 1] < cam.height
    assert min(counts) == 4 and max(counts) == 12
    assert 1000 <= min(heights) and max(heights) <= 3500 and np.ptp(heights) > 2000
    assert 3500 <= min(dists) and max(dists) <= 7000
    assert len(widths) >= 4
    assert random_rig(7)[0].to_dict() == random_rig(7)[0].to_dict()


def test_pixel_rays_pass_through_their_pixels():
    rng = np.random.default_rng(0)
    cam = random_rig(2)[0]
    uv = rng.uniform([0, 0], cam.size, (200, 2))
    rays = cam.pixel_rays(uv)
    pts = cam.centre + rays * rng.uniform(1000, 6000, (200, 1))
    back, valid = cam.project(pts)
    assert valid.all()
    assert np.abs(back - uv).max() < 1e-3


def test_scaled_camera_keeps_geometry():
    cam = standard_studio()[0]
    small = cam.scaled(0.25)
    assert small.size == (480, 270)
    pts = _points(np.random.default_rng(1), 200)
    uv, valid = cam.project(pts)
    uv_s, _ = small.project(pts)
    np.testing.assert_allclose((uv_s + 0.5)[valid], ((uv + 0.5) * 0.25)[valid], atol=1e-6)


def test_rig_round_trips_and_rejects_bad_files(tmp_path):
    rig = random_rig(5)
    path = tmp_path / "rig.json"
    rig.save(path)
    back = CameraRig.load(path)
    assert back.to_dict() == rig.to_dict()
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        CameraRig.load(path)
    path.write_text(json.dumps({"format": "fusecap-rig", "version": 1, "area_mm": [0, 1, 0, 1],
                                "cameras": [{"K": [[1, 0, 0]]}]}))
    with pytest.raises(ValueError, match="malformed"):
        CameraRig.load(path)
    with pytest.raises(ValueError, match="not a rotation"):
        Camera(np.eye(3), [], np.ones((3, 3)), np.zeros(3), (10, 10))


def test_random_rig_lenses_map_every_pixel_to_one_ray():
    for seed in range(25):
        for cam in random_rig(seed):
            w, h = cam.size
            uv = np.array([[x, y] for x in np.linspace(-0.5, w - 0.5, 7) for y in np.linspace(-0.5, h - 0.5, 7)])
            back, valid = cam.project(cam.centre + cam.pixel_rays(uv) * 4000.0)
            assert valid.all()
            assert np.abs(back - uv).max() < 0.05, (seed, cam.name)
