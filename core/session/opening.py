"""Sessions assembled for the window and every command (no Qt).

`open_simulated_session` and `open_device_session` are the one way a
studio session is put together: the desktop app's Studio panel and
`main.py record` both call them. Each returns a `CaptureSession` not
started yet; its `label` names the live model or says why there is none.
Mistakes the user can fix (a model file that cannot be read, a
calibration for other cameras) are ValueError with what to do.
"""

from __future__ import annotations

from pathlib import Path

from core.camera.rig import CameraRig
from core.filters import FilterConfig
from core.session.session import CaptureSession
from core.session.studios import DeviceSetup, DeviceStudio, SimulatedStudioSource, camera_sources
from core.silhouette.live import SILHOUETTE_WIDTH_PX, SegmentedCamera

# The live network's torch threads without a window (the headless demo, `record`): two.
# The desktop app runs it on one (app/bridge.py: APP_NETWORK_THREADS), where the 3D view
# shares the cores. Headless at 10 frames/s one thread left the simulated cameras late: 2-13
# of 46 bundles lacked cameras (5 runs of 4.5 s), against 0-1 with two (3 runs).
LIVE_THREADS = 2


def load_live_engine(spec: str, rig: CameraRig):
    """(engine, label) for the live solve with model `spec` ("lite", "full",
    a weights file or "none"); (None, why) when there is no live solve. A
    shipped model this build lacks is no error (the capture still runs); a
    weights file that cannot be read raises ValueError naming it."""
    if spec == "none":
        return None, "switched off (--model none)"
    from core.deepfuse.engine import InferenceEngine
    from core.deepfuse.weights import SHIPPED, ModelFileError, load_weights, shipped_model_path

    path = shipped_model_path(spec) if spec in SHIPPED else spec
    try:
        model, _ = load_weights(path)
    except ModelFileError as exc:
        if spec in SHIPPED:
            return None, f"no shipped {spec} weights ({exc})"
        raise ValueError(str(exc)) from exc
    return InferenceEngine(model, rig, threads=LIVE_THREADS), spec


def model_info(spec: str) -> dict:
    """The live model's name and file digest, for the take's metadata."""
    from core.deepfuse.weights import SHIPPED, shipped_model_path
    from core.take.process import model_file_info

    return model_file_info(spec, shipped_model_path(spec) if spec in SHIPPED else Path(spec))


def identity_pairing(source: str):
    """Sensor k of `source` on IMU bone k (the simulated hub's layout)."""
    from core import skeleton as sk
    from core.imu.pairing import Pairing, SensorKey

    p = Pairing()
    for b in range(sk.NUM_IMUS):
        p.assign(b, SensorKey(source, b))
    return p


def simulated_rig(config) -> CameraRig:
    """The true cameras the simulated studio of `config` renders through."""
    from core.camera.rig import standard_studio

    rig = config.rig or standard_studio()
    return rig.scaled(config.image_scale) if config.image_scale != 1.0 else rig


def _session(studio, rig, fps, model: str, filter_kind: str, pairing=None, calibrate_imus_at_start=False
             ) -> CaptureSession:
    engine, label = load_live_engine(model, rig)
    return CaptureSession(studio, rig, fps, engine, None, pairing, FilterConfig(kind=filter_kind),
                          model_info(label) if engine is not None else None, label=label,
                          calibrate_imus_at_start=calibrate_imus_at_start)


def open_simulated_session(config, model: str = "lite", filter_kind: str = "one-euro",
                           rig: CameraRig | None = None) -> CaptureSession:
    """The simulated studio of `config` (a core.sim.studio.StudioConfig) in
    real time. rig: a calibrated rig for the solve (the simulated cameras
    still render through their true one, as real cameras do); by default the
    true rig. Raises ValueError (a bad model file, a rig for other cameras).

    The IMUs are calibrated as a user's are: as the session starts the
    simulated performer does the calibration routine, and the session
    estimates the wear offsets, headings and time offset from it (until
    then the solve runs on the cameras alone); the simulator's own offsets
    are never read."""
    from core.registry import registry

    reg = registry()
    if "simulated" not in reg.studios:
        raise ValueError(f"the simulated studio plugin is not installed ({reg.errors or 'no entry point'})")
    devices = reg.studios["simulated"](config, realtime=True)
    rig = devices.rig if rig is None else rig
    if not rig.fits(devices.rig):
        raise ValueError(f"the calibration has {len(rig)} cameras of other sizes than the studio's {len(devices.rig)}")
    studio = SimulatedStudioSource(devices, f"simulated studio (seed {config.seed})")
    return _session(studio, rig, config.camera_fps, model, filter_kind, identity_pairing(devices.imus[0].name),
                    calibrate_imus_at_start=True)


def open_device_session(setup: DeviceSetup, rig: CameraRig | None, model: str = "lite",
                        filter_kind: str = "one-euro") -> CaptureSession:
    """Real cameras and IMUs; raises ValueError with what to do (a camera
    count that does not match the calibration, a bad model file). Nothing is
    opened until the session starts. Without a calibration (rig None) the
    session only captures the cameras, at their own size, so that they can
    be calibrated: no solve, no IMUs, no recording, and the label says why.

    Silhouettes are cut and solved at most SILHOUETTE_WIDTH_PX wide (the
    calibration scaled to it); a recorded video keeps the cameras' own size.
    With `setup.background_at_start` the first `background_frames` frames of
    every camera are the empty stage. The IMUs reach the solve through the
    pairing and the wear offsets (set_pairing, set_imu_calibration)."""
    from core.registry import registry

    sources, footage = camera_sources(setup.cameras, setup.fps)
    if rig is not None and len(sources) != len(rig):
        raise ValueError(f"the calibration is for {len(rig)} cameras and {len(sources)} are listed: "
                         "list one camera per calibrated camera, in the calibration's order")
    if rig is None:  # capture only, to watch and calibrate the cameras
        cameras = [SegmentedCamera(src, None, setup.background_model) for src in sources]
        studio = DeviceStudio(cameras, [], setup, f"{len(sources)} cameras, not calibrated", footage)
        return CaptureSession(studio, None, setup.fps, label="none (the cameras are not calibrated)")
    rig = rig.at_most_width(SILHOUETTE_WIDTH_PX)
    cameras = [SegmentedCamera(src, tuple(cam.size), setup.background_model) for src, cam in zip(sources, rig)]
    if setup.background_at_start:
        for cam in cameras:
            cam.capture_background(setup.background_frames)
    imus = []
    if setup.imu_port:
        reg = registry()
        if "serial" not in reg.imu_sources:
            raise ValueError(f"the serial IMU plugin is not installed ({reg.errors or 'no entry point'})")
        imus.append(reg.imu_sources["serial"](setup.imu_port, protocol=setup.imu_protocol))
    what = "recorded footage" if footage is not None else f"{len(sources)} cameras"
    studio = DeviceStudio(cameras, imus, setup, f"{what}{', IMUs on ' + setup.imu_port if setup.imu_port else ''}",
                          footage)
    return _session(studio, rig, setup.fps, model, filter_kind)


def open_imu_session(setup: DeviceSetup, stature_mm: float = 1750.0, pose: str = "T",
                     imu_calibration=None, imus=None) -> CaptureSession:
    """IMUs alone, no camera (an inertial capture; core.session.session,
    "With IMUs alone"): the serial IMUs of `setup` (or the IMU sources
    `imus`, the simulated studio's), frames at `setup.fps`, the performer of
    `stature_mm` calibrated from the routine in `pose` as the session starts
    (unless `imu_calibration` is given). The IMUs reach the solve through
    the pairing (set_pairing). Raises ValueError with what to do."""
    from core.registry import registry

    if not 1000.0 <= stature_mm <= 2500.0:
        raise ValueError(f"the performer's height must be between 1000 and 2500 mm, got {stature_mm:g}")
    if imus is None:
        if not setup.imu_port:
            raise ValueError("no IMUs: name the IMUs' serial port")
        reg = registry()
        if "serial" not in reg.imu_sources:
            raise ValueError(f"the serial IMU plugin is not installed ({reg.errors or 'no entry point'})")
        imus = [reg.imu_sources["serial"](setup.imu_port, protocol=setup.imu_protocol)]
        what = f"IMUs only, on {setup.imu_port}"
    else:
        what = "IMUs only, simulated"
    studio = DeviceStudio([], list(imus), setup, what)
    return CaptureSession(studio, None, setup.fps, imu_calibration=imu_calibration,
                          label="IMUs only (no camera: a template skeleton posed by the IMUs)",
                          imus_only=True, stature_mm=stature_mm, pose=pose)
