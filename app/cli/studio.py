"""The simulated studio set up for a live session (no Qt): shared by
`main.py record` and the desktop app."""

from __future__ import annotations

import sys
from pathlib import Path


def simulated_imu_calibration(studio):
    """The simulated sensors' true wear offsets and start headings: what a
    wear-offset capture measures (core.imu.calibration.ImuCalibration)."""
    from core.imu.calibration import ImuCalibration

    return ImuCalibration(studio.imus.wear_offsets, studio.imus.heading_offsets.copy(), pose="T")


def identity_pairing(source: str):
    """Sensor k of `source` on IMU bone k (the simulated hub's layout)."""
    from core import skeleton as sk
    from core.imu.pairing import Pairing, SensorKey

    p = Pairing()
    for b in range(sk.NUM_IMUS):
        p.assign(b, SensorKey(source, b))
    return p


def model_info(spec: str) -> dict:
    """The live model's name and file digest, for the take's metadata."""
    from core.deepfuse.weights import SHIPPED, shipped_model_path
    from core.take.process import file_sha256

    path = shipped_model_path(spec) if spec in SHIPPED else Path(spec)
    return {"name": spec, "file": path.name, "sha256": file_sha256(path)}


def live_engine(spec: str, rig):
    """(engine, label); (None, why) for no solve; (False, None) after an error was printed."""
    if spec == "none":
        return None, "switched off (--model none)"
    from core.deepfuse.engine import InferenceEngine
    from core.deepfuse.weights import SHIPPED, ModelFileError, load_weights, shipped_model_path

    path = shipped_model_path(spec) if spec in SHIPPED else spec
    try:
        model, _ = load_weights(path)
    except ModelFileError as exc:
        if spec in SHIPPED:  # a build without that shipped file still runs the capture pipeline
            return None, f"no shipped {spec} weights ({exc})"
        print(f"error: {exc}", file=sys.stderr)
        return False, None
    # Two threads: the 2-core CPU the live target is set for; the capture threads are light.
    return InferenceEngine(model, rig, threads=2), spec


def simulated_rig(config):
    """The true cameras the simulated studio of `config` renders through."""
    from core.camera.rig import standard_studio

    rig = config.rig or standard_studio()
    return rig.scaled(config.image_scale) if config.image_scale != 1.0 else rig


def rig_fits(rig, cameras) -> bool:
    """Whether `rig` calibrates `cameras` (a rig): as many cameras, the same image sizes."""
    return [tuple(c.size) for c in rig.cameras] == [tuple(c.size) for c in cameras.cameras]


def open_simulated_session(config, model: str = "lite", filter_kind: str = "one-euro", rig=None):
    """(session, devices, label) for the simulated studio in real time;
    raises ValueError (a bad model file) or OSError. label: the live model's
    name, or why there is no live solve. rig: a calibrated rig for the
    solve (the simulated cameras still render through their true one, as
    real cameras do); by default the true rig."""
    from core.filters import FilterConfig
    from core.registry import registry
    from core.session import CaptureSession

    reg = registry()
    if "simulated" not in reg.studios:
        raise ValueError(f"the simulated studio plugin is not installed ({reg.errors or 'no entry point'})")
    devices = reg.studios["simulated"](config, realtime=True)
    rig = devices.rig if rig is None else rig
    if not rig_fits(rig, devices.rig):
        raise ValueError(f"the calibration has {len(rig)} cameras of other sizes than the studio's {len(devices.rig)}")
    engine, label = live_engine(model, rig)
    if engine is False:
        raise ValueError(f"cannot load the model {model!r}")
    session = CaptureSession(devices.cameras, devices.imus, rig, config.camera_fps, engine or None,
                             simulated_imu_calibration(devices.studio), identity_pairing(devices.imus[0].name),
                             FilterConfig(kind=filter_kind), model_info(label) if engine else None,
                             source=f"simulated studio (seed {config.seed})")
    return session, devices, label
