"""Silhouette rendering speed: 8 cameras of the standard studio, several resolutions.

Prints one table row per (resolution, path): the numpy CPU renderer (culled,
one frame at a time, as the live demo uses it) and the torch brute-force
renderer (batched frames) on the CPU and, when present, on CUDA. Times are
per frame of 8 masks. A benchmark, not a test: nothing is asserted.

    .venv/bin/python scripts/bench_render.py --frames 20
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import skeleton as sk  # noqa: E402
from core.camera.rig import standard_studio  # noqa: E402
from core.kinematics import forward_kinematics  # noqa: E402
from core.sim.body import Body, BodyShape  # noqa: E402
from core.sim.render import render_silhouettes  # noqa: E402
from core.sim.render_torch import render_silhouettes_torch  # noqa: E402
from core.sim.subject import Subject  # noqa: E402

RESOLUTIONS = ((480, 270), (960, 540), (1920, 1080))


def random_bodies(n: int, seed: int = 0) -> list[Body]:
    """n random poses of varied subjects, anywhere in the capture area."""
    rng = np.random.default_rng(seed)
    bodies = []
    for i in range(n):
        subject = Subject.from_seed(int(rng.integers(1 << 30)))
        local = rng.normal(size=(sk.NUM_JOINTS, 3)) * 0.4
        local[sk.ROOT] = [0, 0, rng.uniform(-np.pi, np.pi)]
        root = subject.offsets_mm[sk.ROOT].copy()
        root[:2] = rng.uniform(-1800, 1800, 2)
        poses = forward_kinematics(subject.offsets_mm, root[None], Rotation.from_rotvec(local))
        bodies.append(BodyShape.from_subject(subject).pose(poses.positions_mm[0], poses.rotations[0]))
    return bodies


def time_numpy(bodies, rig) -> float:
    render_silhouettes(bodies[0], rig)  # builds the ray cache
    t0 = time.perf_counter()
    for b in bodies:
        render_silhouettes(b, rig)
    return (time.perf_counter() - t0) / len(bodies)


def time_torch(bodies, rig, device: str, batch: int) -> float:
    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    render_silhouettes_torch(Body.stack(bodies[:batch]), rig, device=device)  # caches, warm-up
    sync()
    t0 = time.perf_counter()
    for s in range(0, len(bodies), batch):
        render_silhouettes_torch(Body.stack(bodies[s : s + batch]), rig, device=device)
    sync()
    return (time.perf_counter() - t0) / len(bodies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20, help="frames timed per row (numpy, CUDA)")
    parser.add_argument("--cpu-torch-frames", type=int, default=2,
                        help="frames for the torch CPU rows (brute force: slow, a correctness twin)")
    parser.add_argument("--batch", type=int, default=16, help="frames per torch call")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    bodies = random_bodies(args.frames)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"8 cameras, standard studio; {args.frames} random frames; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads" + (f", {torch.cuda.get_device_name()}" if "cuda" in devices else ""))
    print(f"{'resolution':>11} {'path':<22} {'ms/frame':>9} {'frames/s':>9}")
    for size in RESOLUTIONS:
        rig = standard_studio(size)
        res = f"{size[0]}x{size[1]}"
        rows = [("numpy CPU (culled)", time_numpy(bodies, rig))]
        for dev in devices:
            n = args.frames if dev == "cuda" else min(args.frames, args.cpu_torch_frames)
            b = min(args.batch, n)
            rows.append((f"torch {dev} (batch {b})", time_torch(bodies[:n], rig, dev, b)))
        for name, sec in rows:
            print(f"{res:>11} {name:<22} {sec * 1e3:9.1f} {1 / sec:9.1f}", flush=True)


if __name__ == "__main__":
    main()
