"""The live 3D view: what it draws lands on the right pixels, its toggles change
the picture, its timer coalesces updates and stops on shutdown."""

import numpy as np
import pytest

from core import skeleton as sk
from core.camera.rig import standard_studio
from core.volume.grid import VoxelGrid

pytestmark = pytest.mark.gui

SIZE = (480, 360)


@pytest.fixture(scope="module")
def performer_mm():
    from core.sim.studio import SimulatedStudio, StudioConfig

    return SimulatedStudio(StudioConfig()).truth(1.0).joints_mm


@pytest.fixture
def view(qtbot):
    from app.view3d import LiveView3D

    v = LiveView3D()
    qtbot.addWidget(v)
    v.resize(*SIZE)
    v.show()
    qtbot.waitExposed(v)
    yield v
    v.shutdown()


def aim(view, target_mm, azimuth=0.0, elevation=10.0, scale_mm=2600.0):
    """Point the turntable at a target; a fixed camera makes the pixel checks exact."""
    view.set_follow(False)
    view.flush()
    cam = view.camera
    cam.center = tuple(np.asarray(target_mm, float))
    cam.azimuth, cam.elevation, cam.scale_factor = azimuth, elevation, scale_mm


def pixels(view, points_mm):
    return view.world_to_canvas_px(points_mm) * view.canvas.pixel_scale


def colour_mask(img, rgba, tol=30):
    target = np.round(np.asarray(rgba[:3]) * 255)
    return (np.abs(img[..., :3].astype(int) - target) <= tol).all(-1)


def distance_to_segments(xy, segs):
    """Distance (N,) from pixel points xy (N, 2) to the nearest 2D segment (S, 2, 2)."""
    a, b = segs[None, :, 0], segs[None, :, 1]
    ab = b - a
    t = np.clip(((xy[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0, 1)
    return np.linalg.norm(xy[:, None] - (a + t[..., None] * ab), axis=-1).min(1)


def changed(a, b):
    return (a[..., :3].astype(int) != b[..., :3].astype(int)).any(-1)


def rows_cols(mask):
    r, c = np.nonzero(mask)
    return np.column_stack([c, r]).astype(float)  # (x, y) pixel coordinates


# -- pure geometry ------------------------------------------------------------
def test_frustum_apex_is_the_camera_centre_and_points_along_the_optical_axis():
    from core.view_geometry import frustum_segments

    for cam in standard_studio():
        seg = frustum_segments(cam, depth_mm=300.0).reshape(-1, 2, 3)
        np.testing.assert_allclose(seg[:4, 0], np.tile(cam.centre, (4, 1)), atol=1e-3)
        base_mid = seg[:4, 1].mean(0)
        axis = (base_mid - cam.centre) / np.linalg.norm(base_mid - cam.centre)
        np.testing.assert_allclose(axis, cam.R[2], atol=1e-3)  # optical axis in world
        np.testing.assert_allclose(cam.depth(seg[:4, 1]), 300.0, atol=1e-2)


def test_skeleton_geometry_hides_nan_rows(rng, performer_mm):
    from core.view_geometry import skeleton_geometry

    joints = performer_mm.copy()
    hidden = rng.choice(sk.NUM_JOINTS, size=3, replace=False)
    joints[hidden] = np.nan
    pos, colours, segs, seg_colours = skeleton_geometry(joints)
    assert len(pos) == sk.NUM_JOINTS - 3 and np.isfinite(pos).all()
    kept = [b for b in sk.BONES if b[0] not in hidden and b[1] not in hidden]
    assert len(segs) == 2 * len(kept) and np.isfinite(segs).all()
    assert len(colours) == len(pos) and len(seg_colours) == len(segs)


def test_volume_points_hull_channels_and_thinning(rng):
    from core.view_geometry import MAX_VOLUME_POINTS, volume_points

    grid = VoxelGrid.around(rng.uniform(-1000, 1000, 3) + (0, 0, 1000), size=32)
    vol = np.zeros((4, 32, 32, 32), np.uint8)
    a, b = rng.integers(4, 12, 3), rng.integers(16, 26, 3)
    vol[:, a[0]:b[0], a[1]:b[1], a[2]:b[2]] = 1  # a box every camera sees
    vol[1, 28:31, 28:31, 28:31] = 1              # only camera 1 sees this
    vol[3] = 0                                   # camera 3 is off
    hull, stride = volume_points(grid, vol, None)
    inside = (b - a)
    assert stride == 1 and len(hull) == inside.prod() - (inside - 2).prod()  # the box's shell
    lo, hi = grid.voxel_to_world(a), grid.voxel_to_world(b - 1)
    assert (hull >= lo - 1e-3).all() and (hull <= hi + 1e-3).all()
    one, _ = volume_points(grid, vol, 1)
    assert len(one) == len(hull) + 26  # the 3x3x3 cube's shell too
    assert len(volume_points(grid, vol, 3)[0]) == 0 and len(volume_points(grid, vol, 9)[0]) == 0
    full = np.ones((1, 64, 64, 64), np.uint8)
    pts, stride = volume_points(VoxelGrid((0, 0, 0)), full, None)
    assert stride == 2 and len(pts) <= MAX_VOLUME_POINTS and len(pts) == -(-(64**3 - 62**3) // 2)


# -- pixels -------------------------------------------------------------------
def test_skeleton_is_drawn_where_the_performer_projects_in_side_colours(view, performer_mm):
    from core.view_geometry import LEFT_COLOUR, RIGHT_COLOUR

    view.set_rig(standard_studio())
    aim(view, performer_mm[sk.ROOT])
    empty = view.render()
    view.set_skeleton(performer_mm)
    img = view.render()
    assert img.shape[:2] == (SIZE[1], SIZE[0])

    diff = changed(empty, img)
    joints_px = pixels(view, performer_mm)
    hips_px = joints_px[sk.ROOT]
    assert diff.sum() > 300
    xy = rows_cols(diff)
    assert np.linalg.norm(xy - hips_px, axis=1).min() < 4  # something drawn at the Hips
    lo, hi = joints_px.min(0) - 8, joints_px.max(0) + 8
    assert ((xy >= lo) & (xy <= hi)).all(), "pixels changed outside the performer's image"

    # Blue pixels lie on left bones, red on right ones, and both sides show.
    bones = np.array(sk.BONES)
    for colour, side in ((LEFT_COLOUR, sk.is_left), (RIGHT_COLOUR, sk.is_right)):
        mine = np.array([side(c) for _, c in bones])
        segs = joints_px[bones[mine]]
        hits = rows_cols(colour_mask(img, colour))
        assert len(hits) > 50
        assert np.percentile(distance_to_segments(hits, segs), 99) < 6
        others = joints_px[bones[~mine]]
        assert np.median(distance_to_segments(hits, others)) > np.median(distance_to_segments(hits, segs))


def test_stage_toggle_switches_between_the_two_joint_sets(view, performer_mm, rng):
    from core.view_geometry import RIGHT_COLOUR

    shift = np.r_[rng.uniform(300, 500) * rng.choice([-1, 1]), 0.0, 0.0]
    stage1 = performer_mm + shift
    aim(view, performer_mm[sk.ROOT] + shift / 2, scale_mm=3200.0)
    view.set_skeleton(performer_mm, stage1, np.ones(sk.NUM_JOINTS))
    assert view.stage == 2
    img2 = view.render()
    view.set_stage(1)
    img1 = view.render()
    assert changed(img1, img2).sum() > 300
    for img, joints in ((img2, performer_mm), (img1, stage1)):
        red = rows_cols(colour_mask(img, RIGHT_COLOUR))
        right_bones = np.array([b for b in sk.BONES if sk.is_right(b[1])])
        assert len(red) > 50
        assert np.percentile(distance_to_segments(red, pixels(view, joints)[right_bones]), 99) < 6
    view.set_stage(2)
    np.testing.assert_array_equal(view.render(), img2)
    with pytest.raises(ValueError):
        view.set_stage(3)


def test_nan_skeleton_and_clear_draw_nothing(view, performer_mm):
    view.set_rig(standard_studio())
    aim(view, performer_mm[sk.ROOT])
    empty = view.render()
    view.set_skeleton(np.full((sk.NUM_JOINTS, 3), np.nan), np.full((sk.NUM_JOINTS, 3), np.nan))
    view.set_imu_bones(np.full((13, 3), np.nan), np.full((13, 3), np.nan))
    np.testing.assert_array_equal(view.render(), empty)
    view.set_skeleton(performer_mm)
    assert changed(view.render(), empty).any()
    view.clear()
    np.testing.assert_array_equal(view.render(), empty)


def test_volume_shows_the_hull_and_a_single_camera_channel(view, rng):
    centre = np.r_[rng.uniform(-800, 800, 2), 1000.0]
    grid = VoxelGrid.around(centre)
    c = grid.voxel_centres()
    radius = rng.uniform(200, 350)
    ball = np.linalg.norm(c - centre, axis=-1) < radius
    side = centre + (0.0, 0.0, 0.0)
    side[0] += 700.0
    extra = np.linalg.norm(c - side, axis=-1) < 150
    vol = np.repeat(ball[None], 8, axis=0).astype(np.uint8)
    vol[2] |= extra
    vol[5] = 0  # a camera that is off must not empty the hull
    aim(view, centre + (350.0, 0.0, 0.0), scale_mm=3000.0)
    empty = view.render()

    view.set_volume(grid, vol)
    hull = view.render()
    xy = rows_cols(changed(empty, hull))
    ball_px, side_px = pixels(view, centre[None])[0], pixels(view, side[None])[0]
    r_px = np.linalg.norm(pixels(view, (centre + (0.0, 0.0, radius))[None])[0] - ball_px)
    assert len(xy) > 0.5 * np.pi * r_px**2, "the hull should cover most of the ball's disc"
    assert np.linalg.norm(xy - ball_px, axis=1).max() < r_px + 8
    assert view.volume_point_count > 0

    view.set_volume_channel(2)
    one = view.render()
    xy = rows_cols(changed(hull, one))
    assert len(xy) > 50 and np.linalg.norm(xy - side_px, axis=1).max() < 0.5 * np.linalg.norm(side_px - ball_px)
    view.set_volume_channel(5)
    np.testing.assert_array_equal(view.render(), empty)
    view.set_volume(None, None)
    np.testing.assert_array_equal(view.render(), empty)


def test_imu_bones_draw_from_their_start_joints(view, performer_mm, rng):
    from app.view3d import IMU_ARROW_MM, IMU_COLOUR

    origins = performer_mm[[b.start for b in sk.IMU_BONES]]
    dirs = rng.normal(size=(13, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    dirs[4] = np.nan
    aim(view, performer_mm[sk.ROOT])
    view.set_imu_bones(origins, dirs)
    img = view.render()
    hits = rows_cols(colour_mask(img, IMU_COLOUR))
    ok = np.isfinite(dirs).all(1)
    segs = pixels(view, np.concatenate([origins[ok], origins[ok] + IMU_ARROW_MM * dirs[ok]]))
    segs = np.stack([segs[: ok.sum()], segs[ok.sum():]], axis=1)
    assert len(hits) > 30 and np.percentile(distance_to_segments(hits, segs), 99) < 7


# -- timer, follow, shutdown ----------------------------------------------------
def test_updates_coalesce_on_the_timer_and_shutdown_stops_it(view, qtbot, performer_mm, monkeypatch):
    from PySide6.QtCore import QTimer

    assert view._timer.isActive()
    qtbot.waitUntil(lambda: view.frame_count > 0, timeout=3000)
    rebuilt = []
    original = view._update_skeleton
    monkeypatch.setattr(view, "_update_skeleton", lambda: (rebuilt.append(1), original()))
    drawn = view.frame_count
    for i in range(40):
        view.set_skeleton(performer_mm + i)
    assert rebuilt == []  # set_* only stores
    qtbot.waitUntil(lambda: len(rebuilt) > 0, timeout=3000)
    qtbot.wait(150)  # several more ticks: nothing new to rebuild
    assert len(rebuilt) == 1
    qtbot.waitUntil(lambda: view.frame_count > drawn, timeout=3000)

    view.shutdown()
    assert not view._timer.isActive()
    assert not [t for t in view.findChildren(QTimer) if t.isActive()]
    view.set_skeleton(performer_mm)  # accepted and ignored after shutdown
    view.flush()
    view.shutdown()


def test_follow_eases_the_orbit_centre_onto_the_hips(view, qtbot, performer_mm, rng):
    angle, reach = rng.uniform(0, 2 * np.pi), rng.uniform(1000, 1800)
    joints = performer_mm - performer_mm[sk.ROOT] + (reach * np.cos(angle), reach * np.sin(angle), 950.0)
    hips = joints[sk.ROOT]
    view.set_skeleton(joints)
    qtbot.wait(100)
    start = view.camera_centre_mm
    assert np.linalg.norm(start - hips) > 300  # not following: the view stays put

    view.set_follow(True)
    gaps = [np.linalg.norm(start - hips)]
    for _ in range(5):
        view.flush()
        gaps.append(np.linalg.norm(view.camera_centre_mm - hips))
    assert all(b < a for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[1] > 0.5 * gaps[0]  # smooth, not a jump
    qtbot.waitUntil(lambda: np.linalg.norm(view.camera_centre_mm - hips) < 20, timeout=5000)

    view.set_follow(False)
    moved = joints + (500.0, 0.0, 0.0)
    view.set_skeleton(moved)
    qtbot.wait(150)
    assert np.linalg.norm(view.camera_centre_mm - hips) < 20


@pytest.fixture(scope="module")
def posed_performer():
    """A simulated performer mid-motion: (offsets, joints (J, 3), global rotations (J, 3, 3))."""
    from core.sim.motion import Performer, ProceduralMotion
    from core.sim.subject import Subject

    s = Subject.from_seed(7)
    p = Performer(s, ProceduralMotion(7)).poses_at(np.array([4.0]))
    return s.offsets_mm, p.positions_mm[0], p.rotations[0]


def test_character_is_drawn_shaded_over_the_performer(view, posed_performer):
    offsets, joints, rot = posed_performer
    view.set_layer_visible("skeleton", False)
    aim(view, joints[sk.ROOT], azimuth=20.0, scale_mm=2400.0)
    empty = view.render()
    view.set_body(offsets, joints, rot)
    img = view.render()
    body = view.body_vertices
    assert body.shape == (1229, 3)
    # The body covers the pixels of its own vertices and nothing far outside them.
    diff = changed(empty, img)
    px = pixels(view, body)
    lo, hi = px.min(0) - 3, px.max(0) + 3
    xy = rows_cols(diff)
    assert ((xy >= lo) & (xy <= hi)).all()
    inside = np.clip(np.round(px).astype(int), 0, [SIZE[0] - 1, SIZE[1] - 1])
    near = diff.copy()  # vertices on the outline round either side of it: one pixel of slack
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        near |= np.roll(diff, (dy, dx), (0, 1))
    covered = near[inside[:, 1], inside[:, 0]].mean()
    print(f"body vertices on drawn pixels: {covered:.3f}")
    assert covered > 0.97
    # Skinned by the solved skeleton: every hand vertex lies near the hand it follows.
    c = view.character
    hand = c.weights.argmax(1) == sk.JOINT_INDEX["LeftHand"]
    assert np.linalg.norm(body[hand] - joints[sk.JOINT_INDEX["LeftHand"]], axis=1).max() < 220
    # Shaded: faces turned to the light are brighter than faces turned away.
    grey = img[diff][:, :3].astype(float).mean(1)
    assert grey.max() - grey.min() > 80
    # Hidden and shown again: the same picture.
    view.set_layer_visible("body", False)
    np.testing.assert_array_equal(view.render(), empty)
    view.set_layer_visible("body", True)
    np.testing.assert_array_equal(view.render(), img)
    view.set_body(None)
    np.testing.assert_array_equal(view.render(), empty)


def test_a_moving_character_draws_as_a_fresh_view_draws_its_pose(view, qtbot, rng):
    """Frame after frame only the body's vertex and normal buffers are
    refilled (vispy's set_data recompiles the shaders): each pose must still
    come out exactly as a view that never drew the earlier ones draws it,
    also after a refit to another performer's skeleton."""
    from app.view3d import LiveView3D
    from core.sim.motion import Performer, ProceduralMotion
    from core.sim.subject import Subject

    seed = int(rng.integers(1000))
    subjects = [Subject.from_seed(seed), Subject.from_seed(seed + 1)]
    poses = [(s, Performer(s, ProceduralMotion(seed)).poses_at(np.array([t]))) for s, t in
             ((subjects[0], 3.0), (subjects[0], 3.4), (subjects[1], 3.8))]
    centre = poses[0][1].positions_mm[0, sk.ROOT]

    def drawn(v, subject, p):
        v.set_layer_visible("skeleton", False)
        aim(v, centre, azimuth=35.0, scale_mm=3000.0)
        v.set_body(subject.offsets_mm, p.positions_mm[0], p.rotations[0])
        return v.render()

    before = None
    for subject, p in poses:
        img = drawn(view, subject, p)
        fresh = LiveView3D()
        qtbot.addWidget(fresh)
        fresh.resize(*SIZE)
        fresh.show()
        qtbot.waitExposed(fresh)
        try:
            np.testing.assert_array_equal(img, drawn(fresh, subject, p))
        finally:
            fresh.shutdown()
        if before is not None:
            assert changed(before, img).sum() > 200  # the body moved on screen
        before = img


def test_overlays_toggle_one_by_one(view, posed_performer):
    offsets, joints, rot = posed_performer
    view.set_rig(standard_studio())
    aim(view, joints[sk.ROOT], scale_mm=9000.0)
    view.set_body(offsets, joints, rot)
    view.set_skeleton(joints)
    full = view.render()
    for layer in ("cameras", "skeleton", "body"):
        view.set_layer_visible(layer, False)
        assert not view.layer_visible(layer)
        less = view.render()
        assert changed(full, less).sum() > 50, layer
        view.set_layer_visible(layer, True)
        np.testing.assert_array_equal(view.render(), full)
    with pytest.raises(ValueError, match="layers are body, skeleton, volume, cameras"):
        view.set_layer_visible("floor", False)
    # A skeleton still forming (a bone of zero length) draws no body rather than failing.
    bad = offsets.copy()
    bad[sk.JOINT_INDEX["LeftLeg"]] = 0.0
    view.set_skeleton(None)
    view.set_layer_visible("cameras", False)
    view.set_body(None)
    bare = view.render()
    view.set_body(bad, joints, rot)
    np.testing.assert_array_equal(view.render(), bare)
    view.set_body(offsets, joints, rot)
    assert changed(view.render(), bare).sum() > 300


def test_the_window_shows_the_canvas_picture_and_passes_the_mouse_on(view, qtbot, posed_performer):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QImage, QWheelEvent
    from PySide6.QtOpenGLWidgets import QOpenGLWidget

    offsets, joints, rotations = posed_performer
    aim(view, joints[sk.ROOT], azimuth=30.0)
    view.set_body(offsets, joints, rotations)
    view.set_skeleton(joints)
    # No GL widget is part of the view's window (Qt composes it raster-only): the canvas's is a
    # window of its own, never on screen.
    assert not view.window().findChildren(QOpenGLWidget)
    assert view.canvas.native.window() is view.canvas.native and not view._picture.isHidden()
    drawn = view.frame_count
    qtbot.waitUntil(lambda: view.frame_count > drawn, timeout=3000)
    qtbot.wait(100)
    shown = view._picture.grab().toImage().convertToFormat(QImage.Format.Format_RGBA8888)
    assert (shown.width(), shown.height()) == SIZE
    on_screen = np.frombuffer(shown.constBits(), np.uint8).reshape(SIZE[1], SIZE[0], 4)[..., :3]
    rendered = view.render()[..., :3]
    body = colour_mask(rendered, (0.62, 0.66, 0.72), tol=80) & ~colour_mask(rendered, (0.10, 0.10, 0.12), tol=8)
    assert body.sum() > 3100, body.sum()  # measured 4107
    print(f"body pixels {body.sum()}")
    # The same picture as an off-screen render of the same view (within the display's colour depth).
    differ = (np.abs(on_screen.astype(int) - rendered).max(-1) > 8).mean()
    print(f"pixels that differ {differ:.4f}")
    assert differ < 0.0045, differ  # measured 0.0034 (a 16-bit virtual display)

    # A drag on the picture turns the view; the wheel zooms it.
    azimuth, scale = view.camera.azimuth, view.camera.scale_factor
    qtbot.mousePress(view._picture, Qt.MouseButton.LeftButton, pos=QPoint(200, 180))
    for x in range(210, 300, 10):
        qtbot.mouseMove(view._picture, QPoint(x, 180))
    qtbot.mouseRelease(view._picture, Qt.MouseButton.LeftButton, pos=QPoint(300, 180))
    # vispy's turntable turns half a degree a pixel: the drag ended 90 px from where it began. The
    # moves came faster than vispy takes them (one per 10 ms): the picture holds the newest and hands
    # it on at the tick or, as here, before the release, so the view ends where the pointer did.
    assert 44.0 < abs(view.camera.azimuth - azimuth) < 46.0, (azimuth, view.camera.azimuth)
    # Mid-drag the newest move reaches the camera at the next tick of the view's timer.
    azimuth = view.camera.azimuth
    qtbot.mousePress(view._picture, Qt.MouseButton.LeftButton, pos=QPoint(200, 180))
    for x in (205, 210, 220):
        qtbot.mouseMove(view._picture, QPoint(x, 180))
    qtbot.waitUntil(lambda: abs(view.camera.azimuth - azimuth) > 1.0, timeout=1000)
    assert 9.5 < abs(view.camera.azimuth - azimuth) < 10.5, (azimuth, view.camera.azimuth)
    qtbot.mouseRelease(view._picture, Qt.MouseButton.LeftButton, pos=QPoint(220, 180))
    pos = QPointF(240, 180)
    wheel = QWheelEvent(pos, view._picture.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    view._picture.wheelEvent(wheel)
    assert view.camera.scale_factor == pytest.approx(scale / 1.1, rel=1e-3)  # one notch: 1.1x closer


def test_a_view_deleted_without_shutdown_takes_its_canvas_widget_along(qtbot):
    import shiboken6

    from app.view3d import LiveView3D

    v = LiveView3D()
    v.show()
    qtbot.waitExposed(v)
    native = v.canvas.native
    v.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(native), timeout=3000)
