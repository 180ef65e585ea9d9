"""Benchmark: what each training motion source costs, per frame and per clip.

For each source alone (procedural actions, recorded CMU clips, random poses,
upper/lower mixes) and for the default mix, times TrainingData(cfg).sample()
over --frames frames (after a warm-up that fills the pools and, for recorded
motion, loads every clip once: the cost of a warm LRU), then the cost of
making one clip (a subject playing the motion, poses_per_clip poses) and,
for recorded motion, of loading one clip (parse, retarget, set on the floor).

    .venv/bin/python scripts/bench_training_motion.py --motion-dir /path/to/cmu --frames 100
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import machine_line  # noqa: E402

from core.deepfuse.data import DataConfig, TrainingData  # noqa: E402

ONLY = {
    "actions": dict(p_recorded=0.0, p_random_poses=0.0, p_mixed=0.0),
    "recorded": dict(p_recorded=1.0, p_random_poses=0.0, p_mixed=0.0),
    "random_poses": dict(p_recorded=0.0, p_random_poses=1.0, p_mixed=0.0),
    "mixed": dict(p_recorded=0.0, p_random_poses=0.0, p_mixed=1.0),
    "default mix": {},
}


def run(cfg: DataConfig, frames: int, clips: int) -> tuple[float, float, TrainingData]:
    data = TrainingData(cfg)
    if data.recorded is not None and cfg.p_recorded > 0:
        for i in range(len(data.recorded)):   # a warm cache, as after the first minutes of a run
            data.recorded.motion(i)
    for _ in range(2 * cfg.poses_per_clip):
        data.sample()
    t0 = time.perf_counter()
    for _ in range(frames):
        data.sample()
    per_frame = (time.perf_counter() - t0) / frames
    t0 = time.perf_counter()
    for _ in range(clips):
        data._new_clip()
    per_clip = (time.perf_counter() - t0) / clips
    return per_frame, per_clip, data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--motion-dir", default=None, help="folder of CMU clips (001_01.bvh, ...)")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--clips", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)  # as in a DataLoader worker
    base = DataConfig(seed=3, motion_dir=args.motion_dir)
    print(machine_line())
    print(f"{args.frames} frames a row, poses_per_clip {base.poses_per_clip}\n")
    print("| motion | ms a frame | ms a clip | clip's share of a frame, ms |\n|---|---:|---:|---:|")
    loaded = None
    for name, change in ONLY.items():
        if name == "recorded" and not args.motion_dir:
            continue
        per_frame, per_clip, data = run(replace(base, **change), args.frames, args.clips)
        print(f"| {name} | {1e3 * per_frame:.1f} | {1e3 * per_clip:.0f} | "
              f"{1e3 * per_clip / base.poses_per_clip:.1f} |")
        if name == "recorded":
            loaded = data.recorded
    if loaded is not None:
        frames = sum(m.motion.clip.num_frames for m, _ in loaded._cache.values())
        print(f"\nloading {loaded.loads} clips ({frames} frames): {loaded.load_s:.1f} s, "
              f"{1e3 * loaded.load_s / loaded.loads:.0f} ms a clip, {1e6 * loaded.load_s / frames:.0f} us a frame")
        sizes = [m.motion.clip.motion.nbytes + m.motion._local_q.nbytes for m, _ in loaded._cache.values()]
        print(f"cached: {np.sum(sizes) / 1e6:.0f} MB ({np.mean(sizes) / 1e6:.1f} MB a clip)")


if __name__ == "__main__":
    main()
