"""Takes: disk use, write and read speed, offline solve speed.

Records ``--seconds`` of the standard 8-camera studio (480x270, lockstep, so
every frame) into a temporary take, then reports: bytes per minute of take
per stream, the recorder's write rate, how fast `Take.frames()` plays the
take back, and the offline solve rate of the lite model on this machine at
batch 1 and ``--batch``. A benchmark, not a test: nothing is asserted.

    .venv/bin/python scripts/bench_takes.py
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.benchlib import machine_line  # noqa: E402


def stream_bytes(root: Path, pattern: str) -> int:
    """Bytes of a take's camera streams matching `pattern`."""
    return sum(f.stat().st_size for f in (root / "cameras").glob(pattern))


def pose_fit_table(take, joints, truth) -> None:
    """The export's pose fit on the lite model's real output: how far the
    fitted joints are from the network's, and from the truth."""
    import numpy as np

    from core.filters import FilterConfig, apply_filter
    from core.posefit import fit_pose

    calib = take.imu_calibration
    quats, _ = take.imu_at(joints.times_s)
    bones = np.stack([calib.bone_wxyz(q) for q in quats])
    raw = joints.joints_mm
    print(f"\n| {'pose fit on the lite solve':<30} | {'fit to its input':>16} | {'fit to raw':>10} | "
          f"{'input to truth':>14} | {'fit to truth':>12} |")
    print(f"|{'-' * 32}|{'-' * 18}|{'-' * 12}|{'-' * 16}|{'-' * 14}|")
    for label, cfg in (("no smoothing", FilterConfig(kind="off")),
                       ("zero-phase 6 Hz", FilterConfig(kind="zero-phase", cutoff_hz=6.0))):
        x = apply_filter(cfg, joints.times_s, raw)
        fit = fit_pose(joints.times_s, x, bones, confidence=joints.confidence)
        ok = fit.valid
        d = lambda a, b: float(np.nanmean(np.linalg.norm(a[ok] - b[ok], axis=-1)))  # noqa: E731
        print(f"| {label:<30} | {fit.report().mean_mm:13.1f} mm | {d(fit.positions_mm, raw):7.1f} mm | "
              f"{d(x, truth):11.1f} mm | {d(fit.positions_mm, truth):9.1f} mm |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--fps", type=float, default=15.0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--solve-frames", type=int, default=48, help="frames to solve per batch size")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from app.cli.process import load_model
    from core.deepfuse.engine import InferenceEngine
    from core.take.process import solve_take
    from core.take.take import Take
    from tests.takes import record_lockstep

    print(f"$ {shlex.join(['python', *sys.argv])}")
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "take"
        t = time.perf_counter()
        _, stats, truth, _ = record_lockstep(root, seconds=args.seconds, fps=args.fps, video=True)
        rec_s = time.perf_counter() - t
        minutes = args.seconds / 60
        sizes = {"imu": (root / "imu.stream").stat().st_size,
                 "live joints": (root / "live.stream").stat().st_size,
                 "silhouettes (8 cameras)": stream_bytes(root, "*.silhouettes.stream"),
                 "video, motion JPEG (8 cameras)": stream_bytes(root, "*.video.stream")}
        print(f"\n{args.seconds:g} s take, 8 cameras 480x270 at {args.fps:g} fps, 13 IMUs; recorded (render + write) "
              f"in {rec_s:.1f} s\n")
        print(f"| {'stream':<32} | {'MB per minute':>13} |")
        print(f"|{'-' * 34}|{'-' * 15}|")
        for k, v in sizes.items():
            print(f"| {k:<32} | {v / 1e6 / minutes:13.2f} |")
        take = Take(root)
        t = time.perf_counter()
        n = sum(1 for _ in take.frames())
        read_s = time.perf_counter() - t
        print(f"\nplayback: {n} frames in {read_s:.2f} s = {n / read_s:.0f} frames/s "
              "(silhouettes unpacked, IMU slerped)")
        model, _, _ = load_model("lite")
        engine = InferenceEngine(model, take.rig, device="cpu", threads=args.threads)
        engine.prepare()
        print(f"\n| {'offline solve, lite, CPU':<28} | {'frames/s':>8} |")
        print(f"|{'-' * 30}|{'-' * 10}|")
        frames = [(list(b.silhouettes), None) for b, _ in zip(take.frames(), range(args.solve_frames))]
        for bs in (1, args.batch):
            engine.solve_batch(frames[:bs], batch_size=bs)  # warm
            t = time.perf_counter()
            engine.solve_batch(frames, batch_size=bs)
            print(f"| batch {bs:<22} | {len(frames) / (time.perf_counter() - t):8.1f} |")
        t = time.perf_counter()
        joints = solve_take(take, engine, batch_size=args.batch)
        print(f"\nwhole take through solve_take (batch {args.batch}, with IMUs): {len(joints)} frames in "
              f"{time.perf_counter() - t:.1f} s")
        pose_fit_table(take, joints, truth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
