"""Takes recorded from the simulated studio on a simulated clock: every
frame, deterministic, as fast as the machine renders. Shared by the take,
process and export tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.session.opening import identity_pairing
from core.sim.studio import StudioConfig
from core.take.layout import json_safe
from core.take.recorder import Recorder
from plugins.simulated import create
from tests.truth import true_imu_calibration


def record_lockstep(root: Path, seconds: float = 2.0, fps: float = 15.0, seed: int = 3,
                    joints: bool = True, video: bool = False, scale: float = 0.25, **config):
    """Record `seconds` of the studio into `root`; (devices, recorder stats,
    per-frame truth joints (F, J, 3), frame times from the take's start (F,))."""
    config.setdefault("body", "mesh")  # the performer the product shows and the shipped model learnt from
    devices = create(StudioConfig(seed=seed, camera_fps=fps, image_scale=scale, **config), realtime=False)
    for src in [*devices.cameras, *devices.imus]:
        src.open()
    t0 = devices.t0_s
    calib = true_imu_calibration(devices.studio)
    meta = json_safe({"source": "test", "t0_s": t0, "frame_rate": fps, "cameras": devices.rig.names,
                      "rig": devices.rig.to_dict(), "imu_calibration": calib.to_dict(),
                      "imu_pairing": identity_pairing("sim:imu-hub").to_dict()})
    rec = Recorder(root, meta, len(devices.rig), video=video, flush_s=1.0).start()
    truth, times = [], []
    for i in range(int(round(seconds * fps))):
        frames = [cam.read(1.0) for cam in devices.cameras]
        t = frames[0].t_s
        for k, f in enumerate(frames):
            if f is not None:
                rec.put_frame(k, f.t_s, i, f.image)
        rec.put_imu(devices.imus[0].read(0.0))
        tr = devices.studio.truth(t - t0)
        truth.append(tr.joints_mm)
        times.append(t - t0)
        if joints and i % 2 == 0:  # the live path solved every other frame
            rec.put_joints(t, i, tr.joints_mm + 1.0, np.full(len(tr.joints_mm), 0.75))
        if (i + 1) % max(1, int(round(fps / 2))) == 0:
            assert rec.sync()  # a chunk every half second of take time, however fast the machine
    stats = rec.stop()
    for src in [*devices.cameras, *devices.imus]:
        src.close()
    return devices, stats, np.array(truth), np.array(times)


def file_digests(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its contents (to prove nothing changed)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}
