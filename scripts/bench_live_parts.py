"""The live path's Python-heavy parts alone, on one thread (the desktop app
runs them beside the network and the window, where they also wait for a core
and for Python's lock; scripts/bench_live.py measures them there):

- the skeleton solve (core.solve.live.LiveSolver.update), steady state (the
  skeleton frozen), on 40 s of procedural motion at 15 frames/s with noisy
  joints (25 mm) and IMUs (5 degrees);
- the simulated IMU hub's synthesis of one 50 ms packet (the simulated
  studio's IMU thread);
- the performer centre (core.volume.centre.CentreFinder.find) on the
  standard studio's 8 silhouettes.

    .venv/bin/python scripts/bench_live_parts.py

Best of `--repeats` timed passes (ms), so that a busy moment of the machine
counts less. A benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import machine_line  # noqa: E402


def best_ms(fn, calls: int, repeats: int) -> float:
    """The best of `repeats` passes of `calls` calls, ms a call."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(calls):
            fn(i)
        best = min(best, (time.perf_counter() - t0) / calls * 1e3)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    from scipy.spatial.transform import Rotation
    from threadpoolctl import threadpool_limits

    from core import skeleton as sk
    from core.rotations import to_wxyz
    from core.sim.motion import Performer
    from core.sim.motion.procedural import ProceduralMotion
    from core.sim.studio import SimulatedStudio, StudioConfig
    from core.sim.subject import Subject
    from core.solve.live import LiveSolver
    from core.volume.centre import CentreFinder

    threadpool_limits(1, "blas")  # as the desktop app runs live
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 40.0, 1.0 / 15.0)
    poses = Performer(Subject.from_seed(1), ProceduralMotion(seed=3)).poses_at(t)
    x = poses.positions_mm + rng.normal(0.0, 25.0, poses.positions_mm.shape)
    bones = poses.rotations[:, [b.start for b in sk.IMU_BONES]]
    turn = Rotation.from_rotvec(rng.normal(0.0, np.radians(5.0) / np.sqrt(3), (bones.size // 9, 3))).as_matrix()
    wxyz = to_wxyz(Rotation.from_matrix((turn.reshape(bones.shape) @ bones).reshape(-1, 3, 3)))
    wxyz = wxyz.reshape(len(t), sk.NUM_IMUS, 4)
    conf = np.full(x.shape[:2], 0.8)
    solver = LiveSolver()
    for i in range(300):  # until the skeleton is frozen
        solver.update(t[i], x[i], conf[i], wxyz[i])
    frozen = solver.lengths.frozen
    state = {"next": 300}

    def solve(_):
        i = state["next"]
        solver.update(t[i], x[i], conf[i], wxyz[i])
        state["next"] = 300 + (i - 299) % (len(t) - 300)

    studio = SimulatedStudio(StudioConfig(seed=0))
    masks = studio.silhouettes(2.0)
    finder = CentreFinder(studio.rig)
    rows = [
        ("skeleton solve, a frame (steady state)" + ("" if frozen else "; skeleton NOT frozen"),
         best_ms(solve, 40, args.repeats)),
        ("simulated IMU hub, a 50 ms packet", best_ms(lambda i: studio.imu_samples(30 + i * 0.05, 30.05 + i * 0.05),
                                                      40, args.repeats)),
        ("performer centre, 8 cameras", best_ms(lambda i: finder.find(masks), 40, args.repeats)),
    ]
    print(machine_line())
    print(f"best of {args.repeats} passes of 40 calls, one thread")
    print()
    print("| part | ms |")
    print("|---|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
