"""Benchmark: how fast one process renders DeepFuse training frames, and how
big a training checkpoint of each preset is (model + AdamW state). A script,
not a timed test.

    .venv/bin/python scripts/bench_training_data.py --seconds 60
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import machine_line  # noqa: E402

from core.deepfuse.data import DataConfig, TrainingData  # noqa: E402
from core.deepfuse.network import PRESETS, DeepFuseNet  # noqa: E402


def checkpoint_mb(name: str) -> float:
    model = DeepFuseNet(PRESETS[name])
    opt = torch.optim.AdamW(model.parameters())
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # creates the two moment buffers a real checkpoint carries
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, buf)
    return buf.tell() / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to render")
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(1)  # as in a DataLoader worker
    data = TrainingData(DataConfig(seed=3))
    data.batch(args.batch)  # fills the rig and clip pools outside the timing
    t0, frames = time.perf_counter(), 0
    while time.perf_counter() - t0 < args.seconds:
        data.batch(args.batch)
        frames += args.batch
    rate = frames / (time.perf_counter() - t0)
    print(machine_line())
    print("| what | value |\n|---|---:|")
    print(f"| training frames rendered per second, one process | {rate:.1f} |")
    for name in PRESETS:
        print(f"| {name} checkpoint (model + AdamW), MB | {checkpoint_mb(name):.1f} |")


if __name__ == "__main__":
    main()
