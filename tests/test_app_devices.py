"""The desktop window on "Cameras and IMUs": colour footage of the simulated
studio played as live cameras (one lossless video per camera, the stage
empty for its first seconds), a FuseCap hub on a pseudo-terminal as the
serial IMUs, and a calibration file loaded on the Cameras panel. Silhouettes
come from the background captured at the start; the joints, the IMU
samples and a recorded take are checked against the simulator's truth."""

import os
import time

import numpy as np
import pytest

from core import skeleton as sk

pytestmark = [pytest.mark.gui,
              pytest.mark.skipif(not hasattr(os, "openpty"), reason="pseudo-terminals are POSIX-only")]

FPS = 5.0  # four cameras segmented on a 2-core machine keep up at 5 frames/s


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    from core.sim.footage import render_footage

    # 14 s: the window, the network's first frames and the recording all fit before it ends.
    return render_footage(tmp_path_factory.mktemp("footage"), seconds=14.0, fps=FPS, empty_s=1.6,
                          cameras=(0, 2, 4, 6))


@pytest.fixture
def calibration_file(footage, tmp_path):
    from core.calibration import files

    path = tmp_path / "rig.json"
    files.save_calibration(path, files.CalibrationFile(footage.rig))
    return path


@pytest.fixture
def hub(footage):
    from plugins.imu.sim_hub import SimulatedHub, studio_samples

    h = SimulatedHub(studio_samples(footage.studio)).start()
    yield h
    h.close()


def _use_devices(w, cameras: str, port: str = "") -> None:
    p = w.studio_panel
    p.source.setCurrentIndex(p.source.findData("devices"))
    p.cameras.setText(cameras)
    p.imus.set_port(port)
    p.fps.setValue(FPS)
    p.background_frames.setValue(5)
    p.background_at_start.setChecked(True)


def _iou(a, b) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_cameras_and_imus_go_live_from_the_studio_panel(qtbot, window, footage, calibration_file, hub, tmp_path):
    from core.imu.pairing import Pairing, SensorKey
    from core.take.take import Take

    w = window
    assert w.cameras_panel.load_calibration(calibration_file)
    assert w.calibrated_rig is not None and len(w.calibrated_rig) == 4
    _use_devices(w, str(footage.folder), hub.port)
    source = f"fusecap:{hub.port}"
    pairing = Pairing()
    for b in range(sk.NUM_IMUS):
        pairing.assign(b, SensorKey(source, b))
    w.imus_panel.set_pairing(pairing)
    assert w.start_studio(), w.messages
    qtbot.waitUntil(lambda: w.bridge is not None and w.bridge.state == "live", timeout=120_000)
    b = w.bridge
    assert b.session.pairing is pairing

    def solved_with_cameras_and_imus():
        # Three of the four cameras at least: on a loaded machine one may skip the frame.
        f = b.newest_solved
        return f is not None and sum(m is not None for m in f.bundle.silhouettes) >= 3 and f.bundle.imu_present.all()

    qtbot.waitUntil(solved_with_cameras_and_imus, timeout=60_000)
    assert [s.state for s in b.session.background_states()] == ["ready"] * 4
    frame = b.newest_solved
    t_rec = b.session.studio.footage.recorded_time(frame.bundle.t_s)
    i = footage.frame_at(t_rec)
    assert i >= footage.empty_frames
    # Silhouettes cut from the colour images against the true masks.
    ious = [_iou(m, t) for m, t in zip(frame.bundle.silhouettes, footage.masks[i]) if m is not None]
    assert min(ious) > 0.85, ious
    # No IMU calibration yet: the answer is the vision stage, and it is the performer's.
    solve = frame.result.solve
    np.testing.assert_array_equal(solve.joints_mm, solve.stage1_mm)
    # Four cameras of eight, or three when one skipped the frame, and no IMU. One live
    # frame, so it varies: measured over 13 runs on 2 loaded cores 53-99 mm with four
    # cameras, 93-148 mm with three (a looser hull; up to 190 mm seen before).
    truth = footage.studio.truth(t_rec).joints_mm
    mpjpe = np.linalg.norm(solve.joints_mm - truth, axis=1).mean()
    cameras = sum(m is not None for m in frame.bundle.silhouettes)
    print(f"vision stage from {cameras} cameras: MPJPE {mpjpe:.1f} mm")
    assert mpjpe < (130.0 if cameras == 4 else 220.0), f"{mpjpe:.0f} mm from {cameras} cameras"
    assert np.linalg.norm(frame.result.centre_mm - truth[0]) < 200.0
    # The 13 sensors came over the serial line, through the pairing, and the IMUs panel lists them raw.
    assert frame.bundle.imu_present.sum() == sk.NUM_IMUS
    assert {k for k in w.imus_panel.feed.keys() if k.source == source} == {SensorKey(source, s)
                                                                          for s in range(sk.NUM_IMUS)}
    # The Cameras panel shows each camera's image with its silhouette tinted over it.
    w.nav.setCurrentRow(w.PANELS.index("Cameras"))
    w.cameras_panel.previews.shown_serial = -1
    w.cameras_panel.refresh_previews()
    tile = w.cameras_panel.tiles[0]
    assert tile.shown_rgb is not None and tile.shown_rgb.ndim == 3
    rgb = tile.shown_rgb.astype(int)
    tinted = (rgb[..., 0] > rgb[..., 2] + 60)  # orange over the performer
    assert 0.01 < tinted.mean() < 0.3, tinted.mean()
    assert rgb.std() > 10  # the room's image, not a flat background
    w.update_status()
    table = w.studio_panel.table
    assert table.rowCount() == 4
    assert [table.item(r, 4).text() for r in range(4)] == ["background ready"] * 4
    assert w.studio_panel.background_button.isEnabled()

    # A 2-second take: silhouettes of every camera and the IMU samples reach the disk.
    w.take_name.setText("devices")
    assert w.start_recording()
    qtbot.wait(2000)
    w.stop_recording()
    take = Take(w.takes_folder / "devices")
    assert take.finished and take.meta["source"].startswith("recorded footage, IMUs on ")
    assert len(take.cameras) == 4
    per_camera = [len(take._camera_times(k)[0]) for k in range(4)]
    # 2 s at 5 frames/s: about 10 each; a fresh-clone CI run on 2 loaded cores gave [5, 6, 7, 4].
    assert min(per_camera) >= 3 and sum(per_camera) >= 16, per_camera
    # Cameras that fall behind skip frames independently (as live ones do on a
    # busy machine: measured here 3-3.7 of 5 frames/s each with the window
    # drawing), so a frame may lack one; every mask recorded is the performer's.
    masks = [m for f in take.frames() for m in f.silhouettes if m is not None]
    assert len(masks) == sum(per_camera)
    assert all(m.shape == (270, 480) and m.sum() > 500 for m in masks)
    imu = take.imu_samples()
    assert set(np.unique(imu["sensor"]).tolist()) == set(range(sk.NUM_IMUS))
    assert len(imu["t_s"]) >= 13 * 30  # the hub sends 60 Hz per sensor

    # A new background on request: the cameras capture again, then segment again.
    assert w.capture_background()
    assert all(st.state in ("capturing", "ready") for st in b.session.background_states())
    qtbot.waitUntil(lambda: [st.state for st in b.session.background_states()] == ["ready"] * 4, timeout=20_000)
    w.stop_studio()
    assert w.bridge is None
    assert w.studio_panel.table.rowCount() == 0 and w.studio_panel.state.text() == "stopped"


def test_device_set_up_mistakes_are_messages(qtbot, window, footage, calibration_file, tmp_path):
    w = window
    assert w.cameras_panel.load_calibration(calibration_file)
    # As many cameras as the calibration has.
    _use_devices(w, "0, 1")
    assert not w.start_studio()
    assert "calibration is for 4 cameras and 2 are listed" in w.messages[-1][1]
    _use_devices(w, f"{tmp_path / 'a.avi'}, 1, 2, 3")
    assert not w.start_studio()
    assert "neither a device number, a stream URL nor a video file" in w.messages[-1][1]
    assert w.bridge is None
    # Cameras that are not there: the studio runs, and says which camera is missing and why.
    _use_devices(w, "7, 8, 9, 10")
    assert w.start_studio()
    qtbot.waitUntil(lambda: sum("could not open camera" in m for _, m in w.messages) >= 4, timeout=60_000)
    missing = [m for _, m in w.messages if "could not open camera" in m]
    assert {m.split(":")[0] for m in missing} == {f"camera {k + 1} ({k + 7})" for k in range(4)}
    assert all("retrying" in m for m in missing)
    w.update_status()
    assert [w.studio_panel.table.item(r, 1).text() for r in range(4)] == ["lost"] * 4
    w.stop_studio()
    # A serial port that is not there: the studio says so and leaves nothing running.
    _use_devices(w, str(footage.folder), str(tmp_path / "no-such-port"))
    assert w.start_studio()
    qtbot.waitUntil(lambda: w.bridge is None or w.bridge.state.startswith("failed"), timeout=120_000)
    qtbot.waitUntil(lambda: any("could not start" in m for _, m in w.messages), timeout=5_000)
    assert "no-such-port" in [m for _, m in w.messages if "could not start" in m][-1]
    w.stop_studio()
    assert w.bridge is None
    # Back on the simulated studio, the 4-camera calibration is set aside with a word.
    w.studio_panel.source.setCurrentIndex(w.studio_panel.source.findData("simulated"))
    assert w.start_studio()
    assert "runs on its own" in " ".join(m for _, m in w.messages[-3:])
    assert len(w.bridge.session.rig) == 8
    w.stop_studio()
    time.sleep(0.1)


def test_the_device_set_up_and_its_calibration_are_remembered(qtbot, footage, calibration_file, tmp_path):
    from PySide6.QtCore import QSettings

    from app.main_window import MainWindow

    def window():
        w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
        qtbot.addWidget(w)
        return w

    w = window()
    _use_devices(w, "0, 1, 2, 3", "/dev/serial/by-id/usb-FuseCap_hub")
    w.studio_panel.imus.set_protocol("witmotion")
    w.studio_panel.remember()
    assert w.cameras_panel.load_calibration(calibration_file)
    w.close()
    w2 = window()
    p = w2.studio_panel
    assert p.source_kind == "devices" and p.cameras.text() == "0, 1, 2, 3"
    setup = p.device_setup()
    assert (setup.imu_port, setup.imu_protocol, setup.fps) == ("/dev/serial/by-id/usb-FuseCap_hub", "witmotion", FPS)
    # The calibration file last loaded is loaded again for real cameras.
    assert w2.calibrated_rig is not None and len(w2.calibrated_rig) == 4
    assert w2.calibrated_rig.names == footage.rig.names
    w2.close()
