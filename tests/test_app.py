"""The desktop window, driven for real under the virtual display: the
simulated studio goes live and joints arrive, a take is recorded, exported
from the Takes panel, and the window closes leaving no thread or timer
behind."""

import time

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from scipy.spatial import cKDTree

from core import skeleton as sk
from core.take.take import Take

pytestmark = pytest.mark.gui

def _wait_live(qtbot, w, frames=3, timeout_ms=180_000):
    qtbot.waitUntil(lambda: w.bridge is not None and w.bridge.newest_solved is not None
                    and w.bridge.session.solved >= frames, timeout=timeout_ms)


def test_simulated_studio_goes_live_and_joints_arrive(qtbot, window):
    w = window
    assert w.start_studio()
    _wait_live(qtbot, w, frames=4)
    b = w.bridge
    # The joints that reach the GUI thread are the performer's: compare the next
    # ones with the simulator's truth, on frames every camera delivered (on a
    # loaded machine a bundle may lack cameras that skipped its frame: 260-330 mm
    # then, which is the network's partial-view error, not what this checks).
    solved = []
    b.frame.connect(lambda f: solved.append(f) if f.result.solve is not None else None)
    qtbot.waitUntil(lambda: sum(all(m is not None for m in f.bundle.silhouettes) for f in solved) >= 5,
                    timeout=120_000)
    studio = b.session.studio
    whole = [f for f in solved if all(m is not None for m in f.bundle.silhouettes)][:5]
    errors = [np.linalg.norm(f.result.solve.joints_mm
                             - studio.simulation.truth(f.bundle.t_s - studio.t0_s).joints_mm, axis=1).mean()
              for f in whole]
    # Measured with the shipped weights over 11 runs on a loaded machine: medians 26.2-39.8 mm,
    # single frames 19.4-47.0 mm; 27.0 and 33.0 mm on an idle one (the performer holds the T-pose
    # of the IMU routine, or has begun its bow or squat when the machine is slower to deliver
    # whole frames; the IMUs are not calibrated yet, so the network sees with the cameras
    # alone). The bound is 1.3x the worst median seen. The weights shipped before: 53.8-74.1 mm.
    print(f"live MPJPE {np.round(errors, 1)} mm, median {np.median(errors):.1f}")
    assert np.median(errors) < 1.3 * 39.8, f"live MPJPE {np.round(errors)} mm"
    frame = b.newest_solved
    # The view holds them, and the status bar reports the live rates.
    w.update_status()
    assert w.status_labels["model"].text() == "model lite"
    assert w.status_labels["device"].text() == "CPU"
    assert w.status_labels["solve"].text().startswith("solve ")
    assert w.view.frame_count > 0
    img = w.view.render()
    px = w.view.world_to_canvas_px(frame.result.solve.joints_mm[:1])[0]
    h, wd = img.shape[:2]
    assert 0 <= px[0] < wd and 0 <= px[1] < h  # the performer is in view (follow mode)
    assert w.studio_panel.table.rowCount() == 8
    # The character stands on the skeleton solve's pose: the newest one, with every joint inside
    # the body (simulated performers posed through 80 s of motion and the routine, 6 subjects: every
    # joint within 87.5 mm of the nearest vertex; the bound is 1.3x that).
    live = w.bridge.newest
    w.view.flush()
    verts = w.view.body_vertices
    assert w.view.layer_visible("body") and w.view._body.visible
    drawn = w.view._body_pose[1]
    assert np.array_equal(drawn, live.solved.positions_mm)
    inside = cKDTree(verts).query(drawn)[0]
    print(f"joints to the nearest body vertex: {inside.max():.1f} mm at most")
    assert inside.max() < 115 and np.ptp(verts[:, 2]) > 900, inside.round()


def test_record_a_three_second_take_and_export_it(qtbot, window, tmp_path):
    w = window
    assert w.start_studio()
    _wait_live(qtbot, w, frames=2)
    name = w.take_name.text()
    assert name == "take-001"
    solved_before = w.bridge.session.solved
    assert w.start_recording()
    assert not w.record_action.isEnabled() and w.stop_action.isEnabled()
    qtbot.wait(3000)
    # On a loaded machine the live solve may lag: record until it delivered twice.
    qtbot.waitUntil(lambda: w.bridge.session.solved - solved_before >= 2, timeout=60_000)
    stats = w.stop_recording()
    assert stats is not None and w.take_name.text() == "take-002"
    take = Take(tmp_path / "takes" / name)
    assert take.finished
    # At least the 3 s asked for (the event loop may stop it a little later) at 15 fps,
    # less what the cameras dropped on a busy machine.
    assert take.duration_s >= 2.5  # first to last frame: the recording itself ran 3 s or more
    assert 0.5 * 15 * take.duration_s <= len(take) <= 15 * take.duration_s + 1, (len(take), take.duration_s)
    assert len(take.live_joints()) >= 1  # the live solve's rate depends on the machine's load
    # The Takes panel lists it; export every format from its one dialog, as a user does.
    panel = w.takes_panel
    assert [panel.list.item(i).text() for i in range(panel.list.count())] == [name]
    panel.select(name)
    from PySide6.QtCore import QTimer

    from app.panels.export_dialog import ExportDialog

    seen = {}

    def fill():
        d = QApplication.activeModalWidget()
        if not isinstance(d, ExportDialog):
            QTimer.singleShot(50, fill)
            return
        ok = d.buttons.button(d.buttons.StandardButton.Ok)
        for b in d.formats.values():
            b.setChecked(False)
        seen["none"] = (d.problem(), ok.isEnabled())
        for b in d.formats.values():
            b.setChecked(True)
        d.folder.setText(str(tmp_path / "missing"))
        seen["folder"] = d.problem()
        d.folder.setText(str(tmp_path))
        d.name.setText("sub/out")
        seen["name"] = d.problem()
        d.name.setText("out")
        d.target.setCurrentIndex(d.target.findData("unreal"))
        seen["ok"] = ok.isEnabled()
        ok.click()

    QTimer.singleShot(50, fill)
    panel.buttons["export"].click()  # the dialog runs until fill() presses OK
    assert seen == {"none": ("tick at least one kind of file", False),
                    "folder": f"the folder {tmp_path / 'missing'} does not exist",
                    "name": "the file name must be a plain name, without a folder", "ok": True}
    task = panel.task
    qtbot.waitUntil(lambda: not task.running and panel.task is None, timeout=120_000)
    assert task.error is None, task.error
    import bvhio

    from core.export.targets import joint_names

    bvh = bvhio.readAsBvh(str(tmp_path / "out.bvh"))
    assert bvh.FrameCount == len(take) and bvh.Root.Name == "pelvis"  # for Unreal: the Mannequin's names
    rows = (tmp_path / "out.csv").read_text().strip().splitlines()
    assert len(rows) == len(take) + 1 and rows[0].startswith("time_s,valid,Hips_x")
    assert (tmp_path / "out_rotations.csv").is_file() and (tmp_path / "out_raw.csv").is_file()
    from tests.gltf_reader import Glb

    glb = Glb(tmp_path / "out.glb")
    assert [n.name for n in glb.model.nodes[1:23]] == list(joint_names("unreal"))
    assert len(glb.accessor(glb.model.animations[0].samplers[0].input)) == len(take)
    assert w.messages[-1][0] == "info" and "exported" in w.messages[-1][1] and "out.glb" in w.messages[-1][1]
    # The dialog remembers the choices.
    again = panel.export_dialog()
    assert again.folder.text() == str(tmp_path) and again.target.currentData() == "unreal"
    assert all(b.isChecked() for b in again.formats.values())
    again.deleteLater()


def test_progress_dialog_cancel_stops_the_work(qtbot, window):
    from app.workers import Cancelled, run_with_progress

    calls, outcome = [], {}

    def work(progress):
        for i in range(2000):
            progress(i, 2000)
            calls.append(i)
            time.sleep(0.005)
        return "finished"

    task = run_with_progress(window, "Working…", work, lambda r, e: outcome.update(result=r, error=e))
    qtbot.waitUntil(lambda: len(calls) >= 5, timeout=10_000)
    from PySide6.QtWidgets import QPushButton

    task.dialog.findChild(QPushButton).click()  # the user presses Cancel
    qtbot.waitUntil(lambda: "error" in outcome, timeout=10_000)
    assert isinstance(outcome["error"], Cancelled) and outcome["result"] is None
    assert 5 <= len(calls) < 2000
    assert not task.dialog.isVisible()


def test_cancelled_export_writes_nothing(tmp_path):
    """A cancel arrives as an exception from the progress callback; the
    files are written atomically, so none is left behind."""
    from app.workers import Cancelled
    from core.export.take_export import export_take
    from tests.takes import record_lockstep

    record_lockstep(tmp_path / "short", seconds=1.0, fps=10.0)
    for stop_at in (1, 2, 3):
        calls = []

        def progress(done, total):
            calls.append(done)
            if len(calls) >= stop_at:
                raise Cancelled()

        with pytest.raises(Cancelled):
            export_take(Take(tmp_path / "short"), tmp_path / "c.bvh", tmp_path / "c.csv", progress=progress)
        written = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
        # Whole files only: those finished before the cancel, never a temporary or partial one.
        assert all(not n.startswith(".") for n in written), written
        for n in written:
            assert n in ("c.bvh", "c.csv", "c_rotations.csv", "c_raw.csv")
    assert not (tmp_path / "c_raw.csv").exists()


def test_takes_panel_rename_and_delete(qtbot, window, tmp_path):
    from tests.takes import record_lockstep

    w = window
    folder = tmp_path / "takes"
    record_lockstep(folder / "a", seconds=0.5, fps=10.0)
    record_lockstep(folder / "b", seconds=0.5, fps=10.0)
    panel = w.takes_panel
    panel.refresh()
    assert panel.rename(folder / "a", "warmup")
    assert sorted(p.name for p in folder.iterdir()) == ["b", "warmup"]
    assert not panel.rename(folder / "b", "warmup")  # taken
    assert w.messages[-1][0] == "error" and "already exists" in w.messages[-1][1]
    assert not panel.rename(folder / "b", "../escape")
    assert panel.delete(folder / "b")
    assert [p.name for p in folder.iterdir()] == ["warmup"]
    (folder / "not-a-take").mkdir()
    assert not panel.delete(folder / "not-a-take") and (folder / "not-a-take").is_dir()
    _close_message_boxes()


def test_user_errors_are_messages_not_tracebacks(qtbot, window, tmp_path):
    w = window
    # The VMC link before the studio runs.
    w.live_panel.vmc_on.setChecked(True)
    assert w.messages[-1][0] == "error" and "start the studio first" in w.messages[-1][1]
    assert not w.live_panel.vmc_on.isChecked()
    # A takes folder that cannot be made (a file is in the way).
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    w.takes_folder = blocker / "takes"
    assert w.start_studio()
    _wait_live(qtbot, w, frames=1)
    assert not w.start_recording()
    assert w.messages[-1][0] == "error" and "cannot start recording" in w.messages[-1][1]
    assert w.bridge.session.recording is None and w.record_action.isEnabled()
    # A bad VMC receiver.
    w.live_panel.vmc_target.setText("no-port-here")
    w.live_panel.vmc_on.setChecked(True)
    assert "expected HOST:PORT" in w.messages[-1][1]
    _close_message_boxes()


def _close_message_boxes() -> None:
    from PySide6.QtWidgets import QMessageBox

    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, QMessageBox):
            widget.close()


def test_take_playback_with_timeline(qtbot, window, tmp_path):
    from tests.takes import record_lockstep

    w = window
    record_lockstep(tmp_path / "takes" / "walk", seconds=1.0, fps=10.0)
    panel = w.takes_panel
    panel.refresh()
    panel.select("walk")
    assert panel.load_selected()
    take_joints = w.player.joints_mm
    assert w.player.frames == 10 and w.player.which == "live solve"
    # The 3D view shows the take's frame; the scrubber moves it.
    shown = lambda: w.view._stage2  # noqa: E731
    np.testing.assert_array_equal(np.isnan(shown()), np.isnan(take_joints[0]))
    panel.timeline.setValue(4)
    assert w.player.index == 4 and "frame 5/10" in panel.time_label.text()
    finite = np.isfinite(take_joints[4]).all()
    if finite:
        np.testing.assert_allclose(shown(), take_joints[4])
    # The character plays back on a skeleton posed from the take's joints.
    w.view.flush()
    body = w.player.body
    assert body is not None and body.positions_mm.shape == (10, sk.NUM_JOINTS, 3)
    seen = np.isfinite(take_joints[4]).all(1)
    assert np.linalg.norm(body.positions_mm[4][seen] - take_joints[4][seen], axis=1).mean() < 40
    verts = w.view.body_vertices
    hips = body.positions_mm[4, sk.ROOT]
    assert verts.shape == (1229, 3) and np.linalg.norm(verts.mean(0) - hips) < 250
    print(f"played-back body: {np.ptp(verts[:, 2]):.0f} mm tall, its mean "
          f"{np.linalg.norm(verts.mean(0) - hips):.0f} mm from the Hips")
    assert np.ptp(verts[:, 2]) > 1200  # a standing body, not a heap
    # Space plays it at the take's rate to the end.
    w.play_action.trigger()
    assert w.player.playing
    qtbot.waitUntil(lambda: not w.player.playing, timeout=5000)
    assert w.player.index == 9 and panel.timeline.value() == 9
    panel.unload()
    assert w.player.take is None and not panel.timeline.isEnabled() and shown() is None
    w.view.flush()
    assert w.player.body is None and not w.view._body.visible


def test_settings_are_remembered(qtbot, tmp_path):
    from app.main_window import MainWindow

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.studio_panel.seed.setValue(42)
    w.studio_panel.remember()
    w.nav.setCurrentRow(5)
    w.close()
    w2 = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    qtbot.addWidget(w2)
    assert w2.studio_panel.seed.value() == 42 and w2.nav.currentRow() == 5
    assert w2.stack.currentWidget() is w2.takes_panel
    w2.close()


def test_an_applied_calibration_restarts_the_studio_on_it(qtbot, window):
    """The Cameras panel applies a rig: the studio restarts and solves with it,
    while the simulated cameras keep rendering through their true rig."""
    from core.camera.rig import CameraRig

    w = window
    assert w.start_studio()
    _wait_live(qtbot, w, frames=1)
    true_rig = w.bridge.session.studio.rig
    # A calibration 1 % off in focal length, as a real one may be.
    cams = []
    for c in true_rig.cameras:
        d = c.to_dict()
        d["K"] = (np.array(d["K"], float) * np.array([[1.01, 1, 1], [1, 1.01, 1], [1, 1, 1]])).tolist()
        cams.append(d)
    calibrated = CameraRig.from_dict({**true_rig.to_dict(), "cameras": cams})
    w.context.rig_changed.emit(calibrated)
    assert w.calibrated_rig is calibrated
    assert w.bridge is not None and w.bridge.session.rig is calibrated
    assert w.bridge.session.studio.rig is not calibrated
    _wait_live(qtbot, w, frames=2)
    assert "restarted on the new calibration" in w.messages[-1][1]


@pytest.mark.slow  # its accuracy depends on how many frames a loaded machine solves live
def test_wear_offsets_captured_live_on_the_simulated_performer(qtbot, window):
    """Capture in the Wear offsets panel: the simulated performer does the
    routine on cue, the live solve watches, and the offsets found turn the
    sensors into bone orientations close to the simulator's truth."""
    from core.rotations import from_wxyz

    w = window
    assert w.start_studio()
    _wait_live(qtbot, w, frames=2)
    panel = w.wear_panel
    panel.countdown_s = 1.0
    assert panel.start_capture()
    qtbot.waitUntil(lambda: panel.phase == "idle" and panel.task is None, timeout=180_000)
    assert panel.result is not None, w.messages[-3:]
    assert panel.apply()
    calib = w.bridge.session.imu_calibration
    assert calib is panel.result.calibration
    # Against the truth, on the frames that follow.
    _wait_live(qtbot, w, frames=w.bridge.session.solved + 3)
    studio = w.bridge.session.studio
    frame = w.bridge.newest_solved
    truth = studio.simulation.truth(frame.bundle.t_s - studio.t0_s)
    got = calib.bone_wxyz(frame.bundle.imu_wxyz)
    ok = np.isfinite(got).all(axis=1)
    err = np.degrees((from_wxyz(truth.bone_wxyz[ok]).inv() * from_wxyz(got[ok])).magnitude())
    # The sensors taken as the bones without the offsets, for scale.
    raw = np.degrees((from_wxyz(truth.bone_wxyz).inv() * from_wxyz(frame.bundle.imu_wxyz)).magnitude())
    print("live wear-offset capture, bone errors (deg):", err.round(1), "uncalibrated:", raw.round(0))
    # Measured with the shipped weights (sha256 db1a5545...): medians of 1.8 and 3.4 degrees on a
    # quiet machine, 2.1-3.9 beside two busy processes (3 runs) and 3.3 and 4.4 beside four (fewer
    # live solves during the capture); 3.1 quiet and 11 under a full test run's load with earlier
    # weights. The sensors alone are tens of degrees off.
    assert ok.sum() == 13 and np.median(err) < 5.5 and np.median(err) < 0.5 * np.median(raw), err.round(1)


def test_the_status_bar_says_how_far_the_skeleton_is_measured():
    from app.main_window import skeleton_status
    from core import skeleton as sk

    assert skeleton_status(None, False) == "skeleton –"
    lengths = np.zeros(sk.NUM_JOINTS)
    j = sk.JOINT_INDEX
    lengths[j["LeftForeArm"]], lengths[j["LeftHand"]] = 290.0, 255.0   # upper arm, forearm
    lengths[j["LeftLeg"]], lengths[j["LeftFoot"]] = 440.0, 430.0       # thigh, shin
    assert skeleton_status(lengths, False) == "measuring skeleton: arm 54 cm, leg 87 cm"
    assert skeleton_status(lengths, True) == "skeleton: arm 54 cm, leg 87 cm"
