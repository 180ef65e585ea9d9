"""The desktop window on "IMUs only (no cameras)": the Studio panel's fields
for it, and a whole capture with the simulated studio's IMUs: the
calibration routine's steps shown as the performer does them, Record held
back until the IMUs are calibrated, the skeleton the IMUs pose in the 3D
view with no camera, and an IMU-only take on disk."""

import re
import time

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt

from core import skeleton as sk
from core.imu.wear_capture import STEPS
from core.session.studios import DEVICES, IMUS_ONLY, SIMULATED

pytestmark = pytest.mark.gui


def _shown(panel, *widgets) -> list[bool]:
    return [w.isVisibleTo(panel) for w in widgets]


def _type(qtbot, spin, text: str) -> None:
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), text)
    qtbot.keyClick(spin.lineEdit(), Qt.Key_Return)


def test_the_imus_only_source_shows_its_fields_and_refuses_a_nonsense_height(qtbot, tmp_path):
    from app.main_window import MainWindow
    from app.panels.studio import routine_words
    from core.imu.tracking import TrackingState

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    p = w.studio_panel
    assert [p.source.itemData(i) for i in range(p.source.count())] == [SIMULATED, DEVICES, IMUS_ONLY]
    assert p.source.itemText(2) == "IMUs only (no cameras)"

    p.source.setCurrentIndex(p.source.findData(SIMULATED))
    assert _shown(p, p.seed, p.body, p.model, p.devices_box, p.imus_only_box) == [True, True, True, False, False]
    p.source.setCurrentIndex(p.source.findData(DEVICES))
    assert _shown(p, p.seed, p.body, p.model, p.devices_box, p.imus_only_box) == [False, False, True, True, False]
    assert _shown(p, p.cameras, p.imus, p.background_frames) == [True, True, True]
    assert p.devices_box.title() == "Cameras and IMUs"
    p.source.setCurrentIndex(p.source.findData(IMUS_ONLY))
    p.simulated_imus.setChecked(False)
    # Real IMUs alone: the port and protocol (the devices' fields), no camera field, no network.
    assert _shown(p, p.seed, p.body, p.model, p.devices_box, p.imus_only_box) == [False, False, False, True, True]
    assert _shown(p, p.cameras, p.imus, p.background_frames, p.background_at_start) == [False, True, False, False]
    assert p.devices_box.title() == "IMUs"
    assert _shown(p, p.stature, p.pose, p.simulated_imus) == [True, True, True]
    assert p.stature.value() == 1750 and p.pose.currentData() == "T"
    # Simulated IMUs: no port; the simulated performer's seed.
    p.simulated_imus.setChecked(True)
    assert _shown(p, p.seed, p.body, p.devices_box, p.imus_only_box) == [True, False, False, True]
    assert not p.routine_box.isVisibleTo(p)  # only while a session calibrates
    assert not p.table.isVisibleTo(p)  # no camera to list

    # The height field takes millimetres between 1000 and 2500 and nothing else.
    _type(qtbot, p.stature, "1820")
    assert p.stature.value() == 1820
    _type(qtbot, p.stature, "tall")
    assert p.stature.value() == 1820
    _type(qtbot, p.stature, "9999")
    assert 1000 <= p.stature.value() <= 2500
    _type(qtbot, p.stature, "1820")
    _type(qtbot, p.stature, "-5")
    assert p.stature.value() == 1820
    _type(qtbot, p.stature, "300")  # too short for a performer: back to the last good value on Return
    assert p.stature.value() == 1820
    p.stature.setValue(5000)
    assert p.stature.value() == 2500
    p.stature.setValue(1820)
    p.pose.setCurrentIndex(p.pose.findData("N"))

    # Remembered with the other fields.
    p.remember()
    w.close()
    w2 = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    qtbot.addWidget(w2)
    p2 = w2.studio_panel
    assert p2.source_kind == IMUS_ONLY and p2.stature.value() == 1820 and p2.pose.currentData() == "N"
    assert p2.simulated_imus.isChecked()
    w2.close()

    # The routine's words, step by step, from the capture's start.
    capturing = TrackingState("capturing", "", None, None)
    assert routine_words(TrackingState("waiting", "", None, None), None, 5.0, "N", 17.0)[0].startswith(
        "Stand still in the N-pose")
    text, progress = routine_words(capturing, 100.0, 101.2, "N", 17.0)
    assert text.startswith("Step 1 of 5: Hold the N-pose still (next step in 2 s")
    assert progress == pytest.approx(1.2 / 17)
    text, _ = routine_words(capturing, 100.0, 100.0 + STEPS[1][0] + 0.5, "T", 17.0)
    assert text.startswith("Step 2 of 5: Bow forward")
    text, progress = routine_words(capturing, 100.0, 115.5, "T", 17.0)
    assert text.startswith("Step 5 of 5: Move freely") and "calibration in 2 s" in text
    assert progress == pytest.approx(15.5 / 17)
    assert routine_words(TrackingState("failed", "IMU calibration failed: no sensor moved", None, None),
                         100.0, 120.0, "T", 17.0)[0].startswith("IMU calibration failed: no sensor moved.")


# 22 s (the 17 s routine in real time): `slow`. By default, tests/test_imu_only.py records with IMUs alone
# end to end through `main.py record --imu` (the same session), and the fields test above runs.
@pytest.mark.slow
def test_imus_only_with_simulated_imus_calibrates_then_records_a_take(qtbot, window, tmp_path):
    from core.solve.lengths import default_offsets
    from core.take.take import Take

    w = window
    p = w.studio_panel
    p.source.setCurrentIndex(p.source.findData(IMUS_ONLY))
    p.simulated_imus.setChecked(True)
    p.pose.setCurrentIndex(p.pose.findData("T"))
    p.fps.setValue(15.0)
    p.seed.setValue(int(np.random.default_rng().integers(0, 1000)))
    _type(qtbot, p.stature, "1680")
    assert p.stature.value() == 1680

    seen: list[str] = []
    w.routine_timer.timeout.connect(lambda: seen.append(p.routine.text()))
    t_start = time.monotonic()
    assert w.start_studio(), w.messages
    qtbot.waitUntil(lambda: w.bridge is not None and w.bridge.state == "live", timeout=30_000)
    session = w.bridge.session
    assert session.imus_only and session.rig is None and session.camera_names == []
    assert p.routine_box.isVisible()

    # Until the IMUs are calibrated the take cannot start: Record is off, and asking says why.
    qtbot.waitUntil(lambda: p.routine.text().startswith("Step 1 of 5: Hold the T-pose still"), timeout=10_000)
    assert not w.record_action.isEnabled()
    assert "not calibrated" in w.record_action.toolTip()
    w.update_status()
    assert w.status_labels["state"].text() == "calibrating IMUs"
    assert w.status_labels["capture"].text() == "no camera"
    assert not w.start_recording()
    assert w.messages[-1][0] == "error" and "the IMUs are not calibrated yet" in w.messages[-1][1], w.messages[-1]
    assert session.recording is None
    qtbot.waitUntil(lambda: p.routine.text().startswith("Step 2 of 5: Bow forward"), timeout=10_000)

    # The one long wait: the routine (17 s of capture) and its solve.
    qtbot.waitUntil(lambda: session.imu_calibration is not None and w.record_action.isEnabled(), timeout=40_000)
    calibrated_after = time.monotonic() - t_start
    routine_from = session.imu_tracking.capture_started_s - t_start
    qtbot.waitUntil(lambda: p.routine.text() == "IMUs calibrated: ready to record.", timeout=5_000)
    assert not w.routine_timer.isActive()
    # The message comes through the bridge's queued signal: it may follow Record being enabled.
    qtbot.waitUntil(lambda: any("IMUs calibrated from the routine; ready to record" in m for _, m in w.messages),
                    timeout=5_000)
    # Every step was shown, in order, with the routine's progress.
    steps = [int(m.group(1)) for t in seen if (m := re.match(r"Step (\d) of 5", t))]
    assert steps == sorted(steps) and set(steps) == {1, 2, 3, 4, 5}, steps
    assert any(t.startswith("Calibrating the IMUs") for t in seen) or p.routine.text().startswith("IMUs calibrated")
    print(f"routine from {routine_from:.1f} s, calibrated {calibrated_after:.1f} s after the start; "
          f"routine updates seen {len(seen)}")
    # The capture starts once every sensor is in (measured 0.2 s after the start; a loaded
    # machine may take longer), lasts 17 s, and its solve takes about half a second:
    # measured 17.4 s from the routine's start to the calibration.
    assert routine_from < 3.0
    assert 17.0 < calibrated_after - routine_from < 1.3 * 17.4

    # The 3D view draws the skeleton the IMUs pose, with no camera frustum.
    qtbot.waitUntil(lambda: w.bridge.newest is not None and w.bridge.newest.solved is not None, timeout=5_000)
    solved = w.bridge.newest.solved
    assert solved.source == "imus"
    qtbot.wait(200)
    img = w.view.render()
    assert not w.view._frusta.visible and w.view._joints.visible
    hips = w.view.world_to_canvas_px(solved.positions_mm[:1])[0]
    assert 0 <= hips[0] < img.shape[1] and 0 <= hips[1] < img.shape[0]
    # The skeleton is the template of the typed height.
    np.testing.assert_allclose(solved.offsets_mm, default_offsets(1680.0), atol=1e-6)
    assert not np.allclose(default_offsets(1680.0), default_offsets(1750.0), atol=5.0)
    w.nav.setCurrentRow(w.PANELS.index("Cameras"))
    w.cameras_panel.refresh_previews()
    assert w.cameras_panel.tiles == []
    w.nav.setCurrentRow(w.PANELS.index("Studio"))

    # Record about 2 s.
    name = w.take_name.text()
    posed_before = session.posed
    assert w.start_recording(), w.messages
    assert not w.record_action.isEnabled() and w.stop_action.isEnabled()
    t_rec = time.monotonic()
    qtbot.wait(2000)
    stats = w.stop_recording()
    recorded_s = time.monotonic() - t_rec
    posed = session.posed - posed_before
    assert stats is not None and stats.camera_frames == []
    qtbot.waitUntil(lambda: "saved" in w.messages[-1][1], timeout=5_000)
    assert w.messages[-1] == ("info", f"take {name} saved: {stats.imu_samples} IMU samples, no camera")

    take = Take(tmp_path / "takes" / name)
    assert take.finished and take.imus_only and take.cameras == []
    assert take.meta["imus_only"]["stature_mm"] == 1680.0 and take.stature_mm == 1680.0
    assert take.imu_calibration is not None
    d = take.imu_samples()
    per_sensor = np.bincount(d["sensor"].astype(int), minlength=sk.NUM_IMUS)
    rate = per_sensor / recorded_s
    print(f"recorded {recorded_s:.2f} s: {len(d['t_s'])} IMU samples, per sensor {per_sensor.min()}-"
          f"{per_sensor.max()} ({rate.min():.1f}-{rate.max():.1f} /s); {len(take)} frames, "
          f"{take.duration_s:.2f} s; {posed} skeleton frames posed live")
    assert len(per_sensor) == sk.NUM_IMUS and (per_sensor > 0).all()
    assert len(d["t_s"]) == stats.imu_samples
    # The simulated sensors send about 60 samples a second each (measured 58-61).
    assert (rate > 60.0 / 1.3).all() and (rate < 60.0 * 1.3).all(), rate
    # The take's frames at 15 frames/s over what was recorded, and the live path posed about as many.
    assert 15 * recorded_s / 1.3 < len(take) < 15 * recorded_s * 1.3 + 1, (len(take), recorded_s)
    assert 15 * recorded_s / 1.3 < posed < 15 * recorded_s * 1.3 + 1, posed

    # The Takes panel lists it and exports it, posed from the IMUs.
    panel = w.takes_panel
    assert name in [panel.list.item(i).text() for i in range(panel.list.count())]
    panel.select(name)
    task = panel.export_selected(tmp_path / "out.bvh", None)
    qtbot.waitUntil(lambda: not task.running and panel.task is None, timeout=60_000)
    assert task.error is None, task.error
    assert task.result.which == "IMUs only" and task.result.frames == len(take)
    assert (tmp_path / "out.bvh").read_text().count("\n") > len(take)
    # And plays it back in the 3D view, posed from the IMUs.
    assert panel.load_selected(), w.messages[-1]
    assert w.player.which == "IMUs only" and w.player.frames == len(take)
    assert np.isfinite(w.player.joints_mm).all()
    w.player.seek(w.player.frames - 1)
