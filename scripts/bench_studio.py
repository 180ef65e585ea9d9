"""Benchmark the simulated studio and the live pipeline, one frame at a time.

Prints a table (median and p95 ms per frame) for the stages of one live
frame on the standard studio at the demo's resolution: the performer's pose,
8 silhouettes, 13 IMUs' samples for one frame period, the performer centre
and the 8 x 64^3 volume; and the poses/s of the motion generator in batches
(what training data generation sees).

    .venv/bin/python scripts/bench_studio.py --frames 200
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

from core.frames import FrameBundle  # noqa: E402
from core.pipeline import Pipeline  # noqa: E402
from core.sim.body import body_primitives  # noqa: E402
from core.sim.render import render_silhouettes  # noqa: E402
from core.sim.studio import SimulatedStudio, StudioConfig  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--width", type=int, default=480, help="camera image width (16:9), default 480")
    args = ap.parse_args()

    studio = SimulatedStudio(StudioConfig(seed=0, image_scale=args.width / 1920, camera_fps=args.fps))
    pipeline = Pipeline(studio.rig)
    pipeline.prepare()
    times = {k: [] for k in ("pose", "silhouettes (8)", "IMU samples (13)", "centre", "volume", "frame total")}
    studio.silhouettes(0.0)
    for i in range(1, args.frames + 1):
        t = i / args.fps
        a = time.perf_counter()
        poses = studio.poses(np.array([t]))
        b = time.perf_counter()
        body = body_primitives(studio.subject, poses.positions_mm[0], poses.rotations[0])
        masks = render_silhouettes(body, studio.rig)
        c = time.perf_counter()
        studio.imu_samples((i - 1) / args.fps, t)
        d = time.perf_counter()
        result = pipeline.process(FrameBundle(i, t, tuple(masks), np.full((13, 4), np.nan), np.full(13, np.inf)))
        e = time.perf_counter()
        times["pose"].append((b - a) * 1e3)
        times["silhouettes (8)"].append((c - b) * 1e3)
        times["IMU samples (13)"].append((d - c) * 1e3)
        times["centre"].append(result.timings_ms.get("centre", np.nan))
        times["volume"].append(result.timings_ms.get("volume", np.nan))
        times["frame total"].append((e - a) * 1e3)

    w, h = studio.rig[0].size
    print(machine_line())
    print(f"standard studio, 8 cameras at {w}x{h}, {args.frames} frames at {args.fps:g} fps of simulated time\n")
    print("| stage | median ms | p95 ms |\n|---|---:|---:|")
    for k, v in times.items():
        print(f"| {k} | {np.nanmedian(v):.2f} | {np.nanpercentile(v, 95):.2f} |")
    total = np.median(times["frame total"])
    print(f"\nlive frame rate this machine can sustain: {1e3 / total:.1f} frames/s (median frame {total:.1f} ms)")

    print("\nmotion generator, poses per second by batch size (one process):")
    print("| batch | poses/s |\n|---:|---:|")
    perf = studio.performer
    perf.poses_at(np.array([400.0]))
    for batch in (1, 32, 256):
        n = max(batch * 4, 256)
        ts = 100 + np.arange(n) / 120
        perf.poses_at(ts[-1:])  # the action timeline up to there is generated once, not timed
        t0 = time.perf_counter()
        for s in range(0, n, batch):
            perf.poses_at(ts[s:s + batch])
        print(f"| {batch} | {n / (time.perf_counter() - t0):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
