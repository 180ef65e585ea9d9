"""Calibration from board views alone: the one shape of views, lenses started
per camera and refined with the rig, lens options, and a floor that never
wastes the adjustment. Views are rendered from a calibration scene
(core.sim.calibration_scene: 4 cameras of 1280x720 on a half circle, a 7 x 5
board of 80 mm squares walked through 30 positions, the first on the floor;
scripts/bench_camera_calibration.py runs the full 40 positions, many draws)."""

from __future__ import annotations

import numpy as np
import pytest

from core.calibration.board import BoardDetector, Detection
from core.calibration.bundle import HOLD, LensFreedom
from core.calibration.extrinsics import calibrate_cameras
from core.calibration.intrinsics import CalibrationError, initial_lens
from core.calibration.views import BoardViews, ViewsError
from core.sim.calibration_scene import draw_scene, rig_errors, scene_images

SCENE_SEED = 5


@pytest.fixture(scope="module")
def scene_views():
    scene = draw_scene(SCENE_SEED, moments=30)
    det = BoardDetector(scene.board)
    views = BoardViews(tuple(scene.names), tuple(c.size for c in scene.rig))
    for m, row in scene_images(scene, SCENE_SEED + 1):
        views.add([det.detect(im) for im in row], scene.frame_name(m))
    return scene, views


def test_views_are_one_table_of_moments_by_named_cameras():
    a = Detection(np.arange(6), np.zeros((6, 2)), (640, 480))
    b = Detection(np.arange(8), np.zeros((8, 2)), (1280, 720))
    views = BoardViews(("left", "right"), ((640, 480), (1280, 720)))
    views.add([a, b], "0001.png")
    views.add([None, b])
    assert len(views) == 2 and views.labels == ["0001.png", "moment 2"]
    assert views.column(1) == [b, b] and views.counts() == [1, 2] and views.shared() == 1
    assert views.index("right") == 1
    with pytest.raises(ViewsError, match="no camera named 'middle'"):
        views.index("middle")
    with pytest.raises(ViewsError, match="camera right's view is 640x480, its other views 1280x720"):
        views.add([a, a], "0003.png")
    with pytest.raises(ViewsError, match="1 views for 2 cameras"):
        views.add([a])
    with pytest.raises(ViewsError, match="names must differ"):
        BoardViews(("x", "x"), ((1, 1), (1, 1)))
    # Views taken one camera at a time: a moment each, seen by that camera only.
    cols = BoardViews.from_columns(("left", "right"), ((640, 480), (1280, 720)), [[a, None, a], [b]])
    assert len(cols) == 3 and cols.counts() == [2, 1] and cols.shared() == 0
    assert cols.labels == ["left view 1", "left view 3", "right view 1"]
    with pytest.raises(ViewsError, match="cannot join"):
        cols.extend(BoardViews(("a", "b"), ((640, 480), (1280, 720))))


def test_lenses_refined_with_the_rig_reach_the_targets(scene_views):
    scene, views = scene_views
    res = calibrate_cameras(views, scene.board, floor_moment=0)
    e = rig_errors(scene.rig, res.rig)
    held = calibrate_cameras(views, scene.board, floor_moment=0, freedom=HOLD)
    h = rig_errors(scene.rig, held.rig)
    report = (f"refined: centres {e.centre_mm.round(1)} mm, focal {e.focal_pct.round(2)} %, "
              f"pp {e.principal_px.round(1)} px; held: centres {h.centre_mm.round(1)}, "
              f"focal {h.focal_pct.round(2)}, pp {h.principal_px.round(1)}")
    print(report)
    assert res.names == ["cam1", "cam2", "cam3", "cam4"] and res.floor_aligned and res.world == "floor"
    assert res.lens_start == ("full", "simple", "full", "simple")
    # Measured (seed 5): refined, centres 0.9-2.1 mm (mean 1.7), focal 0.02-0.16 %, principal points 1.3-2.4 px;
    # the same start held: centres 6-32 mm, focal up to 2 %, principal points up to 35 px.
    assert e.centre_mm.mean() < 2.2 and e.centre_mm.max() < 2.8, report
    assert e.focal_pct.max() < 0.21 and e.principal_px.max() < 3.2, report
    assert h.centre_mm.mean() > 5 * e.centre_mm.mean() and h.principal_px.mean() > 5 * e.principal_px.mean(), report
    # The floor board's world is the truth's, without alignment, as far as one foreshortened board places it:
    # measured 3.7-7.1 mm (the floor board tilted by about a tenth of a degree, over 2-3 m).
    direct = [np.linalg.norm(a.centre - b.centre) for a, b in zip(scene.rig, res.rig)]
    assert max(direct) < 9.2, report
    assert res.rms_px < 0.35 and res.initial_rms_px > 3 * res.rms_px


def test_the_floor_never_wastes_the_adjustment(scene_views):
    scene, views = scene_views
    blank = views.select(range(len(views)))
    blank.rows[0] = [None] * len(blank.names)  # nobody found the board on the floor
    res = calibrate_cameras(blank, scene.board, floor_moment=0)
    assert not res.floor_aligned and res.world == "camera cam1"
    assert "no camera found the board on the floor (0000.png)" in res.floor_message
    assert np.allclose(res.rig[0].R, np.eye(3)) and np.allclose(res.rig[0].t, 0)
    # The same cameras, in another frame: the similarity alignment finds them where the floor's did.
    assert rig_errors(scene.rig, res.rig).centre_mm.max() < 2.6
    other = calibrate_cameras(blank, scene.board, floor_moment=0, reference="cam3")
    assert other.world == "camera cam3" and np.allclose(other.rig[2].R, np.eye(3), atol=1e-9)
    with pytest.raises(CalibrationError, match="no camera named 'cam9'"):
        calibrate_cameras(blank, scene.board, reference="cam9")


def test_lens_options_hold_what_they_fix(scene_views):
    scene, views = scene_views
    fixed = {"cam1": LensFreedom(fix_principal_point=True, fix_aspect_ratio=True, fix_tangential=True),
             "cam2": HOLD}
    res = calibrate_cameras(views, scene.board, floor_moment=0, freedom=fixed)
    c1, c2 = res.rig[0], res.rig[1]
    start1, start2 = res.start_cameras[0], res.start_cameras[1]
    assert np.allclose(c1.K[:2, 2], [(1280 - 1) / 2, (720 - 1) / 2]) and c1.K[0, 0] == pytest.approx(c1.K[1, 1])
    assert np.allclose(c1.dist[2:4], 0) and c1.K[0, 0] != pytest.approx(start1.K[0, 0], abs=1e-6)
    assert np.array_equal(c2.K, start2.K) and np.array_equal(c2.dist, start2.dist)
    assert not np.allclose(res.rig[2].K[:2, 2], [(1280 - 1) / 2, (720 - 1) / 2], atol=0.5)
    with pytest.raises(CalibrationError, match="unknown camera"):
        calibrate_cameras(views, scene.board, freedom={"cam7": HOLD})
    half = [c.scaled(0.5) for c in scene.rig]
    with pytest.raises(CalibrationError, match="camera cam1: 1280x720 views, but its lens is for 640x360"):
        calibrate_cameras(views, scene.board, lenses=half)


def test_lens_start_is_simple_until_the_board_covered_the_image(scene_views):
    scene, views = scene_views
    cam = scene.rig[1]
    K, dist, rms, how = initial_lens(views.column(1), scene.board, cam.size)
    assert how == "simple" and np.allclose(K[:2, 2], [(cam.width - 1) / 2, (cam.height - 1) / 2])
    assert np.allclose(dist[1:], 0) and rms < 1.0
    # Measured: the simple start's focal length within 3 % of the truth (from 31 views near the centre).
    assert abs(K[0, 0] / cam.K[0, 0] - 1) < 0.04
    with pytest.raises(CalibrationError, match="at least 4 are needed"):
        initial_lens(views.column(1)[:2] + [None], scene.board, cam.size)
