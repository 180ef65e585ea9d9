"""Benchmark the DeepFuse inference engine: per-stage latency and network throughput.

For each model (--model lite|full|PATH, repeatable; default lite on the CPU,
lite and full on CUDA) on the standard 8-camera studio at 480x270: the
performer centre, the volume, the network forward (eager and the engine's
optimised batch-1 path: traced+frozen on the CPU, a CUDA graph on CUDA) and
engine.solve() end to end, at batch 1; then the eager network's frames/s by
batch size. Frames are rendered before any timing. Shipped weights are used
when present, else randomly initialised ones of the preset (timing does not
depend on the weights' values). It is a script, not a timed test.

    .venv/bin/python scripts/bench_deepfuse.py --frames 100
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import machine_line  # noqa: E402

from core.deepfuse.engine import InferenceEngine, bone_inputs  # noqa: E402
from core.deepfuse.network import PRESETS, DeepFuseNet, conv_macs, count_parameters  # noqa: E402
from core.deepfuse.weights import ModelFileError, load_weights, shipped_model_path  # noqa: E402
from core.sim.studio import SimulatedStudio, StudioConfig  # noqa: E402
from core.volume.grid import VoxelGrid  # noqa: E402


def load_model(spec: str) -> tuple[DeepFuseNet, str]:
    """The model for a preset name or a weights path, and where its weights came from."""
    if spec not in PRESETS:
        return load_weights(spec)[0], f"file {spec}"
    path = shipped_model_path(spec)
    try:
        return load_weights(path)[0], f"shipped {path.name}"
    except ModelFileError:
        torch.manual_seed(0)
        return DeepFuseNet(PRESETS[spec]).eval(), f"RANDOM (no shipped {path.name}; timings only)"


def time_each(fn, items, warmup: int, sync) -> list[float]:
    """Seconds per call of fn(item), after warmup calls; items are cycled."""
    for i in range(warmup):
        fn(items[i % len(items)])
    sync()
    times = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        sync()  # CUDA work is asynchronous: count it in the call that queued it
        times.append(time.perf_counter() - t0)
    return times


def stats(times_s) -> tuple[float, float]:
    t = np.asarray(times_s) * 1e3
    return float(np.median(t)), float(np.percentile(t, 95))


def bench_model(spec, frames, rig, dev, args, sync):
    """(header line, stage rows, throughput rows) of one model."""
    model, source = load_model(spec)
    cfg = model.cfg
    header = (f"model {spec}: width {cfg.width}, depth {cfg.depth}, grid {cfg.grid_size}^3; "
              f"{count_parameters(model) / 1e6:.2f} M parameters, {2 * conv_macs(cfg) / 1e9:.1f} conv GFLOP/frame; "
              f"weights {source}")
    engine = InferenceEngine(model, rig, device=dev, precision=args.precision, cpu_precision=args.cpu_precision,
                             threads=args.threads if dev.type == "cpu" else None, optimise=True)
    engine.prepare()  # per-rig tables + trace/freeze or graph capture, not timed
    header += f"; {str(engine.dtype).replace('torch.', '')}"

    # Centres, grids and network inputs for each frame, built untimed so each stage is timed alone.
    staged = []
    for masks, bone_wxyz in frames:
        centre = engine.volumes.centre_finder.find(masks)
        if centre is None:
            continue  # nobody seen: solve() would return None, nothing to time
        grid = VoxelGrid.around(centre, cfg.grid_size, cfg.voxel_mm)
        vol = engine.volumes.builder.build(masks, grid)
        vol = vol if isinstance(vol, torch.Tensor) else torch.from_numpy(vol)
        present = np.array([m is not None for m in masks])
        staged.append((masks, bone_wxyz, grid, engine._inputs([vol], [grid], [present], [bone_inputs(bone_wxyz)])))
    if not staged:
        raise SystemExit("the centre finder found the performer in none of the frames")
    skipped = len(frames) - len(staged)

    def eager(inputs):
        with torch.inference_mode():
            return engine.net(*inputs)

    def fast(inputs):
        with torch.inference_mode():
            return engine._fast(*inputs)

    w = args.warmup
    rows = [
        ("performer centre", time_each(lambda s: engine.volumes.centre_finder.find(s[0]), staged, w, sync), ""),
        ("volume build", time_each(lambda s: engine.volumes.builder.build(s[0], s[2]), staged, w, sync),
         f"{len(engine.rig)} x {cfg.grid_size}^3"),
        ("network forward, eager", time_each(lambda s: eager(s[3]), staged, w, sync), "inputs already on device"),
        ("network forward, " + ("CUDA graph" if dev.type == "cuda" else "traced + frozen"),
         time_each(lambda s: fast(s[3]), staged, w, sync), "engine._fast; inputs already on device"),
        ("end to end, engine.solve()", time_each(lambda s: engine.solve(s[0], s[1]), staged, w, sync),
         "silhouettes + IMU bones in, joints out"),
    ]
    if skipped:
        rows[-1] = (*rows[-1][:2], rows[-1][2] + f"; {skipped} frames without a performer left out")
    stage_rows = [(spec, name, *stats(t), note) for name, t, note in rows]

    # Throughput of the eager network alone, batched the way solve_batch runs it.
    thr_rows = []
    for batch in args.batches:
        inputs = engine._example(batch)
        iters = max(2, math.ceil(args.frames / batch))
        times = time_each(lambda _: eager(inputs), [None] * iters, max(2, math.ceil(w / batch)), sync)
        thr_rows.append((spec, batch, batch * iters / sum(times), float(np.median(times)) * 1e3))
    return header, stage_rows, thr_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="lite, full or a weights file; repeatable "
                    "(default: lite on the CPU, lite and full on CUDA)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", choices=("fp16", "bf16", "fp32"), default="fp16",
                    help="on CUDA (CPU: --cpu-precision)")
    ap.add_argument("--cpu-precision", choices=("auto", "fp32", "bf16"), default="auto",
                    help="on the CPU: auto (bf16 where the CPU computes it in hardware, as the app runs it), "
                    "fp32 or bf16")
    ap.add_argument("--frames", type=int, default=100, help="timed frames per stage")
    ap.add_argument("--warmup", type=int, default=10, help="untimed calls before each stage")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--batches", help='batch sizes for throughput (default "1,8,32" on CUDA, "1,4" on CPU)')
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available on this machine")
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    args.batches = [int(b) for b in (args.batches or ("1,8,32" if cuda else "1,4")).split(",")]
    models = args.model or (["lite", "full"] if cuda else ["lite"])
    # Set in the main thread, which is the one that solves here (prepare() sets it too on the CPU).
    torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    studio = SimulatedStudio(StudioConfig(seed=0))
    frames = []  # (silhouettes, bone_wxyz) at 30 fps; rendering is not measured
    for i in range(args.frames):
        t = i / 30.0
        frames.append((studio.silhouettes(t), studio.truth(t).bone_wxyz))

    results = []
    for spec in models:
        results.append(bench_model(spec, frames, studio.rig, dev, args, sync))
        if cuda:
            torch.cuda.empty_cache()  # the engine is gone: the next model gets its memory back

    w, h = studio.rig[0].size
    print(machine_line())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; device {args.device}"
          + (f" ({torch.cuda.get_device_name(dev)})" if cuda else ""))
    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"standard studio, {len(studio.rig)} cameras at {w}x{h}, {args.frames} frames at 30 fps, "
          f"{args.warmup} warm-up calls per stage")
    for header, _, _ in results:
        print(header)
    print("\n| model | stage (batch 1) | median ms | p95 ms | rate Hz | notes |")
    print("|---|---|---:|---:|---:|---|")
    for _, rows, _ in results:
        for spec, name, med, p95, note in rows:
            hz = f"{1e3 / med:.1f}" if name.startswith("end to end") else ""
            print(f"| {spec} | {name} | {med:.2f} | {p95:.2f} | {hz} | {note} |")
    print("\n| model | batch | network frames/s | median ms per batch |")
    print("|---|---:|---:|---:|")
    for _, _, rows in results:
        for spec, batch, fps, ms in rows:
            print(f"| {spec} | {batch} | {fps:.1f} | {ms:.1f} |")


if __name__ == "__main__":
    main()
