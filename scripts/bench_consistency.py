"""The silhouette-consistency score of the calibration quality gate, for
exact cameras and for one camera bumped: what its thresholds rest on.

Standard studio at 480x270, two frames of one simulated performer; camera 4
(index 3) turned about its own vertical axis or moved sideways.

    .venv/bin/python scripts/bench_consistency.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.calibration.quality import assess, silhouette_consistency  # noqa: E402
from core.camera.model import Camera  # noqa: E402
from core.camera.rig import CameraRig  # noqa: E402
from core.sim.studio import SimulatedStudio, StudioConfig  # noqa: E402

BUMPED = 3


def bumped(rig: CameraRig, deg: float = 0.0, mm: float = 0.0) -> CameraRig:
    cams = list(rig)
    c = cams[BUMPED]
    R = Rotation.from_rotvec(np.radians(deg) * np.array([0.0, 1.0, 0.0])).as_matrix() @ c.R
    centre = c.centre + np.array([mm, 0.0, 0.0])
    cams[BUMPED] = Camera(c.K, c.dist, R, -R @ centre, c.size, c.name)
    return CameraRig(tuple(cams), rig.area)


def main() -> int:
    studio = SimulatedStudio(StudioConfig(seed=3))
    times = (1.0, 3.0)
    frames = [studio.silhouettes(t) for t in times]
    centres = [studio.truth(t).joints_mm[0] for t in times]
    print("`scripts/bench_consistency.py`\n")
    print(f"| rig | camera {BUMPED + 1} | lowest other camera | verdict |")
    print("|---|---|---|---|")
    for label, rig in (("exact", studio.rig), ("turned 0.25°", bumped(studio.rig, 0.25)),
                       ("turned 0.5°", bumped(studio.rig, 0.5)), ("turned 1°", bumped(studio.rig, 1.0)),
                       ("turned 2°", bumped(studio.rig, 2.0)), ("moved 30 mm", bumped(studio.rig, mm=30)),
                       ("moved 60 mm", bumped(studio.rig, mm=60))):
        score = silhouette_consistency(rig, frames, centres)
        others = np.delete(score, BUMPED)
        print(f"| {label} | {score[BUMPED]:.3f} | {others.min():.3f} | {assess(rig, consistency=score).verdict} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
