"""`main.py record` from real devices, end to end in a subprocess: colour
footage of the simulated studio as the cameras (lossless video per camera,
the stage empty for its first seconds), a FuseCap hub on a pseudo-terminal
as the IMUs, the calibration, IMU pairing and wear offsets from files."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core import skeleton as sk

ROOT = Path(__file__).resolve().parents[1]
needs_pty = pytest.mark.skipif(not hasattr(os, "openpty"), reason="pseudo-terminals are POSIX-only")


def _main(*args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


@needs_pty
def test_record_real_cameras_and_imus_from_the_command_line(tmp_path):
    from core.calibration import files
    from core.imu.pairing import Pairing, SensorKey
    from core.sim.footage import render_footage
    from core.take.take import Take
    from plugins.imu.sim_hub import SimulatedHub, studio_samples
    from tests.truth import true_imu_calibration

    footage = render_footage(tmp_path / "footage", seconds=12.0, fps=5.0, empty_s=2.0, cameras=(0, 2, 4, 6))
    files.save_calibration(tmp_path / "rig.json", files.CalibrationFile(footage.rig))
    true_imu_calibration(footage.studio).save(tmp_path / "wear.json")
    with SimulatedHub(studio_samples(footage.studio)) as hub:
        pairing = Pairing()
        for b in range(sk.NUM_IMUS):
            pairing.assign(b, SensorKey(f"fusecap:{hub.port}", b))
        pairing.save(tmp_path / "pairing.json")
        hub.start()
        out = _main("record", "--cameras", footage.folder, "--calibration", tmp_path / "rig.json",
                    "--imu", hub.port, "--pairing", tmp_path / "pairing.json",
                    "--imu-calibration", tmp_path / "wear.json", "--fps", 5, "--background-frames", 5,
                    "--seconds", 3, "--out", tmp_path / "take")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "capturing the background" in out.stdout and "recording 3 s of the cameras and IMUs" in out.stdout
    take = Take(tmp_path / "take")
    assert take.finished and take.meta["source"].startswith("recorded footage, IMUs on ")
    assert take.meta["imu_pairing"] is not None and take.meta["imu_calibration"] is not None
    # Every camera's silhouettes (3 s at 5 frames/s: about 15 each), cut against the background.
    per_camera = [len(take._camera_times(k)[0]) for k in range(4)]
    assert min(per_camera) >= 8, per_camera
    masks = [m for f in take.frames() for m in f.silhouettes if m is not None]
    assert all(m.shape == (270, 480) for m in masks)
    # The recording starts once the backgrounds are in, while the stage may
    # still be empty for a moment: a mask holds the performer or next to nothing.
    areas = np.array([int(m.sum()) for m in masks])
    assert np.all((areas > 500) | (areas < 50)), sorted(areas)
    assert (areas > 500).mean() > 0.5, sorted(areas)
    imu = take.imu_samples()
    assert set(np.unique(imu["sensor"]).tolist()) == set(range(sk.NUM_IMUS))
    live = take.live_joints()
    assert live is not None and len(live) >= 3


def test_record_argument_mistakes_are_clear(tmp_path):
    out = _main("record", "--out", tmp_path / "t")
    assert out.returncode == 2 and "--demo" in out.stderr and "--cameras" in out.stderr
    out = _main("record", "--cameras", "0,1", "--out", tmp_path / "t")
    assert out.returncode == 2 and "--cameras needs --calibration" in out.stderr
    (tmp_path / "bad.json").write_text("{")
    out = _main("record", "--cameras", "0,1", "--calibration", tmp_path / "bad.json", "--out", tmp_path / "t")
    assert out.returncode == 1 and "bad.json" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "t").exists()
