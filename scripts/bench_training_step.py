"""Benchmark: where a lite training step's time goes on this machine, and
how many frames a second training reaches with each way of running it. A
script, not a timed test; its tables go to docs/BENCHMARKS.md.

    .venv/bin/python scripts/bench_training_step.py --motion-dir ../shared/motion/cmu

Part 1 renders frames in this process and times each stage of making one
(core.deepfuse.data.STAGES). Part 2 times the network's forward and
backward passes (with the optimiser step) at each thread count, memory
layout and precision, then breaks a step down by operator and measures how
far bf16 moves the shipped weights' joints. Part 3 runs the real training loop
(core.deepfuse.train.train: channels-last on the CPU, bf16 autocast where
the CPU has bf16 units unless the run is fp32) for --seconds per setting in
a scratch folder and reports frames per second after a warm-up.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import machine_line  # noqa: E402

from core.deepfuse.batch import collate  # noqa: E402
from core.deepfuse.data import STAGES, DataConfig, TrainingData  # noqa: E402
from core.deepfuse.network import PRESETS, DeepFuseNet  # noqa: E402
from core.deepfuse.train import TrainConfig, loss_fn, native_bf16, train  # noqa: E402


def data_config(args) -> DataConfig:
    return DataConfig(seed=11, motion_dir=args.motion_dir, body="mesh", p_routine=0.1)


def stage_table(args) -> None:
    torch.set_num_threads(1)
    data = TrainingData(data_config(args))
    data.batch(args.batch)          # opens the clip and rig pools outside the timing
    data.stage_s = dict.fromkeys(STAGES, 0.0)
    n, collate_s = 0, 0.0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < args.data_seconds:
        samples = [data.sample() for _ in range(args.batch)]
        t = time.perf_counter()
        collate(samples)
        collate_s += time.perf_counter() - t
        n += args.batch
    total = time.perf_counter() - t0
    print(f"\nMaking training frames, one process, one thread ({n} frames, mesh bodies, "
          f"{'CMU + procedural' if args.motion_dir else 'procedural'} motion):\n")
    print("| stage | ms a frame | share |\n|---|---:|---:|")
    rows = {**data.stage_s, "collate": collate_s}
    rows["other"] = total - sum(rows.values())
    for k, v in rows.items():
        print(f"| {k} | {1e3 * v / n:.2f} | {100 * v / total:.0f} % |")
    print(f"| **all** | **{1e3 * total / n:.2f}** | {n / total:.1f} frames/s |")


def network_table(args) -> None:
    data = TrainingData(data_config(args))
    batch = data.batch(args.batch)
    print(f"\nThe lite network, batch {args.batch}, on the CPU:\n")
    print("| threads | layout | precision | forward ms | backward + step ms | frames/s (network only) |\n"
          "|---:|---|---|---:|---:|---:|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for channels_last, bf16 in ((False, False), (True, False), (True, True)):
            torch.manual_seed(0)
            model = DeepFuseNet(PRESETS["lite"])
            if channels_last:
                model.use_channels_last()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
            fw = bw = 0.0
            for i in range(args.reps + 2):
                t0 = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = model(*batch.inputs())
                loss = loss_fn(out, batch, model.cfg)
                t1 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                t2 = time.perf_counter()
                if i >= 2:
                    fw, bw = fw + t1 - t0, bw + t2 - t1
            fw, bw = fw / args.reps, bw / args.reps
            print(f"| {threads} | {'channels-last' if channels_last else 'default'} | {'bf16' if bf16 else 'fp32'} "
                  f"| {1e3 * fw:.0f} | {1e3 * bw:.0f} | {args.batch / (fw + bw):.1f} |")


def profile_table(args) -> None:
    """The network's step by operator (torch.profiler, 2 threads, fp32 channels-last and bf16)."""
    from torch.profiler import ProfilerActivity, profile

    batch = TrainingData(data_config(args)).batch(args.batch)
    torch.set_num_threads(2)
    for bf16 in (False, True):
        model = DeepFuseNet(PRESETS["lite"]).use_channels_last()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(*batch.inputs())
            loss = loss_fn(out, batch, model.cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(2):
            step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                step()
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events)
        print(f"\nThe lite network's step by operator, 2 threads, channels-last, {'bf16' if bf16 else 'fp32'} "
              "(self CPU time):\n")
        print("| operator | share |\n|---|---:|")
        for e in events[:6]:
            print(f"| {e.key} | {100 * e.self_cpu_time_total / total:.0f} % |")


def precision_table(args) -> None:
    """How far a bf16 forward pass of the shipped weights lands from the fp32 one."""
    from core.deepfuse.weights import load_weights, shipped_model_path

    torch.set_num_threads(2)
    model, _ = load_weights(shipped_model_path("lite"))
    model.eval()
    data = TrainingData(replace(data_config(args), seed=5))
    rows = {"stage 1 moved": [], "stage 2 moved": [], "error fp32": [], "error bf16": []}
    with torch.no_grad():
        for _ in range(args.precision_batches):
            b = data.batch(args.batch)
            o32 = model(*b.inputs())
            with torch.autocast("cpu", dtype=torch.bfloat16):
                o16 = model(*b.inputs())
            rows["stage 1 moved"].append((o32.joints1_mm - o16.joints1_mm).norm(dim=-1).mean().item())
            rows["stage 2 moved"].append((o32.joints2_mm - o16.joints2_mm).norm(dim=-1).mean().item())
            rows["error fp32"].append((o32.joints2_mm - b.joints_mm).norm(dim=-1).mean().item())
            rows["error bf16"].append((o16.joints2_mm - b.joints_mm).norm(dim=-1).mean().item())
    n = args.precision_batches * args.batch
    print(f"\nThe shipped lite weights in bf16 against fp32 ({n} training frames, mm):\n")
    print("| what | mm |\n|---|---:|")
    labels = {"stage 1 moved": "stage-1 joints, bf16 from fp32", "stage 2 moved": "fused joints, bf16 from fp32",
              "error fp32": "fused error against the truth, fp32", "error bf16": "fused error against the truth, bf16"}
    for k, v in rows.items():
        print(f"| {labels[k]} | {sum(v) / len(v):.2f} |")


def loop_table(args) -> None:
    print(f"\nThe training loop (core.deepfuse.train), lite, batch {args.batch}, "
          f"{args.seconds:.0f} s a setting after a {args.warmup:.0f} s warm-up:\n")
    print("| threads | render workers | precision | steps/s | frames/s |\n|---:|---:|---|---:|---:|")
    for threads, workers, precision in args.settings:
        cfg = TrainConfig(net=PRESETS["lite"], data=data_config(args), steps=10**6, batch_size=args.batch,
                          lr=1e-4, checkpoint_every=10**6, log_every=10**6, amp=precision == "bf16")
        with tempfile.TemporaryDirectory() as tmp:
            times: list[float] = []
            train(tmp, cfg, threads=threads, workers=workers, device="cpu", max_seconds=args.warmup + args.seconds,
                  report=lambda step, total, m: times.append(time.perf_counter()))
        t_start = times[0] + args.warmup
        later = [t for t in times if t >= t_start]
        rate = (len(later) - 1) / (later[-1] - later[0]) if len(later) > 1 else float("nan")
        if precision == "bf16" and not native_bf16(torch.device("cpu")):
            precision = "fp32 (no bf16 units)"
        print(f"| {threads} | {workers} | {precision} | {rate:.2f} | {rate * args.batch:.1f} |")


def _setting(text: str) -> tuple[int, int, str]:
    threads, workers, precision = text.split(",")
    if precision not in ("fp32", "bf16"):
        raise argparse.ArgumentTypeError("precision must be fp32 or bf16")
    return int(threads), int(workers), precision


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--motion-dir", default=None, help="CMU clips (as the shipped model's training used)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--data-seconds", type=float, default=40.0, help="how long to time the stages")
    ap.add_argument("--reps", type=int, default=10, help="timed network steps per thread count")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seconds", type=float, default=60.0, help="timed training per loop setting")
    ap.add_argument("--warmup", type=float, default=20.0)
    ap.add_argument("--setting", dest="settings", action="append", type=_setting,
                    help="THREADS,WORKERS,PRECISION (fp32 or bf16) for the loop table (repeatable; "
                    "default 2,0,fp32 2,1,fp32 2,0,bf16 2,1,bf16 1,1,bf16)")
    ap.add_argument("--precision-batches", type=int, default=8)
    ap.add_argument("--skip", nargs="*", default=[], choices=["stages", "network", "profile", "precision", "loop"])
    args = ap.parse_args()
    args.settings = args.settings or [(2, 0, "fp32"), (2, 1, "fp32"), (2, 0, "bf16"), (2, 1, "bf16"), (1, 1, "bf16")]
    print(machine_line())
    if "stages" not in args.skip:
        stage_table(args)
    if "network" not in args.skip:
        network_table(args)
    if "profile" not in args.skip:
        profile_table(args)
    if "precision" not in args.skip:
        precision_table(args)
    if "loop" not in args.skip:
        loop_table(args)


if __name__ == "__main__":
    main()
