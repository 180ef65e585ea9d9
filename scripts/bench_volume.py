"""Benchmark: performer centre and K x 64^3 volume for the standard studio.

Eight full-HD cameras (standard_studio; --size for others), one synthetic performer (a capped
cylinder 250 mm x 1.75 m, its silhouette drawn as the filled hull of its
projected surface points) at a random place over the capture area each frame,
so grids land at varied lattice positions. Prints a markdown table for
docs/BENCHMARKS.md; it is a script, not a timed test.

    .venv/bin/python scripts/bench_volume.py --frames 200
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import cpu_model  # noqa: E402

from core.camera.rig import standard_studio  # noqa: E402
from core.volume.builder import VolumeBuilder  # noqa: E402
from core.volume.builder_torch import TorchVolumeBuilder  # noqa: E402
from core.volume.centre import CentreFinder  # noqa: E402
from core.volume.grid import VoxelGrid  # noqa: E402


def performer_masks(rig, centre_xy, radius=250.0, height=1750.0):
    """Silhouettes (uint8 0/255) of a vertical cylinder standing at centre_xy."""
    a = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    ring = np.stack([centre_xy[0] + radius * np.cos(a), centre_xy[1] + radius * np.sin(a)], -1)
    pts = np.concatenate([np.c_[ring, np.full(len(a), z)] for z in (0.0, height)])
    masks = []
    for cam in rig:
        uv, _ = cam.project(pts)
        m = np.zeros((cam.height, cam.width), np.uint8)
        hull = cv2.convexHull(np.round(uv).astype(np.int32))
        cv2.fillConvexPoly(m, hull, 255)
        masks.append(m)
    return masks


def stats(times_s) -> tuple[float, float]:
    t = np.asarray(times_s) * 1e3
    return float(np.median(t)), float(np.percentile(t, 95))


def timed(fn, sync=None):
    t0 = time.perf_counter()
    out = fn()
    if sync is not None:
        sync()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200, help="frames for the CPU numpy paths")
    ap.add_argument("--torch-cpu-frames", type=int, default=5, help="frames for torch on the CPU (slow)")
    ap.add_argument("--batch", type=int, default=16, help="frames per batch for the CUDA batched build")
    ap.add_argument("--size", default="1920x1080", help="camera resolution WxH (live demo: 480x270)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    w, h = (int(v) for v in args.size.lower().split("x"))
    rig = standard_studio((w, h))
    n_scenes = min(args.frames, 24)  # drawing silhouettes is not what is measured
    spots = rng.uniform(-1800, 1800, (n_scenes, 2))
    scenes = [performer_masks(rig, xy) for xy in spots]
    rows = []

    finder = CentreFinder(rig)
    for m in scenes[:3]:
        finder.find(m)
    centres, times = [], []
    for i in range(args.frames):
        c, dt = timed(lambda: finder.find(scenes[i % n_scenes]))
        centres.append(c)
        times.append(dt)
    truth = np.c_[spots, np.full(n_scenes, 1750.0 / 2)]
    err = [np.linalg.norm(c - truth[i % n_scenes]) for i, c in enumerate(centres) if c is not None]
    rows.append(("centre finder (coarse hull, numpy + cv2)", *stats(times),
                 f"8 masks of {w}x{h}; error from the cylinder's centre: median {np.median(err):.0f} mm, "
                 f"max {np.max(err):.0f} mm"))
    if any(c is None for c in centres):
        raise SystemExit("the centre finder missed the synthetic performer")
    grids = [VoxelGrid.around(c) for c in centres]

    builder = VolumeBuilder(rig)
    _, t_table = timed(builder.prepare)
    out = np.empty((len(rig), 64, 64, 64), np.uint8)
    builder.build(scenes[0], grids[0], out=out)
    times = [timed(lambda: builder.build(scenes[i % n_scenes], grids[i], out=out))[1] for i in range(args.frames)]
    in_table = sum(builder.in_table(g) for g in grids)
    rows.append(("volume, numpy builder (table + cv2.remap)", *stats(times), f"{in_table}/{len(grids)} grids in table"))
    one_missing = [None] + scenes[0][1:]
    times = [timed(lambda: builder.build(one_missing, grids[i], out=out))[1] for i in range(args.frames)]
    rows.append(("volume, numpy builder, one camera None", *stats(times), ""))

    direct = TorchVolumeBuilder(rig, "cpu")
    table_cpu = TorchVolumeBuilder(rig, "cpu", table=True)
    _, t_table_torch_cpu = timed(table_cpu.prepare)
    n = max(1, args.torch_cpu_frames)
    times = [timed(lambda: direct.build(scenes[i % n_scenes], grids[i]))[1] for i in range(n)]
    rows.append(("volume, torch CPU direct projection (float64)", *stats(times), f"{n} frames"))
    times = [timed(lambda: table_cpu.build(scenes[i % n_scenes], grids[i]))[1] for i in range(args.frames)]
    rows.append(("volume, torch CPU table + take", *stats(times), ""))

    cuda_note = "not available on this machine"
    t_table_cuda = None
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        sync = torch.cuda.synchronize
        cuda_note = torch.cuda.get_device_name(dev)
        dev_scenes = [[torch.from_numpy(m).to(dev) for m in s] for s in scenes]
        cd = TorchVolumeBuilder(rig, dev)
        ct = TorchVolumeBuilder(rig, dev, table=True)
        _, t_table_cuda = timed(ct.prepare, sync)
        for b in (cd, ct):
            for _ in range(3):
                b.build(dev_scenes[0], grids[0])
        sync()
        for name, b in (("direct", cd), ("table", ct)):
            times = [timed(lambda: b.build(dev_scenes[i % n_scenes], grids[i]), sync)[1] for i in range(args.frames)]
            rows.append((f"volume, CUDA {name}, masks on device", *stats(times), "batch 1"))
            times = [timed(lambda: b.build(scenes[i % n_scenes], grids[i]), sync)[1] for i in range(args.frames)]
            rows.append((f"volume, CUDA {name}, masks uploaded from numpy", *stats(times), "batch 1"))
            B = args.batch
            batches = max(1, args.frames // B)
            times = []
            for j in range(batches):
                idx = [(j * B + i) % len(grids) for i in range(B)]
                frames = [dev_scenes[i % n_scenes] for i in idx]
                _, dt = timed(lambda: b.build_batch(frames, [grids[i] for i in idx]), sync)
                times.append(dt / B)
            rows.append((f"volume, CUDA {name}, batched", *stats(times), f"per frame, batch {B}"))

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), numpy {np.__version__}, OpenCV {cv2.__version__}, "
          f"Python {platform.python_version()}")
    print(f"GPU: {cuda_note}")
    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"rig: 8 x {rig[0].width}x{rig[0].height}; grids 64^3 x 35 mm; {args.frames} frames\n")
    box = builder.box
    print(f"numpy table: {box.shape} lattice cells x 8 cameras, {builder.table_bytes / 2**20:.1f} MiB, "
          f"built in {t_table:.2f} s")
    print(f"torch CPU table: {table_cpu.table_bytes / 2**20:.1f} MiB, built in {t_table_torch_cpu:.2f} s")
    if t_table_cuda is not None:
        print(f"torch CUDA table: built in {t_table_cuda:.3f} s")
    print()
    print("| stage | median ms | p95 ms | notes |")
    print("|---|---:|---:|---|")
    for name, med, p95, note in rows:
        print(f"| {name} | {med:.2f} | {p95:.2f} | {note} |")


if __name__ == "__main__":
    main()
