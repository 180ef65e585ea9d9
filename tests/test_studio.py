"""The simulated studio end to end: performer, silhouettes, IMUs, devices,
synchronised bundles and volumes, checked against its own ground truth."""

import numpy as np
import pytest

from core import skeleton as sk
from core.capture.lockstep import LockstepCapture
from core.registry import registry
from core.rotations import angle_deg, from_wxyz
from core.sim.body import body_primitives
from core.sim.imu import bone_orientations
from core.sim.imu_config import ImuConfig
from core.sim.studio import SimulatedStudio, StudioConfig
from core.volume.builder import VolumeBuilder
from core.volume.centre import CentreFinder


@pytest.fixture(scope="module")
def studio():
    return SimulatedStudio(StudioConfig(seed=11))


def test_same_seed_same_frames_other_seed_other_frames(studio):
    again = SimulatedStudio(StudioConfig(seed=11))
    other = SimulatedStudio(StudioConfig(seed=12))
    for t in (0.0, 1.3, 7.9):
        a, b, c = studio.silhouettes(t), again.silhouettes(t), other.silhouettes(t)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
        assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    s1, s2 = studio.imu_samples(2.0, 3.0), again.imu_samples(2.0, 3.0)
    assert np.array_equal(s1.quat_wxyz, s2.quat_wxyz) and np.array_equal(s1.t_s, s2.t_s)


def test_every_body_point_is_occupied_where_its_camera_sees_it(studio):
    rng = np.random.default_rng(4)
    builder = VolumeBuilder(studio.rig)
    finder = CentreFinder(studio.rig)
    for t in rng.uniform(0, 30, 3):
        masks = studio.silhouettes(float(t))
        poses = studio.poses(np.array([t]))
        body = body_primitives(studio.subject, poses.positions_mm[0], poses.rotations[0])
        centre = finder.find(masks)
        grid = builder.grid_around(centre)
        vol = builder.build(masks, grid)
        # sample points inside the body, keep those at voxel centres' resolution
        pts = body.sample_interior(400, rng)
        idx = np.floor(grid.world_to_voxel(pts)).astype(int)
        inside_grid = ((idx >= 0) & (idx < grid.size)).all(1)
        assert inside_grid.mean() > 0.99  # the grid holds the performer
        centres = grid.voxel_to_world(idx[inside_grid])
        # The voxel centre is in the body, at least 20 mm deep (more than half a
        # pixel's footprint at 7 m for these 480x270 cameras), so the ray through
        # the centre of the pixel it lands on must hit the body too.
        offsets = 20.0 * np.array([[x, y, z] for x in (-1, 0, 1) for y in (-1, 0, 1) for z in (-1, 0, 1)])
        in_body = np.all([body.contains(centres + o) for o in offsets], axis=0)
        checked = 0
        for k, cam in enumerate(studio.rig):
            uv, valid = cam.project(centres)
            col, row = np.floor(uv + 0.5).T.astype(int)
            seen = valid & (col >= 0) & (col < cam.width) & (row >= 0) & (row < cam.height)
            sel = in_body & seen
            occ = vol[k][tuple(idx[inside_grid][sel].T)]
            assert occ.all(), f"camera {k}: {np.count_nonzero(occ == 0)} body voxels empty"
            checked += sel.sum()
        assert checked > 1000
        # every channel is that camera's silhouette cone: sampled voxels are 1
        # exactly when their centre's pixel is in the silhouette
        ijk = rng.integers(0, grid.size, (3000, 3))
        pts = grid.voxel_to_world(ijk)
        for k, cam in enumerate(studio.rig):
            uv, valid = cam.project(pts)
            col, row = np.floor(uv + 0.5).T.astype(int)
            seen = valid & (col >= 0) & (col < cam.width) & (row >= 0) & (row < cam.height)
            expected = np.zeros(len(pts), np.uint8)
            expected[seen] = masks[k][row[seen], col[seen]]
            assert np.array_equal(vol[k][tuple(ijk.T)], expected)
            assert 0.005 < vol[k].mean() < 0.3  # a cone through the cube, not empty, not full


def test_imus_through_devices_recover_bones_after_offsets_are_removed():
    config = StudioConfig(seed=5, imu=ImuConfig(noise_deg=1.0, drift_deg_per_min=0.0, rate_hz=100))
    devices = registry().studios["simulated"](config, realtime=False)
    capture = LockstepCapture(devices.cameras, devices.imus)
    capture.open()
    errors = []
    imus = devices.studio.imus
    capture.next_bundle()  # at t = 0 no sensor has sampled yet
    for _ in range(12):
        bundle = capture.next_bundle()
        assert len(bundle.silhouettes) == 8 and all(m is not None for m in bundle.silhouettes)
        # One 100 Hz period plus 1 ms jitter.
        assert bundle.imu_present.all() and (bundle.imu_age_s <= 0.011 + 1e-9).all()
        truth = devices.studio.truth(bundle.t_s)
        heading = np.array([imus.heading_at(k, bundle.t_s) for k in range(sk.NUM_IMUS)])
        recovered = bone_orientations(bundle.imu_wxyz, np.arange(sk.NUM_IMUS), imus.wear_offsets, heading)
        errors.append(angle_deg(recovered, from_wxyz(truth.bone_wxyz)))
    capture.close()
    errors = np.concatenate(errors)
    # 1 deg per axis of noise, plus up to 10 ms of motion between the last sample and the frame
    assert np.median(errors) < 4.0 and errors.max() < 25.0
    assert devices.cameras[0].dropped == 0


def test_camera_off_and_partial_view():
    st = SimulatedStudio(StudioConfig(seed=2, cameras_off=(3,), partial_cameras=(5,)))
    full = SimulatedStudio(StudioConfig(seed=2))
    for t in (0.5, 4.0):
        masks, ref = st.silhouettes(t), full.silhouettes(t)
        assert masks[3] is None
        kept = masks[5].sum() / ref[5].sum()
        assert 0.25 <= kept <= 0.75
        assert np.array_equal(masks[0], ref[0])
    devices = registry().studios["simulated"](StudioConfig(seed=2, cameras_off=(3,)), realtime=False)
    capture = LockstepCapture(devices.cameras, devices.imus)
    capture.open()
    bundle = capture.next_bundle()
    assert bundle.silhouettes[3] is None and sum(m is not None for m in bundle.silhouettes) == 7
    capture.close()


def test_the_real_time_imu_hub_forwards_packets_and_loses_no_sample():
    """A real-time hub answers in packets of IMU_PACKET_S (a read sooner gets
    nothing), and its packets together hold exactly the samples one read of
    the whole span gets: batching moves no sample and drops none."""
    from core.clock import SimulatedClock
    from plugins.simulated.sources import IMU_PACKET_S, Epoch, SimulatedImuHub

    studio = SimulatedStudio(StudioConfig(seed=3))
    clocks = [SimulatedClock(100.0), SimulatedClock(100.0)]
    packets, whole = (SimulatedImuHub(studio, Epoch(c), packet_s=p) for c, p in zip(clocks, (IMU_PACKET_S, 0.0)))
    packets.open()
    whole.open()
    got, sizes = [], []
    for _ in range(60):  # polled every 10 ms, as the IMU thread does, for 0.6 s
        clocks[0].advance(0.01)
        batch = packets.read(0.0)
        sizes.append(len(batch))
        got += batch
    clocks[1].advance(0.6)
    ref = whole.read(0.0)
    assert 0 < len(ref) == len(got)
    assert [(s.sensor_id, s.t_s) for s in got] == [(s.sensor_id, s.t_s) for s in ref]
    np.testing.assert_array_equal(np.array([s.quat_wxyz for s in got]), np.array([s.quat_wxyz for s in ref]))
    # Polled every 10 ms, a packet comes once its period has passed: that many reads apart at least.
    nonempty = [i for i, n in enumerate(sizes) if n]
    assert np.diff(nonempty).min() >= round(IMU_PACKET_S / 0.01) and len(nonempty) <= 0.6 / IMU_PACKET_S + 1
