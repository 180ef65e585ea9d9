"""`main.py process TAKE`: re-solve a take offline, batched, with progress bars.

Two phases: the network over every frame, then the whole-take skeleton solve
on those joints (docs/SOLVE.md). Both are stored as a new solve version; an
export with the default settings then writes the stored skeleton."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_process_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("take", type=Path, help="the take folder")
    p.add_argument("--model", default="full",
                   help="full (default; the lite model when this build ships no full one), lite, or a weights file")
    p.add_argument("--batch", type=int, default=16, help="frames per network batch (default 16)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the network")
    p.add_argument("--no-imu", action="store_true", help="solve from the cameras alone")


def run_process(args: argparse.Namespace) -> int:
    from app.cli.progress import progress_bar
    from core.take.process import load_model, process_take
    from core.take.take import Take, TakeError

    if args.batch < 1:
        print("--batch must be at least 1", file=sys.stderr)
        return 2
    try:
        take = Take(args.take)
        if take.imus_only:
            raise TakeError(f"{take.root} was recorded with IMUs alone: there is nothing for the network to "
                            f"solve; `main.py export {take.root}` poses the skeleton from the IMUs")
        rig = take.rig
    except TakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(take.summary())
    if len(take) == 0:
        print("error: the take holds no camera frames; nothing to solve", file=sys.stderr)
        return 1
    try:
        model, info, note = load_model(args.model)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if note:
        print(note)
    from core.deepfuse.engine import InferenceEngine

    engine = InferenceEngine(model, rig, device=args.device, threads=args.threads)
    with progress_bar("preparing camera lookup tables") as report:
        engine.prepare(report)
    try:
        with progress_bar(f"solving {len(take)} frames ({info['name']} model, {engine.device})") as network, \
                progress_bar("solving the skeleton") as skeleton:
            version, joints, meta = process_take(take, engine, info, args.batch, not args.no_imu, network,
                                                 skeleton_progress=skeleton)
    except (TakeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"solve {version:03d} stored in {take.layout.solve_dir(version)}: {meta['frames_found']}/{len(joints)} "
          f"frames with a performer, {meta['seconds']:.1f} s ({len(joints) / max(meta['seconds'], 1e-9):.1f} "
          f"frames/s on {meta['device']})")
    skel = meta.get("skeleton")
    if skel is not None:
        print(f"skeleton solved over {skel['solved_frames']}/{skel['frames']} frames in {skel['seconds']:.1f} s "
              f"({'with' if skel['settings']['imu'] else 'without'} IMUs) and stored beside the joints; "
              "`main.py export` writes it")
    else:
        print(f"note: {meta.get('skeleton_note', 'no skeleton stored')}")
    return 0
