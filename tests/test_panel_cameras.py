"""The Cameras panel under the virtual display: previews of live silhouettes,
the rig calibrated on the simulated studio against its true cameras, the
floor (from the board, and from the performer standing in the running
studio), calibration files in and out, bad files, and a clean shutdown."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
import types

import numpy as np
import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QImage
from scipy.spatial.transform import Rotation

from app.context import AppContext
from app.panels.cameras import CamerasPanel
from core.calibration.extrinsics import pose_matrix
from core.calibration.files import write_anipose_toml
from core.calibration.guided import BACKGROUND_RGB, SILHOUETTE_RGB
from core.camera.model import Camera
from core.camera.rig import CameraRig, standard_studio
from tests.leaks import assert_nothing_left

pytestmark = pytest.mark.gui


def angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return float(np.degrees(Rotation.from_matrix(Ra @ Rb.T).magnitude()))


def simulated_truth() -> CameraRig:
    from core.sim.studio import SimulatedStudio, StudioConfig

    return SimulatedStudio(StudioConfig()).rig


def pixels_of(label) -> np.ndarray:
    """(h, w, 3) uint8 of the image a QLabel shows."""
    img = label.pixmap().toImage().convertToFormat(QImage.Format_RGB888)
    w, h = img.width(), img.height()
    buf = np.frombuffer(img.constBits(), np.uint8, count=img.sizeInBytes()).reshape(h, img.bytesPerLine())
    return buf[:, : 3 * w].reshape(h, w, 3).copy()


def is_silhouette(rgb: np.ndarray) -> np.ndarray:
    """Each pixel nearer the silhouette colour than the background's."""
    d_sil = np.abs(rgb.astype(int) - SILHOUETTE_RGB).sum(-1)
    d_bg = np.abs(rgb.astype(int) - BACKGROUND_RGB).sum(-1)
    return d_sil < d_bg


class Messages(list):
    def of(self, level: str) -> list[str]:
        return [t for lv, t in self if lv == level]


@pytest.fixture
def context(tmp_path):
    ctx = AppContext(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    ctx.messages = Messages()
    ctx.message_posted.connect(lambda level, text: ctx.messages.append((level, text)))
    ctx.rigs = []
    ctx.rig_changed.connect(ctx.rigs.append)
    return ctx


@pytest.fixture
def panel(qtbot, context):
    before = set(threading.enumerate())
    p = CamerasPanel(context)
    qtbot.addWidget(p)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.shutdown()
    assert_nothing_left(p, before)


def wait_task(qtbot, panel, timeout_ms=150_000) -> None:
    qtbot.waitUntil(lambda: panel.task is None, timeout=timeout_ms)


# -- previews ----------------------------------------------------------------------------------

def test_previews_show_the_live_silhouettes(qtbot, context, panel, seed):
    from app.bridge import SessionBridge
    from core.session.opening import open_simulated_session
    from core.sim.studio import StudioConfig

    session = open_simulated_session(StudioConfig(seed=seed % 1000, camera_fps=10), "none")
    devices = session.studio
    bridge = SessionBridge(session)
    bridge.frame.connect(context.frame.emit)
    bridge.state_changed.connect(lambda s: context.session_started.emit(bridge) if s == "live" else None)
    context.bridge = bridge
    context.rig_changed.emit(devices.rig)
    assert [t.name for t in panel.tiles] == devices.rig.names
    bridge.start()
    try:
        def most_cameras_drawn():
            masks = [] if panel.shown_frame is None else panel.shown_frame.bundle.silhouettes
            present = [m for m in masks if m is not None]
            return len(present) >= len(panel.tiles) // 2 and sum(int(m.sum()) for m in present) > 2000

        qtbot.waitUntil(most_cameras_drawn, timeout=90_000)
        # Checked in one go on the GUI thread: the timer cannot draw a newer frame meanwhile.
        frame = panel.shown_frame
        assert frame is bridge.newest or frame.bundle.index <= bridge.newest.bundle.index
        drawn, seen = 0, 0
        for tile, mask in zip(panel.tiles, frame.bundle.silhouettes):
            if mask is None:  # a camera's frame came late on this busy machine: missing, as in a studio
                assert not tile.signal and tile.image.text() == "no signal"
                continue
            seen += 1
            assert tile.signal
            rgb = pixels_of(tile.image)
            step = int(np.ceil(mask.shape[1] / rgb.shape[1]))
            assert rgb.shape[1] <= panel.PREVIEW_WIDTH_PX and step >= 2
            expected = mask[::step, ::step] > 0
            assert rgb.shape[:2] == expected.shape
            assert np.array_equal(is_silhouette(rgb), expected), tile.name
            drawn += int(expected.sum())
        assert seen >= len(panel.tiles) // 2 and drawn > 100, "the performer is in the previews"
        # The previews follow the live frames.
        qtbot.waitUntil(lambda: panel.shown_frame is not None and panel.shown_frame.bundle.index > frame.bundle.index,
                        timeout=10_000)
    finally:
        bridge.frame.disconnect(context.frame.emit)
        bridge.stop()
    # A frame where camera 2 is missing: its tile says "no signal", the others still draw.
    silhouettes = list(frame.bundle.silhouettes)
    silhouettes[1] = None
    partial = dataclasses.replace(frame.bundle, silhouettes=tuple(silhouettes))
    fake = dataclasses.replace(frame, bundle=partial)
    context.frame.emit(fake)
    qtbot.waitUntil(lambda: panel.shown_frame is fake, timeout=5_000)
    assert panel.tiles[1].image.text() == "no signal" and panel.tiles[1].image.pixmap().isNull()
    for k in (0, 2):
        if frame.bundle.silhouettes[k] is not None:
            assert np.array_equal(is_silhouette(pixels_of(panel.tiles[k].image)),
                                  frame.bundle.silhouettes[k][::step, ::step] > 0)
    context.bridge = None
    context.session_stopped.emit()
    qtbot.waitUntil(lambda: all(t.image.text() == "no signal" for t in panel.tiles), timeout=5_000)


# -- calibration ---------------------------------------------------------------------------------

def test_rig_calibration_on_the_simulated_studio(qtbot, context, panel, tmp_path, seed):
    t0 = time.monotonic()
    assert panel.calibrate_rig(seed=seed) is not None
    assert not panel.buttons["rig"].isEnabled()  # one calibration at a time
    wait_task(qtbot, panel)
    seconds = time.monotonic() - t0
    assert panel.last_rig is not None, f"seed {seed}: {context.messages}"
    truth = simulated_truth()
    rig = panel.last_rig
    assert rig.names == truth.names and [c.size for c in rig] == [c.size for c in truth]
    # The floor board lay at the studio's origin: the calibrated world is the studio's.
    centre_mm = [float(np.linalg.norm(a.centre - b.centre)) for a, b in zip(truth, rig)]
    turn_deg = [angle_deg(a.R, b.R) for a, b in zip(truth, rig)]
    focal = [abs(b.K[0, 0] / a.K[0, 0] - 1) for a, b in zip(truth, rig)]
    report = f"seed {seed}: centres {np.round(centre_mm, 1)} mm, rotations {np.round(turn_deg, 2)} deg, {seconds:.0f} s"
    print(report)
    # Measured over 10 draws (the panel's settings, core/calibration/steps.py, one of them a draw that once came
    # out at 25 mm with a narrower lens prior): the lenses refined with the rig within twice the lens step's
    # deviations, worst centre 8.6-13.7 mm (mean 4.2-7.1), worst rotation 0.19-0.37 deg, focal lengths up to
    # 0.30 % off (the lenses held as the lens step left them: worst centres 11-27 mm).
    assert max(centre_mm) < 18.0, report
    assert max(turn_deg) < 0.5, report
    assert max(focal) < 0.004, report
    # The table: every camera, sub-pixel, good at the performer.
    assert panel.error_table.rowCount() == len(truth) == len(panel.error_rows)
    for row in panel.error_rows:
        assert row.views >= 3 and 0 < row.rms_px < 0.6 and 0 < row.error_mm < 3.5 and row.verdict == "good", row
    assert panel.error_table.item(0, 0).text() == truth.names[0]
    assert float(panel.error_table.item(0, 2).text()) == pytest.approx(panel.error_rows[0].rms_px, abs=0.006)
    # The coverage the user saw while the cameras were calibrated.
    assert sorted(panel.coverage) == sorted(truth.names) and min(panel.coverage.values()) > 0.2
    # Nothing is used until applied.
    assert context.rigs == [] and panel.buttons["apply"].isEnabled()
    assert panel.apply() and context.rigs == [rig] and panel.rig_in_use is rig
    # Saved with its quality report, it comes back with the same table.
    rows = list(panel.error_rows)
    assert panel.save_calibration(tmp_path / "studio.json") and panel.load_calibration(tmp_path / "studio.json")
    assert panel.error_rows == rows and panel.board == panel.RIG_BOARD


def test_set_floor_brings_a_rig_into_the_studio_world(qtbot, context, panel, rng):
    truth = simulated_truth()
    # The same cameras in another tool's world: turned and moved as a whole.
    R = Rotation.from_rotvec(rng.normal(size=3) * 0.3).as_matrix()
    shift = rng.uniform(-1500, 1500, 3)
    other = CameraRig(tuple(Camera(c.K, c.dist, c.R @ R.T, c.t - c.R @ R.T @ shift, c.size, c.name) for c in truth),
                      truth.area)
    assert max(np.linalg.norm(a.centre - b.centre) for a, b in zip(truth, other)) > 100
    context.rig_changed.emit(other)
    assert panel.set_floor(seed=int(rng.integers(1 << 31))) is not None
    wait_task(qtbot, panel, 60_000)
    assert panel.last_rig is not None, context.messages
    centre_mm = [float(np.linalg.norm(a.centre - b.centre)) for a, b in zip(truth, panel.last_rig)]
    turn_deg = [angle_deg(a.R, b.R) for a, b in zip(truth, panel.last_rig)]
    report = f"centres {np.round(centre_mm, 1)} mm, rotations {np.round(turn_deg, 3)} deg"
    print(report)
    # Measured over 10 draws: centres within 4.0 mm, the world turned by 0.044 deg at most (the floor board
    # found by more cameras since core.calibration.board.marker_parameters; before, 11 mm and one draw at 31).
    assert max(centre_mm) < 6.0 and max(turn_deg) < 0.07, report


def test_floor_from_the_performer_brings_a_rig_into_the_studio_world(qtbot, context, panel, seed, rng):
    from app.bridge import SessionBridge
    from core.session.opening import open_simulated_session
    from core.sim.studio import StudioConfig

    truth = simulated_truth()
    # The same cameras in a world turned any way and moved, as a rig calibrated without the floor board is.
    R = Rotation.random(random_state=int(rng.integers(1 << 31))).as_matrix()
    shift = rng.uniform(-3000, 3000, 3)
    other = CameraRig(tuple(Camera(c.K, c.dist, c.R @ R.T, c.t - c.R @ R.T @ shift, c.size, c.name) for c in truth),
                      truth.area)
    context.rig_changed.emit(other)
    # No studio running: no performer to measure, nothing changes.
    assert panel.floor_from_performer() is None and panel.task is None
    assert "the studio is not running" in context.messages.of("error")[-1]
    assert panel.last_rig is None and context.rigs == [other]
    # The simulated studio as the Studio panel opens it (the performer holds its pose 4 s when asked).
    session = open_simulated_session(StudioConfig(seed=seed % 1000, camera_fps=10, calibration_hold_s=4.0), "none")
    bridge = SessionBridge(session)
    context.bridge = bridge
    bridge.start()
    try:
        qtbot.waitUntil(lambda: bridge.state == "live", timeout=30_000)
        t0 = time.monotonic()
        assert panel.floor_from_performer() is not None
        assert not panel.buttons["performer"].isEnabled() and not panel.buttons["floor"].isEnabled()
        wait_task(qtbot, panel, 60_000)
        seconds = time.monotonic() - t0
    finally:
        bridge.stop()
        context.bridge = None
    assert panel.last_rig is not None, context.messages
    found = panel.last_rig
    assert found.names == truth.names and found.sizes == truth.sizes
    # The found world's pose in the studio's, through the first camera: Z up again, the origin on the floor.
    a, b = truth[0], found[0]
    T = np.linalg.inv(pose_matrix(a.R, a.t)) @ pose_matrix(b.R, b.t)
    up_deg = float(np.degrees(np.arccos(np.clip(T[2, 2], -1.0, 1.0))))
    floor_mm = float(T[2, 3])
    fit = panel.quality["floor"]
    stature = session.studio.simulation.subject.height_mm
    report = (f"seed {seed}: up {up_deg:.2f} deg, floor {floor_mm:+.1f} mm, hull {fit['height_mm']:.0f} mm "
              f"(stature {stature:.0f}), {fit['frames']} frames within {fit['up_spread_deg']:.2f} deg, {seconds:.1f} s")
    print(report)
    # Measured through the panel over 29 draws (the T-pose the simulated performer holds, 10 frames): up
    # 0.74-1.39 degrees off (the body's lean, as core's tests/test_floor_performer.py measures), the floor
    # -15.5 to +4.1 mm, the hull 2-28 mm taller than the performer.
    assert up_deg < 1.8 and -20 < floor_mm < 5.5, report
    assert -10 < fit["height_mm"] - stature < 37, report
    assert fit["frames"] == panel.PERFORMER_FRAMES and len(fit["cameras"]) >= 6, report
    assert re.search(r"floor set from the performer standing: \d cameras, 10 frames, \d{4} mm tall",
                     context.messages.of("info")[-1]), context.messages.of("info")[-1]
    # Nothing is used until applied.
    assert context.rigs == [other] and panel.buttons["apply"].isEnabled()
    assert panel.apply() and context.rigs == [other, found]


def test_shutdown_cancels_a_running_calibration(qtbot, context, panel, seed):
    before = set(threading.enumerate())
    assert panel.calibrate_cameras(seed=seed) is not None
    # The board views are being drawn, with the coverage so far.
    qtbot.waitUntil(lambda: any(t.caption.text().endswith("board") for t in panel.tiles), timeout=60_000)
    assert panel.coverage and panel.coverage_bar.isVisible()
    t0 = time.monotonic()
    panel.shutdown()
    assert time.monotonic() - t0 < 10
    assert [t.name for t in set(threading.enumerate()) - before if t.is_alive()] == []
    assert [t for t in panel.findChildren(QTimer) if t.isActive()] == []
    assert panel.task is None and panel.last_rig is None and context.rigs == []


# -- files ---------------------------------------------------------------------------------------

def _jittered(rig: CameraRig, rng: np.random.Generator) -> CameraRig:
    cams = []
    for c in rig:
        K = c.K.copy()
        K[0, 0] *= rng.uniform(0.97, 1.03)
        K[1, 1] = K[0, 0] * rng.uniform(0.998, 1.002)
        K[:2, 2] += rng.uniform(-3, 3, 2)
        dist = c.dist + np.r_[rng.normal(0, 0.01, 4), 0.0]
        R = Rotation.from_rotvec(rng.normal(0, 0.02, 3)).as_matrix() @ c.R
        cams.append(Camera(K, dist, R, c.t + rng.normal(0, 30, 3), c.size, c.name))
    return CameraRig(tuple(cams), rig.area)


def _same(a: CameraRig, b: CameraRig, tol: float = 1e-9) -> bool:
    return a.names == b.names and all(
        x.size == y.size and np.allclose(x.K, y.K, atol=tol) and np.allclose(x.dist8, y.dist8, atol=tol)
        and np.allclose(x.R, y.R, atol=tol) and np.allclose(x.t, y.t, atol=1e3 * tol) for x, y in zip(a, b))


def test_save_and_load_round_trip(qtbot, context, panel, tmp_path, rng):
    rig = _jittered(simulated_truth(), rng)
    context.rig_changed.emit(rig)
    for name in ("studio.json", "studio.toml"):
        assert panel.save_calibration(tmp_path / name), context.messages
    for name in ("studio.json", "studio.toml"):
        context.rigs.clear()
        assert panel.load_calibration(tmp_path / name), context.messages
        assert _same(panel.last_rig, rig), name
        assert context.rigs == [panel.last_rig] and panel.rig_in_use is panel.last_rig
        assert panel.error_table.rowCount() == len(rig)
    assert "set the floor" in context.messages.of("info")[-1]
    # A full-HD calibration of the same cameras fits the studio's smaller images.
    full = _jittered(standard_studio(), rng)
    write_anipose_toml(tmp_path / "full_hd.toml", full)
    assert panel.load_calibration(tmp_path / "full_hd.toml"), context.messages
    assert _same(panel.last_rig, full.scaled(0.25), 1e-6)


def test_bad_files_change_nothing(qtbot, context, panel, tmp_path):
    rig = simulated_truth()
    context.rig_changed.emit(rig)
    assert panel.save_calibration(tmp_path / "good.json")
    assert panel.load_calibration(tmp_path / "good.json")
    table = [[panel.error_table.item(r, c).text() for c in range(5)] for r in range(panel.error_table.rowCount())]
    good = (tmp_path / "good.json").read_text()
    bad = {
        "cut.json": good[: len(good) // 2],
        "other.json": '{"format": "something-else", "version": 1}',
        "empty.toml": "[metadata]\nadjusted = true\n",
        "fisheye.toml": '[cam_0]\nname = "A"\nfisheye = true\n',
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
    four = CameraRig(rig.cameras[:4], rig.area)
    write_anipose_toml(tmp_path / "four.toml", four)
    write_anipose_toml(tmp_path / "square.toml", CameraRig(tuple(
        Camera(c.K, c.dist, c.R, c.t, (480, 480), c.name) for c in rig), rig.area))
    context.rigs.clear()
    # While a studio runs, a file must be for its cameras (the panel asks only whether one runs).
    context.bridge = types.SimpleNamespace(devices=None)
    last, in_use, errors = panel.last_rig, panel.rig_in_use, len(context.messages.of("error"))
    for name, why in (("cut.json", "not valid JSON"), ("other.json", "not a FuseCap calibration"),
                      ("empty.toml", "no \\[cam_N\\] tables"), ("fisheye.toml", "fisheye"),
                      ("four.toml", "4 cameras in the file, 8 in the studio"),
                      ("square.toml", "does not fit a 480x270 camera"), ("missing.json", "no such file")):
        assert not panel.load_calibration(tmp_path / name), name
        errors += 1
        message = context.messages.of("error")
        assert len(message) == errors and name in message[-1], message[-1:]
        assert re.search(why, message[-1]), message[-1]
        assert panel.last_rig is last and panel.rig_in_use is in_use and context.rigs == []
        assert [[panel.error_table.item(r, c).text() for c in range(5)]
                for r in range(panel.error_table.rowCount())] == table
    assert not panel.save_calibration(tmp_path / "studio.yaml")
    assert ".json" in context.messages.of("error")[-1]
    # A stopped studio takes a calibration of other cameras (for another source) as it is.
    context.bridge = None
    assert panel.load_calibration(tmp_path / "four.toml"), context.messages
    assert len(panel.rig_in_use) == 4 and context.rigs == [panel.rig_in_use]
