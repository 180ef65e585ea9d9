"""`main.py train`: train DeepFuse on the simulated studio (resumable).

Runs on a CPU or a CUDA GPU; needs only torch, numpy, scipy and OpenCV (the
progress bar uses tqdm when it is installed, plain lines otherwise)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

PRESET_HELP = "full (paper scale, for a GPU) or lite (for live use on a CPU)"


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, help="folder of the run (created, or resumed when it holds one)")
    p.add_argument("--preset", choices=("full", "lite"), default="lite", help=PRESET_HELP)
    p.add_argument("--steps", type=int, default=None, help="total optimiser steps of the run (new runs; default 10000)")
    p.add_argument("--more", type=int, default=None, help="stop after this many more steps")
    p.add_argument("--minutes", type=float, default=None, help="stop (with a checkpoint) after this much wall time")
    p.add_argument("--batch", type=int, default=None, help="frames per step (default 4)")
    p.add_argument("--optimizer", choices=("adam", "rmsprop"), default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--paper-schedule", action="store_true", help="RMSProp, lr 1e-5, x0.2 every 5 epochs")
    p.add_argument("--vision-only", action="store_true", help="ablation: no IMU-bone layer")
    p.add_argument("--head", choices=("soft", "hard", "fc"), default=None, help="ablation: output layer")
    p.add_argument("--theta", type=float, default=None, help="soft-argmax sharpness (default 3)")
    p.add_argument("--no-random-shut", action="store_true", help="ablation: Random Shut off")
    p.add_argument("--fp32", action="store_true",
                   help="train in fp32 throughout (default: bf16 autocast where the GPU or CPU has bf16 units)")
    p.add_argument("--seed", type=int, default=0, help="data stream seed")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's choice)")
    p.add_argument("--workers", type=int, default=0,
                   help="processes rendering training frames (a GPU needs several; default 0: in this one)")
    p.add_argument("--export", type=Path, default=None, help="also write the model as a weights file here")
    p.add_argument("--init", default=None, metavar="MODEL",
                   help="start a new run from these weights (lite, full or a file; fine-tuning)")
    p.add_argument("--body", choices=("capsule", "mesh"), default="mesh",
                   help="simulated performers: skinned Anny meshes (default) or capsules")
    p.add_argument("--motion-dir", default=None, metavar="FOLDER",
                   help="CMU clips to train on beside procedural motion (default: $FUSECAP_MOTION_DIR); "
                   "the held-out subjects are never drawn")
    p.add_argument("--p-routine", type=float, default=0.1,
                   help="share of clips that are the IMU calibration routine (default 0.1)")


def build_config(args: argparse.Namespace):
    from core.deepfuse.data import MOTION_DIR_ENV, DataConfig
    from core.deepfuse.network import PRESETS
    from core.deepfuse.train import TrainConfig, paper_schedule

    net = PRESETS[args.preset]
    changes = {}
    if args.vision_only:
        changes["fuse_imu"] = False
    if args.head:
        changes["head"] = args.head
    if args.theta is not None:
        changes["theta"] = args.theta
    net = replace(net, **changes)
    motion_dir = args.motion_dir or os.environ.get(MOTION_DIR_ENV) or None
    data = DataConfig(seed=args.seed, p_shut=0.0 if args.no_random_shut else DataConfig.p_shut, body=args.body,
                      motion_dir=motion_dir, p_routine=args.p_routine)
    init = sha = None
    if args.init:
        from core.deepfuse.weights import SHIPPED, shipped_model_path
        from core.take.process import file_sha256

        path = shipped_model_path(args.init) if args.init in SHIPPED else Path(args.init)
        if not path.is_file():
            raise ValueError(f"--init: no weights file {path}")
        init, sha = str(path.resolve()), file_sha256(path)
    cfg = TrainConfig(net=net, data=data, threads=args.threads, init_weights=init, init_sha256=sha,
                      amp=not args.fp32)
    if args.paper_schedule:
        cfg = paper_schedule(cfg)
    opts = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch),
                              ("optimizer", args.optimizer), ("lr", args.lr)) if v is not None}
    return replace(cfg, **opts)


class _Reporter:
    def __init__(self) -> None:
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        self.bar = tqdm(total=1, unit="step", file=sys.stderr, dynamic_ncols=True) if tqdm else None
        self.last = 0

    def __call__(self, step: int, total: int, m: dict) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = step
            post = {"loss": f"{m['loss']:.3f}"}
            if m.get("mpjpe2_mm") is not None:
                post["mpjpe"] = f"{m['mpjpe2_mm']:.1f}mm"
            self.bar.set_postfix(post, refresh=True)
        elif step - self.last >= 50 or step == total:
            self.last = step
            print(f"step {step}/{total} loss {m['loss']:.3f}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_train(args: argparse.Namespace) -> int:
    """Alone, or as one rank under torchrun (core.deepfuse.distributed): every
    rank trains; rank 0 alone shows progress, writes the run and exports."""
    from core.deepfuse.train import export_weights, train

    main_rank = os.environ.get("RANK", "0") == "0"

    resuming = (args.run_dir / "config.json").exists()
    try:
        cfg = None if resuming else build_config(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rep = _Reporter() if main_rank else None
    try:
        metrics = train(args.run_dir, cfg, steps=args.more, device=args.device, report=rep,
                        max_seconds=None if args.minutes is None else args.minutes * 60,
                        threads=args.threads or None, workers=args.workers)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if rep is not None:
            rep.close()
    if metrics.get("world", 1) > 1:  # every rank says where it ended: the weights agree across ranks
        print(f"rank {metrics['rank']} of {metrics['world']}: step {metrics.get('step')}, "
              f"weights sha256 {metrics['weights_sha256']}", flush=True)
    if not main_rank:
        return 0
    if metrics.get("finished"):
        print(f"{args.run_dir}: the run is complete at step {metrics['step']}; nothing to do "
              "(start a new folder to train further)")
    elif metrics:
        print(f"step {metrics['step']}  frames {metrics['frames']}  loss {metrics['loss']:.4f}  "
              f"train MPJPE stage 1 {metrics['mpjpe1_mm']:.1f} mm, stage 2 {metrics['mpjpe2_mm']:.1f} mm  "
              f"({metrics['seconds'] / 60:.1f} min in all)")
    try:
        from core.deepfuse.plots import plot_curves
        png = plot_curves(args.run_dir / "curves.csv", args.run_dir / "curves.png")
        print(f"learning curves: {args.run_dir / 'curves.csv'}, {png}")
    except ImportError:
        print(f"learning curves: {args.run_dir / 'curves.csv'} (matplotlib missing: no PNG here)")
    if args.export:
        print(f"weights: {export_weights(args.run_dir, args.export)}")
    return 0
