"""Benchmark: the constant-length skeleton fit (core.posefit) and the exporters.

Simulated performers (procedural motion, held-out subject seeds) sampled at
--fps for --seconds, with several kinds of error added to the true joints:
independent noise per joint and axis, per-frame bone-length jitter, both.
For each it prints the fitted-to-raw distance (what the fit is asked to
minimise), the fit's and the raw joints' distance to the truth, and the
speed of the analytic pose and of the refinement; then the live per-frame
fit and the export writers. Markdown tables for docs/EXPORT.md; it is a
script, not a timed test.

    .venv/bin/python scripts/bench_posefit.py --seconds 60 --subjects 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import machine_line  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

from core import skeleton as sk  # noqa: E402
from core.export import write_bvh, write_joints_csv, write_raw_csv, write_rotations_csv  # noqa: E402
from core.posefit import fit_frame, fit_pose  # noqa: E402
from core.rotations import to_wxyz  # noqa: E402
from core.sim.motion import Performer, ProceduralMotion  # noqa: E402
from core.sim.subject import Subject  # noqa: E402
from tests.test_posefit import jittered  # noqa: E402

CASES = {
    "truth": lambda x, rng: x,
    "iid 5 mm/axis": lambda x, rng: x + rng.normal(0, 5.0, x.shape),
    "iid 12 mm/axis (~19 mm/joint)": lambda x, rng: x + rng.normal(0, 12.0, x.shape),
    "iid 15 mm/axis (~24 mm/joint)": lambda x, rng: x + rng.normal(0, 15.0, x.shape),
    "bone jitter 2%": lambda x, rng: jittered(x, 0.02, rng),
    "bone jitter 2% + iid 2 mm": lambda x, rng: jittered(x, 0.02, rng) + rng.normal(0, 2.0, x.shape),
    "bone jitter 3%": lambda x, rng: jittered(x, 0.03, rng),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--subjects", type=int, default=3)
    args = ap.parse_args()

    times = np.arange(0.0, args.seconds, 1.0 / args.fps)
    takes = []
    for seed in range(args.subjects):
        poses = Performer(Subject.from_seed(seed), ProceduralMotion(seed)).poses_at(times)
        bones = poses.rotations[:, [b.start for b in sk.IMU_BONES]].reshape(-1, 3, 3)
        imus = to_wxyz(Rotation.from_matrix(bones)).reshape(len(times), sk.NUM_IMUS, 4)
        takes.append((seed, poses.positions_mm, imus))

    print(machine_line())
    print(f"{args.subjects} subjects x {len(times)} frames ({args.seconds:g} s at {args.fps:g} fps), IMUs on\n")
    print("| raw joints | fit-to-raw mean mm | p95 mm | analytic mean mm | fit-to-truth mm "
          "| raw-to-truth mm | analytic frames/s | refined frames/s |")
    print("|---|---|---|---|---|---|---|---|")
    last_fit = None
    for name, make in CASES.items():
        row = {k: [] for k in ("mean", "p95", "an", "fit_t", "raw_t", "fps_a", "fps_r")}
        for seed, truth, imus in takes:
            raw = make(truth, np.random.default_rng(seed + 100))
            t0 = time.perf_counter()
            analytic = fit_pose(times, raw, imus, refine=False)
            t1 = time.perf_counter()
            fit = fit_pose(times, raw, imus)
            t2 = time.perf_counter()
            rep = fit.report()
            row["mean"].append(rep.mean_mm)
            row["p95"].append(rep.p95_mm)
            row["an"].append(analytic.report().mean_mm)
            row["fit_t"].append(np.linalg.norm(fit.positions_mm - truth, axis=2).mean())
            row["raw_t"].append(np.linalg.norm(raw - truth, axis=2).mean())
            row["fps_a"].append(len(times) / (t1 - t0))
            row["fps_r"].append(len(times) / (t2 - t1))
            last_fit = (raw, fit)
        m = {k: float(np.mean(v)) for k, v in row.items()}
        print(f"| {name} | {m['mean']:.2f} | {m['p95']:.2f} | {m['an']:.2f} | {m['fit_t']:.2f} "
              f"| {m['raw_t']:.2f} | {m['fps_a']:.0f} | {m['fps_r']:.0f} |")

    raw, fit = last_fit
    _, _, imus = takes[-1]
    n = min(len(times), 600)
    t0 = time.perf_counter()
    for i in range(n):
        fit_frame(raw[i], imus[i], fit.offsets_mm)
    live_ms = (time.perf_counter() - t0) / n * 1e3
    print(f"\nlive fit_frame (analytic, IMUs on): {live_ms:.2f} ms a frame ({1e3 / live_ms:.0f} frames/s)\n")

    print(f"| writer ({len(times)} frames) | seconds | size MB |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        conf = np.ones(raw.shape[:2])
        for label, fn in (("BVH (cm)", lambda p: write_bvh(p, fit, args.fps)),
                          ("joints CSV", lambda p: write_joints_csv(p, fit)),
                          ("rotations CSV", lambda p: write_rotations_csv(p, fit)),
                          ("raw CSV", lambda p: write_raw_csv(p, times, raw, conf))):
            path = Path(tmp) / "out"
            t0 = time.perf_counter()
            fn(path)
            dt = time.perf_counter() - t0
            print(f"| {label} | {dt:.2f} | {path.stat().st_size / 1e6:.1f} |")


if __name__ == "__main__":
    main()
